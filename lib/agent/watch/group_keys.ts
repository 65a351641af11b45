/**
 * Everything resec keeps under the lock key, read by ONE blocking watch on the prefix `<lock key>`: the
 * lock itself, `<lock key>.paused`, `<lock key>.switchover` and the candidacies under
 * `<lock key>.candidates/`. One watch instead of one per key: an agent keeps one blocking query (and
 * one connection) open for all of them, and a quiet group costs one read per wait. The leader source,
 * the control source and the candidacy board each take their part of every answer.
 */
import type { ConsulClient } from "../../consul/client.ts";
import { type KvEntry, listPrefix } from "../../consul/kv.ts";
import { BlockingWatch } from "../../consul/watch.ts";
import { candidatesPrefix } from "../../cluster/candidacy.ts";
import { pauseKey, switchoverKey } from "../../cluster/controls.ts";
import type { Milliseconds } from "../../duration.ts";
import type { Logger } from "../../log.ts";

/** One answer of the watch, split by record. */
export interface GroupKeys {
  /** The lock key; undefined when it does not exist. */
  readonly lock: KvEntry | undefined;
  readonly paused: KvEntry | undefined;
  readonly switchover: KvEntry | undefined;
  /** The entries under `<lock key>.candidates/`. */
  readonly candidacies: readonly KvEntry[];
  /** X-Consul-Index of the answer: every write it shows has a ModifyIndex at most this. */
  readonly index: number;
}

/**
 * Splits a listing of the prefix `lockKey` into resec's records. Other keys that merely start with the
 * lock key (another cluster's `resec/.lock2`, say) are left out.
 *
 * @example
 * ```ts
 * splitGroupKeys("resec/.lock", entries, 42).candidacies; // the entries under resec/.lock.candidates/
 * ```
 */
export function splitGroupKeys(
  lockKey: string,
  entries: readonly KvEntry[],
  index: number,
): GroupKeys {
  const prefix = candidatesPrefix(lockKey);
  const paused = pauseKey(lockKey);
  const switchover = switchoverKey(lockKey);
  const find = (key: string) => entries.find((entry) => entry.key === key);
  return {
    lock: find(lockKey),
    paused: find(paused),
    switchover: find(switchover),
    candidacies: entries.filter((entry) =>
      entry.key.startsWith(prefix) && entry.key.length > prefix.length
    ),
    index,
  };
}

/** True when two reads of a key show the same write (or both show no key). */
export function sameEntry(a: KvEntry | undefined, b: KvEntry | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a.modifyIndex === b.modifyIndex && a.session === b.session && a.key === b.key;
}

/** The least time between the starts of two reads of the watch (a Consul that answers at once). */
const GROUP_WATCH_MIN_INTERVAL_MS = 5;

export interface GroupKeysWatchOptions {
  client: ConsulClient;
  lockKey: string;
  /** Longest blocking wait; an answer also proves Consul reachable. */
  waitMs: Milliseconds;
  logger: Logger;
}

/** The one watch on `<lock key>`; shared by its readers, owned (and closed) by whoever made it. */
/**
 * The group watch a reader uses: the shared one when it was given one, else a watch of its own, which
 * the reader closes with itself (`own`). The readers share one in the agent; tests build them alone.
 */
export function sharedOrOwnKeys(options: {
  keys?: GroupKeysWatch;
  client: ConsulClient;
  lockKey: string;
  waitMs: Milliseconds;
  logger: Logger;
}): { keys: GroupKeysWatch; own: GroupKeysWatch | undefined } {
  if (options.keys) return { keys: options.keys, own: undefined };
  const { client, lockKey, waitMs, logger } = options;
  const own = new GroupKeysWatch({ client, lockKey, waitMs, logger });
  return { keys: own, own };
}

/** The blocking wait of a reader's own group watch when it is not told one. */
export const OWN_KEYS_WAIT_MS = 60_000;

export class GroupKeysWatch implements AsyncDisposable {
  readonly lockKey: string;
  readonly #options: GroupKeysWatchOptions;
  readonly #watch: BlockingWatch<{ entries: KvEntry[]; index: number }>;
  readonly #done: Promise<void>;
  readonly #listeners = new Set<(keys: GroupKeys) => void>();
  readonly #reachabilityListeners = new Set<() => void>();
  #current: GroupKeys | undefined;
  #reachable: boolean | undefined;

  constructor(options: GroupKeysWatchOptions) {
    this.lockKey = options.lockKey;
    this.#options = options;
    this.#watch = new BlockingWatch({
      name: `prefix ${options.lockKey}`,
      clock: options.client.clock,
      logger: options.logger,
      waitMs: options.waitMs,
      // A failover is a burst of changes to these keys (the release, then every candidacy, then the
      // new holder), each one answer apart: a longer pause between reads would add up along it.
      minIntervalMs: GROUP_WATCH_MIN_INTERVAL_MS,
      backoff: { initialMs: 100, maxMs: 2_000 },
      fetch: async (query) => {
        const result = await listPrefix(options.client, options.lockKey, query);
        this.#setReachable(true);
        return { value: { entries: result.entries, index: result.index }, index: result.index };
      },
      // A timeout or an idempotent write returns the same keys: nothing for the readers.
      equals: (a, b) =>
        a.entries.length === b.entries.length &&
        a.entries.every((entry, position) => sameEntry(entry, b.entries[position])),
      onError: () => this.#setReachable(false),
    });
    this.#done = this.#follow();
  }

  /** The latest answer; undefined before the first. */
  current(): GroupKeys | undefined {
    return this.#current;
  }

  /** False while Consul cannot be read; undefined before the first answer. */
  reachable(): boolean | undefined {
    return this.#reachable;
  }

  /**
   * Calls `listener` with every answer that changed something (the current one first, on a later
   * turn); returns an unsubscribe function. A listener that throws is logged and kept.
   */
  subscribe(listener: (keys: GroupKeys) => void): () => void {
    this.#listeners.add(listener);
    queueMicrotask(() => {
      const current = this.#current;
      if (current && this.#listeners.has(listener)) this.#deliver(listener, current);
    });
    return () => this.#listeners.delete(listener);
  }

  /** Calls `listener` when Consul turns reachable or unreachable; returns an unsubscribe function. */
  onReachability(listener: () => void): () => void {
    this.#reachabilityListeners.add(listener);
    return () => this.#reachabilityListeners.delete(listener);
  }

  async close(): Promise<void> {
    this.#watch.close();
    await this.#done;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #follow(): Promise<void> {
    for await (const { entries, index } of this.#watch) {
      const keys = splitGroupKeys(this.lockKey, entries, index);
      this.#current = keys;
      for (const listener of this.#listeners) this.#deliver(listener, keys);
    }
  }

  #deliver(listener: (keys: GroupKeys) => void, keys: GroupKeys): void {
    try {
      listener(keys);
    } catch (error) {
      this.#options.logger.error("cannot apply the keys under the lock key", { error });
    }
  }

  #setReachable(reachable: boolean): void {
    if (this.#reachable === reachable) return;
    const before = this.#reachable;
    this.#reachable = reachable;
    if (before !== undefined || !reachable) {
      this.#options.logger[reachable ? "info" : "warn"](
        reachable ? "Consul is reachable again" : "Consul cannot be reached",
      );
    }
    for (const listener of this.#reachabilityListeners) listener();
  }
}
