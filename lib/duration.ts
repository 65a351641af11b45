/**
 * Durations written the way Go writes them (`1s`, `500ms`, `72h`, `1m30s`), so environment files of the
 * Go resec keep working.
 */
import { ResecError } from "./errors.ts";

/** A length of time in milliseconds. */
export type Milliseconds = number;

const UNIT_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  "µs": 1e-3,
  "μs": 1e-3,
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
};

/** Thrown when a duration string is not in Go's syntax. */
export class DurationSyntaxError extends ResecError {
  override name = "DurationSyntaxError";
  constructor(readonly input: string) {
    super(`Cannot parse duration "${input}": expected a duration such as "5s", "500ms" or "1m30s"`);
  }
}

/**
 * Parses a Go duration string into milliseconds. Negative durations parse (Go accepts them); callers
 * that need a positive one check the sign.
 *
 * @example
 * ```ts
 * parseDuration("1m30s"); // 90000
 * ```
 */
export function parseDuration(input: string): Milliseconds {
  const text = input.trim();
  if (text === "0") return 0;
  const match = /^([+-]?)((?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+$/.exec(text);
  if (!match) throw new DurationSyntaxError(input);
  const sign = match[1] === "-" ? -1 : 1;
  let total = 0;
  for (
    const part of text.slice(match[1]!.length).matchAll(
      /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/g,
    )
  ) {
    total += Number(part[1]) * UNIT_MS[part[2]!]!;
  }
  return sign * total;
}

/**
 * Formats milliseconds the way Go prints a duration (`1m30s`, `500ms`, `0s`), for logs and --check.
 *
 * @example
 * ```ts
 * formatDuration(90_000); // "1m30s"
 * formatDuration(500); // "500ms"
 * formatDuration(3_600_000); // "1h0m0s"
 * ```
 */
export function formatDuration(ms: Milliseconds): string {
  if (ms === 0) return "0s";
  const sign = ms < 0 ? "-" : "";
  let rest = Math.abs(ms);
  if (rest < 1_000) return `${sign}${trimNumber(rest)}ms`;
  const hours = Math.floor(rest / 3_600_000);
  rest -= hours * 3_600_000;
  const minutes = Math.floor(rest / 60_000);
  rest -= minutes * 60_000;
  const seconds = rest / 1_000;
  let out = sign;
  if (hours) out += `${hours}h`;
  if (hours || minutes) out += `${minutes}m`;
  out += `${trimNumber(seconds)}s`;
  return out;
}

/**
 * Formats milliseconds as Consul wants a duration in JSON bodies (`"15s"`, `"500ms"`).
 *
 * @example
 * ```ts
 * consulDuration(15_000); // "15s"
 * consulDuration(1_500); // "1500ms"
 * ```
 */
export function consulDuration(ms: Milliseconds): string {
  return ms % 1_000 === 0 ? `${ms / 1_000}s` : `${Math.round(ms)}ms`;
}

function trimNumber(value: number): string {
  return String(Number(value.toFixed(3)));
}
