/**
 * Fuzzing INFO parsing: any text, and real INFO answers (tests/unit/fixtures/redis/) with lines
 * changed, dropped, repeated, cut or added, parse without an exception into fields that keep their
 * types and ranges, so no decision downstream meets a negative offset or a role Redis never has.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { parseInfo, type RedisInfo } from "../../lib/redis/info.ts";
import { checkProperty } from "./fuzz.ts";

const FIXTURES = new URL("../unit/fixtures/redis/", import.meta.url);
const REAL_ANSWERS = [...Deno.readDirSync(FIXTURES)]
  .filter((entry) => entry.name.endsWith(".txt"))
  .map((entry) => Deno.readTextFileSync(new URL(entry.name, FIXTURES)));

/** Values near what INFO fields hold, and past their edges. */
const fieldValues = fc.oneof(
  fc.constantFrom(
    "",
    "0",
    "-1",
    "1",
    "-0",
    "+5",
    "00012",
    "1e3",
    "0x10",
    "9007199254740993",
    "99999999999999999999999",
    "-99999999999999999999999",
    "master",
    "slave",
    "replica",
    "up",
    "down",
    "ip=10.0.0.1,port=6379,state=online,offset=5,lag=0",
    "ip=,port=-1,state=,offset=-7,lag=-3",
    "ip=::1,port=99999,offset=1e3",
    "keys=-5,expires=-1,avg_ttl=0",
    "keys=9007199254740991,expires=0",
    "keys=,expires=x",
    " spaced ",
    "a:b:c",
  ),
  fc.integer().map(String),
  fc.string({ maxLength: 30 }),
);

/** Field names INFO has, plus repeated and odd ones. */
const fieldNames = fc.oneof(
  fc.constantFrom(
    "role",
    "master_host",
    "master_port",
    "master_link_status",
    "master_link_down_since_seconds",
    "master_last_io_seconds_ago",
    "master_sync_in_progress",
    "slave_repl_offset",
    "slave_priority",
    "replica_priority",
    "slave_read_only",
    "connected_slaves",
    "master_failover_state",
    "master_replid",
    "master_replid2",
    "master_repl_offset",
    "second_repl_offset",
    "loading",
    "async_loading",
    "uptime_in_seconds",
    "tcp_port",
    "slave0",
    "slave1",
    "slave99999999999999999999",
    "db0",
    "db15",
    "db99999999999999999999",
    "db-1",
    "__proto__",
  ),
  fc.string({ maxLength: 12 }),
);

type Edit =
  | { kind: "set"; line: number; value: string }
  | { kind: "drop"; line: number }
  | { kind: "repeat"; line: number }
  | { kind: "add"; line: number; text: string }
  | { kind: "cut"; at: number }
  | { kind: "endings" };

const edits: fc.Arbitrary<Edit> = fc.oneof(
  fc.record({ kind: fc.constant("set" as const), line: fc.nat(), value: fieldValues }),
  fc.record({ kind: fc.constant("drop" as const), line: fc.nat() }),
  fc.record({ kind: fc.constant("repeat" as const), line: fc.nat() }),
  fc.record({
    kind: fc.constant("add" as const),
    line: fc.nat(),
    text: fc.oneof(
      fc.tuple(fieldNames, fieldValues).map(([name, value]) => `${name}:${value}`),
      fc.string({ unit: "binary", maxLength: 40 }),
    ),
  }),
  fc.record({ kind: fc.constant("cut" as const), at: fc.nat() }),
  fc.constant({ kind: "endings" as const }),
);

/** A real INFO answer with some edits applied. */
function mutate(text: string, changes: Edit[]): string {
  let lines = text.split("\r\n");
  let joiner = "\r\n";
  for (const change of changes) {
    const at = "line" in change ? change.line % Math.max(1, lines.length) : 0;
    switch (change.kind) {
      case "set": {
        const line = lines[at] ?? "";
        const colon = line.indexOf(":");
        lines[at] = colon > 0 ? `${line.slice(0, colon + 1)}${change.value}` : change.value;
        break;
      }
      case "drop":
        lines.splice(at, 1);
        break;
      case "repeat":
        lines.splice(at, 0, lines[at] ?? "");
        break;
      case "add":
        lines.splice(at, 0, change.text);
        break;
      case "cut": {
        const whole = lines.join(joiner);
        lines = whole.slice(0, change.at % (whole.length + 1)).split(joiner);
        break;
      }
      case "endings":
        joiner = joiner === "\r\n" ? "\n" : "\r\n";
        break;
    }
  }
  return lines.join(joiner);
}

const texts = fc.oneof(
  {
    arbitrary: fc.tuple(fc.constantFrom(...REAL_ANSWERS), fc.array(edits, { maxLength: 6 }))
      .map(([text, changes]) => mutate(text, changes)),
    weight: 6,
  },
  {
    arbitrary: fc.array(fc.tuple(fieldNames, fieldValues), { maxLength: 20 })
      .map((fields) => fields.map(([name, value]) => `${name}:${value}`).join("\r\n")),
    weight: 2,
  },
  { arbitrary: fc.string({ unit: "binary", maxLength: 300 }), weight: 1 },
);

const isCount = (value: unknown) => Number.isSafeInteger(value) && (value as number) >= 0;
const isCountOrUnset = (value: unknown) => value === undefined || isCount(value);
const isPortOrUnset = (value: unknown) =>
  value === undefined || (isCount(value) && (value as number) <= 65_535);

/** The promises RedisInfo's types make, and the ranges Redis itself keeps to. */
function assertTyped(info: RedisInfo): void {
  assert.ok([undefined, "master", "replica"].includes(info.role), `role ${info.role}`);
  for (const [name, value] of Object.entries(info)) {
    if (typeof value === "number") assert.ok(Number.isSafeInteger(value), `${name}: ${value}`);
  }
  for (
    const name of [
      "uptimeSeconds",
      "slaveReplOffset",
      "replicaPriority",
      "masterReplOffset",
      "secondReplOffset",
    ] as const
  ) {
    assert.ok(isCountOrUnset(info[name]), `${name}: ${info[name]}`);
  }
  assert.ok(isPortOrUnset(info.tcpPort), `tcpPort: ${info.tcpPort}`);
  assert.ok(isPortOrUnset(info.masterPort), `masterPort: ${info.masterPort}`);
  assert.ok(
    info.masterLinkDownSinceSeconds === undefined || info.masterLinkDownSinceSeconds === "never" ||
      isCount(info.masterLinkDownSinceSeconds),
    `masterLinkDownSinceSeconds: ${info.masterLinkDownSinceSeconds}`,
  );
  for (const flag of ["loading", "asyncLoading", "masterLinkUp", "masterSyncInProgress"] as const) {
    assert.equal(typeof info[flag], "boolean");
  }
  assert.ok(isCount(info.connectedReplicas), `connectedReplicas: ${info.connectedReplicas}`);
  for (const replica of info.replicas) {
    assert.equal(typeof replica.ip, "string");
    assert.ok(isPortOrUnset(replica.port), `replica port ${replica.port}`);
    assert.ok(isCountOrUnset(replica.offset), `replica offset ${replica.offset}`);
    assert.ok(isCountOrUnset(replica.lagSeconds), `replica lag ${replica.lagSeconds}`);
  }
  for (const db of info.keyspace) {
    assert.ok(isCount(db.db) && isCount(db.keys) && isCountOrUnset(db.expires), JSON.stringify(db));
  }
  assert.ok(isCount(info.totalKeys), `totalKeys: ${info.totalKeys}`);
  assert.ok(info.fields instanceof Map);
}

Deno.test("parseInfo never throws and keeps every field typed, for real answers with edits and for any text", async (t) => {
  await checkProperty(t, fc.property(texts, (text) => assertTyped(parseInfo(text))));
});

Deno.test("the real INFO answers themselves parse into typed fields", () => {
  assert.ok(REAL_ANSWERS.length >= 5);
  for (const text of REAL_ANSWERS) assertTyped(parseInfo(text));
});
