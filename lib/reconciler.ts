/**
 * The heart of resec: a pure function from what the agent observes to what it should do. No I/O, no
 * clock (the time is an input), so every rule below is a table-driven unit test.
 *
 * The rules, in order of precedence:
 * 1. Redis never observed yet → wait.
 * 2. Redis down or loading → give up the lock, mark the service critical.
 * 3. Lock held but Redis restarted empty under it → give the lock up (the empty-restart trap).
 * 4. Lock held but not confirmed by Consul for longer than the fence bound → refuse writes (fence):
 *    Consul may be about to hand the lock to someone else.
 * 5. Lock held → be master: REPLICAOF NO ONE if needed, register as passing master, lift our fence,
 *    and point the previous master at us.
 * 6. Consul unreachable and no lock → leave Redis as it is (never flap Redis on a Consul blip).
 * 7. Another node leads → replicate from its announced address, register as slave; a Redis that is
 *    still master without the lock is fenced first, so it never takes writes next to the real master.
 * 8. Nobody leads → a replica detaches (writes refused) so a master that comes back empty cannot
 *    wipe it; a master-role Redis without the lock stays fenced and out of the catalog, and competes
 *    only when the election rules (lib/candidates.ts) make it the best candidate.
 * A planned switchover bends rules 5–8: the master runs Redis FAILOVER TO the target, then releases
 * the lock; only the target competes for it, and nobody else detaches or fences meanwhile.
 */
import { formatHostPort, type HostPort, sameHostPort } from "./address.ts";
import {
  type Candidacy,
  type ElectionSettings,
  electionStanding,
  type SeenCandidacy,
  type Standing,
} from "./candidates.ts";
import type { Milliseconds } from "./duration.ts";
import type { CheckStatus, LeaderView, LockView, RedisView, Registration, Role } from "./model.ts";

/** Timing rules the decision depends on, derived from the configuration. */
export interface DecisionSettings {
  /** A master fences itself when its lock was last confirmed longer ago than this. */
  readonly fenceAfterMs: Milliseconds;
  /** A replica whose link is down stays passing this long (a failover in progress), then warns. */
  readonly replicaLinkGraceMs: Milliseconds;
}

/** What the agent knows about the election for a free lock. */
export interface ElectionView {
  readonly self: Candidacy;
  readonly peers: readonly SeenCandidacy[];
  /** Local time the lock was first seen free; undefined while someone holds it. */
  readonly freeSince: number | undefined;
  /** The lock key's ModifyIndex when it was freed (which vacancy is being filled). */
  readonly vacancy: number;
  readonly settings: ElectionSettings;
}

/** Everything decide() looks at. */
export interface Observed {
  readonly now: number;
  readonly self: HostPort;
  readonly redis: RedisView;
  /** false while Consul cannot be reached; undefined before the first answer. */
  readonly consulReachable: boolean | undefined;
  /** The current lock holder: null when the lock is free, undefined when not known yet. */
  readonly leader: LeaderView | null | undefined;
  readonly lock: LockView;
  readonly registration: Registration | undefined;
  /** Writes on the local Redis are paused by us. */
  readonly fenced: boolean;
  /** Maintenance mode: nobody is promoted or demoted. */
  readonly paused: boolean;
  /** Candidacies for a data-safe election; without it any healthy node competes (the Go rule). */
  readonly election?: ElectionView;
  /** The leader before the current term, while the new master has not yet fenced it. */
  readonly previousLeader?: HostPort;
  /** One attempt to fence `previousLeader` has finished (the new master may take writes). */
  readonly previousLeaderTried?: boolean;
  /** Our Redis turned replica while we held the lock with it as master in this term. */
  readonly demotedUnderLock?: boolean;
  /** The lock key does not exist at all (Consul lost its state, or someone deleted it). */
  readonly lockKeyMissing?: boolean;
  /** A planned switchover in progress, and how far our own FAILOVER got (on the old master). */
  readonly handover?: {
    readonly target: HostPort;
    readonly failover: "pending" | "running" | "completed" | "failed";
  };
  readonly settings: DecisionSettings;
}

/** What to do about the lock. */
export type LockIntent = "compete" | "hold" | "release" | "idle";

/** What to do to the local Redis. */
export type RedisAction =
  | { readonly kind: "none" }
  | { readonly kind: "promote" }
  | { readonly kind: "replicate"; readonly master: HostPort }
  /** Refuse writes, then stop replicating: keeps the data of a replica whose leader is gone. */
  | { readonly kind: "detach" }
  /** Planned switchover: Redis FAILOVER TO the target (writes pause until it caught up). */
  | { readonly kind: "failover"; readonly target: HostPort }
  | { readonly kind: "fence" }
  | { readonly kind: "unfence" };

/** What the Consul catalog should say about this node. */
export type ServiceIntent =
  | { readonly kind: "unchanged" }
  | { readonly kind: "absent" }
  | {
    readonly kind: "registered";
    readonly role: Role;
    readonly status: CheckStatus;
    readonly output: string;
  };

/** Names of decisions, logged when they change. */
export type DecisionName =
  | "waiting_for_redis"
  | "redis_unhealthy"
  | "fencing_unconfirmed_lock"
  | "lock_contested"
  | "demoted_under_lock"
  | "promoting"
  | "master"
  | "consul_unreachable"
  | "paused"
  | "waiting_for_consul"
  | "demoting"
  | "following_leader"
  | "replica"
  | "stale_own_lock"
  | "redis_restarted"
  | "switching_over"
  | "handing_over"
  | "taking_over"
  | "switchover_in_progress"
  | "detaching"
  | "no_leader_fenced_master"
  | "stepping_aside"
  | "no_eligible_candidate";

export interface Decision {
  readonly name: DecisionName;
  /** One human sentence: why. */
  readonly reason: string;
  readonly lock: LockIntent;
  readonly redis: RedisAction;
  readonly service: ServiceIntent;
  /** When to decide again even if nothing changes (a deadline such as the fence bound). */
  readonly wakeAt?: number;
  /** A former master to point at us: it may still take writes from clients that missed the change. */
  readonly fencePeer?: HostPort;
}

const NONE: RedisAction = { kind: "none" };
const UNCHANGED: ServiceIntent = { kind: "unchanged" };

/**
 * Decides what the agent should do now.
 *
 * @example
 * ```ts
 * const decision = decide(observed);
 * if (decision.redis.kind === "promote") await commander.promote();
 * ```
 */
export function decide(observed: Observed): Decision {
  const { redis, lock } = observed;
  const held = lock.phase === "held";

  if (redis.kind === "unknown") {
    return {
      name: "waiting_for_redis",
      reason: "Redis has not answered yet",
      lock: held ? "release" : "idle",
      redis: NONE,
      service: UNCHANGED,
    };
  }
  if (redis.kind === "down" || redis.loading) {
    const reason = redis.kind === "down"
      ? `Redis is down: ${redis.reason}`
      : "Redis is loading its dataset";
    return {
      name: "redis_unhealthy",
      reason,
      lock: lock.phase === "idle" ? "idle" : "release",
      redis: NONE,
      service: observed.registration
        ? {
          kind: "registered",
          role: observed.registration.role,
          status: "critical",
          output: reason,
        }
        : UNCHANGED,
    };
  }

  if (held) return decideAsLockHolder(observed, redis, lock);

  if (observed.paused) {
    return {
      name: "paused",
      reason: "maintenance mode: no promotion or demotion",
      lock: "idle",
      redis: NONE,
      // Replicas keep a live slave check; a master-role Redis without the lock must not stay a
      // passing master, pause or not.
      service: redis.role === "replica"
        ? registeredAs("slave", redis, observed, "paused")
        : observed.registration
        ? {
          kind: "registered",
          role: "master",
          status: "critical",
          output: "paused: not the lock holder",
        }
        : UNCHANGED,
    };
  }

  const isMaster = redis.role === "master";
  // A master-role Redis without the lock refuses writes while anything is unsettled.
  const fenceIfMaster: RedisAction = isMaster && !observed.fenced ? { kind: "fence" } : NONE;
  const handover = observed.handover;
  if (handover && observed.consulReachable !== false) {
    // A planned switchover: only its target competes, and nobody detaches or fences meanwhile.
    const isTarget = sameHostPort(handover.target, observed.self);
    return {
      name: isTarget ? "taking_over" : "switchover_in_progress",
      reason: isTarget
        ? "planned switchover to this node: taking the lock"
        : `planned switchover to ${formatHostPort(handover.target)} in progress`,
      lock: isTarget ? "compete" : "idle",
      redis: NONE,
      service: UNCHANGED,
    };
  }
  if (observed.consulReachable === false) {
    return {
      name: "consul_unreachable",
      reason: "Consul cannot be reached; Redis is left as it is",
      // No election without Consul's view of who leads and who else stands: whoever takes the lock
      // the moment Consul answers again must have gone through one.
      lock: "idle",
      redis: fenceIfMaster,
      // A master that lost its lock must not stay a passing master in the catalog: when Consul
      // answers again, another node may already lead (two passing masters, seen after a quorum loss).
      service: isMaster && observed.registration
        ? {
          kind: "registered",
          role: "master",
          status: "critical",
          output: "Consul unreachable: not the lock holder",
        }
        : UNCHANGED,
    };
  }

  const leader = observed.leader;
  if (leader === undefined) {
    return {
      name: "waiting_for_consul",
      reason: "the lock holder is not known yet",
      lock: "idle",
      redis: fenceIfMaster,
      service: UNCHANGED,
    };
  }

  if (leader !== null && sameHostPort(leader.address, observed.self)) {
    // Our own address holds the lock through a session that is not ours: a previous run of this agent.
    // Consul frees it when that session's TTL lapses; replicating from ourselves would be absurd.
    return {
      name: "stale_own_lock",
      reason: `the lock is held by an earlier session of this node (${leader.session})`,
      lock: "compete",
      redis: fenceIfMaster,
      service: isMaster ? { kind: "absent" } : registeredAs("slave", redis, observed),
    };
  }

  if (leader !== null) {
    const following = !isMaster && redis.master !== undefined &&
      sameHostPort(redis.master, leader.address);
    if (following) {
      return {
        name: "replica",
        reason: `replicating from the leader ${formatHostPort(leader.address)}`,
        lock: "idle",
        // A write pause also holds a replica's incoming replication stream (Redis 7.0): a fence we
        // set while this node was master must not outlive its demotion by the new master.
        redis: observed.fenced ? { kind: "unfence" } : NONE,
        service: registeredAs("slave", redis, observed),
      };
    }
    return {
      name: isMaster ? "demoting" : "following_leader",
      reason: isMaster
        ? `Redis is master but ${formatHostPort(leader.address)} holds the lock`
        : `pointing Redis at the new leader ${formatHostPort(leader.address)}`,
      lock: "idle",
      redis: { kind: "replicate", master: leader.address },
      // Not yet replicating from the leader: not a usable replica, and never a master.
      service: {
        kind: "registered",
        role: "slave",
        status: "warning",
        output: `role=slave following=${formatHostPort(leader.address)} epoch=${leader.lockIndex}`,
      },
    };
  }

  // Nobody holds the lock.
  if (!isMaster) {
    // The leader is gone: stop replicating before the old master's address can come back empty and
    // full-sync its emptiness into us (the empty-restart trap). Writes stay refused meanwhile.
    return {
      name: "detaching",
      reason: "nobody holds the lock; keeping this replica's data by detaching it, writes refused",
      lock: "idle",
      redis: { kind: "detach" },
      service: { kind: "absent" },
    };
  }
  const standing = standingFor(observed);
  const fence: RedisAction = observed.fenced ? NONE : { kind: "fence" };
  if (standing.kind === "compete") {
    return {
      name: "no_leader_fenced_master",
      reason: `nobody holds the lock; competing with writes refused: ${standing.reason}`,
      lock: "compete",
      redis: fence,
      service: { kind: "absent" },
    };
  }
  return {
    name: standing.kind === "wait" ? "stepping_aside" : "no_eligible_candidate",
    reason: standing.kind === "wait"
      ? standing.reason
      : `this node may not be promoted: ${standing.reason}`,
    lock: "idle",
    redis: fence,
    service: { kind: "absent" },
    ...(standing.kind === "wait" ? { wakeAt: standing.until } : {}),
  };
}

function standingFor(observed: Observed): Standing {
  const election = observed.election;
  if (!election) return { kind: "compete", reason: "any healthy node may lead" };
  return electionStanding({
    self: election.self,
    peers: election.peers,
    now: observed.now,
    freeSince: election.freeSince ?? observed.now,
    vacancy: election.vacancy,
    settings: election.settings,
  });
}

function decideAsLockHolder(
  observed: Observed,
  redis: Extract<RedisView, { kind: "up" }>,
  lock: Extract<LockView, { phase: "held" }>,
): Decision {
  if (lock.runId && redis.runId && redis.runId !== lock.runId) {
    // Redis restarted under our lock. Whatever it holds now (nothing, an older snapshot, or the first
    // writes of a client that reconnected before this poll) may be behind the replicas: it must not
    // feed that to them as the master. Give the lock up; the election compares positions, and this
    // node wins again only if it is the best.
    return {
      name: "redis_restarted",
      reason: `Redis restarted (run_id ${redis.runId.slice(0, 8)}, ${
        redis.datasetEmpty ? "empty" : "with data"
      }) while this node led; giving up the lock so the election compares positions`,
      lock: "release",
      redis: redis.role === "master" && !observed.fenced ? { kind: "fence" } : NONE,
      service: { kind: "absent" },
    };
  }
  const fenceAt = lock.confirmedAt + observed.settings.fenceAfterMs;
  // The leader watch contradicts our lock: the key is gone, or another session holds it. Our own
  // lock monitor will confirm the loss in a moment; until then, refuse writes and stop claiming to
  // be a passing master (a Consul that restarted empty must not see two).
  const leader = observed.leader;
  const contested = observed.lockKeyMissing === true ||
    (leader !== null && leader !== undefined && lock.session !== undefined &&
      leader.session !== lock.session);
  if (contested) {
    return {
      name: "lock_contested",
      reason: observed.lockKeyMissing
        ? "the lock key is gone from Consul; refusing writes until the lock is settled"
        : `another session (${leader!.session}) holds the lock in Consul's view; refusing writes`,
      ...holdingWrites(redis, lock, observed, "lock contested"),
    };
  }
  if (observed.now >= fenceAt) {
    return {
      name: "fencing_unconfirmed_lock",
      reason: `the lock was last confirmed ${
        observed.now - lock.confirmedAt
      }ms ago; refusing writes until Consul confirms it again`,
      ...holdingWrites(redis, lock, observed, "lock unconfirmed"),
    };
  }
  const peer = observed.previousLeader && !sameHostPort(observed.previousLeader, observed.self)
    ? observed.previousLeader
    : undefined;
  const peerPending = peer !== undefined && !observed.previousLeaderTried;
  const handover = observed.handover;
  if (handover && !sameHostPort(handover.target, observed.self) && handover.failover !== "failed") {
    const target = formatHostPort(handover.target);
    if (redis.role === "master" && handover.failover !== "completed") {
      return {
        name: "switching_over",
        reason: `planned switchover: handing the master role to ${target} with Redis FAILOVER`,
        lock: "hold",
        redis: handover.failover === "pending"
          ? { kind: "failover", target: handover.target }
          : NONE,
        service: UNCHANGED,
        wakeAt: fenceAt,
      };
    }
    if (redis.role === "replica") {
      return {
        name: "handing_over",
        reason: `Redis now replicates from ${target}; giving the lock to it`,
        lock: "release",
        redis: NONE,
        service: {
          kind: "registered",
          role: "slave",
          status: "warning",
          output: `role=slave following=${target} handing over`,
        },
      };
    }
  }
  if (observed.demotedUnderLock) {
    // Someone pointed our Redis elsewhere while we believe we lead: another node leads, and Consul
    // has not told us yet (e.g. it restarted without its state). Give up rather than fight back.
    return {
      name: "demoted_under_lock",
      reason: "Redis was made a replica while this node held the lock; giving the lock up",
      lock: "release",
      redis: NONE,
      service: { kind: "absent" },
    };
  }
  if (redis.role !== "master") {
    return {
      name: "promoting",
      reason: `this node holds the lock (epoch ${lock.lockIndex}); promoting Redis`,
      lock: "hold",
      // With a former master still to point away, promote with writes refused: they open only after
      // that attempt (the "master" rule), so the two never take writes together.
      redis: peerPending ? { kind: "detach" } : { kind: "promote" },
      service: UNCHANGED,
      wakeAt: fenceAt,
    };
  }
  return {
    name: "master",
    reason: `this node holds the lock (epoch ${lock.lockIndex}) and Redis is master`,
    lock: "hold",
    // Our own fence comes off only after one attempt to point the former master at us: otherwise
    // both could take writes for the moment in between.
    redis: observed.fenced && !peerPending ? { kind: "unfence" } : NONE,
    ...(peer ? { fencePeer: peer } : {}),
    service: {
      kind: "registered",
      role: "master",
      status: "passing",
      // No offset: an output that changes on every refresh is synced to the Consul servers (a Raft
      // apply) every check_update_interval; one that only changes with the state costs nothing.
      output: `role=master epoch=${lock.lockIndex} replicas=${redis.connectedReplicas}`,
    },
    wakeAt: fenceAt,
  };
}

/**
 * A lock holder that must not take writes until its lock is settled: keep the lock, fence a master
 * Redis, and never let a heartbeat re-assert "passing master" for a node that refuses writes.
 */
function holdingWrites(
  redis: Extract<RedisView, { kind: "up" }>,
  lock: Extract<LockView, { phase: "held" }>,
  observed: Observed,
  why: string,
): Pick<Decision, "lock" | "redis" | "service"> {
  return {
    lock: "hold",
    redis: redis.role === "master" && !observed.fenced ? { kind: "fence" } : NONE,
    service: {
      kind: "registered",
      role: "master",
      status: "critical",
      output: `role=master epoch=${lock.lockIndex} ${why}, writes refused`,
    },
  };
}

/** The registration of a node in `role`, with a status that follows its replication link. */
function registeredAs(
  role: Role,
  redis: Extract<RedisView, { kind: "up" }>,
  observed: Observed,
  note?: string,
): ServiceIntent {
  const suffix = note ? ` ${note}` : "";
  if (role === "master") {
    return {
      kind: "registered",
      role,
      status: "passing",
      output: `role=master${suffix}`,
    };
  }
  const master = redis.master ? formatHostPort(redis.master) : "none";
  const base = `role=slave master=${master}`;
  if (redis.syncInProgress) {
    return { kind: "registered", role, status: "warning", output: `${base} link=syncing${suffix}` };
  }
  if (redis.linkUp) {
    return { kind: "registered", role, status: "passing", output: `${base} link=up${suffix}` };
  }
  const downMs = redis.linkDownMs;
  // A link that is down briefly is a failover in progress: keep readers on the replica meanwhile.
  const withinGrace = typeof downMs === "number" && downMs <= observed.settings.replicaLinkGraceMs;
  return {
    kind: "registered",
    role,
    status: withinGrace ? "passing" : "warning",
    output: `${base} link=down${downMs === "never" ? " (never up)" : ""}${suffix}`,
  };
}
