/**
 * The agent's timings, all derived from the configuration (documented in docs/failure-behaviour.md):
 * each is a named constant or function with the reason for its value.
 */
import type { ElectionSettings } from "../reconciler/election.ts";
import type { Config } from "../config.ts";
import type { Milliseconds } from "../duration.ts";
import type { DecisionSettings } from "../reconciler/model.ts";
import { TAKEOVER_SETTINGS, type TakeoverSettings } from "../reconciler/takeover.ts";

/** The least time a role-check refresh leaves before the check's TTL runs out (if a third allows). */
const CHECK_REFRESH_SPARE_MS = 2_000;

/**
 * The longest blocking read of the lock holder's watch and of the leader's node: a change answers at
 * once whatever the wait, so a long one only saves requests.
 */
export const HOLDER_WAIT_MS = 60_000;

/**
 * How often a replica's agent reads the leader's `INFO replication` (its offset, and whether it lists
 * our Redis as acknowledging): a fast takeover needs to know within a second of a new term that the
 * leader counts us (lib/reconciler/takeover.ts). One small command a second on the leader per replica.
 */
export const LEADER_READ_INTERVAL_MS = 1_000;

/** How long startup keeps trying to end an earlier run's sessions while Consul is unreachable. */
export const EARLIER_RUN_DEADLINE_MS = 3_000;

/**
 * How long a graceful stop of the master waits for another node to lead, to make its Redis that
 * node's replica (a Go resec or a Redis with no agent never lifts the fence). Well inside the hard
 * exit (HARD_EXIT_AFTER_MS); a Go resec takes a released lock within a second, ours within
 * HEALTHCHECK_TIMEOUT plus a moment.
 */
export const HAND_OVER_WAIT_MS = 10_000;

/** Timings derived from the configuration; documented in docs/failure-behaviour.md. */
export interface AgentTimings extends DecisionSettings {
  /** TTL of the service check: twice HEALTHCHECK_INTERVAL, as the seed README documents. */
  readonly checkTtlMs: Milliseconds;
  /** TTL of the agent check the lock sessions are tied to (see presence.ts). */
  readonly agentCheckTtlMs: Milliseconds;
  /** How often the loop runs without a change, which is also the check heartbeat (checkRefreshMs). */
  readonly tickMs: Milliseconds;
  /** How long one write fence lasts before it must be renewed. */
  readonly fenceMs: Milliseconds;
  /**
   * How long the leader's node must stay critical in gossip before its session is ended: as long as
   * its agent check would take to lapse, so with the lock delay no peer leads before a TTL has passed,
   * and the leader's own fence (at the fence bound) keeps the margin it keeps on the TTL path.
   */
  readonly holderGoneAfterMs: Milliseconds;
  /** Longest blocking wait on the lock key. */
  readonly leaderWaitMs: Milliseconds;
  readonly election: ElectionSettings;
  /** The fast takeover (lib/reconciler/takeover.ts): fixed bounds, explained beside each constant. */
  readonly takeover: TakeoverSettings;
}

/**
 * Derives the timings. The fence bound is 60 % of the session TTL, counted from the older of the last
 * accepted session renewal and agent-check heartbeat. Consul cannot expire the session earlier than
 * TTL after the renewal, nor the agent check earlier than its TTL (at least TTL − lock delay) after
 * the heartbeat, and the lock delay follows either: a master that fences at 0.6 × TTL has stopped
 * taking writes before anyone else can hold the lock.
 */
export function agentTimings(config: Config): AgentTimings {
  const checkTtlMs = 2 * config.healthcheckIntervalMs;
  // A dead agent's check expires after this and a peer may take the lock one lock delay later:
  // within CONSUL_LOCK_TTL in all. Never under half the TTL, so a busy agent has beats to spare.
  const agentCheckTtlMs = Math.max(
    config.lock.ttlMs - config.lock.delayMs,
    Math.ceil(config.lock.ttlMs / 2),
  );
  const tickMs = checkRefreshMs(checkTtlMs);
  return {
    checkTtlMs,
    agentCheckTtlMs,
    tickMs,
    fenceAfterMs: Math.floor(config.lock.ttlMs * 0.6),
    peerFenceWaitMs: Math.floor(config.lock.ttlMs * 0.6),
    replicaLinkGraceMs: Math.max(10_000, 2 * config.lock.ttlMs + config.lock.delayMs),
    fenceMs: Math.max(60_000, 4 * config.lock.ttlMs),
    holderGoneAfterMs: agentCheckTtlMs,
    leaderWaitMs: Math.max(1_000, config.lock.ttlMs),
    election: {
      maxLagBytes: config.election.maxLagBytes,
      // An entry no session holds (an earlier version's agent republishes every third of the check
      // TTL): three missed publications mean its agent is gone.
      staleAfterMs: checkTtlMs + config.healthcheckTimeoutMs,
      collectMs: Math.max(200, config.healthcheckTimeoutMs),
      stepAsideMaxMs: config.lock.ttlMs,
    },
    takeover: TAKEOVER_SETTINGS,
  };
}

/**
 * How often the role check is refreshed (and the loop ticks): half its TTL, so each refresh is a
 * Consul request that changes nothing on the servers and the check costs 12 requests a minute by
 * default; but never closer than 2 s to the TTL, and at least every third of it (short test timings).
 */
export function checkRefreshMs(checkTtlMs: Milliseconds): Milliseconds {
  const half = Math.min(checkTtlMs / 2, checkTtlMs - CHECK_REFRESH_SPARE_MS);
  return Math.max(10, Math.floor(Math.max(checkTtlMs / 3, half)));
}

/**
 * How often the observer polls INFO: HEALTHCHECK_INTERVAL, but at least twice per timeout, so a Redis
 * that freezes (no connection drop to tell us) is noticed within 1.5 × HEALTHCHECK_TIMEOUT, as the Go
 * resec's 1 s poll would.
 */
export function redisPollIntervalMs(
  config: Pick<Config, "healthcheckIntervalMs" | "healthcheckTimeoutMs">,
): Milliseconds {
  return Math.max(
    10,
    Math.min(config.healthcheckIntervalMs, Math.floor(config.healthcheckTimeoutMs / 2)),
  );
}

/**
 * The deadline of one short Consul request: a request that hangs longer than a third of the lock TTL
 * would hold a renewal past its use.
 */
export function consulRequestTimeoutMs(config: Pick<Config, "lock">): Milliseconds {
  return Math.max(500, Math.min(10_000, Math.floor(config.lock.ttlMs / 3)));
}

/** How often the presence check is beaten: three beats per its TTL, so one lost beat is no lapse. */
export function presenceHeartbeatMs(timings: Pick<AgentTimings, "agentCheckTtlMs">): Milliseconds {
  return Math.max(10, Math.floor(timings.agentCheckTtlMs / 3));
}
