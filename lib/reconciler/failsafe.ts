/**
 * Failsafe mode's rules (FAILSAFE_MODE, docs/failsafe.md), pure: when a peer grants the master's call,
 * and how long the grants of every peer let the master take writes without Consul.
 *
 * The promise a grant carries: the peer does not compete for the lock for `leaseMs` after it answered.
 * The master counts each grant from before it sent the call, and for only part of the lease, so it
 * stops relying on a grant well before the peer is free of its promise. A peer can only take over through
 * the lock, so while every peer's promise holds nobody else can lead, whatever Consul shows.
 */
import { formatHostPort, type HostPort, sameHostPort } from "../address.ts";
import type { Milliseconds } from "../duration.ts";
import type { FailsafeAnswer, FailsafeCall } from "../failsafe/call.ts";
import { CALL_MAX_AGE_MS } from "../failsafe/call.ts";
import type { LeaderView, LockView } from "./model.ts";

/**
 * How long the master counts on one grant: 60 % of the lease the peer promised, the same share the
 * fence bound takes of the session TTL and for the same reasons. A late timer, a slow `CLIENT PAUSE`
 * and clocks that run at different rates all eat into the rest, never into the peer's promise.
 *
 * @example
 * ```ts
 * grantReliedMs(9_000); // 5400
 * ```
 */
export function grantReliedMs(leaseMs: Milliseconds): Milliseconds {
  return Math.floor(leaseMs * 0.6);
}

/** What a peer knows when a failsafe call arrives. */
export interface CallContext {
  readonly call: FailsafeCall;
  readonly self: HostPort;
  readonly lock: LockView;
  /** The lock holder as this agent last saw it (null: free; undefined: not known). */
  readonly leader: LeaderView | null | undefined;
  /** This agent's wall clock, for the call's replay window. */
  readonly wallNow: number;
  readonly leaseMs: Milliseconds;
}

/**
 * Whether this agent grants a master's failsafe call. It does when it does not hold or seek the lock
 * and the last holder it saw is the caller, in the caller's term: a peer that saw the lock freed or
 * taken by another refuses, so a master cut off from Consul alone fences as without failsafe mode.
 *
 * @example
 * ```ts
 * answerCall({ call, self, lock: { phase: "idle" }, leader, wallNow: Date.now(), leaseMs: 9_000 });
 * // { granted: true, leaseMs: 9000 } while `leader` is the caller
 * ```
 */
export function answerCall(context: CallContext): FailsafeAnswer {
  const { call, self, lock, leader, wallNow, leaseMs } = context;
  const caller = formatHostPort(call.leader);
  if (Math.abs(wallNow - call.sentAt) > CALL_MAX_AGE_MS) {
    return refuse(`the call was sent ${wallNow - call.sentAt} ms from this node's clock`);
  }
  if (sameHostPort(call.leader, self)) return refuse("the call names this node as the master");
  if (lock.phase !== "idle") return refuse(`this node is ${lock.phase} the lock itself`);
  if (leader === undefined) return refuse("this node does not know the lock holder");
  if (leader === null) return refuse(`the lock was free when this node last saw it`);
  if (!sameHostPort(leader.address, call.leader)) {
    return refuse(`${formatHostPort(leader.address)} holds the lock, not ${caller}`);
  }
  if (leader.lockIndex !== call.lockIndex) {
    return refuse(`the lock's term is ${leader.lockIndex}, not ${call.lockIndex}`);
  }
  return { granted: true, leaseMs };
}

function refuse(reason: string): FailsafeAnswer {
  return { granted: false, reason };
}

/**
 * Until when the master may take writes on its peers' grants: the earliest of each peer's last grant
 * (counted from when its call was sent) plus `grantReliedMs` of the lease. Undefined when any
 * peer has not granted, or there is no peer at all (nothing confirms that nobody took over).
 *
 * @param grants the send time of each peer's last granted call, by peer address
 * @param peers every peer that could take over: all of them must have granted
 */
export function writesAllowedUntil(
  grants: ReadonlyMap<string, number>,
  peers: readonly string[],
  leaseMs: Milliseconds,
): number | undefined {
  if (peers.length === 0) return undefined;
  let until = Infinity;
  for (const peer of peers) {
    const sentAt = grants.get(peer);
    if (sentAt === undefined) return undefined;
    until = Math.min(until, sentAt + grantReliedMs(leaseMs));
  }
  return until;
}
