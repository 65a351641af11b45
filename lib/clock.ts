/**
 * Time, injected: production uses the real clock; tests pass a ManualClock.
 *
 * Two clocks, for two jobs. `now()` is monotonic: every duration and deadline that safety rests on
 * (the fence bound, when the lock was last confirmed, the fence's own deadline, how long a peer's
 * candidacy has been still) is measured on it, so a step of the host's clock (NTP, an operator) can
 * neither lift a fence nor make a stale lock look fresh. `wallNow()` is the wall clock, for timestamps
 * people read or that are written to Consul (a candidacy's `updatedAt`, the lock value's `since`).
 * The two are never compared with each other, and a monotonic reading means nothing on another host.
 */
import type { Milliseconds } from "./duration.ts";

/** A source of time and timers. */
export interface Clock {
  /**
   * Monotonic milliseconds, for durations and deadlines: never steps, in either direction. Its origin
   * is this process's own (in production the wall clock when the process started, so readings look
   * like epoch milliseconds), so it is meaningless on another host or in another run.
   */
  now(): number;
  /** Wall-clock milliseconds since the epoch, for timestamps people read or that go to Consul. */
  wallNow(): number;
  /** Resolves after `ms`, or rejects with the signal's reason when it aborts first. */
  sleep(ms: Milliseconds, signal?: AbortSignal): Promise<void>;
}

/**
 * The real clocks and timers: `now()` is `performance.timeOrigin + performance.now()` (monotonic,
 * starting from the wall clock at process start) in whole milliseconds, as `Date.now()` is: durations
 * computed from it go into commands that take integers (Redis FAILOVER TIMEOUT). `wallNow()` is
 * `Date.now()`.
 */
export const systemClock: Clock = {
  now: () => Math.floor(performance.timeOrigin + performance.now()),
  wallNow: () => Date.now(),
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
 * A clock that stands still until `advance()` moves it, firing due sleeps in order. Its wall clock
 * moves with it, and `stepWall()` steps the wall clock alone, as NTP or an operator would.
 *
 * @example
 * ```ts
 * const clock = new ManualClock(1_000);
 * const done = clock.sleep(500);
 * await clock.advance(500); // `done` resolves
 * clock.stepWall(-30_000); // wallNow() is 30 s behind, now() unchanged
 * ```
 */
export class ManualClock implements Clock {
  #now: number;
  #wallOffset = 0;
  #timers: Timer[] = [];

  constructor(start = 0) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  wallNow(): number {
    return this.#now + this.#wallOffset;
  }

  /** Steps the wall clock by `ms` (negative: backwards); the monotonic clock and sleeps are unmoved. */
  stepWall(ms: Milliseconds): void {
    this.#wallOffset += ms;
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
