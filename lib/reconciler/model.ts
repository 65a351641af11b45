/**
 * The reconciler's data: what the agent observes (`Observed`, built from views that observers parse
 * from Redis INFO and Consul answers once; nothing downstream parses strings again) and what it
 * decides (`Decision`). `DECISIONS` names every decision once, with its meaning.
 */
import type { HostPort } from "../address.ts";
import type { Milliseconds } from "../duration.ts";
import type { Candidacy, ElectionSettings, LeaderPosition, SeenCandidacy } from "./election.ts";
import type { ReplicaGuard, TakeoverSettings } from "./takeover.ts";

/** The role a node is registered under in Consul (the seeds' names). */
export type Role = "master" | "slave";

/** Status of a Consul TTL check. */
export type CheckStatus = "passing" | "warning" | "critical";

/** What the agent knows of its local Redis. */
export type RedisView =
  | { readonly kind: "unknown" }
  | {
    readonly kind: "down";
    readonly reason: string;
    /**
     * The process may still serve clients: it timed out, or refused our credentials or a command,
     * rather than refusing the connection. A lock holder fences it before letting the lock go.
     */
    readonly mayServe?: boolean;
    /** Local time Redis was first seen down in this outage. */
    readonly since?: number;
  }
  | {
    readonly kind: "up";
    readonly role: "master" | "replica";
    readonly loading: boolean;
    /** Where a replica replicates from. */
    readonly master?: HostPort;
    /**
     * A replica pointed at itself (lib/redis/self_loop.ts): it keeps its data and replication ID,
     * takes no writes and serves no sync. How a replica waits while nobody leads.
     */
    readonly detached: boolean;
    readonly linkUp: boolean;
    /** How long a replica's link has been down, when it is down ("never" when it never came up). */
    readonly linkDownMs?: number | "never";
    readonly syncInProgress: boolean;
    /** master_repl_offset (a master) or slave_repl_offset (a replica). */
    readonly offset: number;
    readonly replicationId: string;
    /** The previous replication ID, kept after a promotion so offsets still compare. */
    readonly replicationId2: string;
    readonly connectedReplicas: number;
    readonly datasetEmpty: boolean;
    /** replica-priority; 0 means never master. */
    readonly priority: number;
    readonly runId: string;
  };

/** Who holds the lock, as announced in the lock's value. */
export interface LeaderView {
  readonly address: HostPort;
  readonly session: string;
  /** The key's LockIndex: the fencing epoch of this leader's term. */
  readonly lockIndex: number;
}

/** This agent's part in the lock. */
export type LockView =
  | { readonly phase: "idle" }
  | { readonly phase: "competing" }
  | {
    readonly phase: "held";
    readonly lockIndex: number;
    /** Our Consul session, to tell our lock from someone else's in the leader watch. */
    readonly session?: string;
    /** When a renewal that Consul accepted was sent; the session cannot expire before this + TTL. */
    readonly confirmedAt: number;
    /**
     * When the last renewal Consul accepted was sent, not lowered by the agent check's heartbeat as
     * `confirmedAt` is: the session existed then, so nobody had ended it yet (lib/reconciler/takeover.ts).
     */
    readonly sessionConfirmedAt?: number;
    /** Redis run_id when the lock was taken: another one means Redis restarted under us. */
    readonly runId?: string;
  };

/** What is registered in Consul for this node right now, as the agent last wrote it. */
export interface Registration {
  readonly role: Role;
  readonly status: CheckStatus;
}

/** Timing rules the decision depends on, derived from the configuration. */
export interface DecisionSettings {
  /** A master fences itself when its lock was last confirmed longer ago than this. */
  readonly fenceAfterMs: Milliseconds;
  /**
   * A new master keeps its own fence this long after taking the lock while the former master was not
   * pointed at it: the former master's own fence bound, by when its agent, if alive, fenced it.
   */
  readonly peerFenceWaitMs: Milliseconds;
  /** A replica whose link is down stays passing this long (a failover in progress), then warns. */
  readonly replicaLinkGraceMs: Milliseconds;
  /** The fast takeover's timings (lib/reconciler/takeover.ts); without them it is off. */
  readonly takeover?: TakeoverSettings;
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
  /** The last leader's offset this node read while replicating from it (MAX_LAG_ON_FAILOVER). */
  readonly leaderPosition?: LeaderPosition;
  /** The address (`host:port`) of the last other node seen holding the lock. */
  readonly lastHolder?: string;
  /** Its term ended in a fast takeover: no peer could reach its Redis (takeover.ts). */
  readonly lastHolderLost?: boolean;
  /** Peers whose held entry cannot be read: waited for while positions are collected. */
  readonly unreadablePeers?: readonly string[];
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
  /**
   * When this node took the lock after `previousLeader`: its own fence stays on until that peer was
   * pointed at us or the fence bound passed since (undefined: just now).
   */
  readonly previousLeaderSince?: number;
  /** `previousLeader` gave the lock back with its Redis's writes stopped: no fence bound to wait. */
  readonly previousLeaderStopped?: boolean;
  /**
   * We ended `previousLeader`'s session in a fast takeover, and Consul confirmed it gone at this
   * local time: its guard bound runs from here instead of the fence bound (takeover.ts).
   */
  readonly previousLeaderEndedAt?: number;
  /**
   * After such a takeover: whether the catalog still lists `previousLeader` as a passing master (its
   * host's agent cannot mark it otherwise until gossip notices); undefined when not known.
   */
  readonly formerMasterListed?: boolean;
  /**
   * Our Redis restarted since it last led, and no other leader was seen since: replicas may still
   * follow this node (lib/reconciler/memory.ts `restartedSinceLed`).
   */
  readonly restartedSinceLed?: boolean;
  /** Our Redis turned replica while we held the lock with it as master in this term. */
  readonly demotedUnderLock?: boolean;
  /**
   * FAILSAFE_MODE, on the lock holder: every peer confirmed it follows this node, so it may take
   * writes until this time even without Consul's confirmation (lib/reconciler/failsafe.ts).
   */
  readonly failsafeUntil?: number;
  /** FAILSAFE_MODE, on a peer: it promised the master not to compete for the lock before this time. */
  readonly promisedUntil?: number;
  /** The lock key does not exist at all (Consul lost its state, or someone deleted it). */
  readonly lockKeyMissing?: boolean;
  /**
   * The leader this node last saw, when the lock key then vanished: that term ended without Consul's
   * TTL and lock delay, so its master may not have fenced itself yet. `freeSince`: when this node
   * first saw the lock free.
   */
  readonly vanishedLeader?: { readonly address: HostPort; readonly freeSince: number };
  /**
   * On the lock holder: replicas its Redis saw acknowledge in this term that no longer do. One of them
   * may be ending this term (lib/reconciler/takeover.ts): writes need a fresh confirmation.
   */
  readonly replicaGuard?: ReplicaGuard;
  /**
   * On a follower: how long the leader's Redis has been unreachable from this host (connections
   * refused or timing out), and whether its INFO listed our Redis as an acknowledging replica.
   */
  readonly holderReach?: { readonly unreachableForMs: number; readonly acknowledged: boolean };
  /** Every other live peer published that it cannot reach the current leader either. */
  readonly peersLostHolder?: boolean;
  /** The leader session this agent set out to end in a fast takeover: it never follows it again. */
  readonly endedHolder?: string;
  /** A planned switchover in progress, and how far our own FAILOVER got (on the old master). */
  readonly handover?: {
    readonly target: HostPort;
    readonly failover: "pending" | "running" | "completed" | "failed";
  };
}

/** What the rules read: the observation, and the settings `decide()` was called with. */
export interface Situation extends Observed {
  readonly settings: DecisionSettings;
}

/** A Redis that answered and is not loading: the only kind the holder and follower rules see. */
export type RunningRedis = Extract<RedisView, { kind: "up" }>;

/** Our part in the lock while we hold it. */
export type HeldLockView = Extract<LockView, { phase: "held" }>;

/** What to do about the lock. */
export type LockIntent = "compete" | "hold" | "release" | "idle";

/** What to do to the local Redis. */
export type RedisAction =
  | { readonly kind: "none" }
  | { readonly kind: "promote" }
  | { readonly kind: "replicate"; readonly master: HostPort }
  /**
   * Stop replicating by pointing Redis at itself: keeps the data and replication ID of a replica
   * whose leader is gone (lib/redis/self_loop.ts).
   */
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

/**
 * Every decision, by the name the agent logs and exports (the `decision` metric label), with what it
 * means. Holder decisions are made while this node holds the lock (holder.ts), follower decisions
 * while it does not (follower.ts); the first two apply to both (decide.ts).
 */
export const DECISIONS = {
  // Either side of the lock (decide.ts).
  waiting_for_redis: "Redis has not answered yet: give up a held lock, do nothing else.",
  redis_unhealthy: "Redis is down or loading: give up the lock and mark the check critical.",
  fencing_unresponsive_redis:
    "Our Redis fails but may still serve clients: keep the lock and refuse writes, then give it up.",
  // Holding the lock (holder.ts), in order of precedence.
  redis_restarted:
    "Redis restarted under our lock: give the lock up so the election compares positions.",
  lock_contested: "Consul shows another session or no lock key: keep the lock, refuse writes.",
  fencing_unconfirmed_lock: "The lock was not confirmed within the fence bound: refuse writes.",
  switching_over: "Planned switchover: Redis FAILOVER TO the target while holding the lock.",
  handing_over: "Planned switchover done on the Redis side: release the lock to the target.",
  demoted_under_lock: "Someone made our Redis a replica while we led: give the lock up.",
  promoting: "We hold the lock and Redis is not master yet: promote it.",
  master: "We hold the lock and Redis is master: register as a passing master.",
  guarded_master:
    "A replica that acknowledged us no longer does and may be ending our term: take writes only while Consul confirms the lock every second.",
  failsafe_master:
    "Consul has not confirmed the lock within the fence bound, but every peer has (FAILSAFE_MODE): keep taking writes.",
  // Not holding the lock (follower.ts), in order of precedence.
  paused: "Maintenance mode: no promotion or demotion; a master-role Redis refuses writes.",
  taking_over: "Planned switchover to this node: compete for the lock.",
  switchover_in_progress:
    "Planned switchover to another node: change no role meanwhile, fence a master-role Redis.",
  consul_unreachable: "Consul cannot be reached: leave Redis as it is, fence a master.",
  waiting_for_consul: "Who holds the lock is not known yet: fence a master, wait.",
  stale_own_lock: "An earlier session of this node holds the lock: compete until it lapses.",
  replica: "Replicating from the leader: register as a slave.",
  following_leader: "A replica not yet replicating from the leader: point it at the leader.",
  holder_unreachable:
    "The leader's Redis cannot be reached from here: stop replicating from it (a replica of itself) and say so.",
  ending_holder_term:
    "Every peer lost the leader too, and it acknowledged this replica: end its session (a fast takeover).",
  demoting: "Redis is master but another node holds the lock: make it a replica of the leader.",
  detaching:
    "Nobody leads: a replica stops replicating (a replica of itself), to keep its data and history.",
  no_leader_fenced_master:
    "Nobody leads: a master-role Redis competes for the lock, writes refused.",
  no_leader_detached_replica:
    "Nobody leads: a detached replica, the best candidate, competes for the lock.",
  stepping_aside: "Nobody leads: wait for peers' positions or for a better candidate.",
  no_eligible_candidate: "Nobody leads and the election rules say this node may not lead.",
} as const;

/** Names of decisions, logged when they change. */
export type DecisionName = keyof typeof DECISIONS;

/**
 * Whether a decision has this node act as the writable master: `master`, or `failsafe_master` while
 * its peers' grants stand in for Consul (lib/reconciler/failsafe.ts).
 */
export function actsAsMaster(name: DecisionName | undefined): boolean {
  return name === "master" || name === "failsafe_master" || name === "guarded_master";
}

/** What the agent should do now, and why. */
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
  /** Renew the lock's session now if its last renewal is older than this (a guarded master). */
  readonly confirmLockAfterMs?: Milliseconds;
  /** Publish in our candidacy that this leader session's Redis cannot be reached from here. */
  readonly unreachableHolder?: string;
  /** End this leader session (a fast takeover), after publishing that we do. */
  readonly endHolderSession?: string;
}
