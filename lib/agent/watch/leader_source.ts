/**
 * Who leads: a blocking watch on the lock key. The leader's own announcement in the key's value is the
 * truth. A holder that announced nothing is a Go resec (it writes an empty value, e.g. during a rolling
 * migration): the lock is held all the same, never free, and its address comes from the health
 * catalog, watched only meanwhile, once the catalog names that holder's master unambiguously.
 */
import type { HostPort } from "../../address.ts";
import type { ConsulClient } from "../../consul/client.ts";
import { type HealthEntry, watchHealthService } from "../../consul/health.ts";
import type { KvEntry } from "../../consul/kv.ts";
import { sessionInfo } from "../../consul/session.ts";
import type { BlockingWatch } from "../../consul/watch.ts";
import type { Milliseconds } from "../../duration.ts";
import {
  type LeaderAnnouncement,
  parseLeaderAnnouncement,
  parseReleaseNote,
  type ReleaseNote,
} from "../../cluster/lock_value.ts";
import type { Logger } from "../../log.ts";
import type { LeaderView } from "../../reconciler/model.ts";
import { InvalidRecordError } from "../../record.ts";
import type { LeaderSourcePort } from "../loop.ts";
import { type GroupKeysWatch, sameEntry, sharedOrOwnKeys } from "./group_keys.ts";
import { InvalidRecordReporter } from "./invalid_records.ts";
import { RESEC_META_KEY } from "../../cluster/services.ts";

export interface LeaderSourceOptions {
  client: ConsulClient;
  lockKey: string;
  /** The master service in the catalog, for the fallback: name and optional tag. */
  masterService: { name: string; tag?: string };
  /** Longest blocking wait (Consul's answer also proves it is reachable). */
  waitMs: Milliseconds;
  /** The shared watch on the lock key's prefix; without it the source watches on its own. */
  keys?: GroupKeysWatch;
  logger: Logger;
  /** Called once per distinct invalid lock value (metrics). */
  onInvalidRecord?: (key: string) => void;
}

/** What the lock key says. */
type LockState =
  | { readonly kind: "free"; readonly vacancy: number; readonly note?: ReleaseNote }
  | { readonly kind: "announced"; readonly leader: LeaderView }
  | {
    readonly kind: "unannounced";
    readonly holder: { readonly session: string; readonly lockIndex: number };
    /** The Consul node of the holder's session, when Consul told it. */
    readonly node: string | undefined;
  };

/**
 * The master of a lock holder that announced nothing (a Go resec), from the passing instances of the
 * master service; undefined while the catalog does not single it out. Only instances that
 *
 * - pass: the Go resec registers its master check as `warning` when it promotes, and turns it passing
 *   only once it has seen its Redis as master under the lock; a `warning` master may still be a
 *   replica (its promotion failed or is not done), and following it would be worse than waiting the
 *   one heartbeat (HEALTHCHECK_TIMEOUT) it takes;
 * - were not registered by a resec agent: those always announce themselves while they hold the lock,
 *   so theirs is a master that lost it (a stale entry, or one on its way out);
 * - sit on the holder's Consul node, when known: the Go resec registers its service and makes its
 *   session through the same agent, while a Go master that lost the lock keeps a passing master entry
 *   (seatgeek/resec#69).
 *
 * @example
 * ```ts
 * masterOfUnannouncedHolder(entries, "redis-2"); // { host: "10.0.0.7", port: 6379 }
 * ```
 */
export function masterOfUnannouncedHolder(
  entries: readonly HealthEntry[],
  holderNode: string | undefined,
): HostPort | undefined {
  const candidates = entries.filter((entry) =>
    entry.status === "passing" && entry.meta[RESEC_META_KEY] === undefined &&
    (holderNode === undefined || entry.node === holderNode)
  );
  const [only] = candidates;
  return candidates.length === 1 && only ? { host: only.address, port: only.port } : undefined;
}

/** Follows the lock key; a LeaderSourcePort for the agent. */
export class LeaderSource implements LeaderSourcePort, AsyncDisposable {
  readonly #options: LeaderSourceOptions;
  readonly #listeners = new Set<() => void>();
  readonly #keys: GroupKeysWatch;
  /** The watch this source made itself (no shared one was given): closed with it. */
  readonly #ownKeys: GroupKeysWatch | undefined;
  readonly #unsubscribe: (() => void)[];
  readonly #stop = new AbortController();
  readonly #invalid: InvalidRecordReporter;
  #state: LockState | undefined;
  /** The lock key as last read (undefined: no key); `#read` is false before the first answer. */
  #entry: KvEntry | undefined;
  #read = false;
  #processing: Promise<void> | undefined;
  /** The master service's passing instances, watched only while the holder announced nothing. */
  #catalog: { watch: BlockingWatch<HealthEntry[]>; done: Promise<void> } | undefined;
  #catalogEntries: HealthEntry[] | undefined;
  /** Settles once every catalog watch stopped so far has ended. */
  #catalogClosed: Promise<void> = Promise.resolve();
  /** The holder session whose missing address was last warned about. */
  #warnedFor: string | undefined;

  constructor(options: LeaderSourceOptions) {
    this.#options = options;
    this.#invalid = new InvalidRecordReporter({
      logger: options.logger,
      clock: options.client.clock,
      ...(options.onInvalidRecord ? { onInvalid: options.onInvalidRecord } : {}),
    });
    const { keys, own } = sharedOrOwnKeys(options);
    this.#keys = keys;
    this.#ownKeys = own;
    this.#unsubscribe = [
      this.#keys.subscribe((keys) => this.#onLockKey(keys.lock)),
      this.#keys.onReachability(() => this.#notify()),
    ];
  }

  leader(): LeaderView | null | undefined {
    const state = this.#state;
    switch (state?.kind) {
      case undefined:
        return undefined;
      case "free":
        return null;
      case "announced":
        return state.leader;
      case "unannounced": {
        // Held all the same: unknown (never free) until the catalog names the holder's master.
        const entries = this.#catalogEntries;
        const address = entries && masterOfUnannouncedHolder(entries, state.node);
        return address ? { address, ...state.holder } : undefined;
      }
    }
  }

  vacancy(): number {
    return this.#state?.kind === "free" ? this.#state.vacancy : 0;
  }

  releaseNote(): ReleaseNote | undefined {
    return this.#state?.kind === "free" ? this.#state.note : undefined;
  }

  reachable(): boolean | undefined {
    return this.#keys.reachable();
  }

  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  async close(): Promise<void> {
    for (const unsubscribe of this.#unsubscribe) unsubscribe();
    this.#stop.abort();
    await this.#ownKeys?.close();
    await this.#processing;
    this.#stopCatalog();
    await this.#catalogClosed;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** Takes a new read of the lock key; a holder that announced nothing needs a lookup first. */
  #onLockKey(entry: KvEntry | undefined): void {
    if (this.#read && sameEntry(this.#entry, entry)) return;
    this.#read = true;
    this.#entry = entry;
    this.#processing ??= this.#process().finally(() => {
      this.#processing = undefined;
    });
  }

  /** Turns the latest read into the lock state, until no newer read arrived meanwhile. */
  async #process(): Promise<void> {
    while (!this.#stop.signal.aborted) {
      const entry = this.#entry;
      let state: LockState;
      try {
        state = await this.#stateOf(entry, this.#stop.signal);
      } catch (error) {
        if (this.#stop.signal.aborted) return;
        this.#options.logger.error("cannot read the lock key's holder", { error });
        return;
      }
      if (entry !== this.#entry) continue; // a newer read arrived during the lookup
      if (this.#state !== undefined && sameState(this.#state, state)) return;
      this.#state = state;
      if (state.kind === "unannounced") this.#startCatalog();
      else this.#stopCatalog();
      this.#changed();
      return;
    }
  }

  async #stateOf(
    entry: { value: string; session?: string; lockIndex: number; modifyIndex: number } | undefined,
    signal: AbortSignal,
  ): Promise<LockState> {
    // Every agent reads the same ModifyIndex for the same vacancy: it names the election. A missing
    // key (Consul lost its state, or the key was deleted) is vacancy -1: never the 0 that marks
    // candidacies published while the lock was held.
    if (!entry?.session) {
      const note = parseReleaseNote(entry?.value);
      return { kind: "free", vacancy: entry?.modifyIndex ?? -1, ...(note ? { note } : {}) };
    }
    const holder = { session: entry.session, lockIndex: entry.lockIndex };
    const announced = this.#announcement(entry.value);
    if (announced) return { kind: "announced", leader: { address: announced.address, ...holder } };
    const previous = this.#state;
    const node = previous?.kind === "unannounced" && previous.holder.session === holder.session
      ? previous.node
      : await this.#sessionNode(holder.session, signal);
    return { kind: "unannounced", holder, node };
  }

  /** The node of a session; undefined when Consul cannot tell (gone already, or no ACL). */
  async #sessionNode(session: string, signal: AbortSignal): Promise<string | undefined> {
    try {
      return (await sessionInfo(this.#options.client, session, { signal }))?.node;
    } catch (error) {
      if (signal.aborted) throw error;
      this.#options.logger.debug("cannot read the lock holder's session", { session, error });
      return undefined;
    }
  }

  #startCatalog(): void {
    if (this.#catalog) return;
    const { name, tag } = this.#options.masterService;
    const watch = watchHealthService(this.#options.client, name, {
      ...(tag !== undefined ? { tag } : {}),
      passing: true,
      waitMs: this.#options.waitMs,
      minIntervalMs: 20,
      backoff: { initialMs: 100, maxMs: 2_000 },
    });
    const done = (async () => {
      for await (const entries of watch) {
        if (this.#catalog?.watch !== watch) break;
        this.#catalogEntries = entries;
        this.#changed();
      }
    })();
    this.#catalog = { watch, done };
  }

  #stopCatalog(): void {
    const catalog = this.#catalog;
    if (!catalog) return;
    this.#catalog = undefined;
    this.#catalogEntries = undefined;
    catalog.watch.close();
    this.#catalogClosed = Promise.all([this.#catalogClosed, catalog.done]).then(() => {});
  }

  /** Logs a holder whose master the catalog does not name (once per holder), and notifies. */
  #changed(): void {
    const state = this.#state;
    if (state?.kind === "unannounced" && this.#catalogEntries !== undefined) {
      if (this.leader() === undefined && this.#warnedFor !== state.holder.session) {
        this.#warnedFor = state.holder.session;
        this.#options.logger.warn(
          "the lock holder announced no address and the catalog does not name its master yet; " +
            "holding still until it does",
          { session: state.holder.session, node: state.node },
        );
      }
    }
    this.#notify();
  }

  /** The holder's announcement; undefined when it announced nothing, or nothing valid. */
  #announcement(value: string): LeaderAnnouncement | undefined {
    const key = this.#options.lockKey;
    try {
      const announced = parseLeaderAnnouncement(value);
      this.#invalid.valid(key);
      return announced;
    } catch (error) {
      if (!(error instanceof InvalidRecordError)) throw error;
      this.#invalid.invalid(
        key,
        value,
        error.reason,
        "treated as a holder that announced nothing: the catalog may name the leader",
      );
      return undefined;
    }
  }

  #notify(): void {
    for (const listener of this.#listeners) listener();
  }
}

/** True when two lock states name the same holder (or the same vacancy). */
function sameState(a: LockState, b: LockState): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
