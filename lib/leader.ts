/**
 * The lock key's value: who leads, announced by the leader itself so replicas follow the lock holder
 * rather than the health catalog (two passing masters in the catalog must never stall the cluster).
 */
import { formatHostPort, type HostPort, parseHostPort } from "./address.ts";
import type { LeaderView } from "./model.ts";

/** The JSON the leader writes into the lock key. */
export interface LeaderAnnouncement {
  /** Where replicas reach the leader's Redis (`host:port`). */
  readonly address: string;
  /** The agent's session name (CONSUL_LOCK_SESSION_NAME), for people reading the key. */
  readonly agent: string;
  /** Redis run_id of the leader when it took the lock. */
  readonly runId?: string;
  /** When the leader took the lock (ISO 8601), for people. */
  readonly since: string;
  /** The lock's LockIndex for this term (the fencing epoch), once known. */
  readonly epoch?: number;
}

/** Encodes the lock value for `address`. */
export function encodeLeaderAnnouncement(
  options: { address: HostPort; agent: string; runId?: string; now: number; epoch?: number },
): string {
  const announcement: LeaderAnnouncement = {
    address: formatHostPort(options.address),
    agent: options.agent,
    runId: options.runId,
    since: new Date(options.now).toISOString(),
    ...(options.epoch !== undefined ? { epoch: options.epoch } : {}),
  };
  return JSON.stringify(announcement);
}

/**
 * Reads the leader from the lock key. Returns undefined when the value carries no usable address
 * (e.g. a Go resec holds the lock: it writes an empty value), so the caller can fall back to the
 * health catalog.
 */
export function parseLeaderAnnouncement(
  value: string | undefined,
  holder: { session: string; lockIndex: number },
): LeaderView | undefined {
  if (!value) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    return undefined;
  }
  if (typeof parsed !== "object" || parsed === null) return undefined;
  const address = (parsed as { address?: unknown }).address;
  if (typeof address !== "string") return undefined;
  try {
    return {
      address: parseHostPort(address),
      session: holder.session,
      lockIndex: holder.lockIndex,
    };
  } catch {
    return undefined;
  }
}
