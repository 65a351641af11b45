/**
 * The Redis and catalog intents that decisions on both sides of the lock share.
 */
import type { Observed, RedisAction, RunningRedis, ServiceIntent } from "./model.ts";

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
