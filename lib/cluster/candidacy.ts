/**
 * A candidacy: where one agent's Redis stands (offset, history, priority, health), published under
 * `<lock key>.candidates/<announce address>` so a free lock goes to the node with the most data. This
 * file is the record's key and format; lib/agent/apply/candidacy_board.ts publishes and follows them.
 */
import { formatHostPort } from "../address.ts";
import type { Candidacy } from "../reconciler/election.ts";
import { InvalidRecordError, MAX_ID_CHARS, quoteValue, RecordFields } from "../record.ts";

/**
 * The KV prefix holding the candidacies of the cluster that uses `lockKey`.
 *
 * @example
 * ```ts
 * candidatesPrefix("resec/.lock"); // "resec/.lock.candidates/"
 * ```
 */
export function candidatesPrefix(lockKey: string): string {
  return `${lockKey}.candidates/`;
}

/**
 * The value of a candidacy's key.
 *
 * @example
 * ```ts
 * await putKey(client, candidatesPrefix(lockKey) + candidacy.address, encodeCandidacy(candidacy));
 * ```
 */
export function encodeCandidacy(candidacy: Candidacy): string {
  return JSON.stringify(candidacy);
}

/** The largest `replica-priority` Redis accepts (a C int). */
const MAX_PRIORITY = 2_147_483_647;

/**
 * Parses one published candidacy, every field checked; `address` is the one its key names, and the
 * candidacy must announce the same.
 *
 * @throws {InvalidRecordError} when the value is not a candidacy resec could have written
 *
 * @example
 * ```ts
 * const candidacy = parseCandidacy(entry.value, entry.key.slice(candidatesPrefix(lockKey).length));
 * ```
 */
export function parseCandidacy(value: string, address: string): Candidacy {
  const fields = RecordFields.parse("candidacy", value);
  const announced = formatHostPort(fields.address("address"));
  if (announced !== address) {
    throw new InvalidRecordError(
      "candidacy",
      `it announces ${announced} under the key of ${quoteValue(address)}`,
    );
  }
  const id = (name: string) => fields.text(name, { maxChars: MAX_ID_CHARS, empty: true });
  const failsafeApi = fields.optionalAddress("failsafeApi");
  const dataEpoch = fields.optionalInteger("dataEpoch", { min: 1 });
  const unreachableHolder = fields.optionalText("unreachableHolder", { maxChars: MAX_ID_CHARS });
  const endsHolder = fields.optionalText("endsHolder", { maxChars: MAX_ID_CHARS });
  return {
    address: announced,
    runId: id("runId"),
    replicationId: id("replicationId"),
    replicationId2: id("replicationId2"),
    offset: fields.integer("offset", { min: 0 }),
    role: fields.choice("role", ["master", "replica"] as const),
    healthy: fields.boolean("healthy"),
    datasetEmpty: fields.boolean("datasetEmpty"),
    synced: fields.boolean("synced"),
    priority: fields.integer("priority", { min: 0, max: MAX_PRIORITY }),
    forced: fields.boolean("forced"),
    // -1: published while the lock key was missing (lib/agent/watch/leader_source.ts).
    vacancy: fields.integer("vacancy", { min: -1 }),
    updatedAt: fields.timestamp("updatedAt"),
    ...(failsafeApi ? { failsafeApi: formatHostPort(failsafeApi) } : {}),
    ...(dataEpoch !== undefined ? { dataEpoch } : {}),
    ...(unreachableHolder !== undefined ? { unreachableHolder } : {}),
    ...(endsHolder !== undefined ? { endsHolder } : {}),
  };
}
