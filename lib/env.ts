/**
 * Reading configuration from environment variables, collecting every problem instead of stopping at the
 * first, so an operator fixes a bad environment file in one go.
 */
import { ResecError } from "./errors.ts";
import { type Milliseconds, parseDuration } from "./duration.ts";

/** Environment variables as plain data (tests pass an object; the program passes Deno.env). */
export type Environment = Readonly<Record<string, string | undefined>>;

/** One bad setting: which variable, what it held, what was expected. */
export interface ConfigProblem {
  readonly variable: string;
  readonly value: string | undefined;
  readonly message: string;
}

/**
 * Thrown once with every problem found, by `EnvReader.assertValid()`. The agent and `--check` never
 * throw it (they print `parseConfig`'s problems themselves): it serves callers that read a few
 * variables on their own, such as the TLS tests' clients.
 */
export class ConfigError extends ResecError {
  override name = "ConfigError";
  constructor(readonly problems: readonly ConfigProblem[]) {
    super(
      `Invalid configuration (${problems.length} problem${problems.length === 1 ? "" : "s"}):\n` +
        problems.map((problem) => `  - ${problem.message}`).join("\n"),
    );
  }
}

export interface DurationBounds {
  minMs?: Milliseconds;
  maxMs?: Milliseconds;
  /** Describes the bounds for the error message, e.g. "between 10s and 24h". */
  describe?: string;
}

/**
 * Reads typed values from an environment, recording a problem (and returning the default) for each bad
 * one. Secrets are never echoed into problems: pass `secret: true` where it matters.
 *
 * @example
 * ```ts
 * const reader = new EnvReader({ HEALTHCHECK_INTERVAL: "5x" });
 * reader.duration("HEALTHCHECK_INTERVAL", 5_000);
 * reader.problems[0]?.message; // Cannot parse HEALTHCHECK_INTERVAL "5x": expected a duration such as "5s"
 * ```
 */
export class EnvReader {
  readonly problems: ConfigProblem[] = [];

  constructor(readonly env: Environment) {}

  /** The raw value, or undefined when unset or empty. */
  raw(name: string): string | undefined {
    const value = this.env[name];
    return value === undefined || value.trim() === "" ? undefined : value.trim();
  }

  string(name: string, fallback: string): string;
  string(name: string): string | undefined;
  string(name: string, fallback?: string): string | undefined {
    return this.raw(name) ?? fallback;
  }

  /** Records a problem against a variable. */
  problem(name: string, message: string, options: { secret?: boolean } = {}): void {
    this.problems.push({
      variable: name,
      value: options.secret ? undefined : this.raw(name),
      message,
    });
  }

  duration(name: string, fallback: Milliseconds, bounds: DurationBounds = {}): Milliseconds {
    const text = this.raw(name);
    if (text === undefined) return fallback;
    let value: Milliseconds;
    try {
      value = parseDuration(text);
    } catch {
      this.problem(
        name,
        `Cannot parse ${name} "${text}": expected a duration such as "5s", "500ms" or "1m30s"`,
      );
      return fallback;
    }
    const min = bounds.minMs ?? 0;
    if (value < min || (bounds.maxMs !== undefined && value > bounds.maxMs)) {
      const range = bounds.describe ?? (min > 0 ? `at least ${min}ms` : "not negative");
      this.problem(name, `${name} "${text}" is out of range: expected ${range}`);
      return fallback;
    }
    return value;
  }

  integer(name: string, fallback: number, bounds: { min?: number; max?: number } = {}): number {
    const text = this.raw(name);
    if (text === undefined) return fallback;
    if (!/^[+-]?\d+$/.test(text)) {
      this.problem(name, `Cannot parse ${name} "${text}": expected a whole number`);
      return fallback;
    }
    const value = Number(text);
    // Past 2^53 a number is no longer exact: refuse it like any value out of range.
    const max = bounds.max ?? Number.MAX_SAFE_INTEGER;
    const min = bounds.min ?? -Number.MAX_SAFE_INTEGER;
    if (value < min || value > max) {
      const range = bounds.max === undefined && value <= max
        ? `at least ${bounds.min}`
        : `between ${bounds.min ?? min} and ${max}`;
      this.problem(name, `${name} "${text}" is out of range: expected a number ${range}`);
      return fallback;
    }
    return value;
  }

  /** true/false/1/0/yes/no/on/off, case-insensitive. */
  boolean(name: string, fallback: boolean): boolean {
    const text = this.raw(name);
    if (text === undefined) return fallback;
    const lower = text.toLowerCase();
    if (["1", "true", "yes", "on"].includes(lower)) return true;
    if (["0", "false", "no", "off"].includes(lower)) return false;
    this.problem(name, `Cannot parse ${name} "${text}": expected true or false`);
    return fallback;
  }

  /** One of a fixed set of words, case-insensitive; returns the canonical spelling. */
  choice<T extends string>(name: string, choices: readonly T[], fallback: T): T {
    const text = this.raw(name);
    if (text === undefined) return fallback;
    const found = choices.find((choice) => choice.toLowerCase() === text.toLowerCase());
    if (found === undefined) {
      this.problem(name, `Cannot parse ${name} "${text}": expected one of ${choices.join(", ")}`);
      return fallback;
    }
    return found;
  }

  /** A comma separated list; empty items dropped. */
  list(name: string): string[] {
    const text = this.raw(name);
    if (text === undefined) return [];
    return text.split(",").map((item) => item.trim()).filter((item) => item !== "");
  }

  /** Throws a ConfigError when any problem was recorded. */
  assertValid(): void {
    if (this.problems.length > 0) throw new ConfigError(this.problems);
  }
}

/**
 * Why a file named by a variable could not be read, in a few words for a problem's message.
 *
 * @example
 * ```ts
 * try {
 *   Deno.readTextFileSync("/run/secrets/redis");
 * } catch (error) {
 *   describeFileError(error); // "no such file"
 * }
 * ```
 */
export function describeFileError(error: unknown): string {
  if (error instanceof Deno.errors.NotFound) return "no such file";
  if (error instanceof Deno.errors.PermissionDenied) return "permission denied";
  if (error instanceof Deno.errors.IsADirectory) return "it is a directory";
  return error instanceof Error ? error.message : String(error);
}
