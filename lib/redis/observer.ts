/**
 * Watches the local Redis: INFO (and `CONFIG GET replica-priority`) every interval, each with a
 * deadline, plus an immediate reaction when the connection drops, so a crashed Redis is reported down
 * in milliseconds and a frozen one within the timeout of the first unanswered poll.
 */
import { backoffDelay, type BackoffPolicy } from "../backoff.ts";
import { type Clock, systemClock } from "../clock.ts";
import type { Milliseconds } from "../duration.ts";
import { type Logger, silentLogger } from "../log.ts";
import { DEFAULT_REDIS_TIMEOUT_MS, RedisClient } from "./client.ts";
import { redisAddress, type RedisConnectionConfig } from "./connection.ts";
import {
  RedisAuthError,
  RedisCommandError,
  RedisError,
  RedisTimeoutError,
  RedisUnavailableError,
  RedisVersionError,
} from "./errors.ts";
import {
  isDatasetEmpty,
  isSupportedRedisVersion,
  parseInfo,
  readableRedisVersion,
  type RedisInfo,
} from "./info.ts";

/** Redis's default `replica-priority`, assumed when the server will not tell us. */
export const DEFAULT_REPLICA_PRIORITY = 100;

/** Time between polls when the caller gives none: HEALTHCHECK_INTERVAL's default. */
export const DEFAULT_POLL_INTERVAL_MS = 5_000;

/** The first reconnection attempt after a drop: soon, as a restarted Redis is back in moments. */
const RECONNECT_INITIAL_MS = 100;

/**
 * The INFO sections that hold every field of `RedisInfo`: about a quarter of the full reply, which the
 * agent would otherwise read and parse on every poll.
 */
export const OBSERVED_INFO_SECTIONS: readonly string[] = [
  "server",
  "persistence",
  "replication",
  "keyspace",
];

/** Redis answers INFO with several sections from 7.0 on; 6.2 refuses more than one (a syntax error). */
const MULTI_SECTION_INFO_SINCE_MAJOR = 7;

/**
 * The INFO arguments for polling a Redis of `version`: the observed sections where it takes several,
 * else none (the whole INFO).
 *
 * @example
 * ```ts
 * infoArguments("7.2.4"); // ["server", "persistence", "replication", "keyspace"]
 * infoArguments("6.2.14"); // []
 * ```
 */
export function infoArguments(version: string | undefined): readonly string[] {
  const readable = readableRedisVersion(version);
  return readable !== undefined && readable.major >= MULTI_SECTION_INFO_SINCE_MAJOR
    ? OBSERVED_INFO_SECTIONS
    : [];
}

/** No answer yet since the observer started. */
export interface UnknownObservation {
  readonly kind: "unknown";
}

/** The last attempt to connect or to poll failed. */
export interface DownObservation {
  readonly kind: "down";
  /** Why, in a sentence an operator can act on; never a secret. */
  readonly reason: string;
  /** The typed failure (e.g. `RedisAuthError` for a wrong password). */
  readonly error: RedisError;
  /** When Redis was first seen down in this outage (ms since the epoch). */
  readonly since: number;
  /** The last good snapshot before the outage, if there ever was one. */
  readonly lastUp: UpObservation | undefined;
}

/** Redis answered a poll. */
export interface UpObservation {
  readonly kind: "up";
  readonly info: RedisInfo;
  /** From `CONFIG GET replica-priority`; 0 means "never promote". */
  readonly replicaPriority: number;
  /** No keys in any database. */
  readonly datasetEmpty: boolean;
  /** When the poll was answered (ms since the epoch). */
  readonly observedAt: number;
  /** How long the poll took. */
  readonly latencyMs: Milliseconds;
}

/** What the observer knows about Redis right now. */
export type RedisObservation = UnknownObservation | DownObservation | UpObservation;

/**
 * Answering and not loading a dataset.
 *
 * @example
 * ```ts
 * const observation = observer.current();
 * if (isHealthy(observation)) console.log(observation.info.role);
 * ```
 */
export function isHealthy(observation: RedisObservation): observation is UpObservation {
  return observation.kind === "up" && !observation.info.loading;
}

/**
 * At least one good snapshot has been seen (now, or before the current outage).
 *
 * @example
 * ```ts
 * isReady({ kind: "unknown" }); // false: nothing seen yet
 * ```
 */
export function isReady(observation: RedisObservation): boolean {
  return observation.kind === "up" ||
    (observation.kind === "down" && observation.lastUp !== undefined);
}

/** How long `RedisObserver.waitFor` waits. */
export interface WaitOptions {
  timeoutMs: Milliseconds;
  signal?: AbortSignal;
}

/** Called with every new observation. */
export type ObservationListener = (observation: RedisObservation) => void;

export interface RedisObserverOptions {
  connection: RedisConnectionConfig;
  /** Time between polls (HEALTHCHECK_INTERVAL, default 5s). */
  intervalMs?: Milliseconds;
  /** Deadline of each connection attempt and each poll (HEALTHCHECK_TIMEOUT, default 2s). */
  timeoutMs?: Milliseconds;
  /** Delays between reconnection attempts (default 100 ms doubling up to `intervalMs`). */
  backoff?: BackoffPolicy;
  /** `CLIENT SETNAME` of the observer's connection (default `resec-observer`). */
  connectionName?: string;
  clock?: Clock;
  logger?: Logger;
}

/**
 * Polls one Redis and tells listeners about every observation: each answered poll (a fresh
 * `UpObservation`) and each change of the reason it is down.
 *
 * @example
 * ```ts
 * await using observer = new RedisObserver({ connection: config, intervalMs: 5_000, timeoutMs: 2_000 });
 * observer.onChange((observation) => console.log(observation.kind));
 * observer.start();
 * await observer.waitFor(isHealthy, { timeoutMs: 10_000 });
 * ```
 */
export class RedisObserver {
  readonly address: string;
  readonly #config: RedisConnectionConfig;
  readonly #intervalMs: Milliseconds;
  readonly #timeoutMs: Milliseconds;
  readonly #backoff: BackoffPolicy;
  readonly #connectionName: string;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #listeners = new Set<ObservationListener>();
  readonly #stop = new AbortController();
  #current: RedisObservation = { kind: "unknown" };
  #lastUp: UpObservation | undefined;
  #client: RedisClient | undefined;
  #wake: AbortController | undefined;
  #loop: Promise<void> | undefined;
  #priorityWarned = false;
  /** Connection attempts and polls started so far; refresh() waits for one started after its call. */
  #attempts = 0;
  #refreshes: { after: number; resolve: () => void }[] = [];

  constructor(options: RedisObserverOptions) {
    this.#config = options.connection;
    this.address = redisAddress(options.connection);
    this.#intervalMs = options.intervalMs ?? DEFAULT_POLL_INTERVAL_MS;
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_REDIS_TIMEOUT_MS;
    this.#backoff = options.backoff ??
      { initialMs: Math.min(RECONNECT_INITIAL_MS, this.#intervalMs), maxMs: this.#intervalMs };
    this.#connectionName = options.connectionName ?? "resec-observer";
    this.#clock = options.clock ?? systemClock;
    this.#logger = options.logger ?? silentLogger;
  }

  /** The latest observation. */
  current(): RedisObservation {
    return this.#current;
  }

  /** Registers a listener for every new observation; returns a function that removes it. */
  onChange(listener: ObservationListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Resolves with the first observation (the current one included) that satisfies `predicate`;
   * rejects after `timeoutMs` or when `signal` aborts.
   */
  waitFor<T extends RedisObservation>(
    predicate: (observation: RedisObservation) => observation is T,
    options: WaitOptions,
  ): Promise<T>;
  waitFor(
    predicate: (observation: RedisObservation) => boolean,
    options: WaitOptions,
  ): Promise<RedisObservation>;
  waitFor(
    predicate: (observation: RedisObservation) => boolean,
    options: WaitOptions,
  ): Promise<RedisObservation> {
    if (predicate(this.#current)) return Promise.resolve(this.#current);
    if (options.signal?.aborted) return Promise.reject(options.signal.reason);
    return new Promise((resolve, reject) => {
      const stop = new AbortController();
      const finish = () => {
        stop.abort();
        unsubscribe();
        options.signal?.removeEventListener("abort", onAbort);
      };
      const onAbort = () => {
        finish();
        reject(options.signal?.reason);
      };
      const unsubscribe = this.onChange((observation) => {
        if (!predicate(observation)) return;
        finish();
        resolve(observation);
      });
      options.signal?.addEventListener("abort", onAbort, { once: true });
      this.#clock.sleep(options.timeoutMs, stop.signal).then(() => {
        finish();
        reject(
          new RedisTimeoutError("INFO", options.timeoutMs, {
            message: `No observation of Redis at ${this.address} matched within ` +
              `${options.timeoutMs} ms; the last was "${this.#current.kind}"`,
          }),
        );
      }, () => {});
    });
  }

  /**
   * Polls now, cutting the wait to the next poll (or reconnection) short, and resolves once a poll
   * begun after this call has been published, whatever it found. Use it after a command changed
   * Redis. Resolves at once when the observer is not running.
   */
  refresh(): Promise<void> {
    if (this.#loop === undefined || this.#stop.signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      this.#refreshes.push({ after: this.#attempts, resolve });
      this.#wake?.abort();
    });
  }

  /** Starts polling in the background. Calling it again does nothing. */
  start(): void {
    if (this.#loop !== undefined || this.#stop.signal.aborted) return;
    this.#loop = this.#run().catch((error) => {
      this.#logger.error("redis observer stopped unexpectedly", { error });
    });
  }

  /** Stops polling and closes the connection; resolves once nothing is left running. */
  async close(): Promise<void> {
    this.#stop.abort();
    this.#wake?.abort();
    this.#client?.close();
    await this.#loop;
    this.#listeners.clear();
    for (const refresh of this.#refreshes.splice(0)) refresh.resolve();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #run(): Promise<void> {
    const signal = this.#stop.signal;
    let failures = 0;
    while (!signal.aborted) {
      const { error, answered } = await this.#session();
      if (error === undefined || signal.aborted) break;
      if (answered) failures = 0;
      // A connection dropped while Redis was up gets one immediate reconnection before we report it
      // down: a CLIENT KILL (ours, in replicateFrom, or an operator's) is not an outage, and a dead
      // server refuses the new connection within milliseconds anyway.
      if (failures === 0 && error instanceof RedisUnavailableError && this.#current.kind === "up") {
        failures = 1;
        continue;
      }
      failures = Math.max(failures, 1);
      this.#markDown(error);
      this.#settleRefreshes(this.#attempts);
      await this.#pause(backoffDelay(this.#backoff, failures));
      failures++;
    }
  }

  /**
   * One connection: connect, then poll every interval until a poll fails, the connection drops or
   * the observer closes. Returns what ended it (undefined: closed) and whether any poll was answered.
   */
  async #session(): Promise<{ error: RedisError | undefined; answered: boolean }> {
    const signal = this.#stop.signal;
    let answered = false;
    let client: RedisClient | undefined;
    try {
      this.#attempts++;
      client = await RedisClient.connect(this.#config, {
        timeoutMs: this.#timeoutMs,
        connectionName: this.#connectionName,
        clock: this.#clock,
        signal,
      });
      this.#client = client;
      // Wake the loop the moment the server or the network drops the connection.
      client.closed.then(() => this.#wake?.abort());
      // A connection's first poll reads the whole INFO, which names the version; a restarted (perhaps
      // downgraded) Redis comes back on a new connection.
      let infoArgs: readonly string[] = [];
      while (!signal.aborted) {
        const attempt = ++this.#attempts;
        const observation = await this.#snapshot(client, infoArgs);
        infoArgs = infoArguments(observation.info.redisVersion);
        answered = true;
        this.#publish(observation);
        this.#settleRefreshes(attempt);
        await this.#pause(this.#intervalMs);
        if (!client.isOpen && !signal.aborted) return { error: await client.closed, answered };
      }
      return { error: undefined, answered };
    } catch (caught) {
      const error = caught instanceof RedisError
        ? caught
        : new RedisUnavailableError(`Observing Redis at ${this.address} failed: ${caught}`, {
          cause: caught,
        });
      return { error, answered };
    } finally {
      this.#client = undefined;
      client?.close();
    }
  }

  /** INFO (`infoArgs`: its sections) and CONFIG GET replica-priority, side by side, within the deadline. */
  async #snapshot(client: RedisClient, infoArgs: readonly string[]): Promise<UpObservation> {
    const started = this.#clock.now();
    const [infoReply, priority] = await Promise.all([
      client.call("INFO", infoArgs),
      this.#replicaPriority(client),
    ]);
    if (typeof infoReply !== "string") {
      throw new RedisCommandError("INFO", `expected text, got ${typeof infoReply}`);
    }
    const info = parseInfo(infoReply);
    if (info.role === undefined) {
      throw new RedisCommandError("INFO", "the reply has no role line; is this a Redis server?");
    }
    // Observed as down, with the reason: the agent then never commands it, nor lets it lead.
    if (!isSupportedRedisVersion(info.redisVersion)) {
      throw new RedisVersionError(this.address, info.redisVersion);
    }
    const observedAt = this.#clock.now();
    return {
      kind: "up",
      info,
      replicaPriority: priority ?? info.replicaPriority ?? DEFAULT_REPLICA_PRIORITY,
      datasetEmpty: isDatasetEmpty(info),
      observedAt,
      latencyMs: observedAt - started,
    };
  }

  /**
   * `CONFIG GET replica-priority`, or undefined when CONFIG is renamed away or not granted to our ACL
   * user: then INFO's `slave_priority` (replicas only) or Redis's default stands in.
   */
  async #replicaPriority(client: RedisClient): Promise<number | undefined> {
    try {
      const reply = await client.call("CONFIG", ["GET", "replica-priority"]);
      const value = Array.isArray(reply) ? Number(reply[1]) : Number.NaN;
      return Number.isInteger(value) ? value : undefined;
    } catch (error) {
      if (!(error instanceof RedisCommandError || error instanceof RedisAuthError)) throw error;
      if (!this.#priorityWarned) {
        this.#priorityWarned = true;
        this.#logger.warn("cannot read replica-priority; assuming INFO's or the default", {
          address: this.address,
          reason: error.message,
        });
      }
      return undefined;
    }
  }

  /** Resolves the refresh() calls made before poll number `attempt` began. */
  #settleRefreshes(attempt: number): void {
    const waiting = this.#refreshes;
    this.#refreshes = waiting.filter((refresh) => refresh.after >= attempt);
    for (const refresh of waiting) if (refresh.after < attempt) refresh.resolve();
  }

  /**
   * Sleeps for `ms`, or less when the connection drops, refresh() is called or the observer closes.
   */
  async #pause(ms: Milliseconds): Promise<void> {
    const wake = new AbortController();
    this.#wake = wake;
    const onStop = () => wake.abort();
    this.#stop.signal.addEventListener("abort", onStop, { once: true });
    try {
      if (this.#client?.isOpen === false || this.#refreshes.length > 0) return;
      await this.#clock.sleep(ms, wake.signal).catch(() => {});
    } finally {
      this.#stop.signal.removeEventListener("abort", onStop);
      if (this.#wake === wake) this.#wake = undefined;
    }
  }

  #markDown(error: RedisError): void {
    const current = this.#current;
    if (current.kind === "down" && current.reason === error.message) return;
    this.#publish({
      kind: "down",
      reason: error.message,
      error,
      since: current.kind === "down" ? current.since : this.#clock.now(),
      lastUp: this.#lastUp,
    });
  }

  #publish(observation: RedisObservation): void {
    const previous = this.#current;
    this.#current = observation;
    if (observation.kind === "up") this.#lastUp = observation;
    this.#logTransition(previous, observation);
    for (const listener of this.#listeners) {
      try {
        listener(observation);
      } catch (error) {
        this.#logger.error("a redis observation listener threw", { error });
      }
    }
  }

  #logTransition(previous: RedisObservation, next: RedisObservation): void {
    if (next.kind === "down") {
      if (previous.kind === "down") {
        this.#logger.info("redis still down, for another reason", {
          address: this.address,
          reason: next.reason,
        });
      } else {
        this.#logger.warn("redis down", { address: this.address, reason: next.reason });
      }
      return;
    }
    if (next.kind !== "up") return;
    const fields = {
      address: this.address,
      role: next.info.role,
      loading: next.info.loading,
      runId: next.info.runId,
    };
    if (previous.kind !== "up") {
      this.#logger.info("redis up", fields);
    } else if (
      previous.info.role !== next.info.role || previous.info.loading !== next.info.loading ||
      previous.info.runId !== next.info.runId
    ) {
      this.#logger.info("redis changed", fields);
    }
  }
}
