/**
 * Candidacies in Consul KV: each agent publishes where its Redis stands (offset, history, priority,
 * health) under `<lock key>.candidates/<announce address>`, and watches everyone else's, so a free lock
 * goes to the node with the most data rather than to whoever asks first.
 */
import { formatHostPort } from "../address.ts";
import type { Candidacy, SeenCandidacy } from "../candidates.ts";
import type { Clock } from "../clock.ts";
import type { ConsulClient } from "../consul/client.ts";
import { deleteKey, type KvEntry, putKey, watchPrefix } from "../consul/kv.ts";
import type { BlockingWatch } from "../consul/watch.ts";
import type { Logger } from "../log.ts";
import { InvalidRecordError, MAX_ID_CHARS, quoteValue, RecordFields } from "../record.ts";
import { InvalidRecordReporter } from "./invalid_records.ts";

/** A vanished peer is dropped from memory after this long (it is ignored long before, as stale). */
const FORGET_AFTER_MS = 600_000;

/** The KV prefix holding the candidacies of the cluster that uses `lockKey`. */
export function candidatesPrefix(lockKey: string): string {
  return `${lockKey}.candidates/`;
}

/** The largest `replica-priority` Redis accepts (a C int). */
const MAX_PRIORITY = 2_147_483_647;

/**
 * Parses one published candidacy, every field checked; `address` is the one its key names, and the
 * candidacy must announce the same.
 *
 * @throws {InvalidRecordError} when the value is not a candidacy resec could have written
 */
export function parseCandidacy(value: string, address: string): Candidacy {
  const fields = RecordFields.parse("candidacy", value);
  const announced = formatHostPort(fields.address("address"));
  if (announced !== address) {
    throw new InvalidRecordError(
      "candidacy",
      `it announces ${announced} under the key of ${quoteValue(address)}`,
    );
  }
  const id = (name: string) => fields.text(name, { maxChars: MAX_ID_CHARS, empty: true });
  return {
    address: announced,
    runId: id("runId"),
    replicationId: id("replicationId"),
    replicationId2: id("replicationId2"),
    offset: fields.integer("offset", { min: 0 }),
    role: fields.choice("role", ["master", "replica"] as const),
    healthy: fields.boolean("healthy"),
    datasetEmpty: fields.boolean("datasetEmpty"),
    synced: fields.boolean("synced"),
    priority: fields.integer("priority", { min: 0, max: MAX_PRIORITY }),
    forced: fields.boolean("forced"),
    // -1: published while the lock key was missing (lib/agent/leader_source.ts).
    vacancy: fields.integer("vacancy", { min: -1 }),
    updatedAt: fields.timestamp("updatedAt"),
  };
}

export interface CandidacyBoardOptions {
  client: ConsulClient;
  lockKey: string;
  /** This node's announce address (`host:port`), the key of its own entry. */
  self: string;
  clock: Clock;
  logger: Logger;
  /** Called when a peer's entry changes. */
  onChange: () => void;
  /** Called once per distinct invalid candidacy, with the candidates prefix (metrics). */
  onInvalidRecord?: (prefix: string) => void;
}

/** Publishes this node's candidacy and follows the others'. */
export class CandidacyBoard implements AsyncDisposable {
  readonly #options: CandidacyBoardOptions;
  readonly #prefix: string;
  readonly #watch: BlockingWatch<KvEntry[]>;
  readonly #done: Promise<void>;
  readonly #seen = new Map<string, { modifyIndex: number; seen: SeenCandidacy }>();
  readonly #invalid: InvalidRecordReporter;
  #publishing: Promise<void> | undefined;
  #pending: Candidacy | undefined;
  #publishFailed = false;

  constructor(options: CandidacyBoardOptions) {
    this.#options = options;
    this.#prefix = candidatesPrefix(options.lockKey);
    const onInvalidRecord = options.onInvalidRecord;
    this.#invalid = new InvalidRecordReporter({
      logger: options.logger,
      clock: options.clock,
      // One label for the whole prefix: anyone may write any number of keys under it.
      ...(onInvalidRecord ? { onInvalid: () => onInvalidRecord(this.#prefix) } : {}),
    });
    this.#watch = watchPrefix(options.client, this.#prefix, {
      minIntervalMs: 20,
      backoff: { initialMs: 100, maxMs: 2_000 },
      equals: () => false,
      logger: options.logger,
    });
    this.#done = this.#follow();
  }

  /** Peers' candidacies, with when each last changed (local time). */
  peers(): SeenCandidacy[] {
    return [...this.#seen.values()].map((entry) => entry.seen);
  }

  /**
   * Publishes this node's candidacy. Calls that arrive while one is in flight coalesce into one more
   * write with the latest value.
   */
  publish(candidacy: Candidacy): Promise<void> {
    this.#pending = candidacy;
    this.#publishing ??= this.#flush().finally(() => {
      this.#publishing = undefined;
    });
    return this.#publishing;
  }

  /** Removes this node's entry (graceful shutdown) and stops watching. */
  async close(): Promise<void> {
    this.#watch.close();
    await this.#done;
    await this.#publishing;
    await deleteKey(this.#options.client, this.#prefix + this.#options.self).catch(() => {});
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #flush(): Promise<void> {
    while (this.#pending) {
      const candidacy = this.#pending;
      this.#pending = undefined;
      try {
        await putKey(
          this.#options.client,
          this.#prefix + this.#options.self,
          JSON.stringify(candidacy),
        );
        if (this.#publishFailed) this.#options.logger.info("publishing the candidacy works again");
        this.#publishFailed = false;
      } catch (error) {
        if (!this.#publishFailed) {
          this.#options.logger.warn("cannot publish the candidacy", { error });
        }
        this.#publishFailed = true;
        return;
      }
    }
  }

  /** Applies each answer; an error in one never ends the watch (leaving the loop would close it). */
  async #follow(): Promise<void> {
    for await (const entries of this.#watch) {
      try {
        this.#apply(entries);
      } catch (error) {
        this.#options.logger.error("cannot apply the candidacies", { error });
      }
    }
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
        // Its positions are unknown: the peer is not eligible, and nobody waits for it.
        if (this.#seen.delete(address)) changed = true;
        continue;
      }
      present.add(address);
      const known = this.#seen.get(address);
      if (known?.modifyIndex === entry.modifyIndex) continue;
      this.#seen.set(address, {
        modifyIndex: entry.modifyIndex,
        seen: { candidacy, seenChangedAt: now },
      });
      changed = true;
    }
    // An entry that vanished (Consul lost its state, or the agent left) is kept until it goes
    // stale: forgetting a live peer at once would let an election skip it.
    for (const [address, entry] of this.#seen) {
      if (!present.has(address) && now - entry.seen.seenChangedAt > FORGET_AFTER_MS) {
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
