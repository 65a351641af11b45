/**
 * Helpers for tests that read resec's metrics (unit tests, and end-to-end tests scraping /metrics).
 */

const METRIC = "[a-zA-Z_:][a-zA-Z0-9_:]*";
const LABEL = '[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\\\\n]|\\\\[\\\\"n])*"';
const VALUE = "NaN|[+-]Inf|-?\\d+(?:\\.\\d+)?(?:e[+-]\\d+)?";
const SAMPLE_LINE = new RegExp(`^(${METRIC}(?:\\{${LABEL}(?:,${LABEL})*\\})?) (${VALUE})$`);
const HELP_LINE = new RegExp(`^# HELP (${METRIC}) (?:[^\\\\\\n]|\\\\[\\\\n])*$`);
const TYPE_LINE = new RegExp(`^# TYPE (${METRIC}) (counter|gauge|histogram|summary|untyped)$`);

/** A parsed exposition: sample values by series text, and each family's HELP and TYPE. */
export interface Exposition {
  /** `name{label="value"}` (exactly as rendered) → value. */
  readonly samples: ReadonlyMap<string, number>;
  readonly help: ReadonlyMap<string, string>;
  readonly types: ReadonlyMap<string, string>;
}

/**
 * Parses Prometheus text format 0.0.4 strictly, throwing on the first line that does not fit (so a
 * test that parses the output also proves it is well-formed).
 *
 * @example
 * ```ts
 * parseExposition(metrics.render()).samples.get('resec_role{role="master"}'); // 1
 * ```
 */
export function parseExposition(text: string): Exposition {
  if (text !== "" && !text.endsWith("\n")) {
    throw new SyntaxError("The exposition must end with \\n");
  }
  const samples = new Map<string, number>();
  const help = new Map<string, string>();
  const types = new Map<string, string>();
  for (const line of text.split("\n").slice(0, -1)) {
    const helpMatch = HELP_LINE.exec(line);
    const typeMatch = TYPE_LINE.exec(line);
    const sampleMatch = SAMPLE_LINE.exec(line);
    if (helpMatch) {
      help.set(helpMatch[1]!, line.slice(`# HELP ${helpMatch[1]} `.length));
    } else if (typeMatch) {
      if (types.has(typeMatch[1]!)) throw new SyntaxError(`Second TYPE line: ${line}`);
      types.set(typeMatch[1]!, typeMatch[2]!);
    } else if (sampleMatch) {
      if (samples.has(sampleMatch[1]!)) throw new SyntaxError(`Duplicate series: ${line}`);
      const value = sampleMatch[2]!;
      samples.set(
        sampleMatch[1]!,
        value === "+Inf" ? Infinity : value === "-Inf" ? -Infinity : Number(value),
      );
    } else {
      throw new SyntaxError(`Not a line of the text format: ${JSON.stringify(line)}`);
    }
  }
  return { samples, help, types };
}
