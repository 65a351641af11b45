import assert from "node:assert/strict";
import {
  escapeLabelValue,
  formatValue,
  MetricsError,
  MetricsRegistry,
} from "../../lib/metrics/registry.ts";
import { parseExposition } from "../../lib/metrics/testing.ts";

function assertExpositionFormat(text: string): void {
  assert.doesNotThrow(() => parseExposition(text));
}

Deno.test("a registry renders HELP, TYPE and samples, families sorted by name and series by labels", () => {
  const registry = new MetricsRegistry();
  const requests = registry.counter({
    name: "app_requests_total",
    help: "Requests served.",
    labelNames: ["path", "code"],
  });
  const temperature = registry.gauge({ name: "app_temperature_celsius", help: "Temperature." });
  registry.counter({ name: "aaa_first_total", help: "Registered last, rendered first." });
  requests.inc({ path: "/b", code: "200" });
  requests.inc({ path: "/a", code: "503" }, 2);
  requests.inc({ code: "200", path: "/a" });
  temperature.set(21.5);

  assert.equal(
    registry.render(),
    [
      "# HELP aaa_first_total Registered last, rendered first.",
      "# TYPE aaa_first_total counter",
      "aaa_first_total 0",
      "# HELP app_requests_total Requests served.",
      "# TYPE app_requests_total counter",
      'app_requests_total{code="200",path="/a"} 1',
      'app_requests_total{code="200",path="/b"} 1',
      'app_requests_total{code="503",path="/a"} 2',
      "# HELP app_temperature_celsius Temperature.",
      "# TYPE app_temperature_celsius gauge",
      "app_temperature_celsius 21.5",
      "",
    ].join("\n"),
  );
});

Deno.test("the output does not depend on the order series were created in", () => {
  const render = (order: string[]) => {
    const registry = new MetricsRegistry();
    const counter = registry.counter({ name: "x_total", help: "X.", labelNames: ["k"] });
    for (const key of order) counter.inc({ k: key });
    return registry.render();
  };
  assert.equal(render(["b", "a", "c", "B"]), render(["c", "B", "a", "b"]));
  assert.match(render(["b", "a"]), /k="a"\} 1\nx_total\{k="b"\} 1\n$/);
});

Deno.test("backslashes, double quotes and newlines in label values are escaped", () => {
  const registry = new MetricsRegistry();
  const gauge = registry.gauge({ name: "x", help: "X.", labelNames: ["v"] });
  gauge.set({ v: 'a\\b"c\nd' }, 1);
  assert.equal(escapeLabelValue('a\\b"c\nd'), 'a\\\\b\\"c\\nd');
  assert.ok(registry.render().includes('x{v="a\\\\b\\"c\\nd"} 1\n'));
  assertExpositionFormat(registry.render());
});

Deno.test("backslashes and newlines in help text are escaped, double quotes are not", () => {
  const registry = new MetricsRegistry();
  registry.gauge({ name: "x", help: 'Line one\nsays "hi" \\ bye' });
  assert.ok(registry.render().startsWith('# HELP x Line one\\nsays "hi" \\\\ bye\n'));
});

Deno.test("an unlabeled metric shows 0 before any event; a labeled one shows no series", () => {
  const registry = new MetricsRegistry();
  registry.counter({ name: "a_total", help: "A." });
  registry.counter({ name: "b_total", help: "B.", labelNames: ["k"] });
  assert.equal(
    registry.render(),
    "# HELP a_total A.\n# TYPE a_total counter\na_total 0\n# HELP b_total B.\n# TYPE b_total counter\n",
  );
});

Deno.test("a removed gauge is absent until set again, and touch() creates a series at 0", () => {
  const registry = new MetricsRegistry();
  const gauge = registry.gauge({ name: "g", help: "G." });
  const counter = registry.counter({ name: "c_total", help: "C.", labelNames: ["k"] });
  gauge.remove();
  counter.touch({ k: "x" });
  assert.equal(gauge.get(), undefined);
  assert.doesNotMatch(registry.render(), /^g /m);
  assert.match(registry.render(), /^c_total\{k="x"\} 0$/m);
  gauge.set(3);
  assert.match(registry.render(), /^g 3$/m);
  assert.equal(gauge.get(), 3);
});

Deno.test("gauge values go up and down, and NaN and infinities render as Prometheus writes them", () => {
  assert.equal(formatValue(NaN), "NaN");
  assert.equal(formatValue(Infinity), "+Inf");
  assert.equal(formatValue(-Infinity), "-Inf");
  assert.equal(formatValue(-0.25), "-0.25");
  assert.equal(formatValue(1e21), "1e+21");
  const registry = new MetricsRegistry();
  const gauge = registry.gauge({ name: "g", help: "G.", labelNames: ["k"] });
  gauge.set({ k: "a" }, 5);
  gauge.set({ k: "a" }, -2);
  gauge.set({ k: "b" }, Infinity);
  gauge.set({ k: "c" }, NaN);
  assert.match(registry.render(), /g\{k="a"\} -2\ng\{k="b"\} \+Inf\ng\{k="c"\} NaN\n$/);
  assertExpositionFormat(registry.render());
});

Deno.test("a counter refuses to go down or by a non-finite amount", () => {
  const counter = new MetricsRegistry().counter({ name: "c_total", help: "C." });
  for (const amount of [-1, NaN, Infinity]) {
    assert.throws(() => counter.inc(amount), MetricsError, String(amount));
  }
  counter.inc(0);
  counter.inc(2.5);
  assert.equal(counter.get(), 2.5);
});

Deno.test("bad metric names, bad or reserved label names and a taken name are refused", () => {
  const registry = new MetricsRegistry();
  registry.counter({ name: "taken_total", help: "T." });
  assert.throws(() => registry.counter({ name: "taken_total", help: "T." }), MetricsError);
  for (const name of ["", "1abc", "a-b", "a b", "é"]) {
    assert.throws(() => registry.gauge({ name, help: "X." }), MetricsError, name);
  }
  for (const label of ["", "1a", "a-b", "__reserved"]) {
    assert.throws(
      () => registry.gauge({ name: `ok_${label.length}`, help: "X.", labelNames: [label] }),
      MetricsError,
      label,
    );
  }
  assert.throws(
    () => registry.gauge({ name: "twice", help: "X.", labelNames: ["a", "a"] }),
    MetricsError,
  );
});

Deno.test("a labeled metric refuses missing, extra or non-string labels", () => {
  const counter = new MetricsRegistry().counter<"a" | "b">({
    name: "c_total",
    help: "C.",
    labelNames: ["a", "b"],
  });
  const untyped = counter as unknown as { inc(labels?: unknown, amount?: unknown): void };
  assert.throws(() => untyped.inc({ a: "x" }), MetricsError);
  assert.throws(() => untyped.inc({ a: "x", b: "y", c: "z" }), MetricsError);
  assert.throws(() => untyped.inc({ a: "x", b: 1 }), MetricsError);
  assert.throws(() => untyped.inc(), MetricsError);
  assert.throws(() => untyped.inc({ a: "x", b: "y" }, "2"), MetricsError);
});

Deno.test("the strict parser used by these tests rejects malformed lines", () => {
  for (
    const text of [
      "x 1",
      'x{a="b"} 1\nx{a="b"} 2\n',
      "x{a=b} 1\n",
      'x{a="raw\nnewline"} 1\n',
      "x one\n",
      "# TYPE x counter\n# TYPE x gauge\n",
    ]
  ) {
    assert.throws(() => parseExposition(text), SyntaxError, JSON.stringify(text));
  }
});
