/**
 * The Prometheus alert rules in deploy/prometheus are valid and behave as their promtool unit tests
 * say (each alert fires, and its near misses do not), and the Grafana dashboard's queries parse.
 * promtool comes from Debian's `prometheus` package (scripts/provision-debian.sh).
 */
import assert from "node:assert/strict";
import { runCommand } from "../support/mod.ts";
import {
  DASHBOARD_PATH,
  dashboardExpressions,
  promtoolBinary,
  ruleExpressions,
  RULES_PATH,
  RULES_TEST_PATH,
} from "./monitoring_files.ts";

async function promtool(args: string[]) {
  const result = await runCommand(promtoolBinary(), { args, timeoutMs: 60_000 });
  return { ...result, output: `${result.stdout}${result.stderr}` };
}

/** Alert names, in file order. */
function alertNames(yaml: string): string[] {
  return [...yaml.matchAll(/^\s*- alert:\s*(\S+)\s*$/gm)].map((match) => match[1]!);
}

Deno.test("promtool accepts the alert rules and counts as many rules as the tests read", async () => {
  const rules = Deno.readTextFileSync(RULES_PATH);
  const { code, output } = await promtool(["check", "rules", RULES_PATH]);
  assert.equal(code, 0, output);
  const found = /SUCCESS: (\d+) rules found/.exec(output);
  assert.ok(found, output);
  assert.equal(Number(found[1]), ruleExpressions(rules).length, "every expr: was read");
  assert.equal(Number(found[1]), alertNames(rules).length, "only alerts, no recording rules");
});

Deno.test("promtool's unit tests of the alert rules pass, with every alert both firing and not firing", async () => {
  const tests = Deno.readTextFileSync(RULES_TEST_PATH);
  const firing = new Set(
    [...tests.matchAll(/alertname:\s*(\w+)\s*\n\s*exp_alerts:\s*\n\s*- exp_labels:/g)].map((
      match,
    ) => match[1]!),
  );
  const quiet = new Set(
    [...tests.matchAll(/alertname:\s*(\w+),\s*exp_alerts:\s*\[\]/g)].map((match) => match[1]!),
  );
  for (const alert of alertNames(Deno.readTextFileSync(RULES_PATH))) {
    assert.ok(firing.has(alert), `${alert} has a case in which it fires`);
    assert.ok(quiet.has(alert), `${alert} has a case in which it does not fire`);
  }
  const { code, output } = await promtool(["test", "rules", RULES_TEST_PATH]);
  assert.equal(code, 0, output);
  assert.match(output, /SUCCESS/);
});

Deno.test("every query of the Grafana dashboard is valid PromQL", async () => {
  const dashboard = JSON.parse(Deno.readTextFileSync(DASHBOARD_PATH));
  const expressions = dashboardExpressions(dashboard);
  // promtool parses PromQL only in rule files: each query becomes a recording rule, with Grafana's
  // variables replaced by values of the kind Grafana puts there.
  const rules = expressions.map((expr, index) => {
    const promql = expr
      .replaceAll("$__rate_interval", "5m")
      .replaceAll(/\$\{?[a-zA-Z_]+\}?/g, ".*");
    return `      - record: dashboard:query_${index}\n        expr: ${JSON.stringify(promql)}\n`;
  });
  const dir = await Deno.makeTempDir({ prefix: "resec-dashboard-" });
  try {
    const path = `${dir}/dashboard.rules.yml`;
    await Deno.writeTextFile(path, `groups:\n  - name: dashboard\n    rules:\n${rules.join("")}`);
    const { code, output } = await promtool(["check", "rules", path]);
    assert.equal(code, 0, output);
    assert.match(output, new RegExp(`SUCCESS: ${expressions.length} rules found`));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
