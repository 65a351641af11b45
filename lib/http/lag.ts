/**
 * The `?lag=` bound of `/replica`: bytes, as a plain number or with a unit the way Patroni takes it
 * (`16kB`, `64MB`, `1GB`; units are powers of 1024, as in PostgreSQL and Patroni).
 */
import { ResecError } from "../errors.ts";

/** Thrown when a lag bound is not a size. */
export class LagSyntaxError extends ResecError {
  override name = "LagSyntaxError";
  constructor(readonly input: string) {
    super(
      `Cannot parse lag ${quoteShort(input)}: expected a number of bytes such as "1048576", ` +
        `"512kB" or "1MB"`,
    );
  }
}

const UNIT_BYTES: Record<string, number> = {
  "": 1,
  b: 1,
  k: 1024,
  kb: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1024 ** 3,
  gib: 1024 ** 3,
  t: 1024 ** 4,
  tb: 1024 ** 4,
  tib: 1024 ** 4,
};

/**
 * Parses a lag bound into bytes (rounded down). Units are case-insensitive and mean powers of 1024.
 *
 * @example
 * ```ts
 * parseLagBound("1MB"); // 1048576
 * parseLagBound("4096"); // 4096
 * ```
 */
export function parseLagBound(input: string): number {
  if (input.length > LAG_MAX_CHARS) throw new LagSyntaxError(input);
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(input);
  if (!match) throw new LagSyntaxError(input);
  const factor = UNIT_BYTES[match[2]!.toLowerCase()];
  if (factor === undefined) throw new LagSyntaxError(input);
  const bytes = Math.floor(Number(match[1]) * factor);
  if (!Number.isSafeInteger(bytes)) throw new LagSyntaxError(input);
  return bytes;
}

/** Long inputs are refused before any matching: a query string can be as long as a URL. */
const LAG_MAX_CHARS = 32;

/** An error quotes at most this many characters of the input, so it never echoes a huge query back. */
const QUOTE_MAX_CHARS = 40;

/** The input quoted, cut to `QUOTE_MAX_CHARS` characters. */
export function quoteShort(input: string): string {
  return JSON.stringify(
    input.length > QUOTE_MAX_CHARS ? `${input.slice(0, QUOTE_MAX_CHARS)}…` : input,
  );
}
