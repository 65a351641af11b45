/**
 * Fuzzing the configuration parser with arbitrary environments and files: it never throws; it gives
 * either a configuration whose values keep their types and ranges (every duration fits a timer, every
 * number is exact, the announced address and session name fit the records other agents read), or a
 * list of problems that each name a variable, and none carries a secret.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { formatHostPort } from "../../lib/address.ts";
import { parseCandidacy } from "../../lib/cluster/candidacy.ts";
import { type Config, ENVIRONMENT_VARIABLES, parseConfig } from "../../lib/config.ts";
import { encodeLeaderAnnouncement, parseLeaderAnnouncement } from "../../lib/cluster/lock_value.ts";
import { checkProperty } from "./fuzz.ts";

/** setTimeout's ceiling: a longer delay fires at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** The longest duration Go (and so Consul) represents: 2^63 - 1 ns. */
const MAX_GO_DURATION_MS = 9_223_372_036_854;

const PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

/** Values near what the variables take, and past their edges. */
const values = fc.oneof(
  fc.constantFrom(
    "",
    " ",
    "0",
    "1",
    "-1",
    "true",
    "FALSE",
    "yes",
    "off",
    "5s",
    "500ms",
    "1m30s",
    "1ns",
    "0.5ms",
    "25h",
    "-5s",
    `${"9".repeat(30)}h`,
    `${"9".repeat(400)}h`,
    "9999999h",
    "99999999999999999999",
    "2147483648",
    "127.0.0.1:6379",
    "10.0.0.5:6380",
    "[::1]:6380",
    "0.0.0.0:6379",
    ":8008",
    "localhost:0",
    "redis",
    "http://consul:8500",
    "https://consul:8501",
    "https://user:pw@consul:8501",
    "unix:///run/consul.sock",
    "unix://",
    "a,b,,c",
    "master",
    "debug",
    "warning",
    "json",
    "gelf",
    "resec/.lock",
    "/etc/resec/file",
    "-----BEGIN PRIVATE KEY-----",
    `${"h".repeat(300)}:6379`,
    `[${"1:".repeat(150)}1]:6379`,
    "s".repeat(1_100),
  ),
  fc.stringMatching(/^-?\d{1,20}(\.\d{1,4})?(ns|us|ms|s|m|h)$/),
  fc.integer().map(String),
  fc.tuple(fc.string({ maxLength: 400 }), fc.integer({ min: -1, max: 70_000 }))
    .map(([host, port]) => `${host}:${port}`),
  fc.string({ maxLength: 60 }),
  fc.string({ unit: "binary", maxLength: 60 }),
);

const variables = fc.oneof(
  { arbitrary: fc.constantFrom(...ENVIRONMENT_VARIABLES), weight: 9 },
  { arbitrary: fc.constantFrom("UNKNOWN_VARIABLE", "__proto__", "PATH"), weight: 1 },
);

/**
 * Environments: mostly one or two variables, so that most are valid and their values reach the
 * checks of a valid configuration; sometimes many at once.
 */
const environments = fc.oneof(
  { arbitrary: fc.dictionary(variables, values, { minKeys: 1, maxKeys: 2 }), weight: 3 },
  { arbitrary: fc.dictionary(variables, values, { maxKeys: 12 }), weight: 1 },
);

/** A file system: each path holds text, a PEM, a secret-looking line, or nothing (not found). */
const fileSystems = fc.func(
  fc.oneof(
    fc.constant(null),
    fc.constant(PEM),
    fc.constant("s3cret-from-file\n"),
    fc.constant("\n"),
    fc.string({ maxLength: 40 }),
  ),
).map((file) => (path: string) => {
  const text = file(path);
  if (text === null) throw new Deno.errors.NotFound(`No such file: ${path}`);
  return text;
});

const DURATIONS_IN_TIMERS = (config: Config) => ({
  CONSUL_LOCK_TTL: config.lock.ttlMs,
  CONSUL_LOCK_DELAY: config.lock.delayMs,
  CONSUL_LOCK_MONITOR_RETRY_INTERVAL: config.lock.monitorRetryIntervalMs,
  HEALTHCHECK_INTERVAL: config.healthcheckIntervalMs,
  HEALTHCHECK_TIMEOUT: config.healthcheckTimeoutMs,
  ON_ROLE_CHANGE_TIMEOUT: config.roleChangeHook?.timeoutMs ?? 0,
});

/** The promises a valid configuration makes to the rest of the agent. */
function assertUsable(config: Config): void {
  for (const [name, ms] of Object.entries(DURATIONS_IN_TIMERS(config))) {
    assert.ok(Number.isFinite(ms) && ms >= 0 && ms <= MAX_TIMER_MS, `${name}: ${ms}ms`);
  }
  const deregister = config.deregisterServiceAfterMs;
  assert.ok(
    Number.isFinite(deregister) && deregister <= MAX_GO_DURATION_MS,
    `CONSUL_DEREGISTER_SERVICE_AFTER: ${deregister}ms`,
  );
  const { maxLagBytes, priorityOverride } = config.election;
  assert.ok(Number.isSafeInteger(maxLagBytes) && maxLagBytes >= 0, `MAX_LAG: ${maxLagBytes}`);
  assert.ok(priorityOverride === undefined || Number.isSafeInteger(priorityOverride));
  assert.ok(Number.isSafeInteger(config.lock.monitorRetries));
  assert.ok(Number.isInteger(config.redis.port) && config.redis.port >= 1);

  // What this agent will write, every other agent must be able to read.
  const lockValue = encodeLeaderAnnouncement({
    address: config.announce,
    agent: config.lock.sessionName,
    runId: "6b3f2a1c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a",
    now: Date.UTC(2026, 0, 1),
    epoch: 1,
  });
  const announced = parseLeaderAnnouncement(lockValue);
  assert.equal(formatHostPort(announced!.address), formatHostPort(config.announce));
  const address = formatHostPort(config.announce);
  const candidacy = JSON.stringify({
    address,
    runId: "",
    replicationId: "",
    replicationId2: "",
    offset: 0,
    role: "replica",
    healthy: true,
    datasetEmpty: true,
    synced: false,
    priority: 100,
    forced: false,
    vacancy: 0,
    updatedAt: "2026-01-01T00:00:00.000Z",
  });
  assert.equal(parseCandidacy(candidacy, address).address, address);
}

Deno.test("parseConfig never throws: a usable configuration, or problems that each name a variable", async (t) => {
  await checkProperty(
    t,
    fc.property(environments, fileSystems, (env, readTextFile) => {
      const result = parseConfig(env, { readTextFile });
      if (result.ok) {
        assertUsable(result.config);
        return;
      }
      assert.ok(result.problems.length > 0);
      for (const problem of result.problems) {
        assert.ok(
          (ENVIRONMENT_VARIABLES as readonly string[]).includes(problem.variable),
          `unknown variable ${problem.variable}`,
        );
        assert.ok(
          problem.message.includes(problem.variable),
          `"${problem.message}" does not name ${problem.variable}`,
        );
      }
    }),
    // Most bad values are one variable among many: it takes a few thousand runs to meet them.
    { runs: 5_000 },
  );
});

Deno.test("no problem and no refused value ever carries a password or token", async (t) => {
  const secret = fc.stringMatching(/^[A-Za-z0-9]{6,20}$/).map((text) => `zq-secret-${text}`);
  await checkProperty(
    t,
    fc.property(
      environments,
      secret,
      secret,
      secret,
      fileSystems,
      (env, redis, token, auth, fs) => {
        const secrets = {
          REDIS_PASSWORD: redis,
          CONSUL_HTTP_TOKEN: token,
          CONSUL_HTTP_AUTH: `ops:${auth}`,
        };
        const result = parseConfig({ ...env, ...secrets }, { readTextFile: fs });
        if (result.ok) return;
        const text = JSON.stringify(result.problems);
        for (const value of [redis, token, auth]) assert.ok(!text.includes(value), text);
      },
    ),
    { runs: 1_000 },
  );
});
