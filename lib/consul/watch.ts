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
 * - Backwards (a restarted or restored cluster): 0, so the next read returns at once instead of
 *   blocking for the whole wait on an index that will not come back.
 * - Otherwise at least 1: a query with index 0 does not block, and looping on it would hammer Consul.
 *
 * @example
 * ```ts
 * nextBlockingIndex(120, 130); // 130
 * nextBlockingIndex(120, 7);   // 0: went backwards
 * nextBlockingIndex(0, 0);     // 1
 * ```
 */
export function nextBlockingIndex(sent: number, returned: number): number {
  if (returned < sent) return 0;
  return Math.max(1, returned);
}

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
 * Yields the watched value when it first arrives and each time it changes, until closed.
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
  #iterating = false;

  constructor(options: WatchOptions<T>) {
    this.#options = options;
    this.#signal = options.signal
      ? AbortSignal.any([options.signal, this.#stop.signal])
      : this.#stop.signal;
  }

  /** True once closed (or once the given signal aborted). */
  get closed(): boolean {
    return this.#signal.aborted;
  }

  /** Stops the watch; a pending iteration ends without a value. */
  close(): void {
    this.#stop.abort();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
    await Promise.resolve();
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    if (this.#iterating) throw new Error("A BlockingWatch can be iterated only once");
    this.#iterating = true;
    return this.#values();
  }

  async *#values(): AsyncGenerator<T> {
    const options = this.#options;
    const clock = options.clock ?? systemClock;
    const logger = options.logger ?? silentLogger;
    const waitMs = options.waitMs ?? 60_000;
    const minIntervalMs = options.minIntervalMs ?? 100;
    const backoff = options.backoff ?? { initialMs: 250, maxMs: 10_000 };
    const equals = options.equals ?? ((a: T, b: T) => JSON.stringify(a) === JSON.stringify(b));
    const signal = this.#signal;
    const name = options.name ?? "watch";

    let index = 0;
    let lastIndex: number | undefined;
    let last: { value: T } | undefined;
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
        logger.warn("consul watch failed", { watch: name, failures, retryInMs: delay, error });
        options.onError?.(error, failures);
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
      if (last === undefined || (changedIndex && !equals(last.value, result.value))) {
        last = { value: result.value };
        yield result.value;
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
