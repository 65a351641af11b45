/**
 * Reading the JSON records resec keeps in Consul KV (the lock value, the controls, the candidacies).
 * Anyone who may write those keys can put anything there, so each record is validated whole where it
 * is read, with these helpers, and becomes a typed value or an `InvalidRecordError` with a reason.
 */
import { ResecError } from "./errors.ts";
import { formatHostPort, type HostPort, parseHostPort } from "./address.ts";

/**
 * The longest record value read at all. Ours are a few hundred characters; Consul accepts 512 KiB,
 * and parsing (and quoting) that much on every watch answer buys nothing.
 */
export const MAX_RECORD_CHARS = 16_384;

/** The longest text field (a pause reason, a switchover's detail). */
export const MAX_TEXT_CHARS = 1_024;

/** The longest identifier (a Redis run ID or replication ID is 40 characters, a UUID 36). */
export const MAX_ID_CHARS = 128;

/** The longest address: a DNS name has at most 253 characters, then `:port`. */
export const MAX_ADDRESS_CHARS = 300;

/** The longest timestamp (ISO 8601 with milliseconds is 24 characters). */
const MAX_TIMESTAMP_CHARS = 64;

/** How much of a bad value a reason quotes. */
const QUOTE_CHARS = 60;

/** Thrown when a record in Consul is not one resec could have written. */
export class InvalidRecordError extends ResecError {
  override name = "InvalidRecordError";

  /**
   * @param record what was read, e.g. "switchover record"
   * @param reason what is wrong with it, for the log line
   */
  constructor(readonly record: string, readonly reason: string) {
    super(`Cannot parse the ${record}: ${reason}`);
  }
}

/** `value` as JSON, cut short so that a huge value cannot flood a log line. */
export function quoteValue(value: unknown): string {
  const text = String(JSON.stringify(value));
  return text.length > QUOTE_CHARS ? `${text.slice(0, QUOTE_CHARS)}…` : text;
}

/**
 * The fields of one JSON object record, each read with its type checked. Fields the reader does not
 * ask for are ignored, so a newer resec may add one during a rolling upgrade.
 *
 * @example
 * ```ts
 * const fields = RecordFields.parse("pause note", '{"reason":"upgrade","since":"2026-01-01T00:00:00Z"}');
 * fields.text("reason"); // "upgrade"
 * ```
 */
export class RecordFields {
  private constructor(
    readonly record: string,
    readonly object: Readonly<Record<string, unknown>>,
  ) {}

  /**
   * Parses `text` as one JSON object.
   *
   * @throws {InvalidRecordError} when it is too long, not JSON, or not an object
   */
  static parse(record: string, text: string): RecordFields {
    if (text.length > MAX_RECORD_CHARS) {
      throw new InvalidRecordError(
        record,
        `it is ${text.length} characters long, more than the ${MAX_RECORD_CHARS} a record may have`,
      );
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new InvalidRecordError(record, `${quoteValue(text)} is not JSON`);
    }
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
      throw new InvalidRecordError(record, `expected a JSON object, not ${quoteValue(parsed)}`);
    }
    return new RecordFields(record, parsed as Record<string, unknown>);
  }

  /** True when the field is present (its own, not inherited; not null). */
  has(name: string): boolean {
    return Object.hasOwn(this.object, name) && this.object[name] !== undefined &&
      this.object[name] !== null;
  }

  /** A string of at most `maxChars` characters; empty only when `empty` allows it. */
  text(name: string, options: { maxChars?: number; empty?: boolean } = {}): string {
    const value = this.#present(name);
    const maxChars = options.maxChars ?? MAX_TEXT_CHARS;
    if (typeof value !== "string") throw this.#wrong(name, value, "a string");
    if (value === "" && !options.empty) throw this.#wrong(name, value, "a non-empty string");
    if (value.length > maxChars) {
      throw this.#wrong(name, value, `a string of at most ${maxChars} characters`);
    }
    return value;
  }

  /** Like `text`, or undefined when the field is absent. */
  optionalText(
    name: string,
    options: { maxChars?: number; empty?: boolean } = {},
  ): string | undefined {
    return this.has(name) ? this.text(name, options) : undefined;
  }

  /** An integer from `min` to `max`. */
  integer(name: string, range: { min: number; max?: number }): number {
    const value = this.#present(name);
    const max = range.max ?? Number.MAX_SAFE_INTEGER;
    if (
      typeof value !== "number" || !Number.isSafeInteger(value) || value < range.min || value > max
    ) {
      throw this.#wrong(name, value, `an integer from ${range.min} to ${max}`);
    }
    return value;
  }

  /** Like `integer`, or undefined when the field is absent. */
  optionalInteger(name: string, range: { min: number; max?: number }): number | undefined {
    return this.has(name) ? this.integer(name, range) : undefined;
  }

  /** A number above 0 and at most `max`. */
  positive(name: string, max: number): number {
    const value = this.#present(name);
    if (typeof value !== "number" || !Number.isFinite(value) || value <= 0 || value > max) {
      throw this.#wrong(name, value, `a number above 0 and at most ${max}`);
    }
    return value;
  }

  boolean(name: string): boolean {
    const value = this.#present(name);
    if (typeof value !== "boolean") throw this.#wrong(name, value, "true or false");
    return value;
  }

  /** One of `choices`. */
  choice<T extends string>(name: string, choices: readonly T[]): T {
    const value = this.#present(name);
    if (!choices.includes(value as T)) {
      throw this.#wrong(name, value, `one of ${choices.map((each) => `"${each}"`).join(", ")}`);
    }
    return value as T;
  }

  /** A `host:port` written the way resec formats it (`formatHostPort`), so it compares as text too. */
  address(name: string): HostPort {
    const text = this.text(name, { maxChars: MAX_ADDRESS_CHARS });
    let address: HostPort;
    try {
      address = parseHostPort(text);
    } catch (error) {
      throw new InvalidRecordError(this.record, `"${name}": ${(error as Error).message}`);
    }
    if (formatHostPort(address) !== text) {
      throw this.#wrong(name, text, `written as "${formatHostPort(address)}"`);
    }
    return address;
  }

  /** Like `address`, or undefined when the field is absent. */
  optionalAddress(name: string): HostPort | undefined {
    return this.has(name) ? this.address(name) : undefined;
  }

  /** A date and time JavaScript can read (we write ISO 8601). */
  timestamp(name: string): string {
    const text = this.text(name, { maxChars: MAX_TIMESTAMP_CHARS });
    if (Number.isNaN(Date.parse(text))) throw this.#wrong(name, text, "a date such as ISO 8601");
    return text;
  }

  #present(name: string): unknown {
    if (!this.has(name)) throw new InvalidRecordError(this.record, `"${name}" is missing`);
    return this.object[name];
  }

  #wrong(name: string, value: unknown, expected: string): InvalidRecordError {
    return new InvalidRecordError(
      this.record,
      `"${name}" must be ${expected}, not ${quoteValue(value)}`,
    );
  }
}
