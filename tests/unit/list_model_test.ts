/**
 * `resec list`'s model: from the records in Consul to one row per member and a verdict, with records
 * someone else wrote badly shown as invalid rather than crashing the listing.
 */
import assert from "node:assert/strict";
import type { Candidacy } from "../../lib/reconciler/election.ts";
import type { CheckStatus, HealthEntry } from "../../lib/consul/health.ts";
import type { KvEntry } from "../../lib/consul/kv.ts";
import {
  type GroupListing,
  type GroupRecords,
  LIST_EXIT_CODES,
  listGroup,
  type ListSettings,
  memberAddressOf,
  type MemberRow,
} from "../../lib/list/model.ts";

const LOCK = "resec/.lock";
const NOW = Date.parse("2026-11-22T00:00:10.000Z");
const HISTORY = "a".repeat(40);
const A = "10.0.0.1:6379";
const B = "10.0.0.2:6379";
const C = "10.0.0.3:6379";
const SETTINGS: ListSettings = { maxLagBytes: 1_048_576, staleAfterMs: 10_000 };

function kv(key: string, value: string, extra: Partial<KvEntry> = {}): KvEntry {
  return {
    key,
    value,
    bytes: new TextEncoder().encode(value),
    lockIndex: 0,
    modifyIndex: 10,
    createIndex: 5,
    flags: 0,
    ...extra,
  };
}

function candidacy(address: string, overrides: Partial<Candidacy> = {}): KvEntry {
  const value: Candidacy = {
    address,
    runId: `run-${address}`,
    replicationId: HISTORY,
    replicationId2: "0".repeat(40),
    offset: 5_000,
    role: "replica",
    healthy: true,
    datasetEmpty: false,
    synced: true,
    priority: 100,
    forced: false,
    vacancy: 0,
    updatedAt: "2026-11-22T00:00:08.000Z",
    ...overrides,
  };
  return kv(`${LOCK}.candidates/${address}`, JSON.stringify(value));
}

function lock(holder: string | undefined, value?: string): KvEntry {
  const announced = value ?? JSON.stringify({
    address: holder,
    agent: "resec",
    runId: `run-${holder}`,
    since: "2026-11-22T00:00:00.000Z",
    epoch: 3,
  });
  return kv(LOCK, announced, { session: "5e55-10", lockIndex: 3 });
}

function service(
  address: string,
  role: "master" | "slave" | "agent",
  status: CheckStatus = "passing",
  output = "",
): HealthEntry {
  const [host, port] = [address.slice(0, address.lastIndexOf(":")), address.split(":").pop()!];
  const id = `redis${role === "agent" ? "-agent" : ""}@${address}`;
  return {
    node: `node-${host.split(".").pop()}`,
    address: host,
    port: Number(port),
    serviceId: id,
    serviceName: `redis-${role}`,
    tags: [],
    meta: {},
    status,
    checks: [{ id: `${id}:check`, name: "check", status, serviceId: id, output }],
  };
}

/** A converged group: A leads, B and C replicate it; everyone's agent is alive. */
function healthyRecords(): GroupRecords {
  return {
    lockKey: LOCK,
    entries: [
      lock(A),
      candidacy(A, { role: "master", offset: 5_100 }),
      candidacy(B, { offset: 5_100 }),
      candidacy(C, { offset: 5_000 }),
    ],
    masters: [service(A, "master", "passing", "role=master offset=5100")],
    slaves: [service(B, "slave"), service(C, "slave")],
    agents: [service(A, "agent"), service(B, "agent"), service(C, "agent")],
    readAt: NOW,
  };
}

function with_(records: GroupRecords, changes: Partial<GroupRecords>): GroupRecords {
  return { ...records, ...changes };
}

function member(listing: GroupListing, address: string): MemberRow {
  const row = listing.members.find((each) => each.address === address);
  assert.ok(row, `no row for ${address}`);
  return row;
}

Deno.test("a converged group is healthy: one master holding the lock, every member passing and eligible", () => {
  const listing = listGroup(healthyRecords(), SETTINGS);
  assert.equal(listing.verdict, "healthy");
  assert.equal(listing.exitCode, 0);
  assert.deepEqual(listing.problems, []);
  assert.deepEqual(listing.members.map((row) => row.address), [A, B, C]);
  assert.deepEqual(listing.lock, {
    state: "held",
    session: "5e55-10",
    epoch: 3,
    holder: A,
    holderFrom: "announcement",
    agent: "resec",
    since: "2026-11-22T00:00:00.000Z",
  });
  const a = member(listing, A);
  assert.equal(a.lockHolder, true);
  assert.equal(a.consulRole, "master");
  assert.equal(a.redis?.role, "master");
  assert.equal(a.checkOutput, "role=master offset=5100");
  assert.equal(a.lagBytes, 0);
  const c = member(listing, C);
  assert.equal(c.lockHolder, false);
  assert.equal(c.consulRole, "slave");
  assert.equal(c.check, "passing");
  assert.equal(c.agent, "alive");
  assert.equal(c.lagBytes, 100);
  assert.equal(c.eligible, true);
  assert.equal(c.redis?.ageMs, 2_000);
  assert.equal(c.redis?.stale, false);
  assert.deepEqual(listing.pause, { paused: false });
  assert.equal(listing.switchover, undefined);
});

Deno.test("no passing master exits 3 and says whether the lock is free", () => {
  const records = healthyRecords();
  const listing = listGroup(
    with_(records, {
      entries: records.entries.filter((entry) => entry.key !== LOCK),
      masters: [service(A, "master", "critical", "Redis is down: connection refused")],
    }),
    SETTINGS,
  );
  assert.equal(listing.verdict, "no-master");
  assert.equal(listing.exitCode, LIST_EXIT_CODES["no-master"]);
  assert.equal(listing.exitCode, 3);
  assert.deepEqual(listing.lock, { state: "free" });
  assert.match(listing.problems[0]!, /no passing master, and the lock is free/);
  assert.ok(listing.problems.includes(`${A}: its master check is critical`));
});

Deno.test("two passing masters exit 4, whatever else holds", () => {
  const records = healthyRecords();
  const listing = listGroup(
    with_(records, {
      masters: [service(A, "master"), service(B, "master")],
      slaves: [service(C, "slave")],
    }),
    SETTINGS,
  );
  assert.equal(listing.verdict, "conflicting-masters");
  assert.equal(listing.exitCode, 4);
  assert.deepEqual(listing.passingMasters, [A, B]);
  assert.match(listing.problems[0]!, /2 passing masters: 10\.0\.0\.1:6379, 10\.0\.0\.2:6379/);
});

Deno.test("a passing master that is not the announced lock holder is a conflict", () => {
  const records = healthyRecords();
  const listing = listGroup(
    with_(records, { entries: [lock(B), ...records.entries.slice(1)] }),
    SETTINGS,
  );
  assert.equal(listing.verdict, "conflicting-masters");
  assert.match(listing.problems[0]!, /the passing master 10\.0\.0\.1:6379 does not hold the lock/);
  assert.equal(member(listing, B).lockHolder, true);
});

Deno.test("a replica lagging beyond MAX_LAG_ON_FAILOVER is degraded and ineligible, with the lag", () => {
  const records = healthyRecords();
  const listing = listGroup(
    with_(records, {
      entries: [
        lock(A),
        candidacy(A, { role: "master", offset: 3_000_000 }),
        candidacy(B, { offset: 3_000_000 }),
        candidacy(C, { offset: 1_000 }),
      ],
    }),
    SETTINGS,
  );
  assert.equal(listing.verdict, "degraded");
  assert.equal(listing.exitCode, 1);
  const c = member(listing, C);
  assert.equal(c.lagBytes, 2_999_000);
  assert.equal(c.eligible, false);
  assert.match(c.ineligibleReason!, /lags 2999000 bytes behind the best offset 3000000/);
  assert.deepEqual(listing.problems, [
    `${C}: it may not be promoted: ${c.ineligibleReason}`,
  ]);
  assert.equal(member(listing, B).eligible, true);
});

Deno.test("an empty node that never synced is ineligible for the election's own reason", () => {
  const records = healthyRecords();
  const listing = listGroup(
    with_(records, {
      entries: [
        ...records.entries.slice(0, 3),
        candidacy(C, {
          datasetEmpty: true,
          synced: false,
          offset: 0,
          replicationId: "b".repeat(40),
        }),
      ],
    }),
    SETTINGS,
  );
  const c = member(listing, C);
  assert.equal(c.eligible, false);
  assert.match(c.ineligibleReason!, /^its dataset is empty while 10\.0\.0\.\d:6379 has data$/);
  assert.equal(c.lagBytes, undefined, "another history: its offset does not compare");
  assert.equal(listing.verdict, "degraded");
});

Deno.test("priority 0 makes a replica ineligible without degrading the group", () => {
  const records = healthyRecords();
  const listing = listGroup(
    with_(records, { entries: [...records.entries.slice(0, 3), candidacy(C, { priority: 0 })] }),
    SETTINGS,
  );
  assert.equal(member(listing, C).ineligibleReason, "priority 0: never promoted");
  assert.equal(listing.verdict, "healthy");
});

Deno.test("maintenance mode shows its note and degrades the group; a bad note still pauses", () => {
  const records = healthyRecords();
  const note = JSON.stringify({ reason: "redis upgrade", since: "2026-11-22T00:00:05.000Z" });
  const paused = listGroup(
    with_(records, { entries: [...records.entries, kv(`${LOCK}.paused`, note)] }),
    SETTINGS,
  );
  assert.deepEqual(paused.pause, {
    paused: true,
    reason: "redis upgrade",
    since: "2026-11-22T00:00:05.000Z",
  });
  assert.equal(paused.verdict, "degraded");
  assert.deepEqual(paused.problems, ["maintenance mode is on: no agent fails over"]);

  const bad = listGroup(
    with_(records, { entries: [...records.entries, kv(`${LOCK}.paused`, "yes")] }),
    SETTINGS,
  );
  assert.equal(bad.pause.paused, true);
  assert.match(bad.pause.paused ? bad.pause.invalid ?? "" : "", /"yes" is not JSON/);
});

Deno.test("a switchover in progress is shown with both ends and degrades the group", () => {
  const records = healthyRecords();
  const record = JSON.stringify({
    id: "req-1",
    state: "in-progress",
    from: A,
    to: B,
    timeoutMs: 30_000,
    requestedAt: "2026-11-22T00:00:09.000Z",
  });
  const listing = listGroup(
    with_(records, { entries: [...records.entries, kv(`${LOCK}.switchover`, record)] }),
    SETTINGS,
  );
  assert.deepEqual(listing.switchover, {
    valid: true,
    id: "req-1",
    state: "in-progress",
    active: true,
    from: A,
    to: B,
    requestedAt: "2026-11-22T00:00:09.000Z",
  });
  assert.deepEqual(listing.problems, ["a switchover is in-progress"]);
  assert.equal(listing.exitCode, 1);

  const done = listGroup(
    with_(records, {
      entries: [
        ...records.entries,
        kv(`${LOCK}.switchover`, JSON.stringify({ ...JSON.parse(record), state: "done" })),
      ],
    }),
    SETTINGS,
  );
  assert.equal(done.verdict, "healthy", "a finished switchover is history");
});

Deno.test("records someone else wrote badly become invalid rows and notes, never a crash", () => {
  const records = healthyRecords();
  const listing = listGroup(
    with_(records, {
      entries: [
        lock(A, '{"address":"nowhere"}'),
        ...records.entries.slice(1, 3),
        kv(`${LOCK}.candidates/${C}`, "{not json"),
        kv(`${LOCK}.candidates/junk`, JSON.stringify({ address: A })),
        kv(`${LOCK}.switchover`, JSON.stringify({ id: "x", state: "in-progress" })),
        kv("resec/.lockother/unrelated", "ignored"),
      ],
    }),
    SETTINGS,
  );
  assert.deepEqual(listing.members.map((row) => row.address), [A, B, C, "junk"]);
  const c = member(listing, C);
  assert.match(c.invalidCandidacy!, /is not JSON/);
  assert.equal(c.eligible, false);
  assert.match(c.ineligibleReason!, /^its candidacy is invalid: /);
  assert.equal(c.consulRole, "slave", "its service is still listed");
  const junk = member(listing, "junk");
  assert.match(junk.invalidCandidacy!, /under the key of "junk"|is missing/);
  assert.ok(junk.problems.includes("it is not registered as master or slave in Consul"));
  assert.ok(listing.lock.state === "held");
  assert.equal(listing.lock.holderFrom, "catalog", "an invalid value falls back to the catalog");
  assert.equal(listing.lock.holder, A);
  assert.match(listing.lock.invalid!, /"address"/);
  assert.equal(listing.switchover?.valid, false);
  assert.ok(listing.problems.some((problem) => /the lock value is invalid/.test(problem)));
  assert.ok(listing.problems.some((problem) => /the switchover record is invalid/.test(problem)));
  assert.equal(listing.verdict, "degraded");
});

Deno.test("a holder that announced nothing (a Go resec) leads the one passing master", () => {
  const records = healthyRecords();
  const listing = listGroup(
    with_(records, { entries: [lock(undefined, ""), ...records.entries.slice(1)] }),
    SETTINGS,
  );
  assert.ok(listing.lock.state === "held");
  assert.equal(listing.lock.holder, A);
  assert.equal(listing.lock.holderFrom, "catalog");
  assert.equal(listing.lock.epoch, 3, "the LockIndex");
  assert.equal(listing.verdict, "healthy");
});

Deno.test("a dead agent's member shows its stale candidacy and its agent down", () => {
  const records = healthyRecords();
  const listing = listGroup(
    with_(records, {
      entries: [
        ...records.entries.slice(0, 3),
        candidacy(C, { updatedAt: "2026-11-21T23:58:00.000Z" }),
      ],
      slaves: [service(B, "slave"), service(C, "slave", "critical")],
      agents: [service(A, "agent"), service(B, "agent"), service(C, "agent", "critical")],
    }),
    SETTINGS,
  );
  const c = member(listing, C);
  assert.equal(c.agent, "down");
  assert.equal(c.redis?.stale, true);
  assert.equal(c.ineligibleReason, "its candidacy is stale (published 2m10s ago)");
  assert.deepEqual(c.problems, [
    "its slave check is critical",
    "its agent's check is not passing",
    "it may not be promoted: its candidacy is stale (published 2m10s ago)",
  ]);
});

Deno.test("a member registered but publishing no candidacy is ineligible and named as such", () => {
  const records = healthyRecords();
  const listing = listGroup(
    with_(records, { entries: records.entries.slice(0, 3), agents: records.agents.slice(0, 2) }),
    SETTINGS,
  );
  const c = member(listing, C);
  assert.equal(c.redis, undefined);
  assert.equal(c.agent, "absent");
  assert.match(c.ineligibleReason!, /publishes no candidacy/);
});

Deno.test("a service instance stands for the address its ID names, else its own address", () => {
  const entry = service(A, "slave");
  assert.equal(memberAddressOf(entry), A);
  assert.equal(
    memberAddressOf({ ...entry, serviceId: "redis@:6379", address: "10.0.0.9", port: 6379 }),
    "10.0.0.9:6379",
  );
  assert.equal(
    memberAddressOf({ ...entry, serviceId: "redis@[::1]:7000", address: "::1", port: 7000 }),
    "[::1]:7000",
  );
  assert.equal(
    memberAddressOf({ ...entry, serviceId: "plain", address: "fe80::1", port: 7000 }),
    "[fe80::1]:7000",
  );
});
