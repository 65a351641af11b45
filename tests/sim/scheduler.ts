/**
 * The simulator's time: a seeded random source and a priority queue of events. Nothing here touches a
 * real timer or the wall clock, so one seed always replays the same run.
 */
import type { AgentTimers } from "../../lib/agent/loop.ts";

/**
 * A small seeded generator (a 32-bit xorshift-multiply mix of a counter): fast, and the same sequence
 * for the same seed on every platform.
 */
export class Random {
  #state: number;

  constructor(seed: number) {
    this.#state = (seed ^ 0x9e3779b9) >>> 0;
  }

  /** A float in [0, 1). */
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let z = this.#state;
    z = Math.imul(z ^ (z >>> 15), z | 1);
    z ^= z + Math.imul(z ^ (z >>> 7), z | 61);
    return ((z ^ (z >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]!;
  }

  /** A hex id of `chars` characters (Redis run and replication ids). */
  hex(chars: number): string {
    let out = "";
    while (out.length < chars) {
      out += Math.floor(this.next() * 4294967296).toString(16).padStart(8, "0");
    }
    return out.slice(0, chars);
  }
}

interface SimEvent {
  readonly at: number;
  readonly seq: number;
  readonly label: string;
  readonly action: () => void;
  cancelled: boolean;
}

/** A handle to cancel a scheduled event. */
export interface EventHandle {
  cancel(): void;
}

/** Events in time order (ties in scheduling order); `now` is the simulated true time in ms. */
export class Scheduler {
  now = 0;
  #seq = 0;
  readonly #heap: SimEvent[] = [];

  /** Runs `action` at `at` (never in the past). */
  at(at: number, label: string, action: () => void): EventHandle {
    const event: SimEvent = {
      at: Math.max(at, this.now),
      seq: this.#seq++,
      label,
      action,
      cancelled: false,
    };
    this.#push(event);
    return { cancel: () => event.cancelled = true };
  }

  after(delayMs: number, label: string, action: () => void): EventHandle {
    return this.at(this.now + Math.max(0, delayMs), label, action);
  }

  /** Resolves after `delayMs` of simulated time. */
  sleep(delayMs: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const onAbort = () => {
        handle.cancel();
        reject(signal!.reason);
      };
      const handle = this.after(delayMs, "sleep", () => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      });
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  /** The next event still due, removed from the queue; undefined when none is left. */
  pop(): SimEvent | undefined {
    while (this.#heap.length > 0) {
      const top = this.#heap[0]!;
      const last = this.#heap.pop()!;
      if (this.#heap.length > 0) {
        this.#heap[0] = last;
        this.#down(0);
      }
      if (!top.cancelled) {
        this.now = top.at;
        return top;
      }
    }
    return undefined;
  }

  /** Timers for one agent incarnation: they fall silent once `alive()` turns false. */
  timers(alive: () => boolean): AgentTimers {
    const schedule = (
      callback: () => void,
      ms: number,
      repeat: boolean,
    ): { handle?: EventHandle } => {
      const slot: { handle?: EventHandle } = {};
      const arm = () => {
        slot.handle = this.after(Math.max(1, ms), repeat ? "agent tick" : "agent wake", () => {
          if (!alive()) return;
          if (repeat) arm();
          callback();
        });
      };
      arm();
      return slot;
    };
    const clear = (slot: unknown) =>
      (slot as { handle?: EventHandle } | undefined)?.handle?.cancel();
    return {
      setInterval: (callback, ms) => schedule(callback, ms, true),
      clearInterval: clear,
      setTimeout: (callback, ms) => schedule(callback, ms, false),
      clearTimeout: clear,
    };
  }

  #before(a: SimEvent, b: SimEvent): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }

  #push(event: SimEvent): void {
    const heap = this.#heap;
    heap.push(event);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.#before(heap[i]!, heap[parent]!)) break;
      [heap[i], heap[parent]] = [heap[parent]!, heap[i]!];
      i = parent;
    }
  }

  #down(start: number): void {
    const heap = this.#heap;
    let i = start;
    for (;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let best = i;
      if (left < heap.length && this.#before(heap[left]!, heap[best]!)) best = left;
      if (right < heap.length && this.#before(heap[right]!, heap[best]!)) best = right;
      if (best === i) return;
      [heap[i], heap[best]] = [heap[best]!, heap[i]!];
      i = best;
    }
  }
}
