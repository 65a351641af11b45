/**
 * Operator controls that travel through Consul KV, next to the lock, so no agent needs a port of its
 * own: maintenance mode (`<lock key>.paused`) and planned switchover (`<lock key>.switchover`).
 */
import { formatHostPort, type HostPort, parseHostPort } from "./address.ts";
import type { Milliseconds } from "./duration.ts";

/** The key whose presence pauses every agent of the cluster. */
export function pauseKey(lockKey: string): string {
  return `${lockKey}.paused`;
}

/** The key carrying the current switchover request and its progress. */
export function switchoverKey(lockKey: string): string {
  return `${lockKey}.switchover`;
}

/** What the pause key holds, for people reading it. */
export interface PauseNote {
  readonly reason: string;
  readonly since: string;
}

/** Where a switchover request stands. */
export type SwitchoverState = "requested" | "in-progress" | "done" | "refused" | "failed";

/** The switchover key's value. */
export interface SwitchoverRecord {
  /** Chosen by the requester; progress updates keep it. */
  readonly id: string;
  readonly state: SwitchoverState;
  /** The requested (or, once in progress, the chosen) new master, `host:port`. */
  readonly to?: string;
  /** The master handing over, `host:port`, once in progress. */
  readonly from?: string;
  /** How long the handover may take before it is given up. */
  readonly timeoutMs: Milliseconds;
  readonly requestedAt: string;
  /** Why it was refused or failed, or how long it took. */
  readonly detail?: string;
}

/** Thrown when a switchover record in Consul is not one we wrote. */
export class SwitchoverRecordError extends Error {
  override name = "SwitchoverRecordError";
}

const STATES: readonly SwitchoverState[] = [
  "requested",
  "in-progress",
  "done",
  "refused",
  "failed",
];

/** Parses the switchover key's value. */
export function parseSwitchoverRecord(text: string): SwitchoverRecord {
  let parsed: Partial<SwitchoverRecord>;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new SwitchoverRecordError(
      `Cannot parse the switchover record: ${(error as Error).message}`,
    );
  }
  if (typeof parsed.id !== "string" || !STATES.includes(parsed.state as SwitchoverState)) {
    throw new SwitchoverRecordError(`Cannot parse the switchover record: no id or unknown state`);
  }
  if (parsed.to !== undefined) parseHostPort(parsed.to);
  return {
    id: parsed.id,
    state: parsed.state as SwitchoverState,
    ...(parsed.to !== undefined ? { to: parsed.to } : {}),
    ...(parsed.from !== undefined ? { from: String(parsed.from) } : {}),
    timeoutMs: typeof parsed.timeoutMs === "number" ? parsed.timeoutMs : 30_000,
    requestedAt: String(parsed.requestedAt ?? ""),
    ...(parsed.detail !== undefined ? { detail: String(parsed.detail) } : {}),
  };
}

/** True once a request has ended one way or another. */
export function isFinished(record: SwitchoverRecord): boolean {
  return record.state === "done" || record.state === "refused" || record.state === "failed";
}

/** A handover all agents should honour: the master is passing the lock to `target`. */
export interface Handover {
  readonly id: string;
  readonly target: HostPort;
  readonly from: HostPort;
}

/** The handover an in-progress record describes, if any. */
export function handoverOf(record: SwitchoverRecord | undefined): Handover | undefined {
  if (record?.state !== "in-progress" || !record.to || !record.from) return undefined;
  return { id: record.id, target: parseHostPort(record.to), from: parseHostPort(record.from) };
}

/** A record moved to a new state. */
export function advance(
  record: SwitchoverRecord,
  state: SwitchoverState,
  changes: { to?: HostPort; from?: HostPort; detail?: string } = {},
): SwitchoverRecord {
  return {
    ...record,
    state,
    ...(changes.to ? { to: formatHostPort(changes.to) } : {}),
    ...(changes.from ? { from: formatHostPort(changes.from) } : {}),
    ...(changes.detail !== undefined ? { detail: changes.detail } : {}),
  };
}
