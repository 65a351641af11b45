/**
 * The leader's replication offset, which a replica's lag is measured against. Only the leader's Redis
 * knows it as it moves, and candidacies no longer carry it between elections (every write of one is a
 * Raft apply on the Consul servers), so the agent of a replica reads it there itself: `INFO
 * replication` on a connection of its own, once per interval while it follows a leader. The same
 * reading tells whether the leader's Redis lists this node's Redis as an acknowledging replica, which
 * a fast takeover needs (lib/reconciler/takeover.ts).
 */
import { BackgroundLoop } from "../../background_loop.ts";
import { formatHostPort, type HostPort, sameHostPort } from "../../address.ts";
import type { Clock } from "../../clock.ts";
import type { Milliseconds } from "../../duration.ts";
import type { Logger } from "../../log.ts";
import { RedisClient } from "../../redis/client.ts";
import type { RedisConnectionConfig } from "../../redis/connection.ts";
import { type ConnectedReplica, parseInfo } from "../../redis/info.ts";
import { ACK_MAX_LAG_SECONDS, replicaKey } from "../../reconciler/takeover.ts";

/** What one read of a Redis's `INFO replication` gives. */
export interface ReplicationReading {
  /** `master_repl_offset`. */
  readonly offset: number;
  /** Its `slaveN` lines. */
  readonly replicas: readonly ConnectedReplica[];
}

/** Reads a Redis's replication state; rejects when it cannot. */
export type OffsetReader = (address: HostPort, signal: AbortSignal) => Promise<ReplicationReading>;

/**
 * The replicas of a reading that acknowledge their master (online, INFO `lag` of at most
 * ACK_MAX_LAG_SECONDS), by `ip:port`.
 *
 * @example
 * ```ts
 * acknowledging([{ ip: "10.0.0.2", port: 6379, state: "online", offset: 9, lagSeconds: 0 }]);
 * // Set { "10.0.0.2:6379" }
 * ```
 */
export function acknowledging(replicas: readonly ConnectedReplica[]): Set<string> {
  const keys = new Set<string>();
  for (const replica of replicas) {
    if (
      replica.state === "online" && replica.port !== undefined &&
      replica.lagSeconds !== undefined && replica.lagSeconds <= ACK_MAX_LAG_SECONDS
    ) {
      keys.add(replicaKey({ host: replica.ip, port: replica.port }));
    }
  }
  return keys;
}

export interface LeaderOffsetProbeOptions {
  /** The leader this node replicates from now; undefined when none (or when this node leads). */
  leader: () => HostPort | undefined;
  read: OffsetReader;
  /** This node's announce address: how the leader's INFO lists our Redis. */
  self?: HostPort;
  /** How often to read while following a leader. */
  intervalMs: Milliseconds;
  clock: Clock;
  logger: Logger;
}

/** Reads the leader's offset on a timer; `offset()` answers from the last read. */
export class LeaderOffsetProbe {
  readonly #options: LeaderOffsetProbeOptions;
  readonly #loop = new BackgroundLoop(() => this.#run());
  #last: { address: HostPort; offset: number; at: number } | undefined;
  #acknowledged: { address: HostPort; at: number } | undefined;
  #failing = false;

  constructor(options: LeaderOffsetProbeOptions) {
    this.#options = options;
  }

  /**
   * The offset `leader`'s Redis last reported, if it was read within the last three intervals;
   * undefined otherwise (an unknown lag never passes a bound).
   */
  offset(leader: HostPort, now: number): number | undefined {
    const last = this.#last;
    if (!last || !sameHostPort(last.address, leader)) return undefined;
    return now - last.at <= 3 * this.#options.intervalMs ? last.offset : undefined;
  }

  /**
   * When a read of `leader`'s Redis (its start, local time) last listed our Redis as an acknowledging
   * replica; undefined when none did.
   */
  acknowledgedAt(leader: HostPort): number | undefined {
    const acknowledged = this.#acknowledged;
    return acknowledged && sameHostPort(acknowledged.address, leader) ? acknowledged.at : undefined;
  }

  /** As `offset`, for the lock holder as the leader watch sees it; undefined when there is none. */
  leaderOffset(leader: { readonly address: HostPort } | null | undefined, now: number) {
    return leader ? this.offset(leader.address, now) : undefined;
  }

  start(): void {
    this.#loop.start();
  }

  stop(): Promise<void> {
    return this.#loop.stop();
  }

  async #run(): Promise<void> {
    const { clock, intervalMs, logger } = this.#options;
    const signal = this.#loop.signal;
    while (!signal.aborted) {
      const leader = this.#options.leader();
      if (leader) {
        const startedAt = clock.now();
        try {
          const { offset, replicas } = await this.#options.read(leader, signal);
          this.#last = { address: leader, offset, at: startedAt };
          const self = this.#options.self;
          if (self && acknowledging(replicas).has(replicaKey(self))) {
            this.#acknowledged = { address: leader, at: startedAt };
          }
          if (this.#failing) logger.info("reading the leader's offset works again");
          this.#failing = false;
        } catch (error) {
          if (signal.aborted) return;
          if (!this.#failing) {
            logger.debug("cannot read the leader's replication offset; the lag is unknown", {
              leader: formatHostPort(leader),
              error,
            });
          }
          this.#failing = true;
        }
      }
      try {
        await clock.sleep(intervalMs, signal);
      } catch {
        return; // stopped
      }
    }
  }
}

/**
 * An OffsetReader over one Redis connection of its own, kept while the address stays the same (the
 * leader's credentials and TLS settings are this node's, as for fencing a former master).
 */
export function redisOffsetReader(
  config: RedisConnectionConfig,
  timeoutMs: Milliseconds,
): { read: OffsetReader; close(): void } {
  let current: { address: string; client: Promise<RedisClient> } | undefined;
  const drop = () => {
    const dropped = current;
    current = undefined;
    dropped?.client.then((client) => client.close(), () => {});
  };
  return {
    read: async (address, signal) => {
      const key = formatHostPort(address);
      if (current?.address !== key) {
        drop();
        current = {
          address: key,
          client: RedisClient.connect({ ...config, host: address.host, port: address.port }, {
            timeoutMs,
            connectionName: "resec-leader-offset",
            signal,
          }),
        };
      }
      const pending = current;
      try {
        const client = await pending.client;
        const info = parseInfo(String(await client.call("INFO", ["replication"])));
        const offset = info.masterReplOffset;
        if (offset === undefined) throw new Error(`Redis at ${key} reports no master_repl_offset`);
        return { offset, replicas: info.replicas };
      } catch (error) {
        if (current === pending) drop();
        throw error;
      }
    },
    close: drop,
  };
}
