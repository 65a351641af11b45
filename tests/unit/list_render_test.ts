/**
 * `resec list`'s output and loop: the aligned table, the JSON, and `--watch` until Ctrl-C, with the
 * records and the clock injected (no Consul).
 */
import assert from "node:assert/strict";
import type { Clock } from "../../lib/clock.ts";
import { parseConfig } from "../../lib/config.ts";
import { ConsulUnreachableError } from "../../lib/consul/errors.ts";
import type { HealthEntry } from "../../lib/consul/health.ts";
import type { KvEntry } from "../../lib/consul/kv.ts";
import { listCluster } from "../../lib/list/command.ts";
import { type GroupRecords, listGroup } from "../../lib/list/model.ts";
import { renderJson, renderTable } from "../../lib/list/render.ts";

const LOCK = "resec/.lock";
const NOW = Date.parse("2026-11-22T00:00:10.000Z");

function kv(key: string, value: unknown, extra: Partial<KvEntry> = {}): KvEntry {
  const text = typeof value === "string" ? value : JSON.stringify(value);
  return {
    key,
    value: text,
    bytes: new TextEncoder().encode(text),
    lockIndex: 0,
    modifyIndex: 1,
    createIndex: 1,
    flags: 0,
    ...extra,
  };
}

function candidacy(address: string, role: "master" | "replica", offset: number): KvEntry {
  return kv(`${LOCK}.candidates/${address}`, {
    address,
    runId: "r",
    replicationId: "a".repeat(40),
    replicationId2: "",
    offset,
    role,
    healthy: true,
    datasetEmpty: false,
    synced: true,
    priority: 100,
    forced: false,
    vacancy: 0,
    updatedAt: "2026-11-22T00:00:07.000Z",
  });
}

function service(address: string, name: string, status: "passing" | "critical"): HealthEntry {
  const port = Number(address.split(":")[1]);
  return {
    node: "node-1",
    address: "127.0.0.1",
    port,
    serviceId: `${name}@${address}`,
    serviceName: name,
    tags: [],
    meta: {},
    status,
    checks: [],
  };
}

function records(masterStatus: "passing" | "critical" = "passing"): GroupRecords {
  return {
    lockKey: LOCK,
    entries: [
      kv(LOCK, {
        address: "127.0.0.1:7001",
        agent: "resec",
        since: "2026-11-22T00:00:00.000Z",
        epoch: 2,
      }, { session: "s-1", lockIndex: 2 }),
      candidacy("127.0.0.1:7001", "master", 900),
      candidacy("127.0.0.1:7002", "replica", 900),
      candidacy("127.0.0.1:17003", "replica", 850),
    ],
    masters: [service("127.0.0.1:7001", "redis", masterStatus)],
    slaves: [service("127.0.0.1:7002", "redis", "passing"), {
      ...service("127.0.0.1:17003", "redis", "passing"),
      node: "a-much-longer-node-name",
    }],
    agents: [],
    readAt: NOW,
  };
}

const SETTINGS = { maxLagBytes: 1_000, staleAfterMs: 10_000 };

Deno.test("the table aligns every column and ends with the verdict and its exit code", () => {
  const lines = renderTable(listGroup(records(), SETTINGS));
  assert.equal(
    lines[0],
    "resec/.lock: lock held by 127.0.0.1:7001 (epoch 2, since 2026-11-22T00:00:00.000Z, " +
      'agent "resec", session s-1)',
  );
  assert.equal(lines[1], "maintenance mode: off; switchover: none");
  const table = lines.slice(2, 6);
  assert.match(
    table[0]!,
    /^MEMBER +NODE +LOCK +REDIS +CONSUL +CHECK +AGENT +LAG +PRIO +PUBLISHED +ELIGIBLE$/,
  );
  for (const column of ["NODE", "REDIS", "LAG", "ELIGIBLE"]) {
    const at = table[0]!.indexOf(column);
    for (const row of table.slice(1)) {
      assert.equal(row[at - 1], " ", `${column} starts after a space in ${JSON.stringify(row)}`);
      assert.notEqual(
        row[at],
        " ",
        `${column} starts at the same offset in ${JSON.stringify(row)}`,
      );
    }
  }
  assert.match(
    table[1]!,
    /^127\.0\.0\.1:7001 +node-1 +holder +master +master +passing +- +0 +100 +3s ago +yes$/,
  );
  assert.match(
    table[3]!,
    /^127\.0\.0\.1:17003 +a-much-longer-node-name +replica +slave +passing +- +50 +/,
  );
  assert.deepEqual(lines.slice(6), ["status: healthy (exit 0)"]);
});

Deno.test("the table lists each reason for a verdict that is not healthy", () => {
  const lines = renderTable(listGroup(records("critical"), SETTINGS));
  assert.deepEqual(lines.slice(-3), [
    "status: no-master (exit 3)",
    "  - no passing master; the lock holder is 127.0.0.1:7001",
    "  - 127.0.0.1:7001: its master check is critical",
  ]);
});

Deno.test("the JSON is the whole listing, on one line for --watch", () => {
  const listing = listGroup(records(), SETTINGS);
  const pretty = renderJson(listing, { pretty: true });
  assert.deepEqual(JSON.parse(pretty), JSON.parse(JSON.stringify(listing)));
  assert.match(pretty, /\n {2}"lockKey": "resec\/\.lock",\n/);
  const line = renderJson(listing, { pretty: false });
  assert.doesNotMatch(line, /\n/);
  const parsed = JSON.parse(line);
  assert.equal(parsed.exitCode, 0);
  assert.equal(parsed.members[0].address, "127.0.0.1:7001");
  assert.equal(parsed.members[0].lockHolder, true);
});

function config() {
  const result = parseConfig({ REDIS_ADDR: "127.0.0.1:7001" });
  if (!result.ok) throw new Error("bad test config");
  return result.config;
}

/** A clock whose sleeps return at once, counting them; the test aborts after `sleeps`. */
function fakeClock(stop: AbortController, sleeps: number): Clock & { slept: number[] } {
  const slept: number[] = [];
  return {
    slept,
    now: () => NOW,
    wallNow: () => NOW,
    sleep: (ms) => {
      slept.push(ms);
      if (slept.length >= sleeps) stop.abort(new Error("Ctrl-C"));
      return Promise.resolve();
    },
  };
}

Deno.test("once, the listing's exit code is the command's", async () => {
  const out: string[] = [];
  const code = await listCluster(config(), { json: false }, {
    stdout: (text) => out.push(text),
    stderr: (text) => out.push(text),
    read: () => Promise.resolve(records("critical")),
  });
  assert.equal(code, 3);
  assert.equal(out.length, 1);
  assert.match(out[0]!, /status: no-master \(exit 3\)/);
});

Deno.test("--watch refreshes every interval until Ctrl-C and returns the last listing's code", async () => {
  const stop = new AbortController();
  const clock = fakeClock(stop, 3);
  const out: string[] = [];
  const err: string[] = [];
  const answers = [
    () => Promise.resolve(records()),
    () => Promise.reject(new ConsulUnreachableError("http://127.0.0.1:8500", "connection refused")),
    () => Promise.resolve(records("critical")),
  ];
  let clears = 0;
  const code = await listCluster(config(), { json: true, watchMs: 2_000 }, {
    stdout: (text) => out.push(text),
    stderr: (text) => err.push(text),
    clearScreen: () => clears++,
    signal: stop.signal,
    clock,
    read: () => answers.shift()!(),
  });
  assert.deepEqual(clock.slept, [2_000, 2_000, 2_000]);
  assert.equal(out.length, 2, "one JSON line per successful read");
  assert.deepEqual(out.map((line) => JSON.parse(line).exitCode), [0, 3]);
  assert.equal(err.length, 1);
  assert.match(err[0]!, /^resec list: cannot read Consul: /);
  assert.equal(clears, 0, "JSON lines are never cleared away");
  assert.equal(code, 3);
});

Deno.test("a watched table redraws in place and says how to stop", async () => {
  const stop = new AbortController();
  const out: string[] = [];
  let clears = 0;
  await listCluster(config(), { json: false, watchMs: 5_000 }, {
    stdout: (text) => out.push(text),
    stderr: (text) => out.push(text),
    clearScreen: () => clears++,
    signal: stop.signal,
    clock: fakeClock(stop, 1),
    read: () => Promise.resolve(records()),
  });
  assert.equal(clears, 1);
  assert.equal(out[0], "read at 2026-11-22T00:00:10.000Z, every 5s; Ctrl-C ends");
  assert.match(out[1]!, /^resec\/\.lock: lock held by/);
});
