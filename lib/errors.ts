/**
 * The root of every error resec throws on purpose, so a caller can tell resec's own failures (which
 * carry a message written for an operator) from a bug or a runtime error.
 *
 * Each family keeps its own base (`ConsulError`, `RedisError`) and callers decide by the most specific
 * class; exit codes are chosen by those classes, never by this one.
 */

/**
 * Base of every error resec throws on purpose.
 *
 * @example
 * ```ts
 * import { ResecError } from "./errors.ts";
 * import { parseDuration } from "./duration.ts";
 *
 * try {
 *   parseDuration("5x");
 * } catch (error) {
 *   if (!(error instanceof ResecError)) throw error; // a bug, not a bad value
 *   console.error(error.message); // Cannot parse duration "5x": expected a duration such as …
 * }
 * ```
 */
export class ResecError extends Error {
  override name = "ResecError";
}
