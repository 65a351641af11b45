/**
 * The HTTP status snapshot: what the load-balancer endpoints and `GET /state` answer from, read off the
 * loop's latest evaluation.
 */
import type { Clock } from "../clock.ts";
import type { Milliseconds } from "../duration.ts";
import type { NodeStatus, StatusSource } from "../http/status.ts";
import { actsAsMaster, type Observed } from "../reconciler/model.ts";
import type { Agent } from "./loop.ts";

/**
 * A replica's lag behind its leader: the leader's offset as read from its Redis, less our own;
 * undefined when either is unknown.
 */
export function replicationLag(
  observed: Pick<Observed, "redis" | "leader">,
  leaderOffset: number | undefined,
): number | undefined {
  const redis = observed.redis;
  if (redis.kind !== "up" || redis.role !== "replica" || !observed.leader) return undefined;
  if (leaderOffset === undefined) return undefined;
  return Math.max(0, leaderOffset - redis.offset);
}

/** The load-balancer view of an agent snapshot. */
export function nodeStatus(
  snapshot: ReturnType<Agent["snapshot"]>,
  tickMs: Milliseconds,
  now: number,
  leaderOffset?: number,
): NodeStatus {
  const observed = snapshot.observed;
  const redis = observed?.redis;
  const up = redis?.kind === "up" ? redis : undefined;
  const loopAlive = snapshot.lastEvaluatedAt !== undefined &&
    now - snapshot.lastEvaluatedAt <= 3 * tickMs + 1_000;
  return {
    role: up ? up.role : "unknown",
    // A holder that is holding writes (unconfirmed or contested lock, a switchover's FAILOVER) is
    // not a master a load balancer should send writes to.
    holdsLock: observed?.lock.phase === "held" && actsAsMaster(snapshot.decision?.name),
    redisHealthy: up !== undefined && !up.loading,
    agentHealthy: loopAlive && observed?.consulReachable !== false,
    linkUp: up?.role === "replica" && up.linkUp,
    lagBytes: observed ? replicationLag(observed, leaderOffset) : undefined,
    paused: observed?.paused ?? false,
  };
}

/**
 * The StatusSource of a running agent: the status of its latest snapshot, and the snapshot with the
 * timings for `GET /state`.
 */
export function agentStatusSource(
  agent: Pick<Agent, "snapshot">,
  timings: { readonly tickMs: Milliseconds },
  leaderOffset: () => number | undefined,
  clock: Pick<Clock, "now">,
): StatusSource {
  return {
    status: () => nodeStatus(agent.snapshot(), timings.tickMs, clock.now(), leaderOffset()),
    state: () => ({ ...agent.snapshot(), timings }),
  };
}
