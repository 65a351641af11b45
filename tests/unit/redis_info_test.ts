/**
 * parseInfo on real INFO replies of Redis 7.0 and hand-written ones of Redis 5.0 and 6.0.
 */
import assert from "node:assert/strict";
import {
  isDatasetEmpty,
  isSupportedRedisVersion,
  parseInfo,
  parseInfoFields,
  type RedisInfo,
} from "../../lib/redis/info.ts";

const fixtures = new URL("./fixtures/redis/", import.meta.url);
const fixture = (name: string) => Deno.readTextFileSync(new URL(name, fixtures));

/** The fields of `info` named in `expected`, for a readable deepEqual. */
function pick(info: RedisInfo, expected: Partial<RedisInfo>): Partial<RedisInfo> {
  return Object.fromEntries(
    Object.keys(expected).map((key) => [key, info[key as keyof RedisInfo]]),
  ) as Partial<RedisInfo>;
}

const cases: { fixture: string; expected: Partial<RedisInfo>; empty: boolean }[] = [
  {
    fixture: "redis-7.0-master-empty.txt",
    empty: true,
    expected: {
      redisVersion: "7.0.15",
      role: "master",
      loading: false,
      masterLinkUp: false,
      masterHost: undefined,
      masterLinkDownSinceSeconds: undefined,
      connectedReplicas: 0,
      replicas: [],
      masterFailoverState: "no-failover",
      masterReplOffset: 0,
      masterReplId2: undefined,
      secondReplOffset: undefined,
      slaveReplOffset: undefined,
      keyspace: [],
      totalKeys: 0,
    },
  },
  {
    fixture: "redis-7.0-master-with-replica.txt",
    empty: false,
    expected: {
      role: "master",
      connectedReplicas: 1,
      masterReplOffset: 50,
      masterFailoverState: "no-failover",
      keyspace: [{ db: 0, keys: 3, expires: 1 }, { db: 2, keys: 1, expires: 0 }],
      totalKeys: 4,
    },
  },
  {
    fixture: "redis-7.0-replica-linked.txt",
    empty: false,
    expected: {
      role: "replica",
      masterHost: "127.0.0.1",
      masterLinkUp: true,
      masterLinkDownSinceSeconds: undefined,
      masterSyncInProgress: false,
      slaveReplOffset: 50,
      masterReplOffset: 50,
      replicaPriority: 50,
      replicaReadOnly: true,
      loading: false,
      totalKeys: 4,
    },
  },
  {
    fixture: "redis-7.0-replica-link-down.txt",
    empty: false,
    expected: {
      role: "replica",
      masterLinkUp: false,
      masterLinkDownSinceSeconds: 1,
      masterLastIoSecondsAgo: -1,
      slaveReplOffset: 50,
    },
  },
  {
    fixture: "redis-7.0-replica-never-linked.txt",
    empty: true,
    expected: {
      role: "replica",
      masterLinkUp: false,
      masterLinkDownSinceSeconds: "never",
      masterSyncInProgress: false,
      slaveReplOffset: 1,
      masterReplOffset: 0,
      replicaPriority: 100,
    },
  },
  {
    fixture: "redis-7.0-replica-loading.txt",
    empty: false,
    expected: {
      role: "replica",
      loading: true,
      asyncLoading: false,
      masterLinkUp: false,
      masterSyncInProgress: true,
      masterLinkDownSinceSeconds: "never",
      totalKeys: 215,
    },
  },
  {
    fixture: "redis-5.0-replica-syncing.txt",
    empty: true,
    expected: {
      redisVersion: "5.0.14",
      role: "replica",
      masterHost: "10.0.0.5",
      masterPort: 6379,
      masterLinkUp: false,
      masterSyncInProgress: true,
      // Redis 5 prints "now − 0" for a link that never came up: longer than the 12 s uptime.
      masterLinkDownSinceSeconds: "never",
      masterFailoverState: undefined,
      uptimeSeconds: 12,
      keyspace: [],
    },
  },
  {
    fixture: "redis-5.0-master.txt",
    empty: false,
    expected: {
      role: "master",
      connectedReplicas: 2,
      replicas: [
        { ip: "10.0.0.6", port: 6379, state: "online", offset: 73421, lagSeconds: 0 },
        { ip: "10.0.0.7", port: 6379, state: "wait_bgsave", offset: 0, lagSeconds: 0 },
      ],
      masterReplOffset: 73421,
      masterFailoverState: undefined,
      totalKeys: 1204,
    },
  },
  {
    fixture: "redis-6.0-replica-never-linked.txt",
    empty: true,
    expected: {
      redisVersion: "6.0.16",
      role: "replica",
      masterHost: "fd00::5",
      masterPort: 6379,
      masterLinkDownSinceSeconds: "never",
      replicaPriority: 0,
      tcpPort: 6380,
    },
  },
  {
    fixture: "redis-6.0-master-promoted.txt",
    empty: false,
    expected: {
      role: "master",
      replicas: [{ ip: "::1", port: 6381, state: "online", offset: 120034, lagSeconds: 1 }],
      masterReplId: "77c1d3e5f7a9b1c3d5e7f9a1b3c5d7e9f1a3b5c7",
      masterReplId2: "a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0",
      secondReplOffset: 118001,
      keyspace: [{ db: 0, keys: 42, expires: 0 }, { db: 15, keys: 1, expires: 1 }],
      totalKeys: 43,
    },
  },
];

for (const { fixture: name, expected, empty } of cases) {
  Deno.test(`parseInfo reads ${name} into the typed snapshot`, () => {
    const info = parseInfo(fixture(name));
    assert.deepEqual(pick(info, expected), expected);
    assert.equal(isDatasetEmpty(info), empty);
  });
}

Deno.test("parseInfo gives every real 7.0 reply a run id, an uptime and a replication id", () => {
  for (const name of cases.map((c) => c.fixture).filter((n) => n.startsWith("redis-7.0"))) {
    const info = parseInfo(fixture(name));
    assert.match(info.runId ?? "", /^[0-9a-f]{40}$/, name);
    assert.equal(typeof info.uptimeSeconds, "number", name);
    assert.match(info.masterReplId ?? "", /^[0-9a-f]{40}$/, name);
  }
});

Deno.test("parseInfo parses the replica line of a real 7.0 master", () => {
  const info = parseInfo(fixture("redis-7.0-master-with-replica.txt"));
  assert.equal(info.replicas.length, 1);
  const [replica] = info.replicas;
  assert.equal(replica?.ip, "127.0.0.1");
  assert.equal(replica?.state, "online");
  assert.equal(typeof replica?.port, "number");
});

Deno.test("parseInfoFields splits on the first colon only, so values keep their colons", () => {
  const fields = parseInfoFields(
    "executable:/usr/bin/redis-server\r\nmaster_host:fd00::5\nos:Linux 6.1 x86_64\r\n",
  );
  assert.equal(fields.get("executable"), "/usr/bin/redis-server");
  assert.equal(fields.get("master_host"), "fd00::5");
  assert.equal(fields.get("os"), "Linux 6.1 x86_64");
});

Deno.test("parseInfo never throws on malformed, truncated or unknown input", () => {
  const inputs = [
    "",
    "\r\n\r\n",
    "# Replication",
    "garbage without colons\n:no name\nrole\n",
    "role:sentinel\n",
    "role:master\nmaster_repl_offset:lots\nconnected_slaves:-\nslave0:nonsense\nslave1:ip=\n",
    "db0:keys=abc\ndbx:keys=1\ndb1:\nuptime_in_seconds:1e9\nloading:yes\n",
    "master_repl_offset:99999999999999999999999\n",
    "role:slave\r\nmaster_link_status:up",
  ];
  for (const input of inputs) parseInfo(input);

  const empty = parseInfo("");
  assert.equal(empty.role, undefined);
  assert.equal(empty.loading, false);
  assert.equal(empty.connectedReplicas, 0);
  assert.equal(empty.totalKeys, 0);

  assert.equal(parseInfo("role:sentinel\n").role, undefined);
  const bad = parseInfo(inputs[5]!);
  assert.equal(bad.role, "master");
  assert.equal(bad.masterReplOffset, undefined);
  assert.deepEqual(bad.replicas, [{
    ip: "",
    port: undefined,
    state: "unknown",
    offset: undefined,
    lagSeconds: undefined,
  }]);
  assert.equal(bad.connectedReplicas, 1);
  const keyspace = parseInfo(inputs[6]!);
  assert.deepEqual(keyspace.keyspace, []);
  assert.equal(keyspace.uptimeSeconds, undefined);
  assert.equal(keyspace.loading, false);
  // Beyond 2^53 an offset cannot be represented exactly: unknown rather than wrong.
  assert.equal(parseInfo(inputs[7]!).masterReplOffset, undefined);
  // A last line without its line end still counts.
  assert.equal(parseInfo(inputs[8]!).masterLinkUp, true);
});

Deno.test("parseInfo reads the role 'replica' as well as the historical 'slave'", () => {
  assert.equal(parseInfo("role:slave\n").role, "replica");
  assert.equal(parseInfo("role:replica\n").role, "replica");
  assert.equal(parseInfo("role:master\n").role, "master");
});

Deno.test("parseInfo reports a link down for N seconds as N, and -1 as never", () => {
  const down = (seconds: string, uptime = "100") =>
    parseInfo(`uptime_in_seconds:${uptime}\nmaster_link_down_since_seconds:${seconds}\n`)
      .masterLinkDownSinceSeconds;
  assert.equal(down("0"), 0);
  assert.equal(down("42"), 42);
  assert.equal(down("-1"), "never");
  assert.equal(down("1700000000"), "never");
  // Without an uptime to compare with, a large number is taken at its word.
  assert.equal(parseInfo("master_link_down_since_seconds:500\n").masterLinkDownSinceSeconds, 500);
});

Deno.test("parseInfo keeps every field verbatim for anything not modelled", () => {
  const info = parseInfo(fixture("redis-7.0-replica-loading.txt"));
  assert.equal(info.fields.get("loading_eta_seconds"), "1");
  assert.equal(info.fields.get("mem_allocator"), "jemalloc-5.3.0");
});

Deno.test("Redis 6.2 and later are supported; 6.0 and 5.0 are not (no CLIENT PAUSE WRITE, no FAILOVER)", () => {
  for (const version of ["6.2.0", "6.2.14", "7.0.15", "7.4.2", "8.0.0", "10.1.0", "255.255.255"]) {
    assert.equal(isSupportedRedisVersion(version), true, version);
  }
  for (const version of ["6.0.16", "6.1.9", "5.0.14", "4.0.0", "3.2.12"]) {
    assert.equal(isSupportedRedisVersion(version), false, version);
  }
  // What the hand-written 6.0 and 5.0 replies say, read through parseInfo.
  assert.equal(
    isSupportedRedisVersion(parseInfo(fixture("redis-6.0-master-promoted.txt")).redisVersion),
    false,
  );
  assert.equal(
    isSupportedRedisVersion(parseInfo(fixture("redis-5.0-master.txt")).redisVersion),
    false,
  );
  // A server that names no version resec can read may be older than 6.2: refused.
  assert.equal(isSupportedRedisVersion(undefined), false);
  assert.equal(isSupportedRedisVersion("unstable"), false);
  assert.equal(isSupportedRedisVersion(""), false);
});

// Found by fuzzing (tests/fuzz/redis_info_test.ts): signed or oversized numbers where Redis prints
// only counts, offsets and ports.
Deno.test("negative or oversized counts, offsets and ports read as unknown, never as numbers Redis does not print", () => {
  const info = parseInfo(
    [
      "uptime_in_seconds:-1",
      "tcp_port:70000",
      "role:slave",
      "master_port:-6379",
      "slave_repl_offset:-5",
      "slave_priority:-1",
      "connected_slaves:-2",
      "master_repl_offset:99999999999999999999",
      "slave0:ip=10.0.0.1,port=-1,state=online,offset=-7,lag=-3",
      "db0:keys=-5,expires=-1",
      "db99999999999999999999:keys=1",
    ].join("\r\n"),
  );
  assert.deepEqual(
    pick(info, {
      uptimeSeconds: undefined,
      tcpPort: undefined,
      masterPort: undefined,
      slaveReplOffset: undefined,
      replicaPriority: undefined,
      masterReplOffset: undefined,
      keyspace: [],
      totalKeys: 0,
    }),
    {
      uptimeSeconds: undefined,
      tcpPort: undefined,
      masterPort: undefined,
      slaveReplOffset: undefined,
      replicaPriority: undefined,
      masterReplOffset: undefined,
      keyspace: [],
      totalKeys: 0,
    },
  );
  assert.equal(info.connectedReplicas, 1, "the slaveN lines counted instead");
  assert.deepEqual(info.replicas, [
    { ip: "10.0.0.1", port: undefined, state: "online", offset: undefined, lagSeconds: undefined },
  ]);
});

Deno.test("the keys of all databases add up to a safe integer even when each is huge", () => {
  const info = parseInfo(
    `db0:keys=${Number.MAX_SAFE_INTEGER}\r\ndb1:keys=${Number.MAX_SAFE_INTEGER}`,
  );
  assert.equal(info.totalKeys, Number.MAX_SAFE_INTEGER);
  assert.equal(isDatasetEmpty(info), false);
});

Deno.test("-1 stays meaningful where Redis prints it: a link never up, no last I/O, no second offset", () => {
  const info = parseInfo(
    "role:slave\r\nmaster_link_down_since_seconds:-1\r\nmaster_last_io_seconds_ago:-1\r\nsecond_repl_offset:-1",
  );
  assert.equal(info.masterLinkDownSinceSeconds, "never");
  assert.equal(info.masterLastIoSecondsAgo, -1);
  assert.equal(info.secondReplOffset, undefined);
});
