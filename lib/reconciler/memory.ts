/**
 * What the agent remembers between evaluations because safety depends on it: which Redis processes
 * hold real data, since when the lock is free, which former master to point at us, and the term in
 * which our Redis led. Plain immutable data with pure updates: no clock (the time is an input), no
 * I/O. A new agent process starts from `EMPTY_MEMORY`, as a restarted one would.
 */
import { type HostPort, sameHostPort } from "../address.ts";
import type { Milliseconds } from "../duration.ts";
import { isReplicationId, type LeaderPosition } from "./election.ts";
import type { LeaderView, LockView, RedisView } from "./model.ts";
import type { ReleaseNote } from "../cluster/lock_value.ts";
import { type TermAcks, termAcksAfter } from "./takeover.ts";

/**
 * A new master keeps trying to point the former leader at itself for this many lock TTLs: the
 * former leader's session may outlive a TTL by that much (Consul lets it run up to twice the TTL).
 */
export const PEER_FENCE_TTLS = 2;

/** A former master a new master points at itself, until when to try, and whether one attempt ended. */
export interface PeerToFence {
  readonly address: HostPort;
  /** Local time we were first seen holding the lock after it: the fence bound runs from here. */
  readonly since: number;
  /** Local time after which the attempts stop. */
  readonly until: number;
  /** One attempt has finished (the loop decides again then). */
  readonly tried: boolean;
  /**
   * The former master gave the lock back saying its Redis no longer took writes (its release note):
   * nothing to wait for, though it is still pointed at us.
   */
  readonly writesStopped?: boolean;
  /**
   * We ended the former master's session ourselves in a fast takeover, and Consul confirmed it gone
   * at this local time: its guard bound runs from here (lib/reconciler/takeover.ts).
   */
  readonly endedAt?: number;
}

/** The safety state an agent keeps between evaluations. */
export interface Memory {
  /** Redis run_ids that completed a sync (or led) while we watched: "has real data". */
  readonly syncedRunIds: ReadonlySet<string>;
  /** Redis run_ids seen as replicas whose link never came up. */
  readonly neverSyncedRunIds: ReadonlySet<string>;
  /** Local time the lock was first seen free; undefined while someone holds it or before we know. */
  readonly freeSince: number | undefined;
  /** The last other node seen holding the lock, until we lead after it. */
  readonly lastLeader: LeaderView | undefined;
  /** The free lock's release note says `lastLeader` gave it back with its Redis's writes stopped. */
  readonly lastLeaderStoppedWrites: boolean;
  /** The former master to point at us, once we lead after it. */
  readonly peerToFence: PeerToFence | undefined;
  /** The lock term (epoch) in which our Redis was seen as master while we held the lock. */
  readonly masterEpoch: number | undefined;
  /**
   * The run_id of our Redis when it last led (master under our lock), until another node is seen
   * leading: replicas may still follow this node, so a Redis that restarted since must not serve
   * them a sync (`restartedSinceLed`).
   */
  readonly ledRunId: string | undefined;
  /**
   * The leader's offset last read while our Redis replicated from it (its replication ID is then
   * ours): lag is measured against it once the leader and its candidacy are gone.
   */
  readonly leaderPosition: LeaderPosition | undefined;
  /**
   * For each replication ID our Redis was seen with, the lock epoch of the newest term whose writes
   * it carries: led under our lock, or replicated with the link up from that term's leader. The
   * candidacy's `dataEpoch` (election.ts); at most HISTORY_EPOCHS_KEPT of them.
   */
  readonly historyEpochs: ReadonlyMap<string, number>;
  /** While we hold the lock: which replicas acknowledged our Redis in this term (takeover.ts). */
  readonly termAcks: TermAcks | undefined;
  /**
   * A leader session we set out to end in a fast takeover (we never follow it again), and when
   * Consul confirmed it gone; forgotten once another session is seen holding the lock.
   */
  readonly endedHolder: { readonly session: string; readonly at?: number } | undefined;
  /**
   * While the lock is free after `lastLeader`: the local time from which its guard bound runs, when
   * its term ended in a fast takeover (ours: Consul's answer; a peer's: when we saw the lock free).
   */
  readonly lastLeaderEndedAt: number | undefined;
  /** The lock session last seen holding the lock, and since when (local time). */
  readonly leaderSeen: { readonly session: string; readonly since: number } | undefined;
}

/**
 * How many replication histories `historyEpochs` keeps: a Redis shows a new one at each promotion or
 * full sync, and only the current one is ever published.
 */
const HISTORY_EPOCHS_KEPT = 8;

/** What a new agent process knows: nothing. */
export const EMPTY_MEMORY: Memory = {
  syncedRunIds: new Set(),
  neverSyncedRunIds: new Set(),
  freeSince: undefined,
  lastLeader: undefined,
  lastLeaderStoppedWrites: false,
  peerToFence: undefined,
  masterEpoch: undefined,
  ledRunId: undefined,
  leaderPosition: undefined,
  historyEpochs: new Map(),
  termAcks: undefined,
  endedHolder: undefined,
  lastLeaderEndedAt: undefined,
  leaderSeen: undefined,
};

/** One evaluation's view of the world, as far as the memory cares. */
export interface Observation {
  readonly now: number;
  /** This node's announce address. */
  readonly self: HostPort;
  readonly redis: RedisView;
  /** null: nobody holds the lock; undefined: not known yet. */
  readonly leader: LeaderView | null | undefined;
  readonly lock: LockView;
  /** The lock session TTL, which bounds how long a former master may believe it leads. */
  readonly lockTtlMs: Milliseconds;
  /** The leader's replication offset as last read from its Redis, if known now. */
  readonly leaderOffset?: number;
  /** While the lock is free: the note its last holder left as it gave it back, if any. */
  readonly releaseNote?: ReleaseNote;
  /**
   * The replicas acknowledging our Redis now (`ip:port`), read while we hold the lock; undefined when
   * the agent does not watch them.
   */
  readonly replicaAcks?: ReadonlySet<string>;
  /**
   * While the lock is free: a live peer published that it ended the last leader's session, in a
   * write Consul ordered before the lock went free (takeover.ts).
   */
  readonly lastLeaderEndedByPeer?: boolean;
}

/**
 * Remembers what later decisions need from one observation: synced run_ids, when the lock went free,
 * the last leader (and, once we lead, that former leader as the peer to fence), and our master term.
 *
 * @example
 * ```ts
 * let memory = EMPTY_MEMORY;
 * memory = remember(memory, { now, self, redis, leader: null, lock, lockTtlMs: 15_000 });
 * memory.freeSince; // now: the lock was first seen free
 * ```
 */
export function remember(memory: Memory, observation: Observation): Memory {
  return {
    ...rememberData(memory, observation.redis, observation.lock),
    freeSince: freeSinceAfter(memory.freeSince, observation.leader, observation.now),
    ...rememberLeaders(memory, observation),
    masterEpoch: masterEpochAfter(memory.masterEpoch, observation.redis, observation.lock),
    ledRunId: ledRunIdAfter(memory.ledRunId, observation),
    leaderPosition: leaderPositionAfter(memory.leaderPosition, observation),
    historyEpochs: historyEpochsAfter(memory.historyEpochs, observation),
    termAcks: termAcksAfter(
      memory.termAcks,
      observation.lock,
      observation.replicaAcks,
      observation.now,
    ),
    endedHolder: endedHolderAfter(memory.endedHolder, observation),
    lastLeaderEndedAt: lastLeaderEndedAtAfter(memory, observation),
    leaderSeen: observation.leader && observation.leader.session !== memory.leaderSeen?.session
      ? { session: observation.leader.session, since: observation.now }
      : memory.leaderSeen,
  };
}

/**
 * True when `leader`'s Redis listed ours as acknowledging in a read started while `leader`'s session
 * held the lock (`acknowledgedAt`, local time): its agent then counts us among the replicas of its
 * term, and is guarded once we stop (lib/reconciler/takeover.ts).
 */
export function acknowledgedInTerm(
  memory: Memory,
  leader: LeaderView,
  acknowledgedAt: number | undefined,
): boolean {
  const seen = memory.leaderSeen;
  return acknowledgedAt !== undefined && seen?.session === leader.session &&
    acknowledgedAt >= seen.since;
}

/**
 * We set out to end `session` (a fast takeover): from now on this node never follows it again.
 *
 * @example
 * ```ts
 * memory = holderEndStarted(memory, "s-1"); // then destroy the session, and holderEnded(memory, "s-1", now)
 * ```
 */
export function holderEndStarted(memory: Memory, session: string): Memory {
  if (memory.endedHolder?.session === session) return memory;
  return { ...memory, endedHolder: { session } };
}

/** Consul confirmed `session` gone at `at` (local time), after we asked it to end it. */
export function holderEnded(memory: Memory, session: string, at: number): Memory {
  if (memory.endedHolder?.session !== session || memory.endedHolder.at !== undefined) return memory;
  return { ...memory, endedHolder: { session, at } };
}

/**
 * When the last leader's term ended in a fast takeover: by us (Consul's answer to our end), or by a
 * peer whose word Consul ordered before the vacancy (then from when we saw the lock free). Forgotten
 * once another node leads.
 */
function lastLeaderEndedAtAfter(memory: Memory, observation: Observation): number | undefined {
  const { leader, now, self } = observation;
  const last = memory.lastLeader;
  if (!last || (leader && !sameHostPort(leader.address, self))) return undefined;
  if (memory.lastLeaderEndedAt !== undefined) return memory.lastLeaderEndedAt;
  const ended = memory.endedHolder;
  if (ended?.session === last.session && ended.at !== undefined) return ended.at;
  if (leader === null && observation.lastLeaderEndedByPeer === true) {
    return memory.freeSince ?? now;
  }
  return undefined;
}

/**
 * The ended session is forgotten once another node's session holds the lock, or once we hold it (the
 * peer to fence took it over by then).
 */
function endedHolderAfter(
  ended: Memory["endedHolder"],
  observation: Observation,
): Memory["endedHolder"] {
  const { leader, lock, self } = observation;
  if (!ended) return ended;
  if (lock.phase === "held") return undefined;
  const otherHolds = leader && leader.session !== ended.session &&
    !sameHostPort(leader.address, self);
  return otherHolds ? undefined : ended;
}

/**
 * The lock epoch of the newest term whose writes our Redis holds in its current replication
 * history, or undefined when this agent has not seen it lead or replicate in any term.
 *
 * @example
 * ```ts
 * dataEpoch(memory, redis); // 7 while our Redis replicates, link up, from the leader of epoch 7
 * ```
 */
export function dataEpoch(memory: Memory, redis: RedisView): number | undefined {
  return redis.kind === "up" ? memory.historyEpochs.get(redis.replicationId) : undefined;
}

/**
 * Remembers that a Redis process completed a sync (Redis said so just before it was detached).
 *
 * @example
 * ```ts
 * hasSynced(rememberSynced(EMPTY_MEMORY, "run-1"), "run-1"); // true
 * ```
 */
export function rememberSynced(memory: Memory, runId: string): Memory {
  if (memory.syncedRunIds.has(runId)) return memory;
  return { ...memory, syncedRunIds: withAdded(memory.syncedRunIds, runId) };
}

/** True when the Redis process `runId` completed a sync (or led) while we watched. */
export function hasSynced(memory: Memory, runId: string): boolean {
  return memory.syncedRunIds.has(runId);
}

/** True when the Redis process `runId` was seen as a replica whose link never came up. */
export function neverSynced(memory: Memory, runId: string): boolean {
  return memory.neverSyncedRunIds.has(runId);
}

/**
 * True when our Redis is a replica while we hold the lock, after we saw it as master in this same
 * term: someone else made it follow another node. Ask after `remember()` with the same views.
 */
export function demotedUnderLock(memory: Memory, redis: RedisView, lock: LockView): boolean {
  return lock.phase === "held" && redis.kind === "up" && redis.role !== "master" &&
    memory.masterEpoch === lock.lockIndex;
}

/** The former master was pointed at us: nothing left to fence. */
export function peerFenced(memory: Memory): Memory {
  return memory.peerToFence === undefined ? memory : { ...memory, peerToFence: undefined };
}

/**
 * An attempt to point `attempt` (the peer to fence when it started) at us has ended, at `now`:
 * attempts stop once past their time, and the first one that ends marks the peer tried.
 */
export function peerFenceAttemptEnded(
  memory: Memory,
  attempt: PeerToFence | undefined,
  now: number,
): Memory {
  let peer = memory.peerToFence;
  if (now > (peer?.until ?? 0)) peer = undefined;
  // Only the attempt on the peer still to fence marks it: a newer term's peer waits for its own.
  if (attempt && !attempt.tried && peer === attempt) peer = { ...attempt, tried: true };
  return peer === memory.peerToFence ? memory : { ...memory, peerToFence: peer };
}

/** Which run_ids hold real data: linked replicas and our led master did; never-linked ones did not. */
function rememberData(memory: Memory, redis: RedisView, lock: LockView): Memory {
  if (redis.kind !== "up") return memory;
  if (redis.linkUp || (lock.phase === "held" && redis.role === "master")) {
    return {
      ...memory,
      syncedRunIds: withAdded(memory.syncedRunIds, redis.runId),
      neverSyncedRunIds: withRemoved(memory.neverSyncedRunIds, redis.runId),
    };
  }
  if (redis.role === "replica" && redis.linkDownMs === "never") {
    // Redis 7 reports offset 1 for such a replica, so the offset alone cannot tell.
    return { ...memory, neverSyncedRunIds: withAdded(memory.neverSyncedRunIds, redis.runId) };
  }
  return memory;
}

/** The lock is free since the first observation that found it free. */
function freeSinceAfter(
  freeSince: number | undefined,
  leader: LeaderView | null | undefined,
  now: number,
): number | undefined {
  if (leader === null) return freeSince ?? now;
  return leader === undefined ? freeSince : undefined;
}

/** Another leader is remembered; once we lead after it, it becomes the peer to fence. */
function rememberLeaders(
  memory: Memory,
  observation: Observation,
): Pick<Memory, "lastLeader" | "lastLeaderStoppedWrites" | "peerToFence"> {
  const { leader, lock, now, releaseNote } = observation;
  if (leader && !sameHostPort(leader.address, observation.self)) {
    return { lastLeader: leader, lastLeaderStoppedWrites: false, peerToFence: undefined };
  }
  if (lock.phase === "held" && memory.lastLeader) {
    // We lead now: the former leader may still take writes from clients that missed the change,
    // unless it said otherwise as it gave the lock back.
    return {
      lastLeader: undefined,
      lastLeaderStoppedWrites: false,
      peerToFence: {
        address: memory.lastLeader.address,
        since: now,
        until: now + PEER_FENCE_TTLS * observation.lockTtlMs,
        tried: false,
        ...(memory.lastLeaderStoppedWrites ? { writesStopped: true } : {}),
        ...(memory.lastLeaderEndedAt !== undefined ? { endedAt: memory.lastLeaderEndedAt } : {}),
      },
    };
  }
  // Only a note the last leader itself left counts: its own acquisition overwrote any older one.
  const stopped = leader === null && memory.lastLeader !== undefined && releaseNote !== undefined
    ? sameHostPort(releaseNote.released, memory.lastLeader.address) && releaseNote.writesStopped
    : memory.lastLeaderStoppedWrites;
  return {
    lastLeader: memory.lastLeader,
    lastLeaderStoppedWrites: stopped,
    peerToFence: memory.peerToFence,
  };
}

/** The term in which our Redis led under our lock; forgotten once we do not hold the lock. */
function ledRunIdAfter(ledRunId: string | undefined, observation: Observation): string | undefined {
  const { redis, lock, leader } = observation;
  if (leader && !sameHostPort(leader.address, observation.self)) return undefined;
  if (lock.phase === "held" && redis.kind === "up" && redis.role === "master") {
    // The run_id the lock was taken with: one that restarted under the lock is no leader's.
    return lock.runId ?? redis.runId;
  }
  return ledRunId;
}

/**
 * True when our Redis restarted (another run_id) since it last led and no other leader has been
 * seen since: replicas may still follow this node, and must not full-sync from what it holds now.
 *
 * @example
 * ```ts
 * restartedSinceLed(memory, redis); // true after a master's Redis restarted while Consul was away
 * ```
 */
export function restartedSinceLed(memory: Memory, redis: RedisView): boolean {
  return memory.ledRunId !== undefined && redis.kind === "up" && redis.runId !== memory.ledRunId;
}

function masterEpochAfter(
  masterEpoch: number | undefined,
  redis: RedisView,
  lock: LockView,
): number | undefined {
  if (lock.phase !== "held") return undefined;
  return redis.kind === "up" && redis.role === "master" ? lock.lockIndex : masterEpoch;
}

/**
 * The leader's offset, read while our Redis replicates from it with the link up: then our
 * replication ID is the leader's. Forgotten while we lead: our own offset is the truth then.
 */
function leaderPositionAfter(
  position: LeaderPosition | undefined,
  observation: Observation,
): LeaderPosition | undefined {
  const { redis, leader, lock, leaderOffset } = observation;
  if (lock.phase === "held") return undefined;
  if (
    leaderOffset === undefined || !leader || redis.kind !== "up" || redis.role !== "replica" ||
    !redis.linkUp || redis.master === undefined || !sameHostPort(redis.master, leader.address)
  ) {
    return position;
  }
  if (position?.replicationId === redis.replicationId && position.offset === leaderOffset) {
    return position;
  }
  return { replicationId: redis.replicationId, offset: leaderOffset };
}

/**
 * Records the term whose writes our Redis carries now: ours while it is master under our lock, the
 * leader's while it replicates from the leader with the link up (its replication ID is then the
 * leader's).
 */
function historyEpochsAfter(
  epochs: ReadonlyMap<string, number>,
  observation: Observation,
): ReadonlyMap<string, number> {
  const { redis, leader, lock } = observation;
  if (redis.kind !== "up" || !isReplicationId(redis.replicationId)) return epochs;
  let epoch: number | undefined;
  if (lock.phase === "held" && redis.role === "master") epoch = lock.lockIndex;
  else if (
    lock.phase !== "held" && leader && redis.role === "replica" && redis.linkUp &&
    redis.master !== undefined && sameHostPort(redis.master, leader.address)
  ) {
    epoch = leader.lockIndex;
  }
  const known = epochs.get(redis.replicationId);
  if (epoch === undefined || (known !== undefined && known >= epoch)) return epochs;
  const updated = new Map(epochs);
  updated.delete(redis.replicationId);
  updated.set(redis.replicationId, epoch);
  while (updated.size > HISTORY_EPOCHS_KEPT) updated.delete(updated.keys().next().value!);
  return updated;
}

function withAdded(set: ReadonlySet<string>, value: string): ReadonlySet<string> {
  return set.has(value) ? set : new Set([...set, value]);
}

function withRemoved(set: ReadonlySet<string>, value: string): ReadonlySet<string> {
  if (!set.has(value)) return set;
  const copy = new Set(set);
  copy.delete(value);
  return copy;
}
