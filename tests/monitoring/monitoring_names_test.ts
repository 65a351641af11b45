/**
 * The alert rules, their promtool tests and the Grafana dashboard query only what the agent really
 * exports: every metric name is taken from the exposition of a real `ResecMetrics`, so renaming a
 * metric, a label or a decision fails here instead of silently breaking an alert or a panel.
 */
import assert from "node:assert/strict";
import { ResecMetrics } from "../../lib/metrics/resec.ts";
import { parseExposition } from "../../lib/metrics/testing.ts";
import { DECISIONS } from "../../lib/reconciler/model.ts";
import {
  DASHBOARD_PATH,
  dashboardExpressions,
  promqlNames,
  ruleExpressions,
  RULES_PATH,
  RULES_TEST_PATH,
  templateQueries,
  testSeriesNames,
} from "./monitoring_files.ts";

/** Series Prometheus itself adds to every target. */
const PROMETHEUS_SERIES = new Set(["up"]);
/** Labels Prometheus adds to every scraped series. */
const TARGET_LABELS = new Set(["job", "instance"]);
/** Labels whose every value the rules may name: a typo in a value would match nothing, silently. */
const CLOSED_LABELS = ["decision", "role", "status"];

interface Exported {
  /** Metric names, with `_bucket`, `_sum` and `_count` for histograms and summaries. */
  readonly metrics: Set<string>;
  /** Label values by label name, from every series shown. */
  readonly labels: Map<string, Set<string>>;
}

/** What a real agent's registry exports, with every optional and labeled series brought out once. */
function exported(): Exported {
  const metrics = new ResecMetrics({ version: "test" });
  metrics.setMasterLinkUp(true);
  metrics.setReplicationOffset(1);
  metrics.setReplicationLag(0);
  metrics.setConsulReachable(true);
  metrics.recordConsulRequest({
    endpoint: "kv.read",
    method: "GET",
    status: 0,
    outcome: "timeout",
    durationMs: 1,
  });
  metrics.decisionChanged("master");
  metrics.failoverCompleted(1);
  const exposition = parseExposition(metrics.render());
  const names = new Set<string>();
  for (const [name, type] of exposition.types) {
    names.add(name);
    if (type === "histogram") names.add(`${name}_bucket`);
    if (type === "histogram" || type === "summary") {
      names.add(`${name}_sum`);
      names.add(`${name}_count`);
    }
  }
  const labels = new Map<string, Set<string>>();
  for (const series of exposition.samples.keys()) {
    for (
      const [, label, value] of series.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)
    ) {
      if (!labels.has(label!)) labels.set(label!, new Set());
      labels.get(label!)!.add(value!);
    }
  }
  return { metrics: names, labels };
}

/** The decision names of lib/reconciler/model.ts, the values of the `decision` label. */
function decisionNames(): Set<string> {
  const names = Object.keys(DECISIONS);
  assert.ok(names.length > 0, "lib/reconciler/model.ts lists DECISIONS");
  return new Set(names);
}

/** Every PromQL expression of the deploy/ files, labeled with where it comes from. */
function deployExpressions(): { where: string; expr: string }[] {
  const rules = Deno.readTextFileSync(RULES_PATH);
  const dashboard = JSON.parse(Deno.readTextFileSync(DASHBOARD_PATH));
  return [
    ...ruleExpressions(rules).map((expr) => ({ where: "alert rule", expr })),
    ...templateQueries(rules).map((expr) => ({ where: "alert annotation", expr })),
    ...dashboardExpressions(dashboard).map((expr) => ({ where: "dashboard", expr })),
  ];
}

Deno.test("every metric the alert rules, their promtool tests and the dashboard query is exported by the agent", () => {
  const { metrics } = exported();
  const expressions = deployExpressions();
  assert.ok(expressions.filter((each) => each.where === "alert rule").length >= 10);
  assert.ok(expressions.filter((each) => each.where === "dashboard").length >= 20);
  const unknown: string[] = [];
  for (const { where, expr } of expressions) {
    const names = promqlNames(expr).metrics;
    assert.ok(names.size > 0, `${where} ${JSON.stringify(expr)} names no metric`);
    for (const name of names) {
      if (!metrics.has(name) && !PROMETHEUS_SERIES.has(name)) {
        unknown.push(`${name} (${where}: ${expr})`);
      }
    }
  }
  const recorded = testSeriesNames(Deno.readTextFileSync(RULES_TEST_PATH));
  assert.ok(recorded.length >= 20, "the promtool tests record series");
  for (const name of recorded) {
    if (!metrics.has(name) && !PROMETHEUS_SERIES.has(name)) {
      unknown.push(`${name} (a series of the promtool tests)`);
    }
  }
  assert.deepEqual(unknown, [], "metrics the agent does not export");
});

Deno.test("every metric the agent exports is shown by the dashboard or used by an alert rule", () => {
  const used = new Set(deployExpressions().flatMap(({ expr }) => [...promqlNames(expr).metrics]));
  const unshown = [...exported().metrics].filter((name) => !used.has(name));
  assert.deepEqual(unshown, [], "exported metrics that no panel or rule uses: add a panel");
});

Deno.test("the label names and the decision, role and status values the rules and the dashboard match exist", () => {
  const { labels } = exported();
  const allowedValues = new Map<string, Set<string>>([["decision", decisionNames()]]);
  for (const label of CLOSED_LABELS.filter((label) => label !== "decision")) {
    allowedValues.set(label, labels.get(label) ?? new Set());
  }
  assert.deepEqual(
    [...allowedValues.get("role")!].sort(),
    ["master", "replica", "unknown"],
  );
  assert.ok(allowedValues.get("decision")!.has("no_eligible_candidate"));
  const problems: string[] = [];
  for (const { where, expr } of deployExpressions()) {
    const names = promqlNames(expr);
    for (const label of names.labels) {
      if (!labels.has(label) && !TARGET_LABELS.has(label)) {
        problems.push(`label ${label} (${where}: ${expr})`);
      }
    }
    for (const label of CLOSED_LABELS) {
      for (const value of names.values.get(label) ?? []) {
        if (!allowedValues.get(label)!.has(value)) {
          problems.push(`${label}="${value}" (${where}: ${expr})`);
        }
      }
    }
  }
  assert.deepEqual(problems, [], "labels or values the agent never exports");
});

Deno.test("the PromQL reader finds metric names and skips functions, keywords, label lists, ranges and strings", () => {
  const cases: [string, string[], string[]][] = [
    ["up == 0", ["up"], []],
    [
      'sum by (job, instance) (rate(a_total{code="5xx",b=~"x|y"}[5m])) / on (job) group_left (c) b',
      ["a_total", "b"],
      ["b", "c", "code", "instance", "job"],
    ],
    ["count by (job) (max_over_time(x[1h])) unless on (job) (y == 1) > bool 2", ["x", "y"], [
      "job",
    ]],
    ["max(x offset 5m) or vector(0) * 1e3 + Inf", ["x"], []],
    ['label_replace(x{job=~"$job"}, "dst", "$1", "src", "(.*)") # a comment naming z', ["x"], [
      "job",
    ]],
    ['increase(x_total{instance=~"$instance"}[$__rate_interval]) and ${var} < NaN', [
      "x_total",
    ], ["instance"]],
    ["topk(3, sum without (le) (h_bucket)) - ignoring (i) k:recorded", [
      "h_bucket",
      "k:recorded",
    ], ["i", "le"]],
  ];
  for (const [expr, metrics, labels] of cases) {
    const names = promqlNames(expr);
    assert.deepEqual([...names.metrics].sort(), metrics, expr);
    assert.deepEqual([...names.labels].sort(), labels, expr);
  }
  assert.deepEqual(
    [...promqlNames('x{decision=~"a|b_c", role="master", s=~"re.*"}').values].map((
      [label, values],
    ) => [label, [...values]]),
    [["decision", ["a", "b_c"]], ["role", ["master"]]],
  );
});

Deno.test("the rules reader finds every expr: plain, quoted and block scalars", () => {
  const yaml = [
    "groups:",
    "  - name: g",
    "    rules:",
    "      - alert: A",
    "        expr: up == 0",
    "        for: 1m",
    "      - alert: B",
    "        expr: |",
    "          sum(x)",
    "",
    "          > 1",
    "        labels: { severity: warning }",
    "      - expr: 'y{a=''b''}'",
    "        record: r",
    '      - alert: C\n        expr: "z > 1"',
    "      - alert: D",
    "        expr: a",
    "          or b",
    "        for: 5m",
  ].join("\n");
  assert.deepEqual(ruleExpressions(yaml), [
    "up == 0",
    "sum(x)\n> 1",
    "y{a='b'}",
    "z > 1",
    "a or b",
  ]);
});

Deno.test("the dashboard counts fenced masters by the same decisions as ResecFencedMaster", () => {
  const fencingSets = deployExpressions()
    .map(({ expr }) => promqlNames(expr).values.get("decision"))
    .filter((values) => values?.has("fencing_unconfirmed_lock"))
    .map((values) => [...values!].sort().join("|"));
  assert.ok(fencingSets.length >= 3, "the rule and the two dashboard panels");
  assert.equal(new Set(fencingSets).size, 1, fencingSets.join("\n"));
});
