/**
 * Who leads: a blocking watch on the lock key. The leader's own announcement in the key's value is the
 * truth; the health catalog is consulted only when a holder announced nothing (a Go resec holds the
 * lock during a rolling migration), and then only when it names exactly one passing master.
 */
import type { ConsulClient } from "../consul/client.ts";
import { healthService } from "../consul/health.ts";
import { readKey } from "../consul/kv.ts";
import { BlockingWatch } from "../consul/watch.ts";
import type { Milliseconds } from "../duration.ts";
import { type LeaderAnnouncement, parseLeaderAnnouncement } from "../leader.ts";
import type { Logger } from "../log.ts";
import type { LeaderView } from "../model.ts";
import { InvalidRecordError } from "../record.ts";
import type { LeaderSourcePort } from "./agent.ts";
import { InvalidRecordReporter } from "./invalid_records.ts";

export interface LeaderSourceOptions {
  client: ConsulClient;
  lockKey: string;
  /** The master service in the catalog, for the fallback: name and optional tag. */
  masterService: { name: string; tag?: string };
  /** Longest blocking wait (Consul's answer also proves it is reachable). */
  waitMs: Milliseconds;
  logger: Logger;
  /** Called once per distinct invalid lock value (metrics). */
  onInvalidRecord?: (key: string) => void;
}

/** Watches the lock key; a LeaderSourcePort for the agent. */
export class LeaderSource implements LeaderSourcePort, AsyncDisposable {
  readonly #options: LeaderSourceOptions;
  readonly #listeners = new Set<() => void>();
  readonly #watch: BlockingWatch<{ leader: LeaderView | null; vacancy: number }>;
  readonly #done: Promise<void>;
  readonly #invalid: InvalidRecordReporter;
  #leader: LeaderView | null | undefined;
  #vacancy = 0;
  #reachable: boolean | undefined;

  constructor(options: LeaderSourceOptions) {
    this.#options = options;
    this.#invalid = new InvalidRecordReporter({
      logger: options.logger,
      clock: options.client.clock,
      ...(options.onInvalidRecord ? { onInvalid: options.onInvalidRecord } : {}),
    });
    this.#watch = new BlockingWatch<{ leader: LeaderView | null; vacancy: number }>({
      name: `lock ${options.lockKey}`,
      clock: options.client.clock,
      logger: options.logger,
      waitMs: options.waitMs,
      minIntervalMs: 20,
      backoff: { initialMs: 100, maxMs: 2_000 },
      fetch: async (query) => {
        const result = await readKey(options.client, options.lockKey, {
          index: query.index,
          waitMs: query.waitMs,
          signal: query.signal,
        });
        this.#setReachable(true);
        const leader = await this.#leaderFrom(result.entry, query.signal);
        // Every agent reads the same ModifyIndex for the same vacancy: it names the election.
        // A missing key (Consul lost its state, or the key was deleted) is vacancy -1: never the 0
        // that marks candidacies published while the lock was held.
        const vacancy = leader === null ? result.entry?.modifyIndex ?? -1 : 0;
        return { value: { leader, vacancy }, index: result.index };
      },
      onError: () => this.#setReachable(false),
    });
    this.#done = this.#follow();
  }

  leader(): LeaderView | null | undefined {
    return this.#leader;
  }

  vacancy(): number {
    return this.#vacancy;
  }

  reachable(): boolean | undefined {
    return this.#reachable;
  }

  onChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  async close(): Promise<void> {
    this.#watch.close();
    await this.#done;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #follow(): Promise<void> {
    for await (const { leader, vacancy } of this.#watch) {
      this.#leader = leader;
      this.#vacancy = vacancy;
      this.#notify();
    }
  }

  async #leaderFrom(
    entry: { value: string; session?: string; lockIndex: number } | undefined,
    signal: AbortSignal,
  ): Promise<LeaderView | null> {
    if (!entry?.session) return null;
    const holder = { session: entry.session, lockIndex: entry.lockIndex };
    const announced = this.#announcement(entry.value);
    if (announced) return { address: announced.address, ...holder };
    // A holder that announced nothing: fall back to the catalog, if it is unambiguous.
    const { name, tag } = this.#options.masterService;
    const { entries } = await healthService(this.#options.client, name, {
      tag,
      passing: true,
      signal,
    });
    if (entries.length !== 1) {
      this.#options.logger.warn(
        "the lock holder announced no address and the catalog does not name exactly one passing master",
        { session: entry.session, passingMasters: entries.length },
      );
      return null;
    }
    const [master] = entries;
    return { address: { host: master!.address, port: master!.port }, ...holder };
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

  #setReachable(reachable: boolean): void {
    if (this.#reachable === reachable) return;
    const before = this.#reachable;
    this.#reachable = reachable;
    if (before !== undefined || !reachable) {
      this.#options.logger[reachable ? "info" : "warn"](
        reachable ? "Consul is reachable again" : "Consul cannot be reached",
      );
    }
    this.#notify();
  }

  #notify(): void {
    for (const listener of this.#listeners) listener();
  }
}
