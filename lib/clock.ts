/**
 * Time, injected: production uses the real clock; tests pass a ManualClock.
 */
import type { Milliseconds } from "./duration.ts";

/** A source of time and timers. */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Resolves after `ms`, or rejects with the signal's reason when it aborts first. */
  sleep(ms: Milliseconds, signal?: AbortSignal): Promise<void>;
}

/** The wall clock and real timers. */
export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const onAbort = () => {
        clearTimeout(timer);
        reject(signal!.reason);
      };
      const timer = setTimeout(() => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      }, Math.max(0, ms));
      signal?.addEventListener("abort", onAbort, { once: true });
    }),
};

interface Timer {
  at: number;
  resolve: () => void;
}

/**
 * A clock that stands still until `advance()` moves it, firing due sleeps in order.
 *
 * @example
 * ```ts
 * const clock = new ManualClock(1_000);
 * const done = clock.sleep(500);
 * await clock.advance(500); // `done` resolves
 * ```
 */
export class ManualClock implements Clock {
  #now: number;
  #timers: Timer[] = [];

  constructor(start = 0) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  /** Sleeps waiting to fire. */
  get pending(): number {
    return this.#timers.length;
  }

  sleep(ms: Milliseconds, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const timer: Timer = {
        at: this.#now + Math.max(0, ms),
        resolve: () => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        },
      };
      const onAbort = () => {
        this.#timers = this.#timers.filter((other) => other !== timer);
        reject(signal!.reason);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      this.#timers.push(timer);
    });
  }

  /** Moves time forward, firing each due sleep and letting the code it wakes run before the next. */
  async advance(ms: Milliseconds): Promise<void> {
    const target = this.#now + ms;
    await settle();
    while (true) {
      const due = this.#timers.filter((timer) => timer.at <= target).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      this.#timers = this.#timers.filter((timer) => timer !== due);
      this.#now = due.at;
      due.resolve();
      await settle();
    }
    this.#now = target;
    await settle();
  }
}

/** Lets every pending promise chain run (one macrotask turn). */
export function settle(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}
