/**
 * Decisions while this node holds the lock, in order of precedence: a Redis that restarted under the
 * lock gives it up; a lock Consul contradicts or has not confirmed within the fence bound refuses
 * writes; a planned switchover hands the master role over; otherwise this node is master.
 */
import { formatHostPort, sameHostPort } from "../address.ts";
import { awayFromReplicas, fenceIfMaster, NO_REDIS_ACTION, SERVICE_UNCHANGED } from "./intents.ts";
import type { Decision, HeldLockView, RunningRedis, Situation } from "./model.ts";
import { endedTermFenceEnds, guardDeadline, sessionRenewedAt } from "./takeover.ts";

/**
 * Decides what a lock holder does; each rule answers or leaves it to the next.
 *
 * @example
 * ```ts
 * decideAsHolder(observed, redis, lock).name; // "master" once Redis is master and the lock confirmed
 * ```
 */
export function decideAsHolder(
  observed: Situation,
  redis: RunningRedis,
  lock: HeldLockView,
): Decision {
  return restartedUnderLock(observed, redis, lock) ??
    unsettledLock(observed, redis, lock) ??
    switchingOver(observed, redis, lock) ??
    leading(observed, redis, lock);
}

/**
 * When to fence ourselves: the last confirmation plus the fence bound, or later while every peer's
 * failsafe grant covers us (lib/reconciler/failsafe.ts).
 */
function fenceDeadline(observed: Situation, lock: HeldLockView): number {
  return Math.max(consulDeadline(observed, lock), observed.failsafeUntil ?? -Infinity);
}

/** The fence deadline Consul's confirmations alone give. */
function consulDeadline(observed: Situation, lock: HeldLockView): number {
  return lock.confirmedAt + observed.settings.fenceAfterMs;
}

function restartedUnderLock(
  observed: Situation,
  redis: RunningRedis,
  lock: HeldLockView,
): Decision | undefined {
  if (!lock.runId || !redis.runId || redis.runId === lock.runId) return undefined;
  // Redis restarted under our lock. Whatever it holds now (nothing, an older snapshot, or the first
  // writes of a client that reconnected before this poll) may be behind the replicas: it must not
  // feed that to them as the master. Give the lock up; the election compares positions, and this
  // node wins again only if it is the best. Until the replicas learn of the release (never, while
  // Consul is out of reach: they follow the holder until its session expires), they reconnect and
  // would full-sync from it, so it is pointed away from them (`awayFromReplicas`).
  const away = awayFromReplicas(observed, redis);
  return {
    name: "redis_restarted",
    reason: `Redis restarted (run_id ${redis.runId.slice(0, 8)}, ${
      redis.datasetEmpty ? "empty" : "with data"
    }) while this node led; giving up the lock so the election compares positions${
      away?.kind === "replicate"
        ? `, and pointing it at ${formatHostPort(away.master)} so no replica syncs from it`
        : ""
    }`,
    lock: "release",
    redis: away ?? fenceIfMaster(redis, observed.fenced),
    service: { kind: "absent" },
  };
}

/** A lock that Consul contradicts, or has not confirmed for longer than the fence bound. */
function unsettledLock(
  observed: Situation,
  redis: RunningRedis,
  lock: HeldLockView,
): Decision | undefined {
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
  const guarded = guardOf(observed, lock);
  if (guarded && observed.now >= guarded.deadline) {
    return {
      name: "fencing_unconfirmed_lock",
      reason: `${guarded.missing} stopped acknowledging this master, and the lock was last ` +
        `renewed ${
          observed.now - sessionRenewedAt(lock)
        }ms ago; refusing writes until Consul confirms it again`,
      ...holdingWrites(redis, lock, observed, "lock unconfirmed while a replica is missing"),
      confirmLockAfterMs: 0,
    };
  }
  if (observed.now >= fenceDeadline(observed, lock)) {
    return {
      name: "fencing_unconfirmed_lock",
      reason: `the lock was last confirmed ${
        observed.now - lock.confirmedAt
      }ms ago; refusing writes until Consul confirms it again`,
      ...holdingWrites(redis, lock, observed, "lock unconfirmed"),
    };
  }
  return undefined;
}

/**
 * A holder whose replica stopped acknowledging (lib/reconciler/takeover.ts): that replica may be
 * ending this term, so writes need a session renewal within the guard bound. Undefined when not.
 */
function guardOf(
  observed: Situation,
  lock: HeldLockView,
): { deadline: number; missing: string; confirmEveryMs: number } | undefined {
  const takeover = observed.settings.takeover;
  const guard = observed.replicaGuard;
  if (!takeover || !guard) return undefined;
  return {
    deadline: guardDeadline(lock, takeover),
    missing: `replica ${guard.missing.join(", ")}`,
    confirmEveryMs: takeover.guardConfirmEveryMs,
  };
}

/** A planned switchover away from this node: FAILOVER TO the target, then release the lock. */
function switchingOver(
  observed: Situation,
  redis: RunningRedis,
  lock: HeldLockView,
): Decision | undefined {
  const handover = observed.handover;
  if (!handover || sameHostPort(handover.target, observed.self) || handover.failover === "failed") {
    return undefined;
  }
  const target = formatHostPort(handover.target);
  if (redis.role === "master" && handover.failover !== "completed") {
    return {
      name: "switching_over",
      reason: `planned switchover: handing the master role to ${target} with Redis FAILOVER`,
      lock: "hold",
      redis: handover.failover === "pending"
        ? { kind: "failover", target: handover.target }
        : NO_REDIS_ACTION,
      service: SERVICE_UNCHANGED,
      wakeAt: fenceDeadline(observed, lock),
    };
  }
  if (redis.role === "replica") {
    return {
      name: "handing_over",
      reason: `Redis now replicates from ${target}; giving the lock to it`,
      lock: "release",
      redis: NO_REDIS_ACTION,
      service: {
        kind: "registered",
        role: "slave",
        status: "warning",
        output: `role=slave following=${target} handing over`,
      },
    };
  }
  return undefined;
}

/** A settled lock: be master, unless someone demoted our Redis under it. */
function leading(observed: Situation, redis: RunningRedis, lock: HeldLockView): Decision {
  if (observed.demotedUnderLock) {
    // Someone pointed our Redis elsewhere while we believe we lead: another node leads, and Consul
    // has not told us yet (e.g. it restarted without its state). Give up rather than fight back.
    return {
      name: "demoted_under_lock",
      reason: "Redis was made a replica while this node held the lock; giving the lock up",
      lock: "release",
      redis: NO_REDIS_ACTION,
      service: { kind: "absent" },
    };
  }
  const peer = observed.previousLeader && !sameHostPort(observed.previousLeader, observed.self)
    ? observed.previousLeader
    : undefined;
  // Until the former master was pointed at us, or the fence bound passed since we took the lock (by
  // then its agent, if alive, fenced it), it may still take writes: ours stay refused meanwhile. A
  // former master that gave the lock back saying its Redis stopped taking writes needs no wait.
  // A term we ended ourselves in a fast takeover: its master has fenced within the guard bound of
  // Consul confirming its session gone (takeover.ts).
  const takeover = observed.settings.takeover;
  const peerFenceEnds = takeover && observed.previousLeaderEndedAt !== undefined
    ? endedTermFenceEnds(observed.previousLeaderEndedAt, takeover)
    : (observed.previousLeaderSince ?? observed.now) + observed.settings.peerFenceWaitMs;
  const peerPending = peer !== undefined && observed.previousLeaderStopped !== true &&
    observed.now < peerFenceEnds;
  const wakeAt = peerPending
    ? Math.min(peerFenceEnds, fenceDeadline(observed, lock))
    : fenceDeadline(observed, lock);
  if (redis.role !== "master") {
    return {
      name: "promoting",
      reason: `this node holds the lock (epoch ${lock.lockIndex}); promoting Redis`,
      lock: "hold",
      // With a former master still to point away, stay a replica of ourselves (no writes) and promote
      // only once it is pointed at us or its fence bound passed, so the two never take writes together.
      redis: peerPending
        ? (redis.detached ? NO_REDIS_ACTION : { kind: "detach" })
        : { kind: "promote" },
      // Pointed at us meanwhile, it stops taking writes (and syncs once we are promoted).
      ...(peerPending ? { fencePeer: peer } : {}),
      service: SERVICE_UNCHANGED,
      wakeAt,
    };
  }
  // Past Consul's bound, yet not fenced: every peer's failsafe grant covers this node (FAILSAFE_MODE).
  const failsafe = observed.now >= consulDeadline(observed, lock);
  const guarded = guardOf(observed, lock);
  // Wake for the next renewal, or for the deadline while a renewal is overdue (the loop retries it).
  const renewAt = sessionRenewedAt(lock) + (guarded?.confirmEveryMs ?? 0);
  const renewBy = !guarded
    ? Infinity
    : renewAt > observed.now
    ? Math.min(guarded.deadline, renewAt)
    : guarded.deadline;
  // After a fast takeover Consul may still list the former master as passing for a few seconds:
  // register only once it does not, so clients never find two (waiting the fence bound at most).
  const listedUntil = (observed.previousLeaderEndedAt ?? -Infinity) +
    observed.settings.peerFenceWaitMs;
  const registeredPassing = observed.registration?.role === "master" &&
    observed.registration.status === "passing";
  // Not known yet counts as listed.
  const formerListed = peer !== undefined && observed.previousLeaderEndedAt !== undefined &&
    observed.formerMasterListed !== false && !registeredPassing && observed.now < listedUntil;
  return {
    name: guarded ? "guarded_master" : failsafe ? "failsafe_master" : "master",
    reason: failsafe
      ? `Consul last confirmed the lock ${
        observed.now - lock.confirmedAt
      }ms ago, and every peer confirmed it follows this node: taking writes in failsafe mode`
      : guarded
      ? `${guarded.missing} stopped acknowledging; taking writes while Consul confirms the lock every ${guarded.confirmEveryMs}ms`
      : `this node holds the lock (epoch ${lock.lockIndex}) and Redis is master`,
    lock: "hold",
    // Our own fence comes off only once the former master was pointed at us or the fence bound
    // passed: a failed attempt proves nothing, and both could take writes meanwhile.
    redis: observed.fenced && !peerPending ? { kind: "unfence" } : NO_REDIS_ACTION,
    ...(peer ? { fencePeer: peer } : {}),
    service: formerListed
      ? {
        kind: "registered",
        role: "master",
        status: "critical",
        output: `role=master epoch=${lock.lockIndex} waiting for Consul to stop listing ${
          formatHostPort(peer!)
        }`,
      }
      : {
        kind: "registered",
        role: "master",
        status: "passing",
        // No offset: an output that changes on every refresh is synced to the Consul servers (a Raft
        // apply) every check_update_interval; one that only changes with the state costs nothing.
        output: `role=master epoch=${lock.lockIndex} replicas=${redis.connectedReplicas}${
          failsafe ? " failsafe" : ""
        }`,
      },
    wakeAt: Math.min(wakeAt, renewBy, formerListed ? listedUntil : Infinity),
    ...(guarded ? { confirmLockAfterMs: guarded.confirmEveryMs } : {}),
  };
}

/**
 * A lock holder that must not take writes until its lock is settled: keep the lock, fence a master
 * Redis, and never let a heartbeat re-assert "passing master" for a node that refuses writes.
 */
function holdingWrites(
  redis: RunningRedis,
  lock: HeldLockView,
  observed: Situation,
  why: string,
): Pick<Decision, "lock" | "redis" | "service"> {
  return {
    lock: "hold",
    redis: fenceIfMaster(redis, observed.fenced),
    service: {
      kind: "registered",
      role: "master",
      status: "critical",
      output: `role=master epoch=${lock.lockIndex} ${why}, writes refused`,
    },
  };
}
