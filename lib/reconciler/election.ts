/**
 * Data-safe elections: which node may take the lock when it is free. Pure functions over the
 * candidacies every agent publishes in Consul KV, so each rule is a table-driven unit test.
 *
 * The rules, in order (Sentinel's ranking plus Patroni's lag gate and rdsync's empty-restart guard):
 * 1. A node with priority 0 (`replica-priority 0` or REPLICA_PRIORITY=0) is never promoted.
 * 2. An empty dataset, or a Redis that never completed a sync, is not promoted while a healthy peer
 *    that has data and did sync is there to take over.
 * 3. A node lagging more than MAX_LAG_ON_FAILOVER bytes behind the best offset known in its
 *    replication history (a failed master's last published offset included) is not promoted. Offsets
 *    of a peer whose data is from an older term (`dataEpoch`) do not count: past the point where the
 *    newer term began, that peer holds writes of a master that no longer led, not ones we lack.
 * 4. Among the rest: data from the newer term first (Raft's "more up-to-date log" rule, when both
 *    epochs are known), then larger offset (also across histories: a Redis that started afresh counts
 *    from 0), then the better priority (lower number, as in Redis), then the smaller address (a
 *    deterministic tie-break).
 * FORCE_FAILOVER lifts rules 2 and 3 for its node, never rule 1.
 */
import type { Milliseconds } from "../duration.ts";

/** What one agent publishes about its Redis. */
export interface Candidacy {
  /** Announce address, `host:port`: also the key under the candidates prefix. */
  readonly address: string;
  readonly runId: string;
  readonly replicationId: string;
  readonly replicationId2: string;
  readonly offset: number;
  readonly role: "master" | "replica";
  readonly healthy: boolean;
  readonly datasetEmpty: boolean;
  /** Completed a sync (or led) with this Redis process since the agent watched it. */
  readonly synced: boolean;
  /** Effective priority: 0 never, lower is preferred (Redis's replica-priority semantics). */
  readonly priority: number;
  readonly forced: boolean;
  /**
   * The lock key's ModifyIndex of the vacancy this candidacy answers (0: published while the lock
   * was held). Consul's index, not a clock, so every agent agrees on which vacancy is meant.
   */
  readonly vacancy: number;
  /** ISO time of publication, for people reading the key. */
  readonly updatedAt: string;
  /** FAILSAFE_MODE: where this agent answers failsafe calls (`host:port` of its HTTP API). */
  readonly failsafeApi?: string;
  /**
   * The lock epoch of the newest term whose writes this Redis holds, as its agent saw it: the term
   * it led in, or the term whose leader its replication link was last up with. Absent when unknown
   * (an agent of an earlier version, or one that has not seen this history since it started).
   */
  readonly dataEpoch?: number;
  /**
   * The lock session of a leader whose Redis this node cannot reach, published once its own Redis
   * no longer follows it (lib/reconciler/takeover.ts).
   */
  readonly unreachableHolder?: string;
  /** The lock session of a leader this node ends in a fast takeover; it never follows it again. */
  readonly endsHolder?: string;
}

/** A peer's candidacy as this agent saw it. */
export interface SeenCandidacy {
  readonly candidacy: Candidacy;
  /** Local time when this agent last saw the entry change (clock skew between hosts never matters). */
  readonly seenChangedAt: number;
  /**
   * The entry is held by a session tied to its agent's check: the agent lives while it is held, and
   * writes the entry only when its position changes. Without one (an agent of an earlier version,
   * which republishes every few seconds instead, or an entry that vanished), the entry counts only
   * while it keeps changing.
   */
  readonly held?: boolean;
  /**
   * Consul released the entry (its session ended: the agent died, its host left gossip, or it was
   * cut off from Consul until its agent check lapsed); `seenChangedAt` is when the release was seen.
   * Never live, but a host back from a cut may publish again soon (see `electionStanding`).
   */
  readonly released?: boolean;
  /** Consul's ModifyIndex of the entry as seen: orders its write against the lock key's. */
  readonly modifyIndex?: number;
}

/**
 * Whether a peer's agent is alive: its entry is held by its session, or, for an entry no session
 * holds and Consul did not release, it changed within `staleAfterMs`.
 */
export function isLive(
  peer: SeenCandidacy,
  now: number,
  settings: Pick<ElectionSettings, "staleAfterMs">,
): boolean {
  if (peer.released === true) return false;
  return peer.held === true || now - peer.seenChangedAt <= settings.staleAfterMs;
}

export interface ElectionSettings {
  readonly maxLagBytes: number;
  /** A peer entry that no session holds is ignored once it has not changed for this long. */
  readonly staleAfterMs: Milliseconds;
  /** After the lock is freed, wait this long at most for peers to publish fresh positions. */
  readonly collectMs: Milliseconds;
  /** A better peer that has not taken the lock after this long no longer holds us back. */
  readonly stepAsideMaxMs: Milliseconds;
}

/**
 * The leader's offset as this node last read it while replicating from it, with that history's
 * replication ID: lag is measured against it even once the leader's candidacy is gone.
 */
export interface LeaderPosition {
  readonly replicationId: string;
  readonly offset: number;
}

/** What this node should do about a free lock. */
export type Standing =
  | { readonly kind: "compete"; readonly reason: string }
  | { readonly kind: "wait"; readonly reason: string; readonly until: number }
  | { readonly kind: "ineligible"; readonly reason: string };

/**
 * True when `id` names a replication history: Redis reports an empty or all-zero ID for none yet
 * (`master_replid2` before any promotion).
 */
export function isReplicationId(id: string): boolean {
  return id !== "" && !/^0+$/.test(id);
}

/** True when two candidacies share replication history, so their offsets compare. */
export function sameHistory(a: Candidacy, b: Candidacy): boolean {
  const ids = (c: Candidacy) => [c.replicationId, c.replicationId2].filter(isReplicationId);
  const theirs = new Set(ids(b));
  return ids(a).some((id) => theirs.has(id));
}

/**
 * True when a node holds real data: not empty, and it completed a sync (or led) — which shows in the
 * agent's memory, or in Redis itself: a completed sync adopts the master's replication ID, which a
 * replica that never synced does not share with anyone.
 */
export function hasData(candidate: Candidacy, everyone: readonly Candidacy[]): boolean {
  if (candidate.datasetEmpty) return false;
  return candidate.synced ||
    everyone.some((other) => other.address !== candidate.address && sameHistory(other, candidate));
}

/**
 * Why `candidate` may not be promoted given its peers (and the last leader's position this node read,
 * when in the candidate's history), or undefined when it may.
 */
export function disqualification(
  candidate: Candidacy,
  peers: readonly Candidacy[],
  settings: Pick<ElectionSettings, "maxLagBytes">,
  leaderPosition?: LeaderPosition,
): string | undefined {
  if (candidate.priority === 0) return "priority 0: never promoted";
  if (!candidate.healthy) return "Redis is not healthy";
  if (candidate.forced) return undefined;
  const others = peers.filter((peer) => peer.address !== candidate.address);
  const everyone = [candidate, ...others];
  if (!hasData(candidate, everyone)) {
    // Only a peer that may lead itself (priority above 0) makes an empty candidate step aside.
    const better = others.find((peer) =>
      peer.healthy && peer.priority !== 0 && hasData(peer, everyone)
    );
    if (better) {
      return `${
        candidate.datasetEmpty ? "its dataset is empty" : "it never completed a sync"
      } while ${better.address} has data`;
    }
  }
  const related = [candidate, ...others].filter((peer) =>
    sameHistory(peer, candidate) && !olderData(peer, candidate)
  );
  const leaderOffset = leaderPosition && inHistory(candidate, leaderPosition.replicationId)
    ? leaderPosition.offset
    : 0;
  const bestOffset = Math.max(leaderOffset, ...related.map((peer) => peer.offset));
  const lag = bestOffset - candidate.offset;
  if (lag > settings.maxLagBytes) {
    return `it lags ${lag} bytes behind the best offset ${bestOffset} (MAX_LAG_ON_FAILOVER ${settings.maxLagBytes})`;
  }
  return undefined;
}

/** True when `replicationId` is one of the candidate's two replication histories. */
function inHistory(candidate: Candidacy, replicationId: string): boolean {
  return isReplicationId(replicationId) &&
    (candidate.replicationId === replicationId || candidate.replicationId2 === replicationId);
}

/**
 * True when both epochs are known and `a` holds data of an older term than `b`: a replication ID
 * carries on across a promotion (as `replicationId2`), so the two may share a history whose offsets
 * no longer compare past the point where the newer term began.
 */
export function olderData(a: Candidacy, b: Candidacy): boolean {
  return a.dataEpoch !== undefined && b.dataEpoch !== undefined && a.dataEpoch < b.dataEpoch;
}

/**
 * The epoch of the data in replication history `replicationId`: the newest of what this agent saw
 * itself (`seen`) and what any peer published for the same history. One replication ID is one linear
 * history written by one master, so a replica that shares the ID of a term's master holds data of
 * that term, even if its agent never saw its link up (a short sync between two polls).
 *
 * @example
 * ```ts
 * epochOfHistory("b…", undefined, peers); // 2 when a peer published history "b…" with dataEpoch 2
 * ```
 */
export function epochOfHistory(
  replicationId: string,
  seen: number | undefined,
  peers: readonly SeenCandidacy[],
): number | undefined {
  if (!isReplicationId(replicationId)) return seen;
  return peers.reduce<number | undefined>((epoch, peer) => {
    const theirs = peer.candidacy.replicationId === replicationId
      ? peer.candidacy.dataEpoch
      : undefined;
    return theirs !== undefined && (epoch === undefined || theirs > epoch) ? theirs : epoch;
  }, seen);
}

/** True when `a` should be promoted before `b` (both qualified). */
export function ranksBefore(a: Candidacy, b: Candidacy): boolean {
  if (olderData(b, a)) return true;
  if (olderData(a, b)) return false;
  // Across histories too: a promoted replica carries its master's offset on, while a Redis that
  // started afresh (restarted empty, then written to) counts from 0, so the group's history wins.
  if (a.offset !== b.offset) return a.offset > b.offset;
  if (a.priority !== b.priority) return a.priority < b.priority;
  return a.address < b.address;
}

/**
 * Decides whether this node competes for a free lock now, waits for a better peer, or may not lead.
 *
 * @param self this node's current candidacy
 * @param peers what other agents published (those whose agent is gone are filtered here)
 * `freeSince` is the local time the lock was first seen free; `vacancy` identifies that vacancy.
 */
export function electionStanding(options: {
  self: Candidacy;
  peers: readonly SeenCandidacy[];
  now: number;
  freeSince: number;
  /** The lock key's ModifyIndex when it was freed: which vacancy is being filled. */
  vacancy: number;
  settings: ElectionSettings;
  /** The last leader's offset this node read while replicating from it. */
  leaderPosition?: LeaderPosition;
  /** The address of the last other node seen holding the lock: its entry went with the vacancy. */
  lastHolder?: string;
  /**
   * The last holder's term was ended because no peer could reach its Redis (a fast takeover,
   * takeover.ts): its entry, still held until gossip notices its host, is neither waited for nor
   * stepped aside for; its offset still counts for everyone's lag.
   */
  lastHolderLost?: boolean;
  /**
   * Peers whose entry a live session holds but that cannot be read (someone overwrote it): their
   * position is unknown, and they publish a readable one for the vacancy, so they are waited for
   * within the collection window too.
   */
  unreadable?: readonly string[];
}): Standing {
  const { self, now, freeSince, vacancy, settings, leaderPosition } = options;
  const others = options.peers.filter((peer) => peer.candidacy.address !== self.address);
  const fresh = others.filter((peer) => isLive(peer, now, settings));
  const peers = fresh.map((peer) => peer.candidacy);

  const selfProblem = disqualification(self, peers, settings, leaderPosition);
  if (selfProblem) return { kind: "ineligible", reason: selfProblem };

  // Give peers a moment to publish positions taken after the lock was freed. An unhealthy peer
  // cannot lead, so there is nothing to wait for from it. A peer whose entry Consul released may
  // be coming back with the latest writes: a host back from a Consul cut, whose agent can publish
  // again only once a heartbeat passed its agent check, or a restarted agent, which ended its
  // earlier run's session. It is waited for the same while (a dead one costs that window, no more),
  // unless it is the last holder released with the vacancy (its host or agent died).
  const collectUntil = freeSince + settings.collectMs;
  const returning = others.filter((peer) =>
    peer.released === true && peer.candidacy.priority !== 0 &&
    !(peer.candidacy.address === options.lastHolder && peer.seenChangedAt <= freeSince)
  );
  const lost = (candidacy: Candidacy) =>
    options.lastHolderLost === true && candidacy.address === options.lastHolder;
  const silent = [...fresh, ...returning].filter((peer) =>
    peer.candidacy.healthy && peer.candidacy.vacancy !== vacancy && !lost(peer.candidacy)
  );
  const waitingFor = [
    ...silent.map((peer) => peer.candidacy.address),
    ...(options.unreadable ?? []).filter((address) =>
      address !== self.address && address !== options.lastHolder
    ),
  ];
  if (waitingFor.length > 0 && now < collectUntil) {
    return {
      kind: "wait",
      reason: `waiting for ${waitingFor.join(", ")} to publish their positions`,
      until: collectUntil,
    };
  }

  // An empty or never-synced node waits, for a bounded time, while a live agent's Redis is down: a
  // reconnecting peer must not hand the cluster to a node with nothing in it.
  const everyone = [self, ...peers];
  if (!self.forced && !hasData(self, everyone)) {
    // Whether a down peer holds data is unknown (a Redis restarted and resynced between two polls
    // looks empty to its agent): any peer that could lead holds us back.
    const recovering = peers.find((peer) => !peer.healthy && peer.priority !== 0);
    const until = freeSince + settings.stepAsideMaxMs;
    if (recovering && now < until) {
      return {
        kind: "wait",
        reason: `waiting for ${recovering.address}, which may hold data, to recover`,
        until,
      };
    }
  }

  const better = peers.find((peer) =>
    !lost(peer) &&
    disqualification(peer, [self, ...peers], settings, leaderPosition) === undefined &&
    ranksBefore(peer, self)
  );
  if (better) {
    const until = freeSince + settings.stepAsideMaxMs;
    // A node without data never outwaits a healthy better peer: it may lead only once that peer is
    // gone (its entry stale), not merely slow.
    const mayOutwait = hasData(self, everyone) || self.forced;
    if (now < until || !mayOutwait) {
      return {
        kind: "wait",
        reason:
          `stepping aside for ${better.address} (offset ${better.offset}, priority ${better.priority})`,
        until: now < until ? until : now + settings.stepAsideMaxMs,
      };
    }
    return {
      kind: "compete",
      reason:
        `${better.address} ranks higher but has not taken the lock in ${settings.stepAsideMaxMs} ms`,
    };
  }
  return {
    kind: "compete",
    reason: `best candidate (offset ${self.offset}, priority ${self.priority})`,
  };
}

/**
 * The live peer the election would rank first, among those that may be promoted, or undefined when
 * there is none: where a node whose Redis restarted under its lock points it meanwhile, so the
 * replicas cannot full-sync from it (holder.ts, `redis_restarted`).
 *
 * @example
 * ```ts
 * bestPeer({ self, peers, now, settings })?.address; // "10.0.0.2:6379"
 * ```
 */
export function bestPeer(options: {
  self: Candidacy;
  peers: readonly SeenCandidacy[];
  now: number;
  settings: ElectionSettings;
  leaderPosition?: LeaderPosition;
}): Candidacy | undefined {
  const { self, now, settings, leaderPosition } = options;
  const live = options.peers
    .filter((peer) => peer.candidacy.address !== self.address && isLive(peer, now, settings))
    .map((peer) => peer.candidacy);
  const everyone = [self, ...live];
  return live
    .filter((peer) => disqualification(peer, everyone, settings, leaderPosition) === undefined)
    .reduce<Candidacy | undefined>(
      (best, peer) => best === undefined || ranksBefore(peer, best) ? peer : best,
      undefined,
    );
}

/** The outcome of picking a switchover target. */
export type SwitchoverChoice =
  | { readonly ok: true; readonly target: string }
  | { readonly ok: false; readonly reason: string };

/**
 * Picks the replica a planned switchover hands the master role to: the requested one if it qualifies,
 * else the best qualified replica. A target qualifies when its agent is alive, its Redis is a healthy
 * replica in our replication history with priority above 0, and it lags at most `maxLagBytes`.
 */
export function chooseSwitchoverTarget(options: {
  self: Candidacy;
  peers: readonly SeenCandidacy[];
  now: number;
  settings: Pick<ElectionSettings, "maxLagBytes" | "staleAfterMs">;
  requested?: string;
}): SwitchoverChoice {
  const { self, now, settings } = options;
  const fresh = options.peers
    .filter((peer) => isLive(peer, now, settings))
    .map((peer) => peer.candidacy)
    .filter((peer) => peer.address !== self.address);
  const problem = (peer: Candidacy): string | undefined => {
    if (!peer.healthy) return "its Redis is not healthy";
    if (peer.role !== "replica") return "it is not a replica";
    if (peer.priority === 0) return "its priority is 0 (never master)";
    if (!sameHistory(peer, self)) return "it does not replicate this master's history";
    const lag = self.offset - peer.offset;
    if (lag > settings.maxLagBytes) {
      return `it lags ${lag} bytes (MAX_LAG_ON_FAILOVER ${settings.maxLagBytes})`;
    }
    return undefined;
  };
  if (options.requested !== undefined) {
    if (options.requested === self.address) {
      return { ok: false, reason: `${options.requested} is already the master` };
    }
    const peer = fresh.find((candidate) => candidate.address === options.requested);
    if (!peer) {
      return { ok: false, reason: `${options.requested} is unknown: no live agent announces it` };
    }
    const why = problem(peer);
    return why
      ? { ok: false, reason: `${peer.address} is not eligible: ${why}` }
      : { ok: true, target: peer.address };
  }
  const eligible = fresh.filter((peer) => problem(peer) === undefined);
  if (eligible.length === 0) return { ok: false, reason: "no replica is eligible to take over" };
  const best = eligible.reduce((a, b) => (ranksBefore(b, a) ? b : a));
  return { ok: true, target: best.address };
}
