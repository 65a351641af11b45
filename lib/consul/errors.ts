/**
 * Typed failures of the Consul HTTP API, so callers decide by class (retry, re-register, give up) instead
 * of parsing messages. No message ever carries the ACL token.
 */
import { ResecError } from "../errors.ts";

/** Any failure talking to Consul. */
export class ConsulError extends ResecError {
  override name = "ConsulError";
}

/** Consul could not be reached at all: connection refused or reset, unknown host, TLS failure. */
export class ConsulUnreachableError extends ConsulError {
  override name = "ConsulUnreachableError";
  constructor(readonly baseUrl: string, detail: string, options?: ErrorOptions) {
    super(`Cannot reach Consul at ${baseUrl}: ${detail}`, options);
  }
}

/** A request ran past its deadline. */
export class ConsulTimeoutError extends ConsulError {
  override name = "ConsulTimeoutError";
  constructor(
    readonly method: string,
    readonly path: string,
    readonly timeoutMs: number,
    options?: ErrorOptions,
  ) {
    super(`Consul did not answer ${method} ${path} within ${timeoutMs}ms`, options);
  }
}

/** Consul answered with a status outside 2xx. `consulMessage` is the body Consul sent back. */
export class ConsulHttpError extends ConsulError {
  override name = "ConsulHttpError";
  constructor(
    readonly status: number,
    readonly consulMessage: string,
    readonly method: string,
    readonly path: string,
    message?: string,
    options?: ErrorOptions,
  ) {
    super(
      message ??
        `Consul answered ${status} to ${method} ${path}: ${consulMessage || "(no message)"}`,
      options,
    );
  }
}

/** 403: the token lacks a permission. The message names the resource, e.g. `writing key "a/b"`. */
export class ConsulPermissionDeniedError extends ConsulHttpError {
  override name = "ConsulPermissionDeniedError";
  constructor(
    consulMessage: string,
    method: string,
    path: string,
    /** What was attempted, e.g. `writing key "resec/.lock"`. */
    readonly action: string,
  ) {
    super(
      403,
      consulMessage,
      method,
      path,
      `Permission denied ${action}: ${consulMessage || "(no message)"}`,
    );
  }
}

/** 404 where the caller did not expect one: an unknown session, check, service or endpoint. */
export class ConsulNotFoundError extends ConsulHttpError {
  override name = "ConsulNotFoundError";
}

/** 500 "No cluster leader": the servers are electing; the request may succeed a moment later. */
export class ConsulNoLeaderError extends ConsulHttpError {
  override name = "ConsulNoLeaderError";
}

/** 429: the agent or servers are rate limiting us. */
export class ConsulRateLimitedError extends ConsulHttpError {
  override name = "ConsulRateLimitedError";
}

/** Consul's answer did not have the shape its API documents. */
export class ConsulMalformedResponseError extends ConsulError {
  override name = "ConsulMalformedResponseError";
  constructor(
    readonly method: string,
    readonly path: string,
    detail: string,
    options?: ErrorOptions,
  ) {
    super(`Consul's answer to ${method} ${path} is malformed: ${detail}`, options);
  }
}

/**
 * Consul's answer was longer than the client reads (`MAX_RESPONSE_BYTES`): broken or hostile. Reading
 * stopped at the limit, so such an answer costs bounded memory.
 */
export class ConsulResponseTooLargeError extends ConsulMalformedResponseError {
  override name = "ConsulResponseTooLargeError";
  constructor(method: string, path: string, readonly limitBytes: number) {
    super(method, path, `the answer is longer than the ${limitBytes} bytes the client reads`);
  }
}

/**
 * True for failures worth retrying unchanged: Consul unreachable, a deadline passed, a 5xx (no leader,
 * a server restarting) or a 429.
 *
 * @example
 * ```ts
 * isTransientConsulError(new ConsulTimeoutError("GET", "/v1/kv/a", 100)); // true
 * ```
 */
export function isTransientConsulError(error: unknown): boolean {
  if (error instanceof ConsulUnreachableError || error instanceof ConsulTimeoutError) return true;
  if (error instanceof ConsulHttpError) return error.status >= 500 || error.status === 429;
  return false;
}

/** Maps a non-2xx answer to the most specific error class. */
export function httpErrorFor(
  status: number,
  consulMessage: string,
  method: string,
  path: string,
  action: string,
): ConsulHttpError {
  if (status === 403) return new ConsulPermissionDeniedError(consulMessage, method, path, action);
  if (status === 404) return new ConsulNotFoundError(status, consulMessage, method, path);
  if (status === 429) return new ConsulRateLimitedError(status, consulMessage, method, path);
  if (status >= 500 && /no (cluster )?leader/i.test(consulMessage)) {
    return new ConsulNoLeaderError(status, consulMessage, method, path);
  }
  return new ConsulHttpError(status, consulMessage, method, path);
}
