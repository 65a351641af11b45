/**
 * Fuzzing the records resec keeps in Consul KV (the lock value, the pause note, the switchover record,
 * the candidacies): whatever a key holds, its parser returns a record whose fields keep their promises
 * or throws an InvalidRecordError, never anything else; and what resec writes, resec reads back.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { formatHostPort, type HostPort } from "../../lib/address.ts";
import { parseCandidacy } from "../../lib/cluster/candidacy.ts";
import {
  advance,
  encodeSwitchoverRecord,
  MAX_SWITCHOVER_TIMEOUT_MS,
  parsePauseNote,
  parseSwitchoverRecord,
  type SwitchoverRecord,
} from "../../lib/cluster/controls.ts";
import { encodeLeaderAnnouncement, parseLeaderAnnouncement } from "../../lib/cluster/lock_value.ts";
import { InvalidRecordError, MAX_ID_CHARS, MAX_TEXT_CHARS } from "../../lib/record.ts";
import { checkProperty, edgyJson, jsonMutants } from "./fuzz.ts";

const LOCK_VALUE = {
  address: "10.0.0.1:6379",
  agent: "resec",
  runId: "6b3f2a1c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a",
  since: "2026-01-01T00:00:00.000Z",
  epoch: 7,
};

const PAUSE_NOTE = { reason: "upgrading Redis", since: "2026-01-01T00:00:00.000Z" };

const SWITCHOVER = {
  id: "a1b2c3",
  state: "in-progress",
  to: "10.0.0.2:6379",
  from: "[::1]:6379",
  timeoutMs: 30_000,
  requestedAt: "2026-01-01T00:00:00.000Z",
  detail: "chosen by offset",
};

const CANDIDACY = {
  address: "10.0.0.2:6379",
  runId: "6b3f2a1c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a",
  replicationId: "8d1e0f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e",
  replicationId2: "0000000000000000000000000000000000000000",
  offset: 123456,
  role: "replica",
  healthy: true,
  datasetEmpty: false,
  synced: true,
  priority: 100,
  forced: false,
  vacancy: 0,
  updatedAt: "2026-01-01T00:00:00.000Z",
};

/** What a key may hold: text near a valid record most of the time, anything otherwise. */
function values(valid: unknown): fc.Arbitrary<string> {
  return fc.oneof(
    { arbitrary: jsonMutants(valid).map((json) => String(JSON.stringify(json))), weight: 5 },
    { arbitrary: edgyJson.map((json) => String(JSON.stringify(json))), weight: 1 },
    { arbitrary: fc.string({ unit: "binary", maxLength: 100 }), weight: 1 },
    // Nested deeper than anyone writes: parsing and quoting it must not blow the stack.
    {
      arbitrary: fc.integer({ min: 1, max: 8_000 }).map((depth) =>
        `{"address":${"[".repeat(depth)}${"]".repeat(depth)}}`
      ),
      weight: 1,
    },
  );
}

/** Runs a parser: an InvalidRecordError is the expected refusal; anything else fails the property. */
function parseOrRefuse<T>(parse: () => T): T | undefined {
  try {
    return parse();
  } catch (error) {
    if (error instanceof InvalidRecordError) return undefined;
    throw error;
  }
}

function assertAddress(address: HostPort | undefined): void {
  if (address === undefined) return;
  assert.equal(typeof address.host, "string");
  assert.ok(address.host !== "");
  assert.ok(Number.isInteger(address.port) && address.port >= 1 && address.port <= 65_535);
}

function assertTimestamp(text: string): void {
  assert.ok(!Number.isNaN(Date.parse(text)), text);
}

Deno.test("the lock value parses to a typed announcement or an InvalidRecordError, whatever the key holds", async (t) => {
  await checkProperty(
    t,
    fc.property(values(LOCK_VALUE), (text) => {
      const announcement = parseOrRefuse(() => parseLeaderAnnouncement(text));
      if (announcement === undefined) return;
      assertAddress(announcement.address);
      assert.ok(announcement.agent.length <= MAX_TEXT_CHARS);
      assert.ok(announcement.runId === undefined || announcement.runId.length <= MAX_ID_CHARS);
      assertTimestamp(announcement.since);
      assert.ok(announcement.epoch === undefined || Number.isSafeInteger(announcement.epoch));
    }),
  );
});

Deno.test("the pause note and the switchover record parse to typed records or an InvalidRecordError", async (t) => {
  await checkProperty(
    t,
    fc.property(values(PAUSE_NOTE), values(SWITCHOVER), (note, switchover) => {
      const pause = parseOrRefuse(() => parsePauseNote(note));
      if (pause !== undefined) {
        assert.equal(typeof pause.reason, "string");
        assertTimestamp(pause.since);
      }
      const record = parseOrRefuse(() => parseSwitchoverRecord(switchover));
      if (record === undefined) return;
      assert.ok(["requested", "in-progress", "done", "refused", "failed"].includes(record.state));
      assert.ok(record.id !== "" && record.id.length <= MAX_ID_CHARS);
      assert.ok(record.timeoutMs > 0 && record.timeoutMs <= MAX_SWITCHOVER_TIMEOUT_MS);
      assertAddress(record.to);
      assertAddress(record.from);
      if (record.state === "in-progress") assert.ok(record.to && record.from);
      assertTimestamp(record.requestedAt);
    }),
  );
});

Deno.test("a candidacy parses to a typed candidacy under its own key, or an InvalidRecordError", async (t) => {
  await checkProperty(
    t,
    fc.property(
      values(CANDIDACY),
      fc.constantFrom("10.0.0.2:6379", "[::1]:6379", "10.0.0.3:6379"),
      (text, key) => {
        const candidacy = parseOrRefuse(() => parseCandidacy(text, key));
        if (candidacy === undefined) return;
        assert.equal(candidacy.address, key);
        for (const count of [candidacy.offset, candidacy.priority]) {
          assert.ok(Number.isSafeInteger(count) && count >= 0);
        }
        assert.ok(Number.isSafeInteger(candidacy.vacancy) && candidacy.vacancy >= -1);
        assert.ok(candidacy.role === "master" || candidacy.role === "replica");
        for (const flag of ["healthy", "datasetEmpty", "synced", "forced"] as const) {
          assert.equal(typeof candidacy[flag], "boolean");
        }
        assertTimestamp(candidacy.updatedAt);
      },
    ),
  );
});

/** Hosts resec may announce: names, IPv4, IPv6, and odd but accepted spellings. */
const hosts = fc.oneof(
  fc.domain(),
  fc.ipV4(),
  fc.ipV6(),
  fc.string({ minLength: 1, maxLength: 40 }).filter((host) =>
    host.trim() === host && host !== "" && !host.includes("[") && !host.includes("]")
  ),
);
const addresses = fc.record({ host: hosts, port: fc.integer({ min: 1, max: 65_535 }) });

Deno.test("a lock value resec writes, resec reads back: address, agent, run ID and epoch", async (t) => {
  await checkProperty(
    t,
    fc.property(
      addresses,
      fc.string({ maxLength: MAX_TEXT_CHARS }),
      fc.option(fc.string({ maxLength: MAX_ID_CHARS }), { nil: undefined }),
      fc.date({ min: new Date(0), max: new Date(8.64e15), noInvalidDate: true }),
      fc.option(fc.nat(), { nil: undefined }),
      (address, agent, runId, date, epoch) => {
        const text = encodeLeaderAnnouncement({
          address,
          agent,
          runId,
          now: date.getTime(),
          epoch,
        });
        const parsed = parseLeaderAnnouncement(text);
        assert.ok(parsed !== undefined);
        assert.equal(formatHostPort(parsed.address), formatHostPort(address));
        assert.equal(parsed.agent, agent);
        assert.equal(parsed.runId, runId);
        assert.equal(parsed.epoch, epoch);
      },
    ),
  );
});

Deno.test("a switchover record resec writes, at any step, resec reads back", async (t) => {
  const states = ["requested", "in-progress", "done", "refused", "failed"] as const;
  await checkProperty(
    t,
    fc.property(
      fc.string({ minLength: 1, maxLength: MAX_ID_CHARS }),
      addresses,
      addresses,
      fc.integer({ min: 1, max: MAX_SWITCHOVER_TIMEOUT_MS }),
      fc.constantFrom(...states),
      fc.option(fc.string({ maxLength: 3 * MAX_TEXT_CHARS }), { nil: undefined }),
      (id, to, from, timeoutMs, state, detail) => {
        const requested: SwitchoverRecord = {
          id,
          state: "requested",
          timeoutMs,
          requestedAt: "2026-01-01T00:00:00.000Z",
        };
        const record = advance(requested, state, {
          to,
          from,
          ...(detail !== undefined ? { detail } : {}),
        });
        const parsed = parseSwitchoverRecord(encodeSwitchoverRecord(record));
        assert.equal(parsed.id, id);
        assert.equal(parsed.state, state);
        assert.equal(formatHostPort(parsed.to!), formatHostPort(to));
        assert.equal(formatHostPort(parsed.from!), formatHostPort(from));
        assert.equal(parsed.timeoutMs, timeoutMs);
      },
    ),
  );
});
