/**
 * The heart of resec: a pure function from what the agent observes to what it should do. No I/O, no
 * clock (the time is an input), so every rule is a table-driven unit test.
 *
 * A Redis that never answered, is down or is loading decides alone; otherwise the rules split on
 * "do we hold the lock?", as Patroni's loop splits on whether there is a leader: holder.ts while we
 * hold it, follower.ts while we do not. `DECISIONS` (model.ts) lists every decision with its meaning.
 */
import { decideAsFollower } from "./follower.ts";
import { decideAsHolder } from "./holder.ts";
import { NO_REDIS_ACTION, SERVICE_UNCHANGED } from "./intents.ts";
import type {
  Decision,
  DecisionSettings,
  Observed,
  RedisView,
  ServiceIntent,
  Situation,
} from "./model.ts";

/**
 * Decides what the agent should do now.
 *
 * @example
 * ```ts
 * const decision = decide(observed, settings);
 * if (decision.redis.kind === "promote") await commander.promote();
 * ```
 */
export function decide(observation: Observed, settings: DecisionSettings): Decision {
  const observed: Situation = { ...observation, settings };
  const { redis, lock } = observed;
  const held = lock.phase === "held";

  if (redis.kind === "unknown") {
    return {
      name: "waiting_for_redis",
      reason: "Redis has not answered yet",
      lock: held ? "release" : "idle",
      redis: NO_REDIS_ACTION,
      service: SERVICE_UNCHANGED,
    };
  }
  if (redis.kind === "down" || redis.loading) {
    const reason = redis.kind === "down"
      ? `Redis is down: ${redis.reason}`
      : "Redis is loading its dataset";
    const service: ServiceIntent = observed.registration
      ? { kind: "registered", role: observed.registration.role, status: "critical", output: reason }
      : SERVICE_UNCHANGED;
    const fenceUntil = held && redis.kind === "down"
      ? fenceBeforeRelease(observed, redis)
      : undefined;
    if (fenceUntil !== undefined) {
      // Released now, the lock would let a replica lead while this Redis may still take writes from
      // clients that reach it: refuse them first, for the fence bound at most.
      return {
        name: "fencing_unresponsive_redis",
        reason: `${reason}; it may still serve clients, so writes are refused before the lock goes`,
        lock: "hold",
        redis: { kind: "fence" },
        service,
        wakeAt: fenceUntil,
      };
    }
    return {
      name: "redis_unhealthy",
      reason,
      lock: lock.phase === "idle" ? "idle" : "release",
      redis: NO_REDIS_ACTION,
      service,
    };
  }
  return lock.phase === "held"
    ? decideAsHolder(observed, redis, lock)
    : decideAsFollower(observed, redis);
}

/**
 * Until when a lock holder keeps its lock to fence a failing Redis that may still serve clients: not
 * fenced yet and within the fence bound since it failed; undefined when the lock may go now.
 */
function fenceBeforeRelease(
  observed: Situation,
  redis: Extract<RedisView, { kind: "down" }>,
): number | undefined {
  if (!redis.mayServe || redis.since === undefined || observed.fenced) return undefined;
  const until = redis.since + observed.settings.fenceAfterMs;
  return observed.now < until ? until : undefined;
}
