/**
 * Operator controls that travel through Consul KV, next to the lock, so no agent needs a port of its
 * own: maintenance mode (`<lock key>.paused`) and planned switchover (`<lock key>.switchover`).
 */
import { formatHostPort, type HostPort } from "../address.ts";
import type { Milliseconds } from "../duration.ts";
import { InvalidRecordError, MAX_ID_CHARS, MAX_TEXT_CHARS, RecordFields } from "../record.ts";

/**
 * The key whose presence pauses every agent of the cluster.
 *
 * @example
 * ```ts
 * pauseKey("resec/.lock"); // "resec/.lock.paused"
 * ```
 */
export function pauseKey(lockKey: string): string {
  return `${lockKey}.paused`;
}

/**
 * The key carrying the current switchover request and its progress.
 *
 * @example
 * ```ts
 * switchoverKey("resec/.lock"); // "resec/.lock.switchover"
 * ```
 */
export function switchoverKey(lockKey: string): string {
  return `${lockKey}.switchover`;
}

/** What the pause key holds, for people reading it. */
export interface PauseNote {
  readonly reason: string;
  readonly since: string;
}

/**
 * Parses the pause key's value. The key's presence is what pauses, whatever it holds; the note only
 * tells people why.
 *
 * @throws {InvalidRecordError} when the value is not a note `resec pause` could have written
 *
 * @example
 * ```ts
 * parsePauseNote('{"reason":"kernel upgrade","since":"2026-01-01T00:00:00Z"}');
 * // { reason: "kernel upgrade", since: "2026-01-01T00:00:00Z" }
 * ```
 */
export function parsePauseNote(text: string): PauseNote {
  const fields = RecordFields.parse("pause note", text);
  return { reason: fields.text("reason", { empty: true }), since: fields.timestamp("since") };
}

/** Where a switchover request stands. */
export type SwitchoverState = "requested" | "in-progress" | "done" | "refused" | "failed";

/**
 * The longest handover a switchover may ask for. While one is in progress only its target competes
 * for the lock, so a record asking for days would hold elections up for days.
 */
export const MAX_SWITCHOVER_TIMEOUT_MS: Milliseconds = 600_000;

/** The switchover key's value. */
export interface SwitchoverRecord {
  /** Chosen by the requester; progress updates keep it. */
  readonly id: string;
  readonly state: SwitchoverState;
  /** The requested (or, once in progress, the chosen) new master. */
  readonly to?: HostPort;
  /** The master handing over, once in progress. */
  readonly from?: HostPort;
  /** How long the handover may take before it is given up. */
  readonly timeoutMs: Milliseconds;
  readonly requestedAt: string;
  /** Why it was refused or failed, or how long it took. */
  readonly detail?: string;
}

const STATES: readonly SwitchoverState[] = [
  "requested",
  "in-progress",
  "done",
  "refused",
  "failed",
];

/**
 * Parses the switchover key's value, every field checked: an in-progress record must name both
 * ends of the handover.
 *
 * @throws {InvalidRecordError} when the value is not a record resec could have written
 * @example
 * ```ts
 * parseSwitchoverRecord('{"id":"x","state":"in-progress","to":"127.0.0.1:1","from":"no-port"}');
 * // throws: Cannot parse the switchover record: "from": Cannot parse address "no-port": …
 * ```
 */
export function parseSwitchoverRecord(text: string): SwitchoverRecord {
  const fields = RecordFields.parse("switchover record", text);
  const state = fields.choice("state", STATES);
  if (state === "in-progress") {
    for (const end of ["to", "from"]) {
      if (!fields.has(end)) {
        throw new InvalidRecordError("switchover record", `"${end}" is missing while in progress`);
      }
    }
  }
  const to = fields.optionalAddress("to");
  const from = fields.optionalAddress("from");
  const detail = fields.optionalText("detail", { empty: true });
  return {
    id: fields.text("id", { maxChars: MAX_ID_CHARS }),
    state,
    ...(to ? { to } : {}),
    ...(from ? { from } : {}),
    timeoutMs: fields.positive("timeoutMs", MAX_SWITCHOVER_TIMEOUT_MS),
    requestedAt: fields.timestamp("requestedAt"),
    ...(detail !== undefined ? { detail } : {}),
  };
}

/**
 * The switchover key's value for `record`.
 *
 * @example
 * ```ts
 * await putKey(client, switchoverKey(lockKey), encodeSwitchoverRecord(record), { cas: 0 });
 * ```
 */
export function encodeSwitchoverRecord(record: SwitchoverRecord): string {
  return JSON.stringify({
    ...record,
    ...(record.to ? { to: formatHostPort(record.to) } : {}),
    ...(record.from ? { from: formatHostPort(record.from) } : {}),
  });
}

/**
 * True once a request has ended one way or another.
 *
 * @example
 * ```ts
 * isFinished(advance(record, "refused", { detail: "no healthy replica" })); // true
 * ```
 */
export function isFinished(record: SwitchoverRecord): boolean {
  return record.state === "done" || record.state === "refused" || record.state === "failed";
}

/** A handover all agents should honour: the master is passing the lock to `target`. */
export interface Handover {
  readonly id: string;
  readonly target: HostPort;
  readonly from: HostPort;
}

/**
 * The handover an in-progress record describes, if any.
 *
 * @example
 * ```ts
 * handoverOf(advance(record, "in-progress", { to: target, from: self }));
 * // { id: record.id, target, from: self }
 * ```
 */
export function handoverOf(record: SwitchoverRecord | undefined): Handover | undefined {
  if (record?.state !== "in-progress" || !record.to || !record.from) return undefined;
  return { id: record.id, target: record.to, from: record.from };
}

/**
 * A record moved to a new state.
 *
 * @example
 * ```ts
 * const next = advance(record, "done", { detail: "took 1.2s" }); // same id, to and from
 * ```
 */
export function advance(
  record: SwitchoverRecord,
  state: SwitchoverState,
  changes: { to?: HostPort; from?: HostPort; detail?: string } = {},
): SwitchoverRecord {
  return {
    ...record,
    state,
    ...(changes.to ? { to: changes.to } : {}),
    ...(changes.from ? { from: changes.from } : {}),
    // A long error from Redis must not make the record one that every reader refuses.
    ...(changes.detail !== undefined ? { detail: changes.detail.slice(0, MAX_TEXT_CHARS) } : {}),
  };
}
