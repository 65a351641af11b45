/**
 * Decisions while this node does not hold the lock, in order of precedence: maintenance mode changes
 * nothing; a planned switchover lets only its target compete; without Consul, Redis is left as it is;
 * another node leading makes this one its replica; nobody leading makes a replica detach (so a master
 * that comes back empty cannot wipe it) and a master-role Redis compete, fenced, when the election
 * rules (election.ts) make it the best candidate. A master-role Redis without the lock is fenced
 * whenever anything is unsettled, so it never takes writes next to the real master.
 */
import { formatHostPort, type HostPort, sameHostPort } from "../address.ts";
import { electionStanding, type Standing } from "./election.ts";
import { awayFromReplicas, fenceIfMaster, NO_REDIS_ACTION, SERVICE_UNCHANGED } from "./intents.ts";
import type { Decision, LeaderView, RunningRedis, ServiceIntent, Situation } from "./model.ts";

/**
 * Decides what a node that does not hold the lock does.
 *
 * @example
 * ```ts
 * decideAsFollower(observed, redis).name; // "replica" while Redis replicates from the leader
 * ```
 */
export function decideAsFollower(observed: Situation, redis: RunningRedis): Decision {
  if (observed.paused) return paused(observed, redis);
  const handover = observed.handover;
  if (handover && observed.consulReachable !== false) {
    return duringSwitchover(observed, redis, handover);
  }
  if (observed.consulReachable === false) return consulUnreachable(observed, redis);
  const leader = observed.leader;
  if (leader === undefined) {
    return {
      name: "waiting_for_consul",
      reason: "the lock holder is not known yet",
      lock: "idle",
      // Replicas may follow this address (a host rebooted with an empty Redis): see awayFromReplicas.
      redis: awayFromReplicas(observed, redis) ?? fenceIfMaster(redis, observed.fenced),
      service: SERVICE_UNCHANGED,
    };
  }
  if (leader === null) return withoutLeader(observed, redis);
  if (sameHostPort(leader.address, observed.self)) {
    // Our own address holds the lock through a session that is not ours: a previous run of this agent.
    // Consul frees it when that session's TTL lapses; replicating from ourselves would be absurd.
    return {
      name: "stale_own_lock",
      reason: `the lock is held by an earlier session of this node (${leader.session})`,
      lock: "compete",
      // Replicas follow this address: a Redis restarted since it led must not sync them.
      redis: awayFromReplicas(observed, redis) ?? fenceIfMaster(redis, observed.fenced),
      // A detached replica follows nobody: not a slave to read from (and, the moment our lock is
      // confirmed, the master).
      service: redis.role === "master" || redis.detached
        ? { kind: "absent" }
        : replicaRegistration(redis, observed),
    };
  }
  return followingLeader(observed, redis, leader);
}

function paused(observed: Situation, redis: RunningRedis): Decision {
  return {
    name: "paused",
    reason: "maintenance mode: no promotion or demotion",
    lock: "idle",
    // No role change, but a master-role Redis without the lock refuses writes, pause or not.
    redis: fenceIfMaster(redis, observed.fenced),
    // Replicas keep a live slave check; a master-role Redis without the lock must not stay a
    // passing master, pause or not.
    service: redis.role === "replica"
      ? replicaRegistration(redis, observed, "paused")
      : observed.registration
      ? {
        kind: "registered",
        role: "master",
        status: "critical",
        output: "paused: not the lock holder",
      }
      : SERVICE_UNCHANGED,
  };
}

/**
 * A planned switchover: only its target competes, and nobody detaches meanwhile. The target's Redis,
 * made master by FAILOVER, takes writes while it takes the lock; any other master-role Redis without
 * the lock refuses them.
 */
function duringSwitchover(
  observed: Situation,
  redis: RunningRedis,
  handover: { readonly target: HostPort },
): Decision {
  const isTarget = sameHostPort(handover.target, observed.self);
  return {
    name: isTarget ? "taking_over" : "switchover_in_progress",
    reason: isTarget
      ? "planned switchover to this node: taking the lock"
      : `planned switchover to ${formatHostPort(handover.target)} in progress`,
    lock: isTarget ? "compete" : "idle",
    redis: isTarget ? NO_REDIS_ACTION : fenceIfMaster(redis, observed.fenced),
    service: SERVICE_UNCHANGED,
  };
}

function consulUnreachable(observed: Situation, redis: RunningRedis): Decision {
  return {
    name: "consul_unreachable",
    reason: "Consul cannot be reached; Redis is left as it is",
    // No election without Consul's view of who leads and who else stands: whoever takes the lock
    // the moment Consul answers again must have gone through one.
    lock: "idle",
    redis: awayFromReplicas(observed, redis) ?? fenceIfMaster(redis, observed.fenced),
    // A master that lost its lock must not stay a passing master in the catalog: when Consul
    // answers again, another node may already lead (two passing masters, seen after a quorum loss).
    service: redis.role === "master" && observed.registration
      ? {
        kind: "registered",
        role: "master",
        status: "critical",
        output: "Consul unreachable: not the lock holder",
      }
      : SERVICE_UNCHANGED,
  };
}

/** Another node leads: replicate from its announced address, unless its Redis is out of reach. */
function followingLeader(observed: Situation, redis: RunningRedis, leader: LeaderView): Decision {
  const lost = holderLost(observed, redis, leader);
  if (lost) return lost;
  const isMaster = redis.role === "master";
  const following = !isMaster && redis.master !== undefined &&
    sameHostPort(redis.master, leader.address);
  if (following) {
    return {
      name: "replica",
      reason: `replicating from the leader ${formatHostPort(leader.address)}`,
      lock: "idle",
      // A write pause also holds a replica's incoming replication stream (Redis 7.0): a fence we
      // set while this node was master must not outlive its demotion by the new master.
      redis: observed.fenced ? { kind: "unfence" } : NO_REDIS_ACTION,
      service: replicaRegistration(redis, observed),
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

/**
 * The leader's Redis has been out of reach from here for the takeover's bound, or we set out to end
 * its session (lib/reconciler/takeover.ts): stop following it, and say so in our candidacy once our
 * Redis no longer does. A replica its Redis listed as acknowledging ends its session when every other
 * live peer lost it too; it never follows that leader again.
 */
function holderLost(
  observed: Situation,
  redis: RunningRedis,
  leader: LeaderView,
): Decision | undefined {
  const takeover = observed.settings.takeover;
  if (!takeover) return undefined;
  const ending = observed.endedHolder === leader.session;
  const reach = observed.holderReach;
  const unreachable = reach !== undefined && reach.unreachableForMs >= takeover.holderLostAfterMs;
  if (!ending && !unreachable) return undefined;
  const name = formatHostPort(leader.address);
  const isMaster = redis.role === "master";
  // A master-role Redis never followed it; a replica stops once it is a replica of itself.
  const settled = isMaster || redis.detached;
  const promised = observed.promisedUntil !== undefined && observed.now < observed.promisedUntil;
  const ends = ending ||
    (settled && !isMaster && reach?.acknowledged === true && observed.peersLostHolder === true &&
      !promised);
  return {
    name: ends ? "ending_holder_term" : "holder_unreachable",
    reason: ends
      ? `the leader ${name}'s Redis is out of reach from here and from every peer, and it listed ` +
        "this replica as acknowledging; ending its session"
      : `the leader ${name}'s Redis has been out of reach from here for ${
        reach?.unreachableForMs ?? 0
      }ms; this node stops following it`,
    lock: "idle",
    redis: isMaster
      ? fenceIfMaster(redis, observed.fenced)
      : redis.detached
      ? NO_REDIS_ACTION
      : { kind: "detach" },
    service: {
      kind: "registered",
      role: "slave",
      status: "warning",
      output: `role=slave leader=${name} unreachable`,
    },
    ...(settled ? { unreachableHolder: leader.session } : {}),
    ...(ends ? { endHolderSession: leader.session } : {}),
  };
}

/**
 * Nobody holds the lock: a replica detaches (points its Redis at itself); a detached replica or a
 * master-role Redis competes only when it should, taking no writes meanwhile.
 */
function withoutLeader(observed: Situation, redis: RunningRedis): Decision {
  if (redis.role !== "master" && !redis.detached) {
    // The leader is gone: stop replicating before the old master's address can come back empty and
    // full-sync its emptiness into us (the empty-restart trap). A replica of itself keeps its data
    // and its replication ID, so the new master can resync it partially.
    return {
      name: "detaching",
      reason: "nobody holds the lock; keeping this replica's data by pointing it at itself",
      lock: "idle",
      redis: { kind: "detach" },
      service: { kind: "absent" },
    };
  }
  const standing = promiseWait(observed) ?? vanishedLeaderWait(observed) ?? standingFor(observed);
  const fence = fenceIfMaster(redis, observed.fenced);
  if (standing.kind === "compete") {
    const master = redis.role === "master";
    return {
      name: master ? "no_leader_fenced_master" : "no_leader_detached_replica",
      reason: `nobody holds the lock; competing ${
        master ? "with writes refused" : "as a detached replica"
      }: ${standing.reason}`,
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

/** A failsafe promise to the master (FAILSAFE_MODE): no competing before it runs out. */
function promiseWait(observed: Situation): Standing | undefined {
  const until = observed.promisedUntil;
  if (until === undefined || observed.now >= until) return undefined;
  return {
    kind: "wait",
    reason: "this node promised the master, in failsafe mode, not to compete yet",
    until,
  };
}

/**
 * A lock key that vanished under a leader (Consul lost its state, or someone deleted the key) frees
 * the lock at once, without the TTL and lock delay that give a cut-off master time to fence itself:
 * wait out its fence bound, counted from when this node first saw the lock free, before competing.
 */
function vanishedLeaderWait(observed: Situation): Standing | undefined {
  const vanished = observed.vanishedLeader;
  if (!observed.lockKeyMissing || !vanished || sameHostPort(vanished.address, observed.self)) {
    return undefined;
  }
  const until = vanished.freeSince + observed.settings.peerFenceWaitMs;
  if (observed.now >= until) return undefined;
  return {
    kind: "wait",
    reason: `the lock key vanished while ${
      formatHostPort(vanished.address)
    } led; waiting until it has fenced itself`,
    until,
  };
}

/** This node's standing in the election for the free lock (any healthy node without elections). */
function standingFor(observed: Situation): Standing {
  const election = observed.election;
  if (!election) return { kind: "compete", reason: "any healthy node may lead" };
  return electionStanding({
    self: election.self,
    peers: election.peers,
    now: observed.now,
    freeSince: election.freeSince ?? observed.now,
    vacancy: election.vacancy,
    settings: election.settings,
    ...(election.leaderPosition ? { leaderPosition: election.leaderPosition } : {}),
    ...(election.lastHolder ? { lastHolder: election.lastHolder } : {}),
    ...(election.lastHolderLost ? { lastHolderLost: true } : {}),
    ...(election.unreadablePeers?.length ? { unreadable: election.unreadablePeers } : {}),
  });
}

/** The slave registration of a replica, with a status that follows its replication link. */
function replicaRegistration(
  redis: RunningRedis,
  observed: Situation,
  note?: string,
): ServiceIntent {
  const role = "slave";
  const suffix = note ? ` ${note}` : "";
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
