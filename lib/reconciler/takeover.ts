/**
 * The fast takeover: replicas that lost the leader's Redis end its term in seconds, instead of
 * waiting for Consul to expire its session. The safety argument is in docs/failure-detection.md; in
 * short:
 *
 * - A replica that cannot reach the leader's Redis for `holderLostAfterMs` points its own Redis at
 *   itself (it acknowledges the leader no more) and publishes `unreachableHolder` in its candidacy.
 * - The leader's agent watches which replicas acknowledge its Redis (INFO `lag` of at most
 *   ACK_MAX_LAG_SECONDS). Once a replica that acknowledged in this term stops, the leader is
 *   guarded: it takes writes only while its session was renewed within `guardBoundMs`.
 * - A replica the leader's Redis listed as acknowledging, detached, with every other live peer
 *   unable to reach the leader either, ends the leader's session. It never follows that leader again,
 *   and if it leads next, it takes writes only `guardBoundMs + slackMs` after Consul confirmed the
 *   session gone: by then the old master has either fenced itself or failed to renew a session
 *   that no longer exists.
 *
 * Pure functions and data only; the agent's watches (lib/agent/watch/holder_reach.ts,
 * replica_acks.ts) supply the observations.
 */
import type { Milliseconds } from "../duration.ts";
import { formatHostPort, type HostPort } from "../address.ts";
import { type ElectionSettings, isLive, type SeenCandidacy } from "./election.ts";
import type { LeaderView, LockView } from "./model.ts";

/**
 * A replica acknowledges its master once a second; INFO's `lag` counts whole seconds since the last
 * acknowledgement, so 0 or 1 is a replica that keeps acknowledging and 2 is one that missed one.
 */
export const ACK_MAX_LAG_SECONDS = 1;

/**
 * From a replica's last acknowledgement to its master's agent seeing it missing: `lag` reaches 2 at
 * most 2 s plus Redis's cached clock (100 ms at the default `hz 10`) after it, and the agent reads
 * INFO every 250 ms (REPLICA_ACK_POLL_MS) and takes a read older than 500 ms as "none acknowledges".
 */
export const GUARD_DETECT_MS = 2_400;

/**
 * A guarded master needs a session renewal sent within this long: three renewals (one every
 * GUARD_CONFIRM_EVERY_MS) may fail before it fences, as with the TTL / 3 cadence of the lease.
 */
export const GUARD_CONFIRMED_WITHIN_MS = 2_400;

/** How often a guarded master renews its session. */
export const GUARD_CONFIRM_EVERY_MS = 800;

/** Time for the old master's agent to act on a deadline it reached (evaluate, CLIENT PAUSE). */
export const GUARD_SLACK_MS = 400;

/**
 * How long a replica's agent must have failed to reach the leader's Redis before it gives up on it:
 * four connection attempts in a row (one every 200 ms, each given 300 ms), so one lost packet or a
 * short stall is no failover.
 */
export const HOLDER_LOST_AFTER_MS = 750;

/** The fast takeover's timings. */
export interface TakeoverSettings {
  /** A follower that has not reached the leader's Redis for this long gives up on it. */
  readonly holderLostAfterMs: Milliseconds;
  /** A guarded master has fenced itself within this long of its session ending (or of its last ack). */
  readonly guardBoundMs: Milliseconds;
  /** A guarded master renews its session at least this often. */
  readonly guardConfirmEveryMs: Milliseconds;
  /** Margin for the old master's agent to act on its deadline. */
  readonly slackMs: Milliseconds;
}

/** The defaults, each a named constant above. */
export const TAKEOVER_SETTINGS: TakeoverSettings = {
  holderLostAfterMs: HOLDER_LOST_AFTER_MS,
  guardBoundMs: Math.max(GUARD_DETECT_MS, GUARD_CONFIRMED_WITHIN_MS),
  guardConfirmEveryMs: GUARD_CONFIRM_EVERY_MS,
  slackMs: GUARD_SLACK_MS,
};

/** On the lock holder: replicas that acknowledged in this term and do not now. */
export interface ReplicaGuard {
  /** Local time the first of them was seen missing. */
  readonly since: number;
  /** Their addresses (`ip:port` as the master's INFO lists them). */
  readonly missing: readonly string[];
}

/** What the holder remembers of its replicas' acknowledgements in its current term. */
export interface TermAcks {
  readonly lockIndex: number;
  /** Every replica seen acknowledging in this term. */
  readonly acknowledged: ReadonlySet<string>;
  /** The current guard, while one of them is missing. */
  readonly guard: ReplicaGuard | undefined;
}

/**
 * The term's acknowledgements after one observation. `current`: the replicas acknowledging now
 * (empty when the read is stale); undefined when the agent does not watch them (no fast takeover).
 *
 * @example
 * ```ts
 * let acks = termAcksAfter(undefined, held, new Set(["10.0.0.2:6379"]), 0);
 * acks = termAcksAfter(acks, held, new Set(), 3_000);
 * acks?.guard; // { since: 3_000, missing: ["10.0.0.2:6379"] }
 * ```
 */
export function termAcksAfter(
  acks: TermAcks | undefined,
  lock: LockView,
  current: ReadonlySet<string> | undefined,
  now: number,
): TermAcks | undefined {
  if (lock.phase !== "held" || current === undefined) return undefined;
  const before = acks?.lockIndex === lock.lockIndex ? acks.acknowledged : new Set<string>();
  const acknowledged = [...current].every((address) => before.has(address))
    ? before
    : new Set([...before, ...current]);
  const missing = [...acknowledged].filter((address) => !current.has(address)).sort();
  const guard = missing.length === 0
    ? undefined
    : { since: acks?.lockIndex === lock.lockIndex ? acks.guard?.since ?? now : now, missing };
  if (
    acks?.lockIndex === lock.lockIndex && acks.acknowledged === acknowledged &&
    sameGuard(acks.guard, guard)
  ) {
    return acks;
  }
  return { lockIndex: lock.lockIndex, acknowledged, guard };
}

function sameGuard(a: ReplicaGuard | undefined, b: ReplicaGuard | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  return a.since === b.since && a.missing.join(",") === b.missing.join(",");
}

/**
 * When a guarded holder must have fenced: its last session renewal plus the bound.
 *
 * @example
 * ```ts
 * guardDeadline({ phase: "held", lockIndex: 3, confirmedAt: 0, sessionConfirmedAt: 1_000 }, TAKEOVER_SETTINGS);
 * // 3_400
 * ```
 */
export function guardDeadline(
  lock: Extract<LockView, { phase: "held" }>,
  settings: TakeoverSettings,
): number {
  return sessionRenewedAt(lock) + settings.guardBoundMs;
}

/**
 * When the last session renewal Consul accepted was sent, not lowered by the agent check as
 * `confirmedAt` is (a view without it: `confirmedAt`).
 */
export function sessionRenewedAt(lock: Extract<LockView, { phase: "held" }>): number {
  return lock.sessionConfirmedAt ?? lock.confirmedAt;
}

/**
 * True when every other live peer published that it cannot reach `leader` (or ends its session): the
 * leader is gone for all of them, not just for this host. Peers at the leader's own address and
 * entries no agent keeps alive do not count.
 *
 * @example
 * ```ts
 * peersLostHolder(board.peers(), leader, self, now, settings); // false while one peer still reaches it
 * ```
 */
export function peersLostHolder(
  peers: readonly SeenCandidacy[],
  leader: LeaderView,
  self: HostPort,
  now: number,
  settings: Pick<ElectionSettings, "staleAfterMs">,
): boolean {
  const leaderAddress = formatHostPort(leader.address);
  const selfAddress = formatHostPort(self);
  return peers.every((peer) => {
    const candidacy = peer.candidacy;
    if (candidacy.address === leaderAddress || candidacy.address === selfAddress) return true;
    if (!isLive(peer, now, settings)) return true;
    return candidacy.unreachableHolder === leader.session ||
      candidacy.endsHolder === leader.session;
  });
}

/**
 * When a new master that ended its predecessor's session itself may take writes: the guard bound
 * and the slack after Consul confirmed that session gone (`endedAt`, local time of the answer).
 */
export function endedTermFenceEnds(endedAt: number, settings: TakeoverSettings): number {
  return endedAt + settings.guardBoundMs + settings.slackMs;
}

/** The address a replica's master lists it under in INFO (`ip:port`). */
export function replicaKey(address: HostPort): string {
  return formatHostPort(address);
}
