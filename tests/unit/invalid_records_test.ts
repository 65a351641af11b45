/**
 * What the agent does with an invalid record in Consul: it reports it (a warning naming the key and
 * the reason, at most once per distinct value or per minute, and a count for metrics) and reads it
 * conservatively: no switchover, still paused, a peer that is not eligible, a holder that announced
 * nothing. The sources read a small in-memory KV through the real Consul client; no server.
 */
import assert from "node:assert/strict";
import { CandidacyBoard } from "../../lib/agent/apply/candidacy_board.ts";
import { ControlSource } from "../../lib/agent/watch/control_source.ts";
import {
  INVALID_RECORD_REMINDER_MS,
  InvalidRecordReporter,
} from "../../lib/agent/watch/invalid_records.ts";
import { LeaderSource } from "../../lib/agent/watch/leader_source.ts";
import type { Candidacy } from "../../lib/reconciler/election.ts";
import { systemClock } from "../../lib/clock.ts";
import { ConsulClient, type FetchLike } from "../../lib/consul/client.ts";
import { consulJson, consulText } from "../../lib/consul/testing.ts";
import {
  advance,
  encodeSwitchoverRecord,
  parsePauseNote,
  parseSwitchoverRecord,
  type SwitchoverRecord,
} from "../../lib/cluster/controls.ts";
import { CapturingLogger } from "../../lib/log.ts";
import { ResecMetrics } from "../../lib/metrics/resec.ts";
import { parseExposition } from "../../lib/metrics/testing.ts";
import { InvalidRecordError, RecordFields } from "../../lib/record.ts";

const ISSUE_14_RECORD = '{"id":"x","state":"in-progress","to":"127.0.0.1:1","from":"no-port"}';

/** Consul's KV endpoints over a map, with blocking reads that wait for the next write. */
class FakeKv {
  index = 1;
  readonly #entries = new Map<string, { value: string; modifyIndex: number; session?: string }>();
  readonly #waiters = new Set<() => void>();

  put(key: string, value: string, session?: string): void {
    this.index++;
    this.#entries.set(key, { value, modifyIndex: this.index, ...(session ? { session } : {}) });
    for (const wake of this.#waiters) wake();
    this.#waiters.clear();
  }

  readonly fetch: FetchLike = async (input, init) => {
    const url = new URL(input);
    const signal = init.signal ?? undefined;
    if (Number(url.searchParams.get("index") ?? 0) >= this.index) {
      await new Promise<void>((resolve) => {
        this.#waiters.add(resolve);
        signal?.addEventListener("abort", () => resolve(), { once: true });
      });
    }
    if (signal?.aborted) throw signal.reason;
    const key = decodeURIComponent(url.pathname.slice("/v1/kv/".length));
    const recurse = url.searchParams.has("recurse");
    const found = [...this.#entries].filter(([name]) =>
      recurse ? name.startsWith(key) : name === key
    );
    if (found.length === 0) return consulText(404, "", { "X-Consul-Index": String(this.index) });
    return consulJson(
      found.map(([name, entry]) => ({
        Key: name,
        Value: btoa(entry.value),
        ModifyIndex: entry.modifyIndex,
        CreateIndex: entry.modifyIndex,
        LockIndex: entry.session ? 1 : 0,
        Flags: 0,
        ...(entry.session ? { Session: entry.session } : {}),
      })),
      { index: this.index },
    );
  };

  client(): ConsulClient {
    return new ConsulClient({ connection: { baseUrl: "http://consul:8500" }, fetch: this.fetch });
  }
}

/** Polls `condition` until it holds (the sources react to the fake KV within milliseconds). */
async function waitFor(condition: () => boolean, timeoutMs = 2_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`Gave up after ${timeoutMs} ms: ${condition}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const warnings = (logger: CapturingLogger, key: string) =>
  logger.lines.filter((line) => line.level === "warn" && line.fields.key === key);

// ---- the reporter -----------------------------------------------------------------------------

Deno.test("an invalid record is reported once per distinct value, and again at most once a minute", () => {
  let now = 1_000;
  const clock = { now: () => now, wallNow: () => now, sleep: () => Promise.resolve() };
  const logger = new CapturingLogger();
  const counted: string[] = [];
  const reporter = new InvalidRecordReporter({
    logger,
    clock,
    onInvalid: (key) => counted.push(key),
  });
  const report = (value: string) => reporter.invalid("k", value, `bad ${value}`, "ignored");
  report("a");
  for (let second = 1; second < 60; second++) {
    now = 1_000 + second * 1_000;
    report("a");
  }
  assert.equal(warnings(logger, "k").length, 1, "one warning in the first minute");
  now = 1_000 + INVALID_RECORD_REMINDER_MS;
  report("a");
  assert.equal(warnings(logger, "k").length, 2, "a reminder after a minute");
  report("b");
  assert.equal(warnings(logger, "k").length, 3, "a new bad value is news at once");
  assert.deepEqual(warnings(logger, "k")[2]!.fields, {
    key: "k",
    reason: "bad b",
    effect: "ignored",
  });
  assert.deepEqual(counted, ["k", "k"], "counted once per distinct value");

  reporter.valid("k");
  report("b");
  assert.equal(warnings(logger, "k").length, 4, "the same bad value after a good one is news");
  reporter.retain(new Set());
  report("b");
  assert.equal(warnings(logger, "k").length, 5, "a deleted key is forgotten");
});

Deno.test("record fields: every reader checks its type, and a reason quotes at most 60 characters", () => {
  const fields = RecordFields.parse(
    "test record",
    JSON.stringify({ s: "x", n: 3, b: false, a: "[::1]:1", t: "2026-01-01T00:00:00Z" }),
  );
  assert.equal(fields.text("s"), "x");
  assert.equal(fields.integer("n", { min: 0, max: 3 }), 3);
  assert.equal(fields.boolean("b"), false);
  assert.deepEqual(fields.address("a"), { host: "::1", port: 1 });
  assert.equal(fields.timestamp("t"), "2026-01-01T00:00:00Z");
  assert.equal(fields.optionalText("absent"), undefined);
  assert.throws(() => fields.integer("n", { min: 4 }), InvalidRecordError);
  assert.throws(
    () => fields.text("n"),
    /Cannot parse the test record: "n" must be a string, not 3/,
  );
  assert.throws(() => RecordFields.parse("r", "y".repeat(5_000)), (caught: unknown) => {
    assert.ok(caught instanceof InvalidRecordError);
    assert.ok(caught.message.length < 120, caught.message);
    assert.equal(caught.record, "r");
    return true;
  });
});

// ---- pause note and switchover encoding -------------------------------------------------------

Deno.test("the pause note resec pause writes parses; anything else is refused with a reason", () => {
  assert.deepEqual(parsePauseNote('{"reason":"redis upgrade","since":"2026-11-22T10:00:00Z"}'), {
    reason: "redis upgrade",
    since: "2026-11-22T10:00:00Z",
  });
  for (
    const [text, reason] of [
      ["", /pause note: "" is not JSON/],
      ["1", /expected a JSON object/],
      ['{"reason":"x"}', /"since" is missing/],
      ['{"reason":5,"since":"2026-11-22"}', /"reason" must be a string/],
      [JSON.stringify({ reason: "r".repeat(5_000), since: "2026-11-22" }), /at most 1024/],
    ] as const
  ) {
    assert.throws(() => parsePauseNote(text), reason);
  }
});

Deno.test("a switchover record encodes to what it parses from, progress updates included", () => {
  const record: SwitchoverRecord = {
    id: "r-1",
    state: "in-progress",
    to: { host: "::1", port: 6380 },
    from: { host: "10.0.0.1", port: 6379 },
    timeoutMs: 30_000,
    requestedAt: "2026-11-22T10:00:00.000Z",
    detail: "chosen",
  };
  const text = encodeSwitchoverRecord(record);
  assert.match(text, /"to":"\[::1\]:6380","from":"10\.0\.0\.1:6379"/);
  assert.deepEqual(parseSwitchoverRecord(text), record);
  // An agent's own progress update stays readable, however long the error it reports.
  const failed = advance(record, "failed", { detail: "e".repeat(5_000) });
  assert.equal(parseSwitchoverRecord(encodeSwitchoverRecord(failed)).state, "failed");
});

// ---- the sources ------------------------------------------------------------------------------

Deno.test("the switchover record from issue 14 is no switchover; a valid one replacing it is followed", async () => {
  const kv = new FakeKv();
  const logger = new CapturingLogger();
  const counted: string[] = [];
  using client = kv.client();
  await using control = new ControlSource({
    client,
    lockKey: "resec/.lock",
    logger,
    onChange: () => {},
    onInvalidRecord: (key) => counted.push(key),
  });
  kv.put("resec/.lock.switchover", ISSUE_14_RECORD);
  await waitFor(() => warnings(logger, "resec/.lock.switchover").length > 0);
  assert.equal(control.switchover(), undefined);
  const [warning] = warnings(logger, "resec/.lock.switchover");
  assert.match(String(warning!.fields.reason), /"from": Cannot parse address "no-port"/);
  assert.match(String(warning!.fields.effect), /no switchover/);
  assert.deepEqual(counted, ["resec/.lock.switchover"]);

  kv.put(
    "resec/.lock.switchover",
    JSON.stringify({ id: "ok", state: "requested", timeoutMs: 1_000, requestedAt: "2026-11-22" }),
  );
  await waitFor(() => control.switchover()?.record.id === "ok");
  assert.equal(control.switchover()?.modifyIndex, kv.index);
});

Deno.test("a pause key whose note is unreadable still pauses, and says so", async () => {
  const kv = new FakeKv();
  const logger = new CapturingLogger();
  using client = kv.client();
  await using control = new ControlSource({
    client,
    lockKey: "resec/.lock",
    logger,
    onChange: () => {},
  });
  kv.put("resec/.lock.paused", "1");
  await waitFor(() => control.paused());
  await waitFor(() => warnings(logger, "resec/.lock.paused").length > 0);
  assert.match(String(warnings(logger, "resec/.lock.paused")[0]!.fields.effect), /paused anyway/);
});

Deno.test("an invalid candidacy makes its peer ineligible at once, and is counted under the prefix", async () => {
  const kv = new FakeKv();
  const logger = new CapturingLogger();
  const counted: string[] = [];
  using client = kv.client();
  await using board = new CandidacyBoard({
    client,
    lockKey: "resec/.lock",
    self: "10.0.0.1:6379",
    session: { name: "resec", serviceChecks: () => [], ttlMs: 15_000 },
    staleAfterMs: 12_000,
    clock: systemClock,
    logger,
    onChange: () => {},
    onInvalidRecord: (prefix) => counted.push(prefix),
  });
  const peer: Candidacy = {
    address: "10.0.0.2:6379",
    runId: "c".repeat(40),
    replicationId: "a".repeat(40),
    replicationId2: "",
    offset: 10,
    role: "replica",
    healthy: true,
    datasetEmpty: false,
    synced: true,
    priority: 100,
    forced: false,
    vacancy: 0,
    updatedAt: "2026-11-22T10:00:00.000Z",
  };
  kv.put("resec/.lock.candidates/10.0.0.2:6379", JSON.stringify(peer));
  await waitFor(() => board.peers().length === 1);
  kv.put("resec/.lock.candidates/10.0.0.2:6379", JSON.stringify({ ...peer, offset: "10" }));
  kv.put("resec/.lock.candidates/10.0.0.3:6379", "not json");
  await waitFor(() => board.peers().length === 0);
  await waitFor(() => counted.length === 2);
  assert.deepEqual(counted, ["resec/.lock.candidates/", "resec/.lock.candidates/"]);
  assert.match(
    String(warnings(logger, "resec/.lock.candidates/10.0.0.2:6379")[0]!.fields.reason),
    /"offset" must be an integer/,
  );
  kv.put("resec/.lock.candidates/10.0.0.2:6379", JSON.stringify(peer));
  await waitFor(() => board.peers().length === 1);
});

Deno.test("a lock holder whose value is invalid counts as one that announced nothing", async () => {
  const kv = new FakeKv();
  const logger = new CapturingLogger();
  const counted: string[] = [];
  using client = new ConsulClient({
    connection: { baseUrl: "http://consul:8500" },
    // The catalog fallback: no passing master, so nobody is named.
    fetch: (input, init) =>
      new URL(input).pathname.startsWith("/v1/health/")
        ? Promise.resolve(consulJson([], { index: 1 }))
        : kv.fetch(input, init),
  });
  await using source = new LeaderSource({
    client,
    lockKey: "resec/.lock",
    masterService: { name: "redis-master" },
    waitMs: 1_000,
    logger,
    onInvalidRecord: (key) => counted.push(key),
  });
  kv.put("resec/.lock", '{"address":"10.0.0.1","agent":"resec","since":"2026-11-22"}', "s-1");
  await waitFor(() => warnings(logger, "resec/.lock").length > 0);
  // Held all the same: not free, only its address is unknown (no passing master to name it).
  assert.equal(source.leader(), undefined);
  assert.match(String(warnings(logger, "resec/.lock")[0]!.fields.effect), /announced nothing/);
  assert.deepEqual(counted, ["resec/.lock"]);

  kv.put("resec/.lock", '{"address":"10.0.0.1:6379","agent":"resec","since":"2026-11-22"}', "s-1");
  await waitFor(() => source.leader()?.address.port === 6379);
  assert.deepEqual(source.leader(), {
    address: { host: "10.0.0.1", port: 6379 },
    session: "s-1",
    lockIndex: 1,
  });
});

Deno.test("invalid records and evaluation errors have counters", () => {
  const metrics = new ResecMetrics();
  metrics.invalidRecord("resec/.lock.switchover");
  metrics.invalidRecord("resec/.lock.switchover");
  metrics.evaluationFailed();
  const samples = parseExposition(metrics.render()).samples;
  assert.equal(samples.get('resec_invalid_records_total{key="resec/.lock.switchover"}'), 2);
  assert.equal(samples.get("resec_evaluation_errors_total"), 1);
});
