/**
 * parseConfig(): the Go resec's variables and defaults, and every refusal the agent issues before it
 * touches Consul or Redis.
 */
import assert from "node:assert/strict";
import { announcesNodeAddress, parseConfig } from "../../lib/config.ts";
import type { Environment } from "../../lib/env.ts";
import {
  announcedServiceAddress,
  masterServiceQuery,
  serviceDefinition,
  serviceId,
} from "../../lib/cluster/services.ts";

function problemsOf(env: Environment): string[] {
  const result = parseConfig(env, { readTextFile: () => "" });
  assert.equal(result.ok, false, "expected the configuration to be refused");
  return result.ok ? [] : result.problems.map((problem) => problem.message);
}

function configOf(env: Environment) {
  const result = parseConfig(env, { readTextFile: () => "" });
  if (!result.ok) assert.fail(result.problems.map((problem) => problem.message).join("\n"));
  return result.config;
}

Deno.test("an empty environment gives the Go resec's defaults", () => {
  const config = configOf({});
  assert.deepEqual(config.service, {
    mode: "prefix",
    prefix: "redis",
    masterTags: [],
    slaveTags: [],
  });
  assert.equal(config.lock.key, "resec/.lock");
  assert.equal(config.lock.sessionName, "resec");
  assert.equal(config.lock.ttlMs, 15_000);
  assert.equal(config.lock.monitorRetries, 3);
  assert.equal(config.lock.monitorRetryIntervalMs, 1_000);
  assert.equal(config.deregisterServiceAfterMs, 72 * 3_600_000);
  assert.equal(config.healthcheckIntervalMs, 5_000);
  assert.equal(config.healthcheckTimeoutMs, 2_000);
  assert.equal(config.redis.host, "127.0.0.1");
  assert.equal(config.redis.port, 6379);
  assert.equal(config.logLevel, "info");
  assert.equal(config.logFormat, "text");
  assert.equal(config.consul.baseUrl, "http://127.0.0.1:8500");
});

Deno.test("durations take Go syntax", () => {
  const config = configOf({
    HEALTHCHECK_INTERVAL: "1m30s",
    HEALTHCHECK_TIMEOUT: "500ms",
    CONSUL_LOCK_TTL: "1h",
    CONSUL_LOCK_MONITOR_RETRY_INTERVAL: "1.5s",
    CONSUL_DEREGISTER_SERVICE_AFTER: "72h",
  });
  assert.equal(config.healthcheckIntervalMs, 90_000);
  assert.equal(config.healthcheckTimeoutMs, 500);
  assert.equal(config.lock.ttlMs, 3_600_000);
  assert.equal(config.lock.monitorRetryIntervalMs, 1_500);
  assert.equal(config.deregisterServiceAfterMs, 72 * 3_600_000);
});

Deno.test("a lock TTL over Consul's 24h ceiling is refused with the range in the message", () => {
  const problems = problemsOf({ CONSUL_LOCK_TTL: "25h" });
  assert.equal(problems.length, 1);
  assert.match(problems[0]!, /CONSUL_LOCK_TTL "25h" is out of range: expected between 10s and 24h/);
});

Deno.test("a lock TTL under Consul's 10s floor is refused and the message names the way out", () => {
  const problems = problemsOf({ CONSUL_LOCK_TTL: "2s" });
  assert.match(problems[0]!, /CONSUL_LOCK_TTL "2s" is out of range/);
  assert.match(problems[0]!, /CONSUL_SESSION_TTL_MIN/);
});

Deno.test("CONSUL_SESSION_TTL_MIN lets a short lock TTL through for a Consul with a lowered floor", () => {
  const config = configOf({ CONSUL_LOCK_TTL: "2s", CONSUL_SESSION_TTL_MIN: "1s" });
  assert.equal(config.lock.ttlMs, 2_000);
  assert.deepEqual(
    problemsOf({ CONSUL_LOCK_TTL: "500ms", CONSUL_SESSION_TTL_MIN: "1s" }).length,
    1,
  );
});

Deno.test("a negative TTL is refused", () => {
  assert.match(
    problemsOf({ CONSUL_LOCK_TTL: "-15s" })[0]!,
    /CONSUL_LOCK_TTL "-15s" is out of range/,
  );
});

Deno.test("HEALTHCHECK_INTERVAL=5x is refused naming the variable, the value and the expected form", () => {
  assert.match(
    problemsOf({ HEALTHCHECK_INTERVAL: "5x" })[0]!,
    /Cannot parse HEALTHCHECK_INTERVAL "5x": expected a duration such as "5s"/,
  );
});

Deno.test("CONSUL_SERVICE_NAME without MASTER_TAGS is refused", () => {
  assert.match(problemsOf({ CONSUL_SERVICE_NAME: "redis" })[0]!, /MASTER_TAGS is empty/);
});

Deno.test("the first master tag equal to the first slave tag is refused", () => {
  assert.match(
    problemsOf({ CONSUL_SERVICE_NAME: "redis", MASTER_TAGS: "main,x", SLAVE_TAGS: "main,y" })[0]!,
    /first tags must differ/,
  );
});

Deno.test("REDIS_ADDR without a port is refused", () => {
  assert.match(problemsOf({ REDIS_ADDR: "redis" }).join("\n"), /REDIS_ADDR/);
});

Deno.test("every LOG_LEVEL the Go resec (logrus) accepted is accepted, in any case", () => {
  const levels: Record<string, string> = {
    debug: "debug",
    info: "info",
    warn: "warn",
    error: "error",
    WARNING: "warn",
    Trace: "debug",
    fatal: "error",
    PANIC: "error",
  };
  for (const [given, expected] of Object.entries(levels)) {
    assert.equal(configOf({ LOG_LEVEL: given }).logLevel, expected, given);
  }
  assert.match(problemsOf({ LOG_LEVEL: "chatty" })[0]!, /LOG_LEVEL "chatty".*warning/);
});

Deno.test("every invalid variable is reported at once", () => {
  const problems = problemsOf({
    HEALTHCHECK_INTERVAL: "5x",
    CONSUL_LOCK_TTL: "-1s",
    REDIS_ADDR: "redis",
    LOG_LEVEL: "chatty",
    CONSUL_LOCK_MONITOR_RETRIES: "three",
  });
  assert.equal(problems.length, 5, problems.join("\n"));
});

Deno.test("a secret is never echoed in a problem", () => {
  const result = parseConfig({
    REDIS_PASSWORD: "hunter2",
    CONSUL_HTTP_TOKEN: "tok-secret",
    HEALTHCHECK_TIMEOUT: "x",
  }, {
    readTextFile: () => "",
  });
  assert.equal(result.ok, false);
  assert.doesNotMatch(JSON.stringify(result), /hunter2|tok-secret/);
});

Deno.test("tag mode names one service and keeps both tag lists", () => {
  const config = configOf({
    CONSUL_SERVICE_NAME: "cache",
    MASTER_TAGS: "master,a",
    SLAVE_TAGS: "slave",
  });
  assert.deepEqual(config.service, {
    mode: "tags",
    name: "cache",
    masterTags: ["master", "a"],
    slaveTags: ["slave"],
  });
});

Deno.test("prefix mode tags each role's service with MASTER_TAGS or SLAVE_TAGS, as the Go resec does", () => {
  const config = configOf({ MASTER_TAGS: "primary,a", SLAVE_TAGS: "replica" });
  const timings = { checkTtlMs: 10_000 };
  const master = serviceDefinition(config, timings, "master", "passing", "");
  const slave = serviceDefinition(config, timings, "slave", "passing", "");
  assert.equal(master.name, "redis-master");
  assert.deepEqual(master.tags, ["primary", "a"]);
  assert.equal(slave.name, "redis-slave");
  assert.deepEqual(slave.tags, ["replica"]);
  // The Go resec finds the master by name alone in prefix mode: no tag in the query.
  assert.deepEqual(masterServiceQuery(config), { name: "redis-master" });
});

Deno.test("ANNOUNCE_ADDR is announced instead of REDIS_ADDR, IPv6 included", () => {
  const config = configOf({ REDIS_ADDR: "127.0.0.1:6379", ANNOUNCE_ADDR: "[2001:db8::5]:6380" });
  assert.deepEqual(config.announce, { host: "2001:db8::5", port: 6380 });
  assert.equal(serviceId(config), "redis@[2001:db8::5]:6380");
  assert.equal(announcedServiceAddress(config), "2001:db8::5");
});

Deno.test("a loopback REDIS_ADDR registers only the port and the ID the Go resec uses", () => {
  const config = configOf({ REDIS_ADDR: "localhost:6380" });
  assert.equal(announcedServiceAddress(config), undefined);
  assert.equal(serviceId(config), "redis@:6380");
  assert.equal(announcesNodeAddress(config), true);
});

Deno.test("a routable REDIS_ADDR is announced and registered as it is", () => {
  const config = configOf({ REDIS_ADDR: "10.1.2.3:6380" });
  assert.equal(announcesNodeAddress(config), false);
  assert.equal(announcedServiceAddress(config), "10.1.2.3");
  assert.equal(serviceId(config), "redis@10.1.2.3:6380");
});

Deno.test("a loopback ANNOUNCE_ADDR is the operator's choice: kept, with its host in the ID", () => {
  const config = configOf({ REDIS_ADDR: "127.0.0.1:6380", ANNOUNCE_ADDR: "127.0.0.1:6381" });
  assert.equal(announcesNodeAddress(config), false);
  assert.equal(serviceId(config), "redis@127.0.0.1:6381");
});

Deno.test("an ANNOUNCE_ADDR that names no host is refused", () => {
  assert.match(
    problemsOf({ ANNOUNCE_ADDR: "0.0.0.0:6379" })[0]!,
    /ANNOUNCE_ADDR "0\.0\.0\.0:6379" names no host/,
  );
  assert.match(problemsOf({ ANNOUNCE_ADDR: "[::]:6379" })[0]!, /names no host/);
});

Deno.test("a malformed ANNOUNCE_ADDR is refused", () => {
  assert.match(problemsOf({ ANNOUNCE_ADDR: "10.0.0.1" })[0]!, /ANNOUNCE_ADDR/);
});

// Found by fuzzing (tests/fuzz/config_test.ts): values accepted here that broke something later.
Deno.test("a deregistration delay past Go's longest duration is refused: Consul could not read it", () => {
  assert.match(
    problemsOf({ CONSUL_DEREGISTER_SERVICE_AFTER: "3000000h" })[0]!,
    /CONSUL_DEREGISTER_SERVICE_AFTER "3000000h" is out of range: expected between 1m .* and 2562047h/,
  );
  assert.equal(
    configOf({ CONSUL_DEREGISTER_SERVICE_AFTER: "2562047h" }).deregisterServiceAfterMs,
    2562047 * 3_600_000,
  );
});

Deno.test("a lock monitor retry interval over 24h is refused: a timer that long fires at once", () => {
  assert.match(
    problemsOf({ CONSUL_LOCK_MONITOR_RETRY_INTERVAL: "9000000000ms" })[0]!,
    /CONSUL_LOCK_MONITOR_RETRY_INTERVAL "9000000000ms" is out of range: expected between 1ms and 24h/,
  );
  assert.equal(
    configOf({ CONSUL_LOCK_MONITOR_RETRY_INTERVAL: "24h" }).lock.monitorRetryIntervalMs,
    86_400_000,
  );
});

Deno.test("a whole number past 2^53 is refused, not rounded", () => {
  assert.deepEqual(problemsOf({ MAX_LAG_ON_FAILOVER: "99999999999999999999" }), [
    'MAX_LAG_ON_FAILOVER "99999999999999999999" is out of range: expected a number between 0 and 9007199254740991',
  ]);
  assert.equal(
    configOf({ MAX_LAG_ON_FAILOVER: "9007199254740991" }).election.maxLagBytes,
    2 ** 53 - 1,
  );
});

Deno.test("an announced address or a session name too long for the lock value other agents read is refused", () => {
  const host = "h".repeat(300);
  assert.deepEqual(problemsOf({ ANNOUNCE_ADDR: `${host}:6379` }), [
    "ANNOUNCE_ADDR is 305 characters long: an address may have at most 300",
  ]);
  assert.deepEqual(problemsOf({ REDIS_ADDR: `${host}:6379` }), [
    "REDIS_ADDR is 305 characters long: an address may have at most 300",
  ]);
  assert.deepEqual(problemsOf({ CONSUL_LOCK_SESSION_NAME: "s".repeat(1_025) }), [
    "CONSUL_LOCK_SESSION_NAME is 1025 characters long: the lock value carries at most 1024",
  ]);
  assert.equal(configOf({ ANNOUNCE_ADDR: `${"h".repeat(295)}:6379` }).announce.port, 6379);
});

Deno.test("FAILSAFE_MODE needs HTTP_ADDR and a key file of at least 16 bytes; off by default", () => {
  assert.equal(configOf({}).failsafe, undefined);
  const problems = problemsOf({ FAILSAFE_MODE: "true" });
  assert.ok(
    problems.some((problem) => /FAILSAFE_MODE needs HTTP_ADDR/.test(problem)),
    problems.join(),
  );
  assert.ok(problems.some((problem) => /FAILSAFE_KEY_FILE/.test(problem)), problems.join());
  const keyed = (key: string) =>
    parseConfig(
      { FAILSAFE_MODE: "true", HTTP_ADDR: ":8008", FAILSAFE_KEY_FILE: "/etc/resec/failsafe.key" },
      { readTextFile: () => key },
    );
  const short = keyed("too short\n");
  assert.ok(!short.ok && short.problems.some((problem) => /at least 16/.test(problem.message)));
  const ok = keyed("  sixteen bytes or more  \n");
  assert.ok(ok.ok && ok.config.failsafe?.key === "sixteen bytes or more");
});

Deno.test("FAST_TAKEOVER is on by default, can be turned off, and a value that is no boolean is refused", () => {
  assert.equal(configOf({}).fastTakeover, true);
  assert.equal(configOf({ FAST_TAKEOVER: "false" }).fastTakeover, false);
  assert.match(problemsOf({ FAST_TAKEOVER: "sometimes" }).join("\n"), /FAST_TAKEOVER/);
});
