/**
 * The records resec reads from Consul KV (switchover record, lock value, candidacies) are validated
 * whole: anything resec could not have written is refused with a reason, never half-read. Issue 14:
 * one switchover record with a bad `from` was accepted here and threw later, inside every agent's
 * loop, which then stopped for good.
 */
import assert from "node:assert/strict";
import { parseCandidacy } from "../../lib/cluster/candidacy.ts";
import type { Candidacy } from "../../lib/reconciler/election.ts";
import { handoverOf, parseSwitchoverRecord } from "../../lib/cluster/controls.ts";
import {
  encodeLeaderAnnouncement,
  encodeReleaseNote,
  parseLeaderAnnouncement,
  parseReleaseNote,
} from "../../lib/cluster/lock_value.ts";

/** Refused as an invalid record whose reason matches `reason`. */
function assertInvalid(parse: () => unknown, reason: RegExp, label = ""): void {
  assert.throws(parse, (error: unknown) => {
    assert.ok(error instanceof Error, `${label}: not an Error`);
    assert.equal(error.name, "InvalidRecordError", `${label}: ${error.message}`);
    assert.match(error.message, reason, label);
    return true;
  }, label);
}

const huge = (chars: number) => "x".repeat(chars);

// ---- switchover record ------------------------------------------------------------------------

const SWITCHOVER = {
  id: "0f8e6c1a-3b1d-4a3e-9c55-2d1f8f6f0a11",
  state: "in-progress",
  to: "10.0.0.2:6379",
  from: "10.0.0.1:6379",
  timeoutMs: 30_000,
  requestedAt: "2026-11-22T10:00:00.000Z",
};

const switchoverWith = (changes: Record<string, unknown>) =>
  JSON.stringify({ ...SWITCHOVER, ...changes });

Deno.test("the switchover record from issue 14 (in progress, from without a port) is refused", () => {
  assertInvalid(
    () =>
      parseSwitchoverRecord(
        '{"id":"x","state":"in-progress","to":"127.0.0.1:1","from":"no-port"}',
      ),
    /switchover record: "from": Cannot parse address "no-port"/,
  );
});

Deno.test("a switchover record resec writes parses to typed addresses, and its handover follows", () => {
  const record = parseSwitchoverRecord(switchoverWith({ detail: "" }));
  assert.deepEqual(record, {
    ...SWITCHOVER,
    state: "in-progress",
    to: { host: "10.0.0.2", port: 6379 },
    from: { host: "10.0.0.1", port: 6379 },
    detail: "",
  });
  assert.deepEqual(handoverOf(record), {
    id: SWITCHOVER.id,
    target: { host: "10.0.0.2", port: 6379 },
    from: { host: "10.0.0.1", port: 6379 },
  });
  const requested = parseSwitchoverRecord(
    JSON.stringify({ id: "r", state: "requested", timeoutMs: 1_000, requestedAt: "2026-11-22" }),
  );
  assert.equal(requested.to, undefined);
  assert.equal(handoverOf(requested), undefined);
  assert.deepEqual(parseSwitchoverRecord(switchoverWith({ to: "[::1]:6380" })).to, {
    host: "::1",
    port: 6380,
  });
});

Deno.test("switchover records with fields of the wrong type are refused, naming the field", () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ id: 5 }, /"id" must be a string/],
    [{ id: "" }, /"id" must be a non-empty string/],
    [{ state: "paused" }, /"state" must be one of "requested", "in-progress"/],
    [{ state: ["done"] }, /"state" must be one of/],
    [{ to: 6379 }, /"to" must be a string/],
    [{ to: "10.0.0.2" }, /"to": Cannot parse address "10\.0\.0\.2"/],
    [{ to: "10.0.0.2:0" }, /"to": .*outside 1–65535/],
    [{ to: "::1:6379" }, /"to": .*brackets/],
    [{ to: "10.0.0.2:06379" }, /"to" must be written as "10\.0\.0\.2:6379"/],
    [{ from: { host: "10.0.0.1", port: 6379 } }, /"from" must be a string/],
    [{ timeoutMs: "30s" }, /"timeoutMs" must be a number above 0/],
    [{ timeoutMs: 0 }, /"timeoutMs" must be a number above 0/],
    [{ timeoutMs: -1 }, /"timeoutMs"/],
    [{ requestedAt: "yesterday" }, /"requestedAt" must be a date/],
    [{ requestedAt: 1_700_000_000 }, /"requestedAt" must be a string/],
    [{ detail: { why: "no" } }, /"detail" must be a string/],
  ];
  for (const [changes, reason] of cases) {
    assertInvalid(
      () => parseSwitchoverRecord(switchoverWith(changes)),
      reason,
      JSON.stringify(changes),
    );
  }
});

Deno.test("switchover records with missing fields are refused, naming the field", () => {
  for (const field of ["id", "state", "timeoutMs", "requestedAt", "to", "from"]) {
    const { [field]: _dropped, ...rest } = SWITCHOVER as Record<string, unknown>;
    assertInvalid(
      () => parseSwitchoverRecord(JSON.stringify(rest)),
      new RegExp(`"${field}"`),
      field,
    );
  }
  // A null is no value either.
  assertInvalid(() => parseSwitchoverRecord(switchoverWith({ from: null })), /"from" is missing/);
});

Deno.test("a switchover record that is not a JSON object is refused", () => {
  const cases: [string, RegExp][] = [
    ["", /is not JSON/],
    ["not json", /"not json" is not JSON/],
    [`${switchoverWith({})} trailing garbage`, /is not JSON/],
    ["null", /expected a JSON object, not null/],
    ["[]", /expected a JSON object, not \[\]/],
    ["42", /expected a JSON object, not 42/],
    ['"in-progress"', /expected a JSON object/],
  ];
  for (const [text, reason] of cases) {
    assertInvalid(() => parseSwitchoverRecord(text), reason, text);
  }
});

Deno.test("huge switchover records and fields are refused without quoting them whole", () => {
  assertInvalid(
    () => parseSwitchoverRecord(switchoverWith({ detail: huge(100_000) })),
    /is 100\d{3} characters long, more than the 16384/,
  );
  assertInvalid(
    () => parseSwitchoverRecord(switchoverWith({ detail: huge(2_000) })),
    /"detail" must be a string of at most 1024 characters, not "x{59}…$/,
  );
  assertInvalid(() => parseSwitchoverRecord(switchoverWith({ id: huge(500) })), /"id"/);
  // A handover asking for a year would hold elections up for a year.
  assertInvalid(
    () => parseSwitchoverRecord(switchoverWith({ timeoutMs: 31_536_000_000 })),
    /"timeoutMs" must be a number above 0 and at most 600000/,
  );
  assertInvalid(() => parseSwitchoverRecord(switchoverWith({ timeoutMs: 1e400 })), /"timeoutMs"/);
});

Deno.test("fields a switchover record does not have are ignored, not carried", () => {
  const record = parseSwitchoverRecord(switchoverWith({ garbage: [1, 2, 3] }));
  assert.equal("garbage" in record, false);
  assert.equal(record.id, SWITCHOVER.id);
});

// ---- lock value -------------------------------------------------------------------------------

const ANNOUNCEMENT = {
  address: "10.0.0.1:6379",
  agent: "resec",
  runId: "b".repeat(40),
  since: "2026-11-22T10:00:00.000Z",
  epoch: 7,
};

const announcementWith = (changes: Record<string, unknown>) =>
  JSON.stringify({ ...ANNOUNCEMENT, ...changes });

Deno.test("a lock value resec writes parses whole; an empty one announces nothing", () => {
  assert.deepEqual(parseLeaderAnnouncement(announcementWith({})), {
    ...ANNOUNCEMENT,
    address: { host: "10.0.0.1", port: 6379 },
  });
  const { runId: _runId, epoch: _epoch, ...bare } = ANNOUNCEMENT;
  assert.deepEqual(parseLeaderAnnouncement(JSON.stringify(bare)), {
    ...bare,
    address: { host: "10.0.0.1", port: 6379 },
  });
  // A Go resec holds the lock with an empty value.
  assert.equal(parseLeaderAnnouncement(""), undefined);
  assert.equal(parseLeaderAnnouncement(undefined), undefined);
});

Deno.test("malformed lock values are refused, so the holder counts as one that announced nothing", () => {
  const cases: [string, RegExp][] = [
    ["garbage", /lock value: "garbage" is not JSON/],
    [`${announcementWith({})}}`, /is not JSON/],
    ["null", /expected a JSON object/],
    ['["10.0.0.1:6379"]', /expected a JSON object/],
    [announcementWith({ address: "10.0.0.1" }), /"address": Cannot parse address/],
    [announcementWith({ address: 6379 }), /"address" must be a string/],
    [announcementWith({ address: undefined }), /"address" is missing/],
    [announcementWith({ agent: 5 }), /"agent" must be a string/],
    [announcementWith({ agent: undefined }), /"agent" is missing/],
    [announcementWith({ runId: 12 }), /"runId" must be a string/],
    [announcementWith({ since: "soon" }), /"since" must be a date/],
    [announcementWith({ epoch: -1 }), /"epoch" must be an integer from 0/],
    [announcementWith({ epoch: "7" }), /"epoch" must be an integer/],
    [announcementWith({ epoch: 1.5 }), /"epoch" must be an integer/],
    [announcementWith({ epoch: 2 ** 60 }), /"epoch" must be an integer/],
    [announcementWith({ agent: huge(5_000) }), /"agent" must be a string of at most 1024/],
    [announcementWith({ junk: huge(20_000) }), /more than the 16384/],
  ];
  for (const [text, reason] of cases) {
    assertInvalid(() => parseLeaderAnnouncement(text), reason, text.slice(0, 80));
  }
});

// ---- candidacy --------------------------------------------------------------------------------

const CANDIDACY: Candidacy = {
  address: "10.0.0.2:6379",
  runId: "c".repeat(40),
  replicationId: "a".repeat(40),
  replicationId2: "0".repeat(40),
  offset: 1_048_576,
  role: "replica",
  healthy: true,
  datasetEmpty: false,
  synced: true,
  priority: 100,
  forced: false,
  vacancy: 0,
  updatedAt: "2026-11-22T10:00:00.000Z",
};

const candidacyWith = (changes: Record<string, unknown>) =>
  JSON.stringify({ ...CANDIDACY, ...changes });

Deno.test("a candidacy resec publishes parses back to itself", () => {
  assert.deepEqual(parseCandidacy(candidacyWith({}), CANDIDACY.address), CANDIDACY);
  // Redis down since the agent started: nothing known yet; the lock key missing: vacancy -1.
  const blank = { ...CANDIDACY, runId: "", replicationId: "", replicationId2: "", vacancy: -1 };
  assert.deepEqual(parseCandidacy(JSON.stringify(blank), CANDIDACY.address), blank);
  const ipv6 = { ...CANDIDACY, address: "[::1]:6379" };
  assert.deepEqual(parseCandidacy(JSON.stringify(ipv6), "[::1]:6379"), ipv6);
  // The term its data comes from, when its agent knows it (agents of earlier versions leave it out).
  const epoch = { ...CANDIDACY, dataEpoch: 7 };
  assert.deepEqual(parseCandidacy(JSON.stringify(epoch), CANDIDACY.address), epoch);
});

Deno.test("a candidacy under another node's key is refused", () => {
  assertInvalid(
    () => parseCandidacy(candidacyWith({}), "10.0.0.9:6379"),
    /candidacy: it announces 10\.0\.0\.2:6379 under the key of "10\.0\.0\.9:6379"/,
  );
});

Deno.test("candidacies with fields of the wrong type or out of range are refused", () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ address: "10.0.0.2" }, /"address": Cannot parse address/],
    [{ address: "10.0.0.2:06379" }, /"address" must be written as "10\.0\.0\.2:6379"/],
    [{ runId: 1 }, /"runId" must be a string/],
    [{ replicationId: huge(200) }, /"replicationId" must be a string of at most 128/],
    [{ offset: "1048576" }, /"offset" must be an integer from 0/],
    [{ offset: -5 }, /"offset" must be an integer from 0/],
    [{ offset: 1.5 }, /"offset"/],
    [{ offset: 2 ** 60 }, /"offset"/],
    [{ role: "leader" }, /"role" must be one of "master", "replica"/],
    [{ healthy: "yes" }, /"healthy" must be true or false/],
    [{ datasetEmpty: 0 }, /"datasetEmpty" must be true or false/],
    [{ synced: null }, /"synced" is missing/],
    [{ priority: -1 }, /"priority" must be an integer from 0 to 2147483647/],
    [{ priority: 2 ** 40 }, /"priority"/],
    [{ forced: "false" }, /"forced" must be true or false/],
    [{ vacancy: -2 }, /"vacancy" must be an integer from -1/],
    [{ updatedAt: "now" }, /"updatedAt" must be a date/],
    [{ dataEpoch: 0 }, /"dataEpoch" must be an integer from 1/],
    [{ dataEpoch: "7" }, /"dataEpoch"/],
  ];
  for (const [changes, reason] of cases) {
    assertInvalid(
      () => parseCandidacy(candidacyWith(changes), CANDIDACY.address),
      reason,
      JSON.stringify(changes).slice(0, 80),
    );
  }
});

Deno.test("candidacies with missing fields are refused (no field is filled in with a default)", () => {
  for (const field of Object.keys(CANDIDACY)) {
    const { [field]: _dropped, ...rest } = CANDIDACY as unknown as Record<string, unknown>;
    assertInvalid(
      () => parseCandidacy(JSON.stringify(rest), CANDIDACY.address),
      new RegExp(`"${field}" is missing`),
      field,
    );
  }
});

Deno.test("a candidacy that is not a JSON object, or is huge, is refused; unknown fields are ignored", () => {
  for (const text of ["", "garbage", "null", "true", "[]", `${candidacyWith({})},`]) {
    assertInvalid(() => parseCandidacy(text, CANDIDACY.address), /candidacy: /, text);
  }
  assertInvalid(
    () => parseCandidacy(candidacyWith({ padding: huge(30_000) }), CANDIDACY.address),
    /more than the 16384/,
  );
  assert.deepEqual(
    parseCandidacy(candidacyWith({ newerField: { x: 1 } }), CANDIDACY.address),
    CANDIDACY,
  );
});

Deno.test("a release note reads back as written; an announcement, an empty value or junk is no note", () => {
  const released = { host: "10.0.0.5", port: 6379 };
  const value = encodeReleaseNote({ released, writesStopped: true, now: 0 });
  assert.deepEqual(parseReleaseNote(value), { released, writesStopped: true });
  assert.equal(
    parseReleaseNote(encodeLeaderAnnouncement({ address: released, agent: "resec", now: 0 })),
    undefined,
  );
  assert.equal(parseReleaseNote(""), undefined);
  assert.equal(parseReleaseNote("{not json"), undefined);
  assert.equal(parseReleaseNote('{"released":"10.0.0.5:6379","writesStopped":"yes"}'), undefined);
});
