/**
 * A leader lock on one Consul key, held through a session: wait for the key with blocking reads, take it
 * with `?acquire=`, watch it with `?consistent` blocking reads, and tell the holder the moment it is
 * lost. The (key, lockIndex, session) triple is the fencing epoch.
 */
import { ResecError } from "../errors.ts";
import { backoffDelay, type BackoffPolicy } from "../backoff.ts";
import { type Clock, systemClock } from "../clock.ts";
import type { Milliseconds } from "../duration.ts";
import { type Logger, silentLogger } from "../log.ts";
import type { ConsulClient } from "./client.ts";
import { isTransientConsulError } from "./errors.ts";
import { acquireKey, readKey, releaseKey } from "./kv.ts";
import {
  createSession,
  destroySession,
  isSessionCheckNotReady,
  type SessionBehavior,
  SessionGoneError,
  SessionKeeper,
} from "./session.ts";
import { nextBlockingIndex } from "./watch.ts";

/** Why a held lock was lost. */
export type LockLossCause =
  | "key-deleted"
  | "other-holder"
  | "released-by-consul"
  | "session-gone"
  | "monitor-failed";

/** The reason of `LockHold.lost`. */
export class LockLostError extends ResecError {
  override name = "LockLostError";
  constructor(
    readonly key: string,
    readonly session: string,
    readonly lossCause: LockLossCause,
    detail: string,
    options?: ErrorOptions,
  ) {
    super(`Lost the lock on key "${key}": ${detail}`, options);
  }
}

/** Pause before asking again for a session whose check is not registered (or passing) yet. */
const CHECK_NOT_READY_RETRY_MS = 100;
/** Quick retries for that (5 s in all) before it counts as a failure with backoff and a warning. */
const CHECK_NOT_READY_QUICK_RETRIES = 50;

/** Longest wait of one blocking read of the key: a lost lock is also found when a wait ends. */
export const DEFAULT_LOCK_WAIT_MS = 30_000;

/** Backoff while Consul is unreachable during acquire: soon at first, then no faster than 5 s. */
export const DEFAULT_LOCK_RETRY: Readonly<BackoffPolicy> = { initialMs: 250, maxMs: 5_000 };

/**
 * While a lock-delay keeps the free key from us, we retry after a tenth of the delay, between these
 * bounds: Consul does not say when the delay ends, and a fixed 5 s (the Go resec's) wastes most of it.
 */
const LOCK_DELAY_RETRY_DIVISOR = 10;
const LOCK_DELAY_RETRY_MIN_MS = 50;
const LOCK_DELAY_RETRY_MAX_MS = 1_000;

/** Deadline of one attempt to destroy a session: short, as Consul expires it with its TTL anyway. */
const DESTROY_TIMEOUT_MS = 2_000;

export interface ConsulLockOptions {
  client: ConsulClient;
  key: string;
  sessionName: string;
  ttlMs: Milliseconds;
  /** How long Consul keeps the key from being re-taken after the holder's session is invalidated. */
  lockDelayMs: Milliseconds;
  /** Node checks of the session; undefined keeps Consul's default (`serfHealth`), [] none. */
  nodeChecks?: string[];
  /**
   * Service checks each new session is tied to (asked anew for every session): it is invalidated as
   * soon as one turns critical. A check must exist and not be critical when a session is made
   * (creating one retries a while until then).
   */
  serviceChecks?: () => string[];
  /** What happens to the key when the session is invalidated (default "release"). */
  behavior?: SessionBehavior;
  /** Transient failures of the holder's watch tolerated in a row (CONSUL_LOCK_MONITOR_RETRIES). */
  monitorRetries: number;
  /** Pause between those retries (CONSUL_LOCK_MONITOR_RETRY_INTERVAL). */
  monitorRetryIntervalMs: Milliseconds;
  /** Longest wait of one blocking read (default 30 s). */
  waitMs?: Milliseconds;
  /** Flags stored on the key (a bigint keeps values above 2^53 exact). */
  flags?: number | bigint;
  /** Backoff while Consul is unreachable during acquire (default 250 ms doubling to 5 s). */
  retry?: BackoffPolicy;
  clock?: Clock;
  logger?: Logger;
}

/** A lock this process holds. */
export interface LockHold extends AsyncDisposable {
  readonly key: string;
  readonly session: string;
  /** The key's LockIndex right after acquiring: the fencing epoch. */
  readonly lockIndex: number;
  /** Aborted, with a LockLostError reason, once the lock is lost. Not aborted by `release()`. */
  readonly lost: AbortSignal;
  /** When the last successful session renewal was sent: Consul holds the lock at least TTL past it. */
  lastConfirmedAt(): number;
  /** Renews the session now (beside the schedule); rejects when Consul does not accept it. */
  confirmNow(timeoutMs: Milliseconds): Promise<void>;
  /** Replaces the key's value; rejects with LockLostError when the lock is no longer ours. */
  updateValue(value: string): Promise<void>;
  /**
   * Gives the lock back (`?release=`, no lock-delay), leaving `value` in the key (empty by default),
   * and destroys the session. Never rejects. Resolves after the first attempt; while Consul is
   * unreachable, the destroy is retried in the background until Consul confirms it or the session
   * has expired anyway.
   */
  release(value?: string): Promise<void>;
}

/**
 * A Consul lock.
 *
 * @example
 * ```ts
 * const lock = new ConsulLock({ client, key: "resec/.lock", sessionName: "resec", ttlMs: 15_000,
 *   lockDelayMs: 1_000, monitorRetries: 3, monitorRetryIntervalMs: 1_000 });
 * const hold = await lock.acquire(JSON.stringify({ address: "10.0.0.5:6379" }), signal);
 * hold.lost.addEventListener("abort", () => demote(hold.lost.reason));
 * ```
 */
export class ConsulLock {
  readonly key: string;
  readonly #options: ConsulLockOptions;
  readonly #client: ConsulClient;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #waitMs: Milliseconds;
  readonly #retry: BackoffPolicy;

  constructor(options: ConsulLockOptions) {
    this.key = options.key;
    this.#options = options;
    this.#client = options.client;
    this.#clock = options.clock ?? options.client.clock ?? systemClock;
    this.#logger = options.logger ?? silentLogger;
    this.#waitMs = options.waitMs ?? DEFAULT_LOCK_WAIT_MS;
    this.#retry = options.retry ?? DEFAULT_LOCK_RETRY;
  }

  /**
   * Waits until the lock is ours, then returns the hold. Rejects with the signal's reason when aborted
   * (destroying the session it made), or with a ConsulError that retrying cannot fix (403, 400).
   */
  async acquire(value: string, signal: AbortSignal): Promise<LockHold> {
    signal.throwIfAborted();
    let session = await this.#openSession(signal);
    try {
      let index = 0;
      let failures = 0;
      while (true) {
        signal.throwIfAborted();
        if (session.keeper.gone.aborted) {
          this.#logger.warn("lock session gone while waiting; making a new one", {
            key: this.key,
            session: session.id,
          });
          await session.keeper.close();
          session = await this.#openSession(signal);
          index = 0;
        }
        const attempt = AbortSignal.any([signal, session.keeper.gone]);
        try {
          const read = await readKey(this.#client, this.key, {
            index,
            waitMs: this.#waitMs,
            signal: attempt,
          });
          failures = 0;
          const holder = read.entry?.session;
          if (holder !== undefined && holder !== session.id) {
            index = nextBlockingIndex(index, read.index); // held: block until the key changes
            continue;
          }
          // Free, or already ours (an earlier acquire succeeded but its answer was lost).
          const taken = holder === session.id ||
            await acquireKey(this.#client, this.key, session.id, value, {
              flags: this.#options.flags,
              signal: attempt,
            });
          if (taken) {
            const confirmed = await readKey(this.#client, this.key, {
              consistent: true,
              signal: attempt,
            });
            if (confirmed.entry?.session === session.id) {
              this.#logger.info("lock acquired", {
                key: this.key,
                session: session.id,
                lockIndex: confirmed.entry.lockIndex,
              });
              return new Hold({
                lock: this.#options,
                key: this.key,
                session: session.id,
                keeper: session.keeper,
                lockIndex: confirmed.entry.lockIndex,
                index: confirmed.index,
                waitMs: this.#waitMs,
                clock: this.#clock,
                logger: this.#logger,
              });
            }
            index = 0;
            continue;
          }
          const after = await readKey(this.#client, this.key, { signal: attempt });
          if (after.entry?.session !== undefined) {
            index = nextBlockingIndex(0, after.index); // another session won the race
            continue;
          }
          // Refused with no holder: the previous holder's lock-delay is still running. Consul does
          // not say for how long, so retry soon rather than after a fixed 5 s as the Go resec did.
          const pause = Math.min(
            LOCK_DELAY_RETRY_MAX_MS,
            Math.max(
              LOCK_DELAY_RETRY_MIN_MS,
              Math.floor(this.#options.lockDelayMs / LOCK_DELAY_RETRY_DIVISOR),
            ),
          );
          this.#logger.debug("lock-delay active; retrying", { key: this.key, retryInMs: pause });
          await this.#clock.sleep(pause, signal);
          index = 0;
        } catch (error) {
          if (signal.aborted) throw signal.reason;
          if (session.keeper.gone.aborted) continue;
          if (!isTransientConsulError(error)) throw error;
          failures++;
          const delay = backoffDelay(this.#retry, failures);
          this.#logger[failures === 1 ? "warn" : "debug"]("waiting for the lock failed; retrying", {
            key: this.key,
            failures,
            retryInMs: delay,
            error,
          });
          await this.#clock.sleep(delay, signal);
          index = 0;
        }
      }
    } catch (error) {
      await session.keeper.close();
      // It may hold the key (an acquire whose answer was lost): ended for sure, or a lock nobody
      // uses is held until its TTL.
      await destroyNowOrLater(this.#client, session.id, {
        giveUpAfterMs: 2 * this.#options.ttlMs,
        clock: this.#clock,
        logger: this.#logger,
      });
      throw error;
    }
  }

  /** Creates the lock's session, retrying transient failures until `signal` aborts. */
  async #openSession(signal: AbortSignal): Promise<{ id: string; keeper: SessionKeeper }> {
    const options = this.#options;
    let failures = 0;
    let checkNotReady = 0;
    while (true) {
      const sentAt = this.#clock.now();
      try {
        const id = await createSession(this.#client, {
          name: options.sessionName,
          ttlMs: options.ttlMs,
          lockDelayMs: options.lockDelayMs,
          behavior: options.behavior ?? "release",
          nodeChecks: options.nodeChecks,
          serviceChecks: options.serviceChecks?.(),
          signal,
        });
        const keeper = new SessionKeeper({
          client: this.#client,
          session: id,
          ttlMs: options.ttlMs,
          confirmedAt: sentAt,
          clock: this.#clock,
          logger: this.#logger,
        });
        this.#logger.debug("lock session created", { key: this.key, session: id });
        return { id, keeper };
      } catch (error) {
        if (signal.aborted) throw signal.reason;
        if (!isTransientConsulError(error)) throw error;
        if (isSessionCheckNotReady(error) && ++checkNotReady <= CHECK_NOT_READY_QUICK_RETRIES) {
          // The service (and its agent check) is registered beside the lock, usually within
          // milliseconds: no backoff, so a candidate is not held back for seconds.
          this.#logger.debug("a check the session ties to is not ready; retrying", {
            key: this.key,
            error,
          });
          await this.#clock.sleep(CHECK_NOT_READY_RETRY_MS, signal);
          continue;
        }
        failures++;
        const delay = backoffDelay(this.#retry, failures);
        this.#logger[failures === 1 ? "warn" : "debug"](
          "creating the lock session failed; retrying",
          {
            key: this.key,
            failures,
            retryInMs: delay,
            error,
          },
        );
        await this.#clock.sleep(delay, signal);
      }
    }
  }
}

interface HoldOptions {
  lock: ConsulLockOptions;
  key: string;
  session: string;
  keeper: SessionKeeper;
  lockIndex: number;
  /** X-Consul-Index of the read that confirmed the acquisition. */
  index: number;
  waitMs: Milliseconds;
  clock: Clock;
  logger: Logger;
}

class Hold implements LockHold {
  readonly key: string;
  readonly session: string;
  readonly lockIndex: number;
  readonly #options: HoldOptions;
  readonly #client: ConsulClient;
  readonly #keeper: SessionKeeper;
  readonly #lost = new AbortController();
  readonly #stop = new AbortController();
  readonly #monitor: Promise<void>;
  #released: Promise<void> | undefined;
  #ended: Promise<void> | undefined;

  constructor(options: HoldOptions) {
    this.key = options.key;
    this.session = options.session;
    this.lockIndex = options.lockIndex;
    this.#options = options;
    this.#client = options.lock.client;
    this.#keeper = options.keeper;
    this.#keeper.gone.addEventListener(
      "abort",
      () =>
        this.#lose(
          "session-gone",
          "the session expired or was invalidated",
          this.#keeper.gone.reason,
        ),
      { once: true, signal: this.#stop.signal },
    );
    this.#monitor = this.#watch(options.index);
  }

  get lost(): AbortSignal {
    return this.#lost.signal;
  }

  lastConfirmedAt(): number {
    return this.#keeper.lastRenewedAt();
  }

  confirmNow(timeoutMs: Milliseconds): Promise<void> {
    if (this.#lost.signal.aborted) return Promise.reject(this.#lost.signal.reason);
    return this.#keeper.renewNow(timeoutMs);
  }

  async updateValue(value: string): Promise<void> {
    if (this.#lost.signal.aborted) throw this.#lost.signal.reason;
    const ok = await acquireKey(this.#client, this.key, this.session, value, {
      flags: this.#options.lock.flags,
    });
    if (!ok) {
      this.#lose("other-holder", "Consul refused to update the value for this session");
      throw this.#lost.signal.reason;
    }
  }

  release(value = ""): Promise<void> {
    this.#released ??= this.#release(value);
    return this.#released;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.release();
  }

  async #release(value: string): Promise<void> {
    const wasLost = this.#lost.signal.aborted;
    await this.#end();
    const logger = this.#options.logger;
    if (!wasLost) {
      try {
        // A release rewrites the flags too: keep ours, or the Go resec's lock helper (which refuses a
        // key with other flags) could never take the key again.
        await releaseKey(this.#client, this.key, this.session, value, {
          flags: this.#options.lock.flags,
        });
      } catch (error) {
        logger.warn("releasing the lock failed; destroying its session instead", {
          key: this.key,
          session: this.session,
          error,
        });
      }
    }
    // Until Consul confirms the session gone, it may hold the key, and every replica keeps following
    // this node: were its Redis to restart empty meanwhile, they would all sync the empty dataset
    // (simulator seed 10912).
    await destroyNowOrLater(this.#client, this.session, {
      giveUpAfterMs: 2 * this.#options.lock.ttlMs,
      clock: this.#options.clock,
      logger,
    });
    logger.info("lock released", { key: this.key, session: this.session });
  }

  /** Stops watching and renewing; idempotent. */
  #end(): Promise<void> {
    this.#ended ??= (async () => {
      this.#stop.abort();
      await this.#monitor;
      await this.#keeper.close();
    })();
    return this.#ended;
  }

  #lose(cause: LockLossCause, detail: string, error?: unknown): void {
    if (this.#lost.signal.aborted || this.#stop.signal.aborted) return;
    const reason = new LockLostError(this.key, this.session, cause, detail, { cause: error });
    this.#options.logger.warn("lock lost", {
      key: this.key,
      session: this.session,
      cause,
      detail,
      ...(error === undefined ? {} : { error }),
    });
    this.#lost.abort(reason);
    // Stop renewing, and give the key up in case Consul still counts us as its holder (a watch that
    // failed while Consul was unreachable): the next leader should not wait for our TTL. While Consul
    // stays unreachable (a server election), keep trying: a session left behind holds the lock for
    // up to 2 × TTL after Consul is back, and every agent waits that long for a new master.
    const { ttlMs } = this.#options.lock;
    void this.#end().then(() =>
      destroyUntilGone(this.#client, this.session, {
        giveUpAfterMs: 2 * ttlMs,
        clock: this.#options.clock,
        logger: this.#options.logger,
      })
    );
  }

  async #watch(startIndex: number): Promise<void> {
    const { lock, clock } = this.#options;
    const stop = this.#stop.signal;
    let index = Math.max(1, startIndex);
    let failures = 0;
    while (!stop.aborted && !this.#lost.signal.aborted) {
      try {
        const read = await readKey(this.#client, this.key, {
          index,
          waitMs: this.#options.waitMs,
          consistent: true,
          signal: stop,
        });
        failures = 0;
        const entry = read.entry;
        if (entry === undefined) {
          return this.#lose("key-deleted", "the key was deleted");
        }
        if (entry.session === undefined) {
          return this.#lose(
            "released-by-consul",
            "the key has no holder any more (the session was invalidated or released)",
          );
        }
        if (entry.session !== this.session) {
          return this.#lose("other-holder", `session "${entry.session}" holds it now`);
        }
        index = nextBlockingIndex(index, read.index);
      } catch (error) {
        if (stop.aborted) return;
        if (error instanceof SessionGoneError || this.#keeper.gone.aborted) {
          return this.#lose("session-gone", "the session expired or was invalidated", error);
        }
        failures++;
        if (!isTransientConsulError(error) || failures > lock.monitorRetries) {
          return this.#lose(
            "monitor-failed",
            `cannot confirm the lock with Consul after ${failures} attempt(s)`,
            error,
          );
        }
        this.#options.logger.warn("lock watch failed; retrying", {
          key: this.key,
          failures,
          retries: lock.monitorRetries,
          error,
        });
        try {
          await clock.sleep(lock.monitorRetryIntervalMs, stop);
        } catch {
          return;
        }
        index = 0; // Consul may have restarted with a lower index: read once without blocking.
      }
    }
  }
}

/** Pause between attempts to end a session Consul cannot be asked about right now. */
const DESTROY_RETRY: BackoffPolicy = { initialMs: 250, maxMs: 1_000 };

/**
 * Destroys a session, retrying while Consul is unreachable, until it answers or `giveUpAfterMs` has
 * passed (by then Consul has expired the session on its own).
 *
 * @example
 * ```ts
 * const ended = await destroyUntilGone(client, session, {
 *   giveUpAfterMs: 2 * ttlMs, clock: systemClock, logger,
 * }); // false: left for Consul to expire
 * ```
 */
export async function destroyUntilGone(
  client: ConsulClient,
  session: string,
  options: { giveUpAfterMs: Milliseconds; clock: Clock; logger: Logger },
): Promise<boolean> {
  const { clock, logger } = options;
  const giveUpAt = clock.now() + options.giveUpAfterMs;
  for (let attempt = 1;; attempt++) {
    try {
      await destroySession(client, session, { timeoutMs: DESTROY_TIMEOUT_MS });
      if (attempt > 1) logger.info("ended the lost lock's session", { session, attempts: attempt });
      return true;
    } catch (error) {
      const waitMs = backoffDelay(DESTROY_RETRY, attempt);
      if (!isTransientConsulError(error) || clock.now() + waitMs > giveUpAt) {
        logger.warn("destroying the lock session failed; it will expire with its TTL", {
          session,
          attempts: attempt,
          error,
        });
        return false;
      }
      await clock.sleep(waitMs);
    }
  }
}

/**
 * Destroys a session: one attempt awaited, then, if Consul could not be reached, `destroyUntilGone` in
 * the background, so a caller (a release, a stop) is not held up for Consul's return.
 */
async function destroyNowOrLater(
  client: ConsulClient,
  session: string,
  options: { giveUpAfterMs: Milliseconds; clock: Clock; logger: Logger },
): Promise<void> {
  const { clock, logger } = options;
  const startedAt = clock.now();
  try {
    await destroySession(client, session, { timeoutMs: DESTROY_TIMEOUT_MS });
    return;
  } catch (error) {
    if (!isTransientConsulError(error)) {
      logger.warn("destroying the lock session failed; it will expire with its TTL", {
        session,
        error,
      });
      return;
    }
    logger.warn("destroying the lock session failed; retrying until Consul answers", {
      session,
      error,
    });
  }
  const giveUpAfterMs = options.giveUpAfterMs - (clock.now() - startedAt);
  void destroyUntilGone(client, session, { giveUpAfterMs, clock, logger });
}
