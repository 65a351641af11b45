/**
 * Typed failures of the Redis side, and the one place that turns ioredis and socket errors into them.
 *
 * Messages name the server and the cause an operator can fix; they never carry a password (Redis's own
 * replies do not echo it, and ioredis's copy of the AUTH arguments is dropped from the cause).
 */
import { ResecError } from "../errors.ts";
import { readableRedisVersion } from "./info.ts";

/** Base of every error this module throws, so callers can catch them all at once. */
export class RedisError extends ResecError {
  override name = "RedisError";
}

/** The server could not be reached, refused the connection, or the connection broke. */
export class RedisUnavailableError extends RedisError {
  override name = "RedisUnavailableError";
}

/** The server did not answer a command (or the connection attempt) before its deadline. */
export class RedisTimeoutError extends RedisError {
  override name = "RedisTimeoutError";
  constructor(
    readonly command: string,
    readonly timeoutMs: number,
    options?: ErrorOptions & { message?: string },
  ) {
    super(options?.message ?? `Redis did not answer ${command} within ${timeoutMs} ms`, options);
  }
}

/** Why Redis refused us: each one has a different fix. */
export type AuthFailure =
  | "wrong-credentials"
  | "password-required"
  | "no-password-configured"
  | "acl-unsupported"
  | "permission-denied";

/** Redis refused our credentials, wants some, or the ACL user may not run a command. */
export class RedisAuthError extends RedisError {
  override name = "RedisAuthError";
  /** For "permission-denied": the command refused, as the ACL names it (`info`, `client|setname`). */
  readonly command: string | undefined;
  constructor(
    readonly failure: AuthFailure,
    message: string,
    options?: ErrorOptions & { command?: string },
  ) {
    super(message, options);
    this.command = options?.command;
  }
}

/** The TLS handshake failed (certificate, server name, or a server that does not speak TLS). */
export class RedisTlsError extends RedisError {
  override name = "RedisTlsError";
}

/** Redis answered a command with an error reply. */
export class RedisCommandError extends RedisError {
  override name = "RedisCommandError";
  constructor(readonly command: string, readonly reply: string, options?: ErrorOptions) {
    super(`Redis refused ${command}: ${reply}`, options);
  }
}

/**
 * The server runs a Redis older than resec can manage (see `MIN_REDIS_VERSION` in info.ts), or names
 * no version resec can read (`version` undefined, or without a `major.minor` at its start).
 */
export class RedisVersionError extends RedisError {
  override name = "RedisVersionError";
  constructor(readonly address: string, readonly version: string | undefined) {
    const which = readableRedisVersion(version)
      ? `runs ${version}, older than 6.2`
      : `names no version resec can read (redis_version ${JSON.stringify(version ?? "")}), so it ` +
        "may be older than 6.2";
    super(
      `Redis at ${address} ${which}: resec refuses writes with CLIENT PAUSE … WRITE and hands ` +
        "over with FAILOVER, both new in 6.2. Upgrade Redis, or keep the Go resec beside this one",
    );
  }
}

/**
 * The ACL user may not run commands the agent needs (`INFO`, or `CHECKED_COMMANDS` in commander.ts),
 * named as the ACL names them (`client|pause`); found at start, before the first is needed.
 */
export class RedisMissingPermissionError extends RedisError {
  override name = "RedisMissingPermissionError";
  constructor(
    readonly address: string,
    readonly username: string | undefined,
    readonly commands: readonly string[],
  ) {
    const user = username ? `ACL user "${username}"` : 'the "default" user';
    const names = commands.map((command) => command.replace("|", " ").toUpperCase()).join(", ");
    const grant = commands.map((command) => `+${command}`).join(" ");
    super(
      `Redis at ${address} does not allow ${user} to run ${names} (NOPERM), which the agent ` +
        `needs to manage it. Grant it: ACL SETUSER ${username ?? "default"} ${grant} ` +
        "(docs/configuration.md lists what the agent needs)",
    );
  }
}

/**
 * True for Redis's NOPERM: the ACL user may not run the command.
 *
 * @example
 * ```ts
 * isPermissionDenied(new RedisAuthError("permission-denied", "NOPERM …")); // true
 * ```
 */
export function isPermissionDenied(error: unknown): error is RedisAuthError {
  return error instanceof RedisAuthError && error.failure === "permission-denied";
}

/** What was being done when an error happened, for the message. */
export interface ErrorContext {
  /** The command, in upper case, with no arguments that could be secret (`INFO`, `AUTH`). */
  command: string;
  /** host:port of the server. */
  address: string;
  /** The ACL user, when one is configured (a name is not a secret). */
  username?: string;
  /** The deadline the command had, for timeout messages. */
  timeoutMs?: number;
}

const CONNECTION_CODES: Record<string, string> = {
  ECONNREFUSED: "refused the connection",
  ECONNRESET: "reset the connection",
  EPIPE: "closed the connection while we wrote",
  EHOSTUNREACH: "is unreachable (no route to host)",
  ENETUNREACH: "is unreachable (network unreachable)",
  ENOTFOUND: "has a host name that does not resolve",
  EAI_AGAIN: "has a host name that could not be resolved right now",
  EADDRNOTAVAIL: "has an address that is not available",
};

/**
 * Turns anything thrown by ioredis or the socket into one of this module's errors. Errors that already
 * are a `RedisError` pass through unchanged.
 *
 * @example
 * ```ts
 * try {
 *   await redis.call("INFO");
 * } catch (error) {
 *   throw classifyRedisError(error, { command: "INFO", address: "127.0.0.1:6379" });
 * }
 * ```
 */
export function classifyRedisError(error: unknown, context: ErrorContext): RedisError {
  if (error instanceof RedisError) return error;
  const message = error instanceof Error ? error.message : String(error);
  const code = typeof (error as { code?: unknown })?.code === "string"
    ? (error as { code: string }).code
    : undefined;
  // Keep only the message as the cause: ioredis attaches the command's arguments (AUTH's password).
  const cause = { cause: new Error(message) };
  const at = `Redis at ${context.address}`;
  const user = context.username ? `ACL user "${context.username}"` : 'the "default" user';

  if (message.startsWith("WRONGPASS")) {
    return new RedisAuthError(
      "wrong-credentials",
      `${at} refused the credentials: wrong password for ${user}, or the user does not exist or ` +
        "is disabled (WRONGPASS)",
      cause,
    );
  }
  if (message.startsWith("NOAUTH")) {
    return new RedisAuthError(
      "password-required",
      `${at} requires authentication and no password is configured: set REDIS_PASSWORD (NOAUTH)`,
      cause,
    );
  }
  if (/without any password configured|no password is set/i.test(message)) {
    return new RedisAuthError(
      "no-password-configured",
      `${at} has no password configured for the default user, but REDIS_PASSWORD is set`,
      cause,
    );
  }
  if (context.command === "AUTH" && /wrong number of arguments/i.test(message)) {
    return new RedisAuthError(
      "acl-unsupported",
      `${at} does not support ACL users: REDIS_USERNAME needs Redis 6 or later`,
      cause,
    );
  }
  if (message.startsWith("NOPERM")) {
    return new RedisAuthError(
      "permission-denied",
      `${at} does not allow ${user} to run ${context.command}: grant it in the ACL (NOPERM)`,
      { ...cause, command: context.command.toLowerCase().replace(" ", "|") },
    );
  }
  if (error instanceof Error && error.name === "ReplyError") {
    return new RedisCommandError(context.command, message, cause);
  }
  if (message === "Command timed out" || code === "ETIMEDOUT") {
    return new RedisTimeoutError(context.command, context.timeoutMs ?? Number.NaN, cause);
  }
  if (code !== undefined && CONNECTION_CODES[code] !== undefined) {
    return new RedisUnavailableError(`${at} ${CONNECTION_CODES[code]} (${code})`, cause);
  }
  if (isTlsFailure(code, message)) {
    return new RedisTlsError(`TLS handshake with ${at} failed: ${message}`, cause);
  }
  if (/Connection is closed|Stream isn't writeable|connection close/i.test(message)) {
    return new RedisUnavailableError(`${at} closed the connection`, cause);
  }
  return new RedisUnavailableError(`${at} failed during ${context.command}: ${message}`, cause);
}

function isTlsFailure(code: string | undefined, message: string): boolean {
  if (
    code !== undefined && /^(ERR_TLS|ERR_SSL|CERT_|UNABLE_TO|DEPTH_ZERO|SELF_SIGNED)/.test(code)
  ) {
    return true;
  }
  return /certificate|ssl|tls|handshake/i.test(message);
}
