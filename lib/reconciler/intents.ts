/**
 * The Redis and catalog intents that decisions on both sides of the lock share.
 */
import type { RedisAction, RunningRedis, ServiceIntent } from "./model.ts";

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
