/**
 * On the lock holder: which replicas acknowledge its Redis, read from `INFO replication` every
 * REPLICA_ACK_POLL_MS while it holds the lock. A replica that stops may be ending this term in a fast
 * takeover (lib/reconciler/takeover.ts), so the reading must be fresh: one older than
 * ACK_READING_STALE_MS counts as "none acknowledges".
 */
import { BackgroundLoop } from "../../background_loop.ts";
import { formatHostPort, type HostPort } from "../../address.ts";
import type { Clock } from "../../clock.ts";
import type { Milliseconds } from "../../duration.ts";
import type { Logger } from "../../log.ts";
import { acknowledging, type OffsetReader } from "./leader_offset.ts";

/** How often the holder reads its replicas' acknowledgements (GUARD_DETECT_MS counts on it). */
export const REPLICA_ACK_POLL_MS = 250;

/** A reading older than this counts as none (GUARD_DETECT_MS counts on it). */
export const ACK_READING_STALE_MS = 500;

export interface ReplicaAckWatchOptions {
  /** True while this agent holds the lock. */
  holding: () => boolean;
  /** The local Redis. */
  address: HostPort;
  read: OffsetReader;
  clock: Clock;
  logger: Logger;
  /** Called when the set of acknowledging replicas changes, or a read fails. */
  onChange: () => void;
  intervalMs?: Milliseconds;
}

/** Reads the local Redis's acknowledging replicas on a timer while holding the lock. */
export class ReplicaAckWatch {
  readonly #options: ReplicaAckWatchOptions;
  readonly #loop = new BackgroundLoop(() => this.#run());
  #last: { at: number; acknowledging: ReadonlySet<string> } | undefined;
  #failing = false;

  constructor(options: ReplicaAckWatchOptions) {
    this.#options = options;
  }

  /**
   * The replicas acknowledging now (`ip:port`): empty when the last reading is stale or failed;
   * undefined while this agent does not hold the lock.
   */
  current(now: number): ReadonlySet<string> | undefined {
    if (!this.#options.holding()) return undefined;
    const last = this.#last;
    return last && now - last.at <= ACK_READING_STALE_MS ? last.acknowledging : new Set();
  }

  start(): void {
    this.#loop.start();
  }

  stop(): Promise<void> {
    return this.#loop.stop();
  }

  async #run(): Promise<void> {
    const { clock, logger } = this.#options;
    const intervalMs = this.#options.intervalMs ?? REPLICA_ACK_POLL_MS;
    const signal = this.#loop.signal;
    while (!signal.aborted) {
      const startedAt = clock.now();
      if (!this.#options.holding()) {
        this.#last = undefined;
      } else {
        try {
          const { replicas } = await this.#options.read(this.#options.address, signal);
          const now = acknowledging(replicas);
          const before = this.#last?.acknowledging;
          this.#last = { at: startedAt, acknowledging: now };
          if (this.#failing) logger.info("reading the replicas' acknowledgements works again");
          this.#failing = false;
          if (!before || !sameSet(before, now)) this.#options.onChange();
        } catch (error) {
          if (signal.aborted) return;
          if (!this.#failing) {
            logger.warn("cannot read the replicas' acknowledgements", {
              redis: formatHostPort(this.#options.address),
              error,
            });
          }
          this.#failing = true;
          this.#last = undefined;
          this.#options.onChange();
        }
      }
      try {
        await clock.sleep(Math.max(0, startedAt + intervalMs - clock.now()), signal);
      } catch {
        return; // stopped
      }
    }
  }
}

function sameSet(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  return a.size === b.size && [...a].every((value) => b.has(value));
}
