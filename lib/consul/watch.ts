/**
 * A generic blocking-query watch, following the rules Consul documents for blocking queries: carry
 * X-Consul-Index, start over when it goes backwards, never block on an index below 1, rate-limit the
 * loop, back off with jitter on errors, and report only real changes.
 */
import { backoffDelay, type BackoffPolicy } from "../backoff.ts";
import { type Clock, systemClock } from "../clock.ts";
import type { Milliseconds } from "../duration.ts";
import { type Logger, silentLogger } from "../log.ts";

/**
 * The index to send with the next blocking query, given the one sent and the one Consul returned.
 *
 * - Below 1 (a Consul bug, seen in older versions): 1. A query with index 0 does not block, and
 *   looping on it would hammer Consul; index 1 is always safe to wait on.
 * - Backwards (a restarted or restored cluster): 0, so the next read returns at once instead of
 *   blocking for the whole wait on an index that will not come back.
 *
 * @example
 * ```ts
 * nextBlockingIndex(120, 130); // 130
 * nextBlockingIndex(120, 7);   // 0: went backwards
 * nextBlockingIndex(5, 0);     // 1
 * ```
 */
export function nextBlockingIndex(sent: number, returned: number): number {
  if (returned < 1) return 1;
  if (returned < sent) return 0;
  return returned;
}

/** Longest wait of each blocking query: a dropped connection is noticed at the latest by then. */
export const DEFAULT_WATCH_WAIT_MS = 60_000;

/**
 * Minimum time between the starts of two queries: Consul's rule for blocking queries, so a key that
 * changes all the time (or an index that returns at once) cannot make the loop hammer Consul.
 */
export const DEFAULT_WATCH_MIN_INTERVAL_MS = 100;

/** Backoff after consecutive failures: soon at first, then every 10 s while Consul stays away. */
export const DEFAULT_WATCH_BACKOFF: Readonly<BackoffPolicy> = { initialMs: 250, maxMs: 10_000 };

/** One answer of a blocking query. */
export interface BlockingResult<T> {
  value: T;
  /** X-Consul-Index of the answer. */
  index: number;
}

/** What the watch asks its fetch function for. */
export interface BlockingQuery {
  /** 0 for a non-blocking read. */
  index: number;
  waitMs: Milliseconds;
  signal: AbortSignal;
}

export interface WatchOptions<T> {
  /** Performs one (blocking) read, e.g. `(q) => healthService(client, name, q)`. */
  fetch: (query: BlockingQuery) => Promise<BlockingResult<T>>;
  /** A name for log lines, e.g. `health redis-master`. */
  name?: string;
  /** Longest wait of each blocking query (default 60 s). */
  waitMs?: Milliseconds;
  /** Minimum time between the starts of two queries (default 100 ms). */
  minIntervalMs?: Milliseconds;
  /** Delay after consecutive failures (default 250 ms doubling to 10 s, ±20 % jitter). */
  backoff?: BackoffPolicy;
  /** Whether two values are the same (default: equal JSON). */
  equals?: (a: T, b: T) => boolean;
  /** Called after each failed query; the watch keeps going. */
  onError?: (error: unknown, failures: number) => void;
  /** Stops the watch. */
  signal?: AbortSignal;
  clock?: Clock;
  logger?: Logger;
  random?: () => number;
}

/**
 * Watches a blocking endpoint from the moment it is made, and yields the value when it first arrives
 * and each time it changes, until closed.
 *
 * The query loop runs on its own, not only while a reader waits, so an outage is noticed even while
 * the reader is busy. A slow reader sees the latest value, not every intermediate one: right for
 * state such as "who is master". Leaving a `for await` loop over the watch closes it.
 *
 * @example
 * ```ts
 * await using watch = new BlockingWatch({ fetch: (q) => healthService(client, "redis", q) });
 * for await (const health of watch) console.log(health.entries.length);
 * ```
 */
export class BlockingWatch<T> implements AsyncIterable<T>, AsyncDisposable {
  /** How many queries were sent (for tests and metrics). */
  requests = 0;
  readonly #options: WatchOptions<T>;
  readonly #stop = new AbortController();
  readonly #signal: AbortSignal;
  readonly #loop: Promise<void>;
  #iterating = false;
  /** The latest value Consul gave, and how many distinct values it has given. */
  #latest: { value: T } | undefined;
  #version = 0;
  #wake: (() => void) | undefined;

  constructor(options: WatchOptions<T>) {
    this.#options = options;
    this.#signal = options.signal
      ? AbortSignal.any([options.signal, this.#stop.signal])
      : this.#stop.signal;
    this.#signal.addEventListener("abort", () => this.#notify(), { once: true });
    this.#loop = this.#run();
  }

  /** True once closed (or once the given signal aborted). */
  get closed(): boolean {
    return this.#signal.aborted;
  }

  /** The latest value seen, if any. */
  get current(): T | undefined {
    return this.#latest?.value;
  }

  /** Stops the watch; a pending iteration ends without a value. */
  close(): void {
    this.#stop.abort();
  }

  /** Closes the watch and waits until its query loop has ended. */
  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
    await this.#loop;
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    if (this.#iterating) throw new Error("A BlockingWatch can be iterated only once");
    this.#iterating = true;
    return this.#values();
  }

  async *#values(): AsyncGenerator<T> {
    const equals = this.#equals();
    let seen = 0;
    let delivered: { value: T } | undefined;
    try {
      while (!this.#signal.aborted) {
        if (this.#version > seen && this.#latest !== undefined) {
          seen = this.#version;
          const latest = this.#latest;
          // A -> B -> A while the reader was busy is no change for it.
          if (delivered !== undefined && equals(delivered.value, latest.value)) continue;
          delivered = latest;
          yield latest.value;
          continue;
        }
        await new Promise<void>((resolve) => (this.#wake = resolve));
      }
    } finally {
      // The only reader left the loop (break, return, throw): nobody is listening any more.
      this.close();
    }
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  #equals(): (a: T, b: T) => boolean {
    return this.#options.equals ?? ((a: T, b: T) => JSON.stringify(a) === JSON.stringify(b));
  }

  async #run(): Promise<void> {
    const options = this.#options;
    const clock = options.clock ?? systemClock;
    const logger = options.logger ?? silentLogger;
    const waitMs = options.waitMs ?? DEFAULT_WATCH_WAIT_MS;
    const minIntervalMs = options.minIntervalMs ?? DEFAULT_WATCH_MIN_INTERVAL_MS;
    const backoff = options.backoff ?? DEFAULT_WATCH_BACKOFF;
    const equals = this.#equals();
    const signal = this.#signal;
    const name = options.name ?? "watch";

    let index = 0;
    let lastIndex: number | undefined;
    let failures = 0;
    let lastStart = -Infinity;
    while (!signal.aborted) {
      // Rate limit: a blocking query that keeps returning at once must not become a busy loop.
      const sinceLast = clock.now() - lastStart;
      if (sinceLast < minIntervalMs) {
        if (!(await this.#sleep(clock, minIntervalMs - sinceLast))) return;
      }
      lastStart = clock.now();
      let result: BlockingResult<T>;
      try {
        this.requests++;
        result = await options.fetch({ index, waitMs, signal });
      } catch (error) {
        if (signal.aborted) return;
        failures++;
        const delay = backoffDelay(backoff, failures, options.random);
        // One WARN per outage; the retries that follow go to DEBUG.
        logger[failures === 1 ? "warn" : "debug"]("consul watch failed", {
          watch: name,
          failures,
          retryInMs: delay,
          error,
        });
        try {
          options.onError?.(error, failures);
        } catch { /* a faulty callback must not stop the watch */ }
        // Start over with a non-blocking read: after an outage the index may have gone backwards.
        index = 0;
        if (!(await this.#sleep(clock, delay))) return;
        continue;
      }
      if (failures > 0) logger.info("consul watch recovered", { watch: name, failures });
      failures = 0;
      const changedIndex = result.index !== lastIndex;
      index = nextBlockingIndex(index, result.index);
      lastIndex = result.index;
      // A return is no proof of a change (timeouts, idempotent writes): compare the value.
      if (
        this.#latest === undefined || (changedIndex && !equals(this.#latest.value, result.value))
      ) {
        this.#latest = { value: result.value };
        this.#version++;
        this.#notify();
      }
    }
  }

  async #sleep(clock: Clock, ms: Milliseconds): Promise<boolean> {
    try {
      await clock.sleep(ms, this.#signal);
      return true;
    } catch {
      return false;
    }
  }
}
