/**
 * A minimal Prometheus registry: counters and gauges with labels, rendered in the text exposition
 * format 0.0.4. No library: the format is small, and this keeps the binary free of Node-only deps.
 *
 * Output is deterministic: families sorted by name, label names sorted within a series, series sorted
 * by their label text, so two scrapes of the same state are byte-identical.
 */
import { ResecError } from "../errors.ts";

/** The Content-Type of `render()`'s output. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** Label values of one series, keyed by label name. */
export type LabelValues<L extends string> = { readonly [K in L]: string };

/** The label argument of a metric method: none for an unlabeled metric, else every label's value. */
export type LabelArgs<L extends string> = [L] extends [never] ? [] : [labels: LabelValues<L>];

export interface MetricOptions<L extends string> {
  /** `[a-zA-Z_:][a-zA-Z0-9_:]*`, unique in the registry. */
  name: string;
  /** One line shown to operators as `# HELP`. */
  help: string;
  /** `[a-zA-Z_][a-zA-Z0-9_]*`, not starting with `__`. */
  labelNames?: readonly L[];
}

/** Thrown for a bad metric or label name, a duplicate metric, or labels that do not fit. */
export class MetricsError extends ResecError {
  override name = "MetricsError";
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** What the registry needs from a metric. */
interface Family {
  readonly name: string;
  readonly help: string;
  readonly type: "counter" | "gauge";
  /** Sample lines (no trailing newline), in output order. */
  samples(): string[];
}

/**
 * Holds metrics and renders them. Create one per agent (no global registry).
 *
 * @example
 * ```ts
 * const registry = new MetricsRegistry();
 * const requests = registry.counter({ name: "x_requests_total", help: "Requests.", labelNames: ["code"] });
 * requests.inc({ code: "200" });
 * registry.render(); // "# HELP x_requests_total Requests.\n# TYPE x_requests_total counter\n..."
 * ```
 */
export class MetricsRegistry {
  readonly #families = new Map<string, Family>();

  /** Registers a counter: a value that only goes up (restarts reset it to 0). */
  counter<L extends string = never>(options: MetricOptions<L>): Counter<L> {
    return this.#register(new Counter<L>(options));
  }

  /** Registers a gauge: a value that goes up and down, or is absent while unknown. */
  gauge<L extends string = never>(options: MetricOptions<L>): Gauge<L> {
    return this.#register(new Gauge<L>(options));
  }

  /** Every metric in the Prometheus text format 0.0.4, ending with a newline. */
  render(): string {
    const names = [...this.#families.keys()].sort(compareText);
    let out = "";
    for (const name of names) {
      const family = this.#families.get(name)!;
      out += `# HELP ${name} ${escapeHelp(family.help)}\n# TYPE ${name} ${family.type}\n`;
      for (const line of family.samples()) out += `${line}\n`;
    }
    return out;
  }

  #register<M extends Family>(metric: M): M {
    if (this.#families.has(metric.name)) {
      throw new MetricsError(`Cannot register metric "${metric.name}": the name is taken`);
    }
    this.#families.set(metric.name, metric);
    return metric;
  }
}

/** Shared by counters and gauges: a map from label text to value. */
abstract class SeriesMetric<L extends string> implements Family {
  abstract readonly type: "counter" | "gauge";
  readonly name: string;
  readonly help: string;
  /** Sorted, so a series' label text does not depend on the caller's key order. */
  readonly labelNames: readonly L[];
  /** `{a="x",b="y"}` (or "" unlabeled) → value. */
  protected readonly series = new Map<string, number>();

  constructor(options: MetricOptions<L>) {
    if (!METRIC_NAME.test(options.name)) {
      throw new MetricsError(`Cannot register metric "${options.name}": not a valid metric name`);
    }
    const labelNames = [...(options.labelNames ?? [])].sort(compareText);
    for (const [index, label] of labelNames.entries()) {
      if (!LABEL_NAME.test(label) || label.startsWith("__")) {
        throw new MetricsError(
          `Cannot register metric "${options.name}": "${label}" is not a valid label name`,
        );
      }
      if (labelNames[index - 1] === label) {
        throw new MetricsError(`Cannot register metric "${options.name}": label "${label}" twice`);
      }
    }
    this.name = options.name;
    this.help = options.help;
    this.labelNames = labelNames;
    // An unlabeled metric exists from the start at 0, so rate() and absent() behave.
    if (labelNames.length === 0) this.series.set("", 0);
  }

  samples(): string[] {
    return [...this.series.keys()].sort(compareText).map((key) =>
      `${this.name}${key} ${formatValue(this.series.get(key)!)}`
    );
  }

  /** The value of a series, undefined when it is absent (tests, /state). */
  get(...labels: LabelArgs<L>): number | undefined {
    return this.series.get(this.labelKey(firstLabels(labels)));
  }

  /** Removes a series: it disappears from the output until set again. */
  remove(...labels: LabelArgs<L>): void {
    this.series.delete(this.labelKey(firstLabels(labels)));
  }

  /** Splits `[...labels, number]` arguments. */
  protected split(args: readonly unknown[]): { key: string; value: number | undefined } {
    const labeled = this.labelNames.length > 0;
    const labels = labeled ? args[0] as LabelValues<L> : undefined;
    const value = args[labeled ? 1 : 0] as number | undefined;
    if (value !== undefined && typeof value !== "number") {
      throw new MetricsError(`Metric "${this.name}" takes a number, not ${typeof value}`);
    }
    return { key: this.labelKey(labels), value };
  }

  protected labelKey(labels: LabelValues<L> | undefined): string {
    if (this.labelNames.length === 0) return "";
    if (labels === undefined || typeof labels !== "object") {
      throw new MetricsError(`Metric "${this.name}" needs labels ${this.labelNames.join(", ")}`);
    }
    const given = Object.keys(labels);
    const extra = given.filter((name) => !(this.labelNames as readonly string[]).includes(name));
    if (extra.length > 0) {
      throw new MetricsError(`Metric "${this.name}" has no label ${extra.join(", ")}`);
    }
    const pairs = this.labelNames.map((name) => {
      const value = labels[name];
      if (typeof value !== "string") {
        throw new MetricsError(`Metric "${this.name}" needs a string value for label "${name}"`);
      }
      return `${name}="${escapeLabelValue(value)}"`;
    });
    return `{${pairs.join(",")}}`;
  }
}

/**
 * A value that only goes up.
 *
 * @example
 * ```ts
 * counter.inc({ endpoint: "kv.read" });      // labeled: +1
 * unlabeledCounter.inc();                     // +1
 * unlabeledCounter.inc(3);                    // +3
 * ```
 */
export class Counter<L extends string = never> extends SeriesMetric<L> {
  readonly type = "counter";

  /** Adds `amount` (default 1, never negative). */
  inc(...args: [...LabelArgs<L>, amount?: number]): void {
    const { key, value = 1 } = this.split(args);
    if (!(value >= 0) || value === Infinity) {
      throw new MetricsError(`Counter "${this.name}" cannot grow by ${value}`);
    }
    this.series.set(key, (this.series.get(key) ?? 0) + value);
  }

  /** Creates a series at 0 if absent, so it shows before its first event. */
  touch(...labels: LabelArgs<L>): void {
    const key = this.labelKey(firstLabels(labels));
    if (!this.series.has(key)) this.series.set(key, 0);
  }
}

/**
 * A value that goes up and down, or is absent (`remove()`) while unknown.
 *
 * @example
 * ```ts
 * gauge.set({ role: "master" }, 1);
 * unlabeledGauge.set(42);
 * unlabeledGauge.remove(); // absent from the output until set again
 * ```
 */
export class Gauge<L extends string = never> extends SeriesMetric<L> {
  readonly type = "gauge";

  /** Sets the value (NaN and ±Infinity are allowed, as Prometheus allows them). */
  set(...args: [...LabelArgs<L>, value: number]): void {
    const { key, value } = this.split(args);
    if (value === undefined) throw new MetricsError(`Gauge "${this.name}" needs a value`);
    this.series.set(key, value);
  }
}

/** `\` and newline escaped, as `# HELP` requires. */
export function escapeHelp(text: string): string {
  return text.replaceAll("\\", "\\\\").replaceAll("\n", "\\n");
}

/** `\`, `"` and newline escaped, as a label value requires. */
export function escapeLabelValue(text: string): string {
  return text.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n");
}

/** A sample value as Prometheus writes it: `+Inf`, `-Inf`, `NaN`, else JavaScript's shortest form. */
export function formatValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return String(value);
}

function firstLabels<L extends string>(args: LabelArgs<L>): LabelValues<L> | undefined {
  return (args as readonly unknown[])[0] as LabelValues<L> | undefined;
}

/** Code-unit order: locale-independent, so output never depends on the host's settings. */
function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
