/**
 * Applies the reconciler's Redis actions and remembers the one thing Redis cannot tell us: whether our
 * own write fence (CLIENT PAUSE WRITE) is in force. INFO does not show a pause, so one that an earlier
 * run of the agent left (a graceful stop fences a master for a minute) is lifted whenever Redis turns
 * replica or is promoted before this run has paused it itself.
 */
import { formatHostPort, type HostPort } from "../../address.ts";
import type { Milliseconds } from "../../duration.ts";
import type { Logger } from "../../log.ts";
import type { RedisAction } from "../../reconciler/model.ts";

/** The commands the actuator sends to the local Redis. */
export interface RedisCommandPort {
  promote(): Promise<void>;
  /**
   * Stops replicating, keeping data and history (a replica of itself, lib/redis/self_loop.ts); tells
   * whether the replica had completed a sync.
   */
  detach(): Promise<{ synced: boolean }>;
  replicateFrom(master: HostPort): Promise<void>;
  pauseWrites(durationMs: Milliseconds): Promise<void>;
  unpauseWrites(): Promise<void>;
}

export interface RedisActuatorOptions {
  commands: RedisCommandPort;
  /** How long one fence lasts; it is renewed before it runs out while the fence is wanted. */
  fenceMs: Milliseconds;
  logger: Logger;
}

/** Sends role changes and fences to the local Redis. */
export class RedisActuator {
  readonly #options: RedisActuatorOptions;
  #fencedUntil = 0;
  /** The run_id of the Redis process our fence was set on (undefined: not known then). */
  #fencedRunId: string | undefined;
  /** False until this run paused or unpaused Redis: an earlier run's pause may still be in force. */
  #pauseKnown = false;

  constructor(options: RedisActuatorOptions) {
    this.#options = options;
  }

  /**
   * True while our fence holds with at least a quarter of it left, so the reconciler renews it in
   * time, on the Redis process it was set on: one that restarted since (another `runId`) comes back
   * without the pause.
   *
   * @example
   * ```ts
   * await actuator.apply({ kind: "fence" }, now, "run-1");
   * actuator.isFenced(now, "run-2"); // false: Redis restarted, fence it again
   * ```
   */
  isFenced(now: number, runId?: string): boolean {
    if (runId !== undefined && this.#fencedRunId !== undefined && runId !== this.#fencedRunId) {
      return false;
    }
    return now < this.#fencedUntil - this.#options.fenceMs / 4;
  }

  /**
   * Applies one action to the Redis process `runId` (when known); throws what Redis threw (the next
   * evaluation retries). A detach reports whether the replica had completed a sync.
   */
  async apply(
    action: RedisAction,
    now: number,
    runId?: string,
  ): Promise<{ synced: boolean } | void> {
    const { commands, logger } = this.#options;
    switch (action.kind) {
      case "none":
        return;
      case "promote":
        logger.info("promoting Redis to master (REPLICAOF NO ONE)");
        await commands.promote();
        // Promoted to take writes: a pause left by an earlier run would hold them for its minute.
        if (!this.#pauseKnown) await this.#unfence();
        return;
      case "replicate": {
        logger.info("pointing Redis at the master", { master: formatHostPort(action.master) });
        await commands.replicateFrom(action.master);
        // REPLICAOF first, then lift the fence: writes held by the pause now fail as READONLY
        // instead of landing on a master that is about to be overwritten.
        if (this.#fencedUntil > 0 || !this.#pauseKnown) await this.#unfence();
        return;
      }
      case "detach": {
        // It stays a replica throughout (of itself): no moment as a master, so no fence needed.
        logger.warn("stopping replication: pointing Redis at itself, keeping its data");
        const { synced } = await commands.detach();
        return { synced };
      }
      case "fence":
        if (!this.isFenced(now, runId) && this.#fencedUntil <= now) {
          logger.warn(
            "refusing writes on Redis (CLIENT PAUSE WRITE): this node does not hold a confirmed lock",
          );
        }
        await commands.pauseWrites(this.#options.fenceMs);
        this.#fencedUntil = now + this.#options.fenceMs;
        this.#fencedRunId = runId;
        this.#pauseKnown = true;
        return;
      case "unfence":
        await this.#unfence();
        return;
    }
  }

  /**
   * Lifts a pause an earlier run may have left on a Redis that is a replica now (it refuses writes
   * anyway, so this is always safe); the agent calls it once at start.
   */
  async liftLeftoverPause(): Promise<void> {
    if (this.#pauseKnown) return;
    await this.#options.commands.unpauseWrites();
    this.#pauseKnown = true;
    this.#options.logger.debug("lifted any write pause an earlier run left (CLIENT UNPAUSE)");
  }

  async #unfence(): Promise<void> {
    const ours = this.#fencedUntil > 0;
    await this.#options.commands.unpauseWrites();
    this.#fencedUntil = 0;
    this.#fencedRunId = undefined;
    this.#pauseKnown = true;
    if (ours) this.#options.logger.info("writes on Redis allowed again (CLIENT UNPAUSE)");
    else this.#options.logger.debug("lifted any write pause an earlier run left (CLIENT UNPAUSE)");
  }
}
