/**
 * The monitoring files in deploy/ (Prometheus alert rules, their promtool tests, the Grafana
 * dashboard) as the tests read them: every PromQL expression they hold, and the metric and label
 * names each expression uses.
 *
 * The rules are YAML and the project has no YAML parser: `ruleExpressions()` reads only the `expr:`
 * keys, and the tests cross-check its count against promtool's own count of rules.
 */

const ROOT = new URL("../../", import.meta.url).pathname;

/** deploy/prometheus/resec.rules.yml */
export const RULES_PATH = `${ROOT}deploy/prometheus/resec.rules.yml`;
/** deploy/prometheus/resec.rules.test.yml (promtool's unit tests of the rules) */
export const RULES_TEST_PATH = `${ROOT}deploy/prometheus/resec.rules.test.yml`;
/** deploy/grafana/resec.json */
export const DASHBOARD_PATH = `${ROOT}deploy/grafana/resec.json`;

/** Debian's promtool (package `prometheus`, installed by scripts/provision-debian.sh). */
export function promtoolBinary(): string {
  return Deno.env.get("PROMTOOL_BIN") ?? "promtool";
}

/** Debian's Prometheus server (package `prometheus`). */
export function prometheusBinary(): string {
  return Deno.env.get("PROMETHEUS_BIN") ?? "prometheus";
}

/**
 * Every `expr:` of a rules file, in file order: plain, quoted, or a block scalar (`|`, `>`).
 *
 * @example
 * ```ts
 * ruleExpressions("- alert: A\n  expr: up == 0\n"); // ["up == 0"]
 * ```
 */
export function ruleExpressions(yaml: string): string[] {
  const lines = yaml.split("\n");
  const expressions: string[] = [];
  for (let index = 0; index < lines.length; index++) {
    const match = /^(\s*)(- )?expr:[ \t]*(.*)$/.exec(lines[index]!);
    if (!match) continue;
    const keyColumn = match[1]!.length + (match[2] ? 2 : 0);
    const value = match[3]!.trim();
    const continuation: string[] = [];
    while (index + 1 < lines.length) {
      const next = lines[index + 1]!;
      const indent = next.length - next.trimStart().length;
      if (next.trim() !== "" && indent <= keyColumn) break;
      continuation.push(next);
      index++;
    }
    if (/^[|>][-+]?$/.test(value)) {
      const text = continuation.map((line) => line.trim()).filter((line) => line !== "");
      expressions.push(text.join(value.startsWith(">") ? " " : "\n"));
    } else if (value.startsWith('"')) {
      expressions.push(JSON.parse(value) as string);
    } else if (value.startsWith("'")) {
      expressions.push(value.slice(1, -1).replaceAll("''", "'"));
    } else {
      expressions.push([value, ...continuation.map((line) => line.trim())].join(" ").trim());
    }
  }
  return expressions;
}

/**
 * The PromQL inside the rules' annotation templates: the strings given to `query`, directly or
 * through `printf` (its verbs such as `%s` sit inside label matchers, which name no metric).
 */
export function templateQueries(yaml: string): string[] {
  return [...yaml.matchAll(/\b(?:query|printf)\s+"((?:[^"\\]|\\.)*)"/g)].map((match) =>
    JSON.parse(`"${match[1]}"`) as string
  );
}

/** The metric name of every `series:` in a promtool test file. */
export function testSeriesNames(yaml: string): string[] {
  return [...yaml.matchAll(/^\s*(?:- )?series:\s*['"]?([a-zA-Z_:][a-zA-Z0-9_:]*)/gm)].map((
    match,
  ) => match[1]!);
}

/** Replaces the `for:` of every rule with `duration`; returns the text and how many it replaced. */
export function withForDurations(yaml: string, duration: string): { text: string; count: number } {
  let count = 0;
  const text = yaml.replace(/^(\s+)for:[ \t]*\S+[ \t]*$/gm, (_line, indent: string) => {
    count++;
    return `${indent}for: ${duration}`;
  });
  return { text, count };
}

/** A Grafana dashboard as far as the tests read it. */
interface DashboardPanel {
  readonly title?: string;
  readonly targets?: readonly { readonly expr?: string }[];
  readonly panels?: readonly DashboardPanel[];
}

interface Dashboard {
  readonly panels?: readonly DashboardPanel[];
  readonly templating?: {
    readonly list?: readonly { readonly type?: string; readonly query?: unknown }[];
  };
}

/**
 * Every PromQL expression of a dashboard: each panel's targets (rows included) and the queries of
 * its template variables. Grafana's `label_values(expr, label)` is reduced to its expression.
 */
export function dashboardExpressions(dashboard: Dashboard): string[] {
  const expressions: string[] = [];
  const visit = (panels: readonly DashboardPanel[] | undefined) => {
    for (const panel of panels ?? []) {
      for (const target of panel.targets ?? []) {
        if (target.expr !== undefined) expressions.push(target.expr);
      }
      visit(panel.panels);
    }
  };
  visit(dashboard.panels);
  for (const variable of dashboard.templating?.list ?? []) {
    if (variable.type !== "query") continue;
    const query = typeof variable.query === "string"
      ? variable.query
      : (variable.query as { query?: string } | undefined)?.query;
    if (query === undefined) continue;
    const labelValues = /^\s*label_values\(\s*(?:(.*),)?\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)\s*$/s
      .exec(query);
    if (labelValues) {
      if (labelValues[1] !== undefined) expressions.push(labelValues[1]);
      continue;
    }
    const queryResult = /^\s*query_result\((.*)\)\s*$/s.exec(query);
    if (!queryResult) {
      throw new Error(`Cannot read the template variable query ${JSON.stringify(query)}`);
    }
    expressions.push(queryResult[1]!);
  }
  return expressions;
}

/** What an expression refers to. */
export interface PromqlNames {
  /** Metric names of its selectors. */
  readonly metrics: Set<string>;
  /** Label names of its matchers and of its `by`, `without`, `on`, `ignoring` and group lists. */
  readonly labels: Set<string>;
  /** Values its matchers accept, by label: `=` values, and each branch of a plain `=~` `a|b`. */
  readonly values: Map<string, Set<string>>;
}

/** Aggregations, operators and modifiers: PromQL words that are not metric names. */
const KEYWORDS = new Set([
  "sum",
  "min",
  "max",
  "avg",
  "group",
  "stddev",
  "stdvar",
  "count",
  "count_values",
  "bottomk",
  "topk",
  "quantile",
  "limitk",
  "limit_ratio",
  "and",
  "or",
  "unless",
  "atan2",
  "bool",
  "offset",
  "inf",
  "nan",
]);
/** Keywords followed by a list of label names in parentheses. */
const LABEL_LISTS = new Set(["by", "without", "on", "ignoring", "group_left", "group_right"]);
const MATCHER =
  /([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)/g;

/**
 * The metric names, label names and matched label values of a PromQL expression (Grafana's
 * `$variables` allowed). A word is a metric name unless it is a keyword, a function (followed by a
 * parenthesis), or inside a label list, matcher, range, string or comment.
 *
 * @example
 * ```ts
 * promqlNames('sum by (job) (rate(x_total{code="500"}[5m]))').metrics; // Set {"x_total"}
 * ```
 */
export function promqlNames(expr: string): PromqlNames {
  const metrics = new Set<string>();
  const labels = new Set<string>();
  const values = new Map<string, Set<string>>();
  const identifier = /[a-zA-Z_:][a-zA-Z0-9_:]*/y;
  let at = 0;
  const skipSpace = (from: number) => {
    let index = from;
    while (index < expr.length && /\s/.test(expr[index]!)) index++;
    return index;
  };
  while (at < expr.length) {
    const char = expr[at]!;
    if (char === '"' || char === "'" || char === "`") {
      at = endOfString(expr, at);
    } else if (char === "#") {
      const newline = expr.indexOf("\n", at);
      at = newline < 0 ? expr.length : newline;
    } else if (char === "{") {
      const end = closing(expr, at, "{", "}");
      readMatchers(expr.slice(at + 1, end), labels, values);
      at = end + 1;
    } else if (char === "[") {
      at = closing(expr, at, "[", "]") + 1;
    } else if (char === "$") {
      // A Grafana variable: `${name}` or `$name`.
      if (expr[at + 1] === "{") {
        at = closing(expr, at + 1, "{", "}") + 1;
      } else {
        identifier.lastIndex = at + 1;
        at = identifier.exec(expr) ? identifier.lastIndex : at + 1;
      }
    } else if (/[0-9.]/.test(char)) {
      // A number or a duration (5m, 1e3, 0x1f): never a name.
      while (at < expr.length && /[0-9a-zA-Z_.]/.test(expr[at]!)) at++;
    } else if (/[a-zA-Z_:]/.test(char)) {
      identifier.lastIndex = at;
      const word = identifier.exec(expr)![0];
      at = identifier.lastIndex;
      const next = skipSpace(at);
      const lower = word.toLowerCase();
      if (LABEL_LISTS.has(lower)) {
        if (expr[next] === "(") {
          const end = closing(expr, next, "(", ")");
          for (const label of expr.slice(next + 1, end).split(",")) {
            if (label.trim() !== "") labels.add(label.trim());
          }
          at = end + 1;
        }
      } else if (!KEYWORDS.has(lower) && expr[next] !== "(") {
        metrics.add(word);
      }
    } else {
      at++;
    }
  }
  return { metrics, labels, values };
}

function readMatchers(
  text: string,
  labels: Set<string>,
  values: Map<string, Set<string>>,
): void {
  for (const [, label, operator, quoted] of text.matchAll(MATCHER)) {
    labels.add(label!);
    const value = quoted!.startsWith("`")
      ? quoted!.slice(1, -1)
      : quoted!.startsWith("'")
      ? quoted!.slice(1, -1).replaceAll("\\'", "'")
      : JSON.parse(quoted!) as string;
    // Only values a reader can list: `=`, and regexes that are a plain alternation of words.
    const accepted = operator === "="
      ? [value]
      : operator === "=~" && /^[a-zA-Z0-9_.:|-]+$/.test(value)
      ? value.split("|")
      : [];
    for (const each of accepted) {
      if (!values.has(label!)) values.set(label!, new Set());
      values.get(label!)!.add(each);
    }
  }
}

/** The index just after the string literal that starts at `start`. */
function endOfString(text: string, start: number): number {
  const quote = text[start]!;
  let index = start + 1;
  while (index < text.length && text[index] !== quote) {
    index += quote !== "`" && text[index] === "\\" ? 2 : 1;
  }
  return index + 1;
}

/** The index of the bracket that closes the one at `start`, skipping strings. */
function closing(text: string, start: number, open: string, close: string): number {
  let depth = 0;
  for (let index = start; index < text.length; index++) {
    const char = text[index]!;
    if (char === '"' || char === "'" || char === "`") {
      index = endOfString(text, index) - 1;
    } else if (char === open) {
      depth++;
    } else if (char === close && --depth === 0) {
      return index;
    }
  }
  throw new SyntaxError(`Unbalanced "${open}" in ${JSON.stringify(text)}`);
}
