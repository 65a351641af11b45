/**
 * Consul sessions: the lease behind a lock. Create with explicit settings, renew well inside the TTL,
 * destroy. `SessionKeeper` owns the renew loop and knows when the last renewal was sent.
 */
import { backoffDelay, type BackoffPolicy } from "../backoff.ts";
import { type Clock, systemClock } from "../clock.ts";
import { consulDuration, type Milliseconds, parseDuration } from "../duration.ts";
import { type Logger, silentLogger } from "../log.ts";
import { type ConsulClient, encodePath } from "./client.ts";
import {
  asArray,
  asObject,
  indexField,
  optionalStringField,
  stringField,
  stringListField,
  unsignedField,
} from "./decode.ts";
import {
  ConsulError,
  ConsulHttpError,
  ConsulNotFoundError,
  isTransientConsulError,
} from "./errors.ts";

/** What happens to the keys a session holds when it is invalidated. */
export type SessionBehavior = "release" | "delete";

export interface CreateSessionOptions {
  name: string;
  /**
   * Consul may wait up to twice this before invalidating the session. Undefined: no TTL, so nothing
   * needs renewing; the session then lives until it is destroyed or a check it is tied to fails.
   */
  ttlMs: Milliseconds | undefined;
  /** After an invalidation, how long the session's locks cannot be re-taken (0 to disable). */
  lockDelayMs: Milliseconds;
  behavior: SessionBehavior;
  /** Node check IDs tying the session to node health; undefined keeps Consul's default (serfHealth). */
  nodeChecks?: string[];
  /** Service check IDs tying the session to service health. */
  serviceChecks?: string[];
  signal?: AbortSignal;
}

/** A session as Consul describes it. */
export interface SessionInfo {
  id: string;
  name: string;
  node: string;
  ttlMs: Milliseconds | undefined;
  lockDelayMs: Milliseconds;
  behavior: SessionBehavior;
  nodeChecks: string[];
  serviceChecks: string[];
  createIndex: number;
}

/** The session no longer exists: it expired, was destroyed, or its node or checks failed. */
export class SessionGoneError extends ConsulError {
  override name = "SessionGoneError";
  constructor(readonly session: string, options?: ErrorOptions) {
    super(`Consul session "${session}" is gone (expired, destroyed or invalidated)`, options);
  }
}

/**
 * Creates a session and returns its ID.
 *
 * @example
 * ```ts
 * const id = await createSession(client, {
 *   name: "resec", ttlMs: 15_000, lockDelayMs: 1_000, behavior: "release", nodeChecks: [],
 * });
 * ```
 */
export async function createSession(
  client: ConsulClient,
  options: CreateSessionOptions,
): Promise<string> {
  const body: Record<string, unknown> = {
    Name: options.name,
    LockDelay: consulDuration(options.lockDelayMs),
    Behavior: options.behavior,
  };
  if (options.ttlMs !== undefined) body.TTL = consulDuration(options.ttlMs);
  if (options.nodeChecks !== undefined) body.NodeChecks = options.nodeChecks;
  if (options.serviceChecks !== undefined) {
    body.ServiceChecks = options.serviceChecks.map((id) => ({ ID: id }));
  }
  const response = await client.request({
    method: "PUT",
    path: "/v1/session/create",
    endpoint: "session.create",
    body,
    action: `creating session "${options.name}"`,
    signal: options.signal,
    decode: (json) => stringField(asObject(json, "the answer"), "ID", "the answer"),
  });
  return response.value!;
}

/**
 * Renews a session; rejects with SessionGoneError when Consul no longer knows it.
 *
 * @example
 * ```ts
 * try {
 *   await renewSession(client, session, { timeoutMs: 5_000 });
 * } catch (error) {
 *   if (error instanceof SessionGoneError) session = await createSession(client, options);
 * }
 * ```
 */
export async function renewSession(
  client: ConsulClient,
  session: string,
  options: { signal?: AbortSignal; timeoutMs?: Milliseconds } = {},
): Promise<SessionInfo> {
  try {
    const response = await client.request({
      method: "PUT",
      path: `/v1/session/renew/${encodePath(session)}`,
      endpoint: "session.renew",
      action: `renewing session "${session}"`,
      signal: options.signal,
      timeoutMs: options.timeoutMs,
      decode: (json) => {
        const first = asArray(json, "the answer")[0];
        if (first === undefined) throw new TypeError("expected the renewed session, got []");
        return decodeSession(first);
      },
    });
    return response.value!;
  } catch (error) {
    if (error instanceof ConsulNotFoundError) throw new SessionGoneError(session, { cause: error });
    throw error;
  }
}

/**
 * Destroys a session, releasing (or deleting) its keys at once. Idempotent.
 *
 * @example
 * ```ts
 * await destroySession(client, session); // its locks are released at once
 * ```
 */
export async function destroySession(
  client: ConsulClient,
  session: string,
  options: { signal?: AbortSignal; timeoutMs?: Milliseconds } = {},
): Promise<void> {
  await client.request({
    method: "PUT",
    path: `/v1/session/destroy/${encodePath(session)}`,
    endpoint: "session.destroy",
    action: `destroying session "${session}"`,
    signal: options.signal,
    timeoutMs: options.timeoutMs,
  });
}

/**
 * Reads a session; undefined when it does not exist (any more).
 *
 * @example
 * ```ts
 * const info = await sessionInfo(client, session);
 * if (info === undefined) console.log("expired or destroyed");
 * ```
 */
export async function sessionInfo(
  client: ConsulClient,
  session: string,
  options: { signal?: AbortSignal } = {},
): Promise<SessionInfo | undefined> {
  const response = await client.request({
    method: "GET",
    path: `/v1/session/info/${encodePath(session)}`,
    endpoint: "session.info",
    action: `reading session "${session}"`,
    acceptStatus: [404],
    signal: options.signal,
    decode: (json) => asArray(json, "the answer").map(decodeSession),
  });
  return response.value?.[0];
}

/**
 * True when Consul refused a session because a check it is tied to is not registered yet, or is
 * critical: the caller registers (or heals) the check and tries again.
 *
 * @example
 * ```ts
 * const session = await createSession(client, options).catch(async (error) => {
 *   if (!isSessionCheckNotReady(error)) throw error;
 *   await registerService(client, presence); // then try again
 * });
 * ```
 */
export function isSessionCheckNotReady(error: unknown): boolean {
  return error instanceof ConsulHttpError && error.status === 500 &&
    /Missing (service )?check|in critical state/i.test(error.consulMessage);
}

/**
 * True when Consul refused a key operation because the session it names no longer exists (it was
 * destroyed, or a check it was tied to failed): the caller makes a new session.
 *
 * @example
 * ```ts
 * const held = await acquireKey(client, key, session, value).catch((error) => {
 *   if (isSessionInvalid(error)) return undefined; // make a new session
 *   throw error;
 * });
 * ```
 */
export function isSessionInvalid(error: unknown): boolean {
  return error instanceof ConsulHttpError && error.status === 500 &&
    /invalid session/i.test(error.consulMessage);
}

/**
 * Every session in the datacenter (`/v1/session/list`).
 *
 * @example
 * ```ts
 * const mine = (await listSessions(client)).filter((s) => s.node === "redis-1");
 * ```
 */
export async function listSessions(
  client: ConsulClient,
  options: { signal?: AbortSignal } = {},
): Promise<SessionInfo[]> {
  const response = await client.request({
    method: "GET",
    path: "/v1/session/list",
    endpoint: "session.list",
    action: "listing sessions",
    signal: options.signal,
    decode: (json) => asArray(json, "the answer").map(decodeSession),
  });
  return response.value ?? [];
}

/**
 * Decodes one session of `/v1/session/info`, `/list` or `/renew`.
 *
 * @example
 * ```ts
 * decodeSession({
 *   ID: "b1f…", Name: "resec", Node: "redis-1", TTL: "15s", LockDelay: 1_000_000_000, CreateIndex: 12,
 * }); // { id: "b1f…", ttlMs: 15000, lockDelayMs: 1000, behavior: "release", … }
 * ```
 */
export function decodeSession(json: unknown): SessionInfo {
  const what = "the session";
  const object = asObject(json, what);
  const ttl = optionalStringField(object, "TTL", what);
  let ttlMs: Milliseconds | undefined;
  if (ttl !== undefined) {
    try {
      ttlMs = parseDuration(ttl);
    } catch {
      throw new TypeError(`expected ${what}.TTL to be a duration, got ${JSON.stringify(ttl)}`);
    }
  }
  const behavior = optionalStringField(object, "Behavior", what) ?? "release";
  if (behavior !== "release" && behavior !== "delete") {
    throw new TypeError(`expected ${what}.Behavior to be release or delete, got "${behavior}"`);
  }
  const serviceChecks = asArray(object.ServiceChecks, `${what}.ServiceChecks`).map((check) =>
    stringField(asObject(check, `${what}.ServiceChecks[]`), "ID", `${what}.ServiceChecks[]`)
  );
  return {
    id: stringField(object, "ID", what),
    name: optionalStringField(object, "Name", what) ?? "",
    node: optionalStringField(object, "Node", what) ?? "",
    ttlMs,
    // Consul encodes LockDelay as nanoseconds.
    lockDelayMs: unsignedField(object, "LockDelay", what) / 1e6,
    behavior,
    nodeChecks: stringListField(
      object,
      // Consul before 1.7 named them Checks.
      object.NodeChecks === undefined || object.NodeChecks === null ? "Checks" : "NodeChecks",
      what,
    ),
    serviceChecks,
    createIndex: indexField(object, "CreateIndex", what),
  };
}

/** Renewals per TTL: every TTL/3, so two may fail before the TTL runs out. */
const RENEWALS_PER_TTL = 3;

/** The first retry after a failed renewal: soon, as the TTL is running. */
const RENEW_RETRY_INITIAL_MS = 100;

/** Retries back off to TTL/6 at most, so at least two more fit before the TTL runs out. */
const RENEW_RETRY_MAX_TTL_DIVISOR = 6;

/**
 * A renewal's deadline is TTL/2, within these bounds: a renewal slower than the TTL is worthless, so
 * give up on it in time to try again; but never below what a loaded Consul needs, nor above a plain
 * request's deadline.
 */
const RENEW_TIMEOUT_TTL_DIVISOR = 2;
const RENEW_TIMEOUT_MIN_MS = 500;
const RENEW_TIMEOUT_MAX_MS = 10_000;

export interface SessionKeeperOptions {
  client: ConsulClient;
  session: string;
  ttlMs: Milliseconds;
  /** When the request that created the session (or last renewed it) was sent. */
  confirmedAt: number;
  /** Time between renewals (default TTL/3, so two may fail before the TTL runs out). */
  intervalMs?: Milliseconds;
  /** Backoff of retries after a failed renewal (default 100 ms doubling up to TTL/6). */
  retry?: BackoffPolicy;
  clock?: Clock;
  logger?: Logger;
}

/**
 * Renews a session on a schedule until closed or until Consul says the session is gone.
 *
 * `lastRenewedAt()` is when the last SUCCESSFUL renewal was SENT: Consul cannot expire the session
 * before `lastRenewedAt() + ttlMs`, which is what fencing relies on.
 *
 * @example
 * ```ts
 * await using keeper = new SessionKeeper({ client, session, ttlMs: 15_000, confirmedAt: sentAt });
 * keeper.gone.addEventListener("abort", () => console.log(keeper.gone.reason));
 * ```
 */
export class SessionKeeper {
  readonly session: string;
  readonly ttlMs: Milliseconds;
  readonly intervalMs: Milliseconds;
  readonly #client: ConsulClient;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #retry: BackoffPolicy;
  readonly #stop = new AbortController();
  readonly #gone = new AbortController();
  readonly #loop: Promise<void>;
  #lastRenewedAt: number;

  constructor(options: SessionKeeperOptions) {
    this.session = options.session;
    this.ttlMs = options.ttlMs;
    this.intervalMs = options.intervalMs ??
      Math.max(1, Math.floor(options.ttlMs / RENEWALS_PER_TTL));
    this.#client = options.client;
    this.#clock = options.clock ?? options.client.clock ?? systemClock;
    this.#logger = options.logger ?? silentLogger;
    this.#retry = options.retry ?? {
      initialMs: Math.min(RENEW_RETRY_INITIAL_MS, this.intervalMs),
      maxMs: Math.max(
        RENEW_RETRY_INITIAL_MS,
        Math.floor(options.ttlMs / RENEW_RETRY_MAX_TTL_DIVISOR),
      ),
    };
    this.#lastRenewedAt = options.confirmedAt;
    this.#loop = this.#run();
  }

  /** Aborted, with a SessionGoneError as reason, once Consul answers 404 to a renewal. */
  get gone(): AbortSignal {
    return this.#gone.signal;
  }

  /** When the last successful renewal (or the creation) was sent, in clock milliseconds. */
  lastRenewedAt(): number {
    return this.#lastRenewedAt;
  }

  /**
   * Renews once now, beside the schedule (a guarded master confirms its lock more often); rejects
   * when Consul does not accept it, and ends the keeper as the schedule would on a 404.
   */
  async renewNow(timeoutMs: Milliseconds): Promise<void> {
    if (this.#stop.signal.aborted || this.#gone.signal.aborted) {
      throw new SessionGoneError(this.session);
    }
    const sentAt = this.#clock.now();
    try {
      await renewSession(this.#client, this.session, { signal: this.#stop.signal, timeoutMs });
      this.#lastRenewedAt = Math.max(this.#lastRenewedAt, sentAt);
    } catch (error) {
      if (error instanceof SessionGoneError && !this.#gone.signal.aborted) {
        this.#logger.warn("session gone", { session: this.session });
        this.#gone.abort(error);
      }
      throw error;
    }
  }

  /** Stops renewing (the session itself is left alone). */
  async close(): Promise<void> {
    this.#stop.abort();
    await this.#loop;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #run(): Promise<void> {
    const stop = this.#stop.signal;
    let failures = 0;
    let next = this.intervalMs;
    while (!stop.aborted) {
      try {
        await this.#clock.sleep(next, stop);
      } catch {
        return; // closed
      }
      const sentAt = this.#clock.now();
      try {
        await renewSession(this.#client, this.session, {
          signal: stop,
          timeoutMs: Math.max(
            RENEW_TIMEOUT_MIN_MS,
            Math.min(RENEW_TIMEOUT_MAX_MS, Math.floor(this.ttlMs / RENEW_TIMEOUT_TTL_DIVISOR)),
          ),
        });
        this.#lastRenewedAt = Math.max(this.#lastRenewedAt, sentAt);
        if (failures > 0) {
          this.#logger.info("session renewed again", { session: this.session, failures });
        }
        failures = 0;
        next = this.intervalMs;
      } catch (error) {
        if (stop.aborted) return;
        if (error instanceof SessionGoneError) {
          this.#logger.warn("session gone", { session: this.session });
          this.#gone.abort(error);
          return;
        }
        failures++;
        next = backoffDelay(this.#retry, failures);
        this.#logger.warn("session renewal failed", {
          session: this.session,
          failures,
          transient: isTransientConsulError(error),
          sinceLastRenewalMs: this.#clock.now() - this.#lastRenewedAt,
          retryInMs: next,
          error,
        });
      }
    }
  }
}
