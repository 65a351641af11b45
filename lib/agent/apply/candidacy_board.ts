/**
 * Candidacies in Consul KV: each agent publishes where its Redis stands (offset, history, priority,
 * health) under `<lock key>.candidates/<announce address>`, and follows everyone else's, so a free lock
 * goes to the node with the most data rather than to whoever asks first.
 *
 * An agent writes its entry only when its position changes (every Consul KV write is a Raft apply on
 * the servers), never on a timer. Its liveness comes from the session that holds the entry: a session
 * without TTL tied to the agent check (lib/agent/apply/presence.ts) and to the node's `serfHealth`. When the
 * agent dies, its check lapses; when its host dies, gossip fails; either way Consul ends the session
 * and releases the entry, and every peer sees it in the same watch. Agents of earlier versions wrote
 * without a session and republished every few seconds: their entries count while they keep changing,
 * and this agent republishes on the same beat while any of them is about.
 */
import { backoffDelay, type BackoffPolicy } from "../../backoff.ts";
import { type Candidacy, isLive, type SeenCandidacy } from "../../reconciler/election.ts";
import type { Clock } from "../../clock.ts";
import type { ConsulClient } from "../../consul/client.ts";
import { acquireKey, deleteKey, type KvEntry } from "../../consul/kv.ts";
import {
  createSession,
  destroySession,
  isSessionInvalid,
  SessionKeeper,
} from "../../consul/session.ts";
import type { Milliseconds } from "../../duration.ts";
import type { Logger } from "../../log.ts";
import { candidatesPrefix, encodeCandidacy, parseCandidacy } from "../../cluster/candidacy.ts";
import { InvalidRecordError } from "../../record.ts";
import {
  type GroupKeys,
  type GroupKeysWatch,
  OWN_KEYS_WAIT_MS,
  sharedOrOwnKeys,
} from "../watch/group_keys.ts";
import { InvalidRecordReporter } from "../watch/invalid_records.ts";

/**
 * A vanished peer is dropped from memory after this long (it is ignored long before, as stale); a
 * released one is no longer waited for by an election (lib/reconciler/election.ts) after this long.
 */
const FORGET_AFTER_MS = 600_000;

/** Retries of a publication Consul refused: soon at first, then every few seconds. */
const PUBLISH_RETRY: BackoffPolicy = { initialMs: 100, maxMs: 5_000 };

/**
 * The node check every candidacy session is tied to besides the agent check: a host that gossip
 * cannot reach is no candidate (its agent check cannot lapse once its Consul agent is gone).
 */
const CANDIDACY_NODE_CHECKS = ["serfHealth"];

/**
 * How a peer's entry stands:
 * - `held`: a session holds it; its agent lives.
 * - `released`: its session ended (the agent died, its host left gossip, or it stopped): gone.
 * - `unheld`: written without a session by an agent of an earlier version; live while it changes.
 * - `vanished`: deleted while held (Consul lost its state, or a hand-made delete): live a little
 *   longer, as a silent peer, so an election does not skip a peer that is about to republish.
 */
export type EntryState = "held" | "released" | "unheld" | "vanished";

/**
 * The state of a peer's entry after a read, given the state it had. A key that was ever acquired keeps
 * a LockIndex above 0: without a session now, it was released, unless it was written again since (an
 * earlier version's agent took the address over).
 *
 * @example
 * ```ts
 * entryState({ session: "s", lockIndex: 1, modifyIndex: 9 }, undefined);                  // "held"
 * entryState({ lockIndex: 1, modifyIndex: 10 }, { state: "held", modifyIndex: 9 });       // "released"
 * entryState({ lockIndex: 0, modifyIndex: 10 }, undefined);                               // "unheld"
 * ```
 */
export function entryState(
  entry: Pick<KvEntry, "session" | "lockIndex" | "modifyIndex">,
  known: { state: EntryState; modifyIndex: number } | undefined,
): EntryState {
  if (entry.session !== undefined) return "held";
  if (entry.lockIndex === 0) return "unheld";
  const writtenAgain = known !== undefined && known.state !== "held" &&
    known.modifyIndex !== entry.modifyIndex;
  return writtenAgain ? "unheld" : "released";
}

/** The session that holds this node's candidacy. */
export interface CandidacySessionOptions {
  /** The session name: CONSUL_LOCK_SESSION_NAME, so a restart ends it with the lock's (earlier_run.ts). */
  name: string;
  /** The checks to tie a new session to (asked for each): the agent check, once registered. */
  serviceChecks: () => string[];
  /**
   * With no check to tie to (the ACL token may not register the agent check), the session gets this
   * TTL and the board renews it.
   */
  ttlMs: Milliseconds;
  /**
   * Called before a new session is made: a heartbeat of the agent check, so that a host back from a
   * Consul cut, whose check lapsed, publishes at once rather than at its next heartbeat.
   */
  beforeCreate?: () => Promise<void>;
}

export interface CandidacyBoardOptions {
  client: ConsulClient;
  lockKey: string;
  /** This node's announce address (`host:port`), the key of its own entry. */
  self: string;
  session: CandidacySessionOptions;
  /** An entry no session holds is stale once unchanged for this long. */
  staleAfterMs: Milliseconds;
  /** The shared watch on the lock key's prefix; without it the board watches on its own. */
  keys?: GroupKeysWatch;
  clock: Clock;
  logger: Logger;
  /** Called when a peer's entry changes. */
  onChange: () => void;
  /** Called once per distinct invalid candidacy, with the candidates prefix (metrics). */
  onInvalidRecord?: (prefix: string) => void;
  random?: () => number;
}

interface PeerEntry {
  modifyIndex: number;
  state: EntryState;
  seen: SeenCandidacy;
}

interface OwnSession {
  readonly id: string;
  /** Renews a TTL session (one made without a check to tie to). */
  readonly keeper: SessionKeeper | undefined;
}

/** Publishes this node's candidacy and follows the others'. */
export class CandidacyBoard implements AsyncDisposable {
  readonly #options: CandidacyBoardOptions;
  readonly #prefix: string;
  readonly #key: string;
  /** The watch this board made itself (no shared one was given): closed with it. */
  readonly #ownKeys: GroupKeysWatch | undefined;
  readonly #unsubscribe: () => void;
  readonly #seen = new Map<string, PeerEntry>();
  /** Peers whose held entry cannot be read (someone overwrote it). */
  readonly #unreadable = new Set<string>();
  /** The write of our entry in flight, cut short when a newer position is published. */
  #writing: AbortController | undefined;
  readonly #invalid: InvalidRecordReporter;
  readonly #stop = new AbortController();
  #session: OwnSession | undefined;
  #publishing: Promise<void> | undefined;
  #pending: Candidacy | undefined;
  /** The last candidacy written, and the value as written. */
  #written: { candidacy: Candidacy; value: string } | undefined;
  /** The ModifyIndex of our entry, once a read showed our write. */
  #ownIndex: number | undefined;
  #publishFailed = false;
  /** Ends the pause before a retry (a newer candidacy should not wait for it). */
  #retryNow: AbortController | undefined;

  constructor(options: CandidacyBoardOptions) {
    this.#options = options;
    this.#prefix = candidatesPrefix(options.lockKey);
    this.#key = this.#prefix + options.self;
    const onInvalidRecord = options.onInvalidRecord;
    this.#invalid = new InvalidRecordReporter({
      logger: options.logger,
      clock: options.clock,
      // One label for the whole prefix: anyone may write any number of keys under it.
      ...(onInvalidRecord ? { onInvalid: () => onInvalidRecord(this.#prefix) } : {}),
    });
    const { keys, own } = sharedOrOwnKeys({ ...options, waitMs: OWN_KEYS_WAIT_MS });
    this.#ownKeys = own;
    this.#unsubscribe = keys.subscribe((answer) => this.#onKeys(answer));
  }

  /**
   * Peers' candidacies, with when each last changed (local time); a released entry is marked so, and
   * left out once released longer than FORGET_AFTER_MS ago.
   */
  /** Peers whose entry a session holds but that cannot be read. */
  unreadable(): string[] {
    return [...this.#unreadable];
  }

  peers(): SeenCandidacy[] {
    const now = this.#options.clock.now();
    return [...this.#seen.values()]
      .filter((entry) =>
        entry.state !== "released" || now - entry.seen.seenChangedAt <= FORGET_AFTER_MS
      )
      .map((entry) => entry.seen);
  }

  /**
   * True while a live peer of an earlier version publishes without a session: it judges this node by
   * how recently its entry changed, so this node must republish on every heartbeat meanwhile.
   */
  legacyPeers(): boolean {
    const now = this.#options.clock.now();
    return [...this.#seen.values()].some((entry) =>
      entry.state === "unheld" && isLive(entry.seen, now, this.#options)
    );
  }

  /**
   * Publishes this node's candidacy. Calls that arrive while one is in flight coalesce into one more
   * write with the latest value; a write Consul refuses is retried (with backoff) until one succeeds
   * or a newer candidacy replaces it.
   */
  publish(candidacy: Candidacy): Promise<void> {
    this.#pending = candidacy;
    this.#retryNow?.abort();
    // A write of an older position that Consul has not answered yet (it may hang until its deadline
    // while Consul is away) must not hold the newer one back: peers wait only so long for it.
    this.#writing?.abort();
    this.#publishing ??= this.#flush().finally(() => {
      this.#publishing = undefined;
    });
    return this.#publishing;
  }

  /** Stops watching, ends this node's session and removes its entry (graceful shutdown). */
  async close(): Promise<void> {
    this.#stop.abort();
    this.#unsubscribe();
    await this.#ownKeys?.close();
    await this.#publishing;
    await this.#endSession();
    await deleteKey(this.#options.client, this.#key).catch(() => {});
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #flush(): Promise<void> {
    const { client, logger } = this.#options;
    let failures = 0;
    while (this.#pending && !this.#stop.signal.aborted) {
      const candidacy = this.#pending;
      this.#pending = undefined;
      const value = encodeCandidacy(candidacy);
      const earlierSession = this.#session !== undefined;
      const writing = new AbortController();
      this.#writing = writing;
      try {
        const session = await this.#ensureSession();
        const signal = AbortSignal.any([writing.signal, this.#stop.signal]);
        if (!(await acquireKey(client, this.#key, session, value, { signal }))) {
          throw new Error(`another session holds the key "${this.#key}"`);
        }
        this.#written = { candidacy, value };
        if (this.#publishFailed) logger.info("publishing the candidacy works again");
        this.#publishFailed = false;
        failures = 0;
      } catch (error) {
        if (this.#stop.signal.aborted) return;
        // Cut short by a newer position: write that one now.
        if (writing.signal.aborted && this.#pending) continue;
        if (isSessionInvalid(error)) {
          // Consul ended our session (its check lapsed): a new one, at once when the one refused
          // was made before this attempt (a host back from a cut must be seen soon).
          await this.#endSession();
          if (earlierSession) {
            this.#pending ??= candidacy;
            continue;
          }
        }
        if (!this.#publishFailed) logger.warn("cannot publish the candidacy", { error });
        this.#publishFailed = true;
        this.#pending ??= candidacy;
        failures++;
        await this.#pauseBeforeRetry(backoffDelay(PUBLISH_RETRY, failures, this.#options.random));
      } finally {
        if (this.#writing === writing) this.#writing = undefined;
      }
    }
  }

  /** Sleeps before a retry; a newer publication or close() cuts it short. */
  async #pauseBeforeRetry(ms: Milliseconds): Promise<void> {
    const controller = new AbortController();
    this.#retryNow = controller;
    try {
      await this.#options.clock.sleep(ms, AbortSignal.any([controller.signal, this.#stop.signal]));
    } catch {
      // cut short
    } finally {
      if (this.#retryNow === controller) this.#retryNow = undefined;
    }
  }

  /** Our session, made when there is none (or it is gone), tied to the agent check when it exists. */
  async #ensureSession(): Promise<string> {
    const { client, clock, logger, session: options } = this.#options;
    const checks = options.serviceChecks();
    const current = this.#session;
    // A TTL session made while the agent check was missing gives way to one tied to the check.
    if (current && (current.keeper?.gone.aborted || (current.keeper && checks.length > 0))) {
      await this.#endSession();
    }
    if (this.#session) return this.#session.id;
    const tied = checks.length > 0;
    if (tied) await options.beforeCreate?.().catch(() => {});
    const sentAt = clock.now();
    const id = await createSession(client, {
      name: options.name,
      ttlMs: tied ? undefined : options.ttlMs,
      // Our own entry must be re-taken at once after a session ends.
      lockDelayMs: 0,
      behavior: "release",
      nodeChecks: CANDIDACY_NODE_CHECKS,
      serviceChecks: checks,
      signal: this.#stop.signal,
    });
    const keeper = tied ? undefined : new SessionKeeper({
      client,
      session: id,
      ttlMs: options.ttlMs,
      confirmedAt: sentAt,
      clock,
      logger,
    });
    this.#session = { id, keeper };
    logger.debug("candidacy session created", { session: id, tiedTo: checks.join(",") });
    return id;
  }

  /** Ends our session (releasing our entry); best effort. */
  async #endSession(): Promise<void> {
    const session = this.#session;
    if (!session) return;
    this.#session = undefined;
    await session.keeper?.close();
    await destroySession(this.#options.client, session.id, { timeoutMs: 2_000 }).catch(() => {});
  }

  #onKeys(keys: GroupKeys): void {
    // Consul answers again: a publication waiting to retry goes now (a host back from a cut).
    if (this.#publishFailed) this.#retryNow?.abort();
    this.#followOwn(keys);
    this.#apply(keys.candidacies);
  }

  /**
   * Republishes our candidacy when a read shows that Consul released it (our session ended: the agent
   * check lapsed or the node left gossip, then came back) or that the entry was deleted.
   */
  #followOwn(keys: GroupKeys): void {
    const written = this.#written;
    if (!written || this.#publishing || this.#stop.signal.aborted) return;
    const own = keys.candidacies.find((entry) => entry.key === this.#key);
    const ours = this.#session?.id;
    if (own && own.value === written.value && ours !== undefined && own.session === ours) {
      this.#ownIndex = own.modifyIndex;
      return;
    }
    // Judge only reads taken after our write: the same value (our write, no longer held by our
    // session), or no entry in an answer newer than the one that showed our write.
    const released = own !== undefined && own.value === written.value;
    const deleted = own === undefined && this.#ownIndex !== undefined &&
      keys.index > this.#ownIndex;
    if (!released && !deleted) return;
    this.#ownIndex = undefined;
    this.#options.logger.info("our candidacy was released by Consul; publishing it again", {
      key: this.#key,
      deleted,
    });
    if (released && own.session === undefined && this.#session) {
      // Held by nobody: our session is gone. Making a new one beats waiting for a refused write.
      void this.#endSession().then(() => this.publish(written.candidacy));
      return;
    }
    void this.publish(written.candidacy);
  }

  #apply(entries: readonly KvEntry[]): void {
    const now = this.#options.clock.now();
    const present = new Set<string>();
    let changed = false;
    for (const entry of entries) {
      const address = entry.key.slice(this.#prefix.length);
      if (address === this.#options.self) continue;
      const candidacy = this.#candidacy(entry, address);
      if (!candidacy) {
        // Its positions are unknown: the peer is not eligible. An entry its session still holds was
        // overwritten by someone else: its agent publishes a readable one for the next vacancy, and
        // an election waits for that within its collection window (`unreadable()`).
        if (this.#seen.delete(address)) changed = true;
        const held = entry.session !== undefined;
        if (held !== this.#unreadable.has(address)) changed = true;
        if (held) this.#unreadable.add(address);
        else this.#unreadable.delete(address);
        continue;
      }
      if (this.#unreadable.delete(address)) changed = true;
      present.add(address);
      const known = this.#seen.get(address);
      if (known?.modifyIndex === entry.modifyIndex && known.state !== "vanished") continue;
      const state = entryState(entry, known);
      this.#seen.set(address, {
        modifyIndex: entry.modifyIndex,
        state,
        seen: {
          candidacy,
          seenChangedAt: now,
          modifyIndex: entry.modifyIndex,
          ...(state === "held" ? { held: true } : state === "released" ? { released: true } : {}),
        },
      });
      changed = true;
    }
    const listed = new Set(entries.map((entry) => entry.key.slice(this.#prefix.length)));
    for (const address of this.#unreadable) {
      if (listed.has(address)) continue;
      this.#unreadable.delete(address);
      changed = true;
    }
    for (const [address, entry] of this.#seen) {
      if (present.has(address)) continue;
      if (entry.state === "held") {
        // Deleted while held: counted a little longer (unheld, from now), in case Consul lost its
        // state and the peer is about to publish again.
        this.#seen.set(address, {
          ...entry,
          state: "vanished",
          seen: { candidacy: entry.seen.candidacy, seenChangedAt: now },
        });
        changed = true;
      } else if (entry.state === "released" || now - entry.seen.seenChangedAt > FORGET_AFTER_MS) {
        this.#seen.delete(address);
        changed = true;
      }
    }
    this.#invalid.retain(new Set(entries.map((entry) => entry.key)));
    if (changed) this.#options.onChange();
  }

  /** The entry's candidacy; undefined, reported, when it is invalid. */
  #candidacy(entry: KvEntry, address: string): Candidacy | undefined {
    try {
      const candidacy = parseCandidacy(entry.value, address);
      this.#invalid.valid(entry.key);
      return candidacy;
    } catch (error) {
      if (!(error instanceof InvalidRecordError)) throw error;
      this.#invalid.invalid(entry.key, entry.value, error.reason, "this peer is not eligible");
      return undefined;
    }
  }
}
