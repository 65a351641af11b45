/**
 * The lock key's value: who leads, announced by the leader itself so replicas follow the lock holder
 * rather than the health catalog (two passing masters in the catalog must never stall the cluster).
 */
import { formatHostPort, type HostPort } from "../address.ts";
import { MAX_ID_CHARS, MAX_TEXT_CHARS, RecordFields } from "../record.ts";

/**
 * The flags the Go resec (hashicorp/consul api's Lock) puts on its lock key. Its lock helper refuses a
 * key carrying other flags: writing the same keeps a mixed cluster (mid-migration) on one lock.
 */
export const GO_RESEC_LOCK_FLAGS = 3304740253564472344n;

/** What a leader announces in the lock key's value. */
export interface LeaderAnnouncement {
  /** Where replicas reach the leader's Redis. */
  readonly address: HostPort;
  /** The agent's session name (CONSUL_LOCK_SESSION_NAME), for people reading the key. */
  readonly agent: string;
  /** Redis run_id of the leader when it took the lock. */
  readonly runId?: string;
  /** When the leader took the lock (ISO 8601), for people. */
  readonly since: string;
  /** The lock's LockIndex for this term (the fencing epoch), once known. */
  readonly epoch?: number;
}

/**
 * Encodes the lock value for `address`.
 *
 * @example
 * ```ts
 * encodeLeaderAnnouncement({ address: { host: "10.0.0.5", port: 6379 }, agent: "resec", now: 0 });
 * // '{"address":"10.0.0.5:6379","agent":"resec","since":"1970-01-01T00:00:00.000Z"}'
 * ```
 */
export function encodeLeaderAnnouncement(
  options: { address: HostPort; agent: string; runId?: string; now: number; epoch?: number },
): string {
  return JSON.stringify({
    address: formatHostPort(options.address),
    agent: options.agent,
    runId: options.runId,
    since: new Date(options.now).toISOString(),
    ...(options.epoch !== undefined ? { epoch: options.epoch } : {}),
  });
}

/**
 * Reads the lock key's value, every field checked. Undefined when the holder announced nothing (a
 * Go resec holds the lock: it writes an empty value), so the caller can fall back to the catalog.
 *
 * @throws {InvalidRecordError} when the value is not an announcement resec could have written; the
 * caller then treats the holder as one that announced nothing
 *
 * @example
 * ```ts
 * parseLeaderAnnouncement('{"address":"10.0.0.5:6379","agent":"resec","since":"2026-01-01T00:00:00Z"}');
 * // { address: { host: "10.0.0.5", port: 6379 }, agent: "resec", since: "2026-01-01T00:00:00Z" }
 * parseLeaderAnnouncement(""); // undefined: a Go resec holds the lock
 * ```
 */
export function parseLeaderAnnouncement(value: string | undefined): LeaderAnnouncement | undefined {
  if (!value) return undefined;
  const fields = RecordFields.parse("lock value", value);
  const runId = fields.optionalText("runId", { maxChars: MAX_ID_CHARS, empty: true });
  const epoch = fields.optionalInteger("epoch", { min: 0 });
  return {
    address: fields.address("address"),
    agent: fields.text("agent", { maxChars: MAX_TEXT_CHARS, empty: true }),
    ...(runId !== undefined ? { runId } : {}),
    since: fields.timestamp("since"),
    ...(epoch !== undefined ? { epoch } : {}),
  };
}

/**
 * What a holder writes into the lock key as it gives the lock back: whether its Redis had stopped
 * taking writes (fenced, down, or a replica). A new master need not wait out the fence bound for a
 * former master that said so; one that did not (its session expired, or its Redis may still serve)
 * leaves the announcement in place, and the new master waits.
 */
export interface ReleaseNote {
  /** The former holder's announce address. */
  readonly released: HostPort;
  readonly writesStopped: boolean;
}

/**
 * Encodes a release note.
 *
 * @example
 * ```ts
 * encodeReleaseNote({ released: { host: "10.0.0.5", port: 6379 }, writesStopped: true, now: 0 });
 * // '{"released":"10.0.0.5:6379","writesStopped":true,"at":"1970-01-01T00:00:00.000Z"}'
 * ```
 */
export function encodeReleaseNote(
  options: { released: HostPort; writesStopped: boolean; now: number },
): string {
  return JSON.stringify({
    released: formatHostPort(options.released),
    writesStopped: options.writesStopped,
    at: new Date(options.now).toISOString(),
  });
}

/**
 * Reads a free lock key's value as a release note; undefined when it is none (an expired holder's
 * announcement, a Go resec's empty value, or anything else), which a new master reads as "may still
 * take writes".
 */
export function parseReleaseNote(value: string | undefined): ReleaseNote | undefined {
  if (!value) return undefined;
  try {
    const fields = RecordFields.parse("release note", value);
    if (!fields.has("released")) return undefined;
    return { released: fields.address("released"), writesStopped: fields.boolean("writesStopped") };
  } catch {
    return undefined;
  }
}
