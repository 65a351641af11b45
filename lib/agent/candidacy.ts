/**
 * Candidacies in Consul KV: each agent publishes where its Redis stands (offset, history, priority,
 * health) under `<lock key>.candidates/<announce address>`, and watches everyone else's, so a free lock
 * goes to the node with the most data rather than to whoever asks first.
 */
import type { Candidacy, SeenCandidacy } from "../candidates.ts";
import type { Clock } from "../clock.ts";
import type { ConsulClient } from "../consul/client.ts";
import { deleteKey, type KvEntry, putKey, watchPrefix } from "../consul/kv.ts";
import type { BlockingWatch } from "../consul/watch.ts";
import type { Logger } from "../log.ts";

/** A vanished peer is dropped from memory after this long (it is ignored long before, as stale). */
const FORGET_AFTER_MS = 600_000;

/** The KV prefix holding the candidacies of the cluster that uses `lockKey`. */
export function candidatesPrefix(lockKey: string): string {
  return `${lockKey}.candidates/`;
}

/** Parses one published candidacy; undefined when the entry is not one of ours. */
export function parseCandidacy(value: string): Candidacy | undefined {
  try {
    const parsed = JSON.parse(value) as Partial<Candidacy>;
    if (
      typeof parsed.address !== "string" || typeof parsed.offset !== "number" ||
      typeof parsed.priority !== "number" || typeof parsed.healthy !== "boolean"
    ) {
      return undefined;
    }
    return {
      address: parsed.address,
      runId: String(parsed.runId ?? ""),
      replicationId: String(parsed.replicationId ?? ""),
      replicationId2: String(parsed.replicationId2 ?? ""),
      offset: parsed.offset,
      role: parsed.role === "master" ? "master" : "replica",
      healthy: parsed.healthy,
      datasetEmpty: parsed.datasetEmpty === true,
      synced: parsed.synced === true,
      priority: parsed.priority,
      forced: parsed.forced === true,
      vacancy: typeof parsed.vacancy === "number" ? parsed.vacancy : 0,
      updatedAt: String(parsed.updatedAt ?? ""),
    };
  } catch {
    return undefined;
  }
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
}

/** Publishes this node's candidacy and follows the others'. */
export class CandidacyBoard implements AsyncDisposable {
  readonly #options: CandidacyBoardOptions;
  readonly #prefix: string;
  readonly #watch: BlockingWatch<KvEntry[]>;
  readonly #done: Promise<void>;
  readonly #seen = new Map<string, { modifyIndex: number; seen: SeenCandidacy }>();
  #publishing: Promise<void> | undefined;
  #pending: Candidacy | undefined;
  #publishFailed = false;

  constructor(options: CandidacyBoardOptions) {
    this.#options = options;
    this.#prefix = candidatesPrefix(options.lockKey);
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

  async #follow(): Promise<void> {
    for await (const entries of this.#watch) {
      const now = this.#options.clock.now();
      const present = new Set<string>();
      let changed = false;
      for (const entry of entries) {
        const address = entry.key.slice(this.#prefix.length);
        if (address === this.#options.self) continue;
        const candidacy = parseCandidacy(entry.value);
        if (!candidacy) continue;
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
      if (changed) this.#options.onChange();
    }
  }
}
