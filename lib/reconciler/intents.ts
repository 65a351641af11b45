/**
 * The Redis and catalog intents that decisions on both sides of the lock share.
 */
import { parseHostPort } from "../address.ts";
import { bestPeer } from "./election.ts";
import type { Observed, RedisAction, RunningRedis, ServiceIntent, Situation } from "./model.ts";

/** Leave the local Redis as it is. */
export const NO_REDIS_ACTION: RedisAction = { kind: "none" };

/** Leave the catalog as it is. */
export const SERVICE_UNCHANGED: ServiceIntent = { kind: "unchanged" };

/**
 * Refuse writes on a master-role Redis that does not refuse them yet; anything else is left alone.
 *
 * @example
 * ```ts
 * fenceIfMaster(redis, observed.fenced); // { kind: "fence" } for an unfenced master
 * ```
 */
export function fenceIfMaster(redis: RunningRedis, fenced: boolean): RedisAction {
  return redis.role === "master" && !fenced ? { kind: "fence" } : NO_REDIS_ACTION;
}

/**
 * Whether the local Redis takes no writes as the lock is given back: down without serving clients
 * (not merely unresponsive), a replica, or fenced by us. The release note says so, and the next
 * master then need not wait out our fence bound (lib/cluster/lock_value.ts).
 *
 * @example
 * ```ts
 * writesStopped({ ...observed, redis: { kind: "down", reason: "connection refused" } }); // true
 * ```
 */
export function writesStopped(observed: Pick<Observed, "redis" | "fenced">): boolean {
  const redis = observed.redis;
  if (redis.kind === "down") return redis.mayServe !== true;
  if (redis.kind !== "up") return false;
  return redis.role !== "master" || observed.fenced;
}

/**
 * What to do with a master-role Redis that replicas may still follow although it must not feed them:
 * one that restarted since this node led, or an empty one this node does not hold the lock for (a
 * host rebooted with an empty Redis while its agent, new, does not know it led). It is pointed at the
 * best peer, or, with none, at itself (lib/redis/self_loop.ts): either way its own link is down, so
 * it serves them no sync (Redis refuses SYNC from a replica without a link, -NOMASTERLINK) and cannot
 * wipe them with an empty or older dataset. Undefined when that does not apply.
 *
 * @example
 * ```ts
 * awayFromReplicas(observed, redis) ?? fenceIfMaster(redis, observed.fenced);
 * ```
 */
export function awayFromReplicas(
  observed: Situation,
  redis: RunningRedis,
): RedisAction | undefined {
  if (redis.role !== "master" || observed.election === undefined) return undefined;
  const restarted = observed.restartedSinceLed === true ||
    (observed.lock.phase === "held" && observed.lock.runId !== undefined &&
      observed.lock.runId !== redis.runId);
  const emptyWithoutLock = redis.datasetEmpty && observed.lock.phase !== "held";
  if (!restarted && !emptyWithoutLock) return undefined;
  const peer = bestPeer({ ...observed.election, now: observed.now });
  return peer ? { kind: "replicate", master: parseHostPort(peer.address) } : { kind: "detach" };
}
