/**
 * The agent's view of the world, as plain data: what the reconciler decides from. Observers turn Redis
 * INFO and Consul answers into these types once; nothing downstream parses strings again.
 */
import type { HostPort } from "./address.ts";

/** The role a node is registered under in Consul (the seeds' names). */
export type Role = "master" | "slave";

/** Status of a Consul TTL check. */
export type CheckStatus = "passing" | "warning" | "critical";

/** What the agent knows of its local Redis. */
export type RedisView =
  | { readonly kind: "unknown" }
  | { readonly kind: "down"; readonly reason: string }
  | {
    readonly kind: "up";
    readonly role: "master" | "replica";
    readonly loading: boolean;
    /** Where a replica replicates from. */
    readonly master?: HostPort;
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
    /** Redis run_id when the lock was taken: another one means Redis restarted under us. */
    readonly runId?: string;
  };

/** What is registered in Consul for this node right now, as the agent last wrote it. */
export interface Registration {
  readonly role: Role;
  readonly status: CheckStatus;
}
