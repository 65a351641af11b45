/**
 * The start-up check of the Redis ACL user against real redis-server processes: the documented user
 * (read from docs/configuration.md, so the docs cannot drift) may run everything the agent needs, the
 * check names each command a user lacks without changing Redis, and an agent whose user may not
 * run CLIENT PAUSE refuses to start (exit 2) with a message naming it.
 */
import assert from "node:assert/strict";
import { RedisCommander } from "../../lib/redis/commander.ts";
import { AgentProcess, ConsulServer, delay, RedisServer } from "../support/mod.ts";

const PASSWORD = "correct-horse-battery";

/** The rules of the documented `ACL SETUSER resec on >PASSWORD …` line, the password dropped. */
function documentedRules(): string[] {
  const text = Deno.readTextFileSync(new URL("../../docs/configuration.md", import.meta.url));
  const match = /^ACL SETUSER resec on >PASSWORD (.*)$/m.exec(text);
  if (!match) throw new Error("docs/configuration.md has no `ACL SETUSER resec on >PASSWORD` line");
  return match[1]!.split(" ");
}

/** Creates ACL user `name` with the password and `rules`. */
async function createUser(redis: RedisServer, name: string, rules: string[]): Promise<void> {
  await redis.cli("ACL", "SETUSER", name, "reset", "on", `>${PASSWORD}`, ...rules);
}

function commanderAs(redis: RedisServer, username: string): RedisCommander {
  return new RedisCommander({
    connection: { host: redis.host, port: redis.port, username, password: PASSWORD },
    timeoutMs: 2_000,
  });
}

Deno.test("the documented Redis ACL user may run every command the agent checks", async () => {
  await using redis = await RedisServer.start();
  await createUser(redis, "resec", documentedRules());
  await using commander = commanderAs(redis, "resec");
  assert.deepEqual(await commander.checkPermissions(), { denied: [], unchecked: [] });
  // The discarded MULTI left the connection as it was: the next command gets its own answer.
  assert.equal((await commander.info()).role, "master");
});

Deno.test("the permission check names each command the user lacks and changes nothing", async () => {
  await using redis = await RedisServer.start();
  await redis.cli("CLIENT", "PAUSE", "60000", "WRITE");
  const rules = documentedRules().filter((rule) => !["+client|pause", "+failover"].includes(rule));
  await createUser(redis, "partial", [...rules, "-client|unpause"]);
  await using commander = commanderAs(redis, "partial");
  assert.deepEqual(await commander.checkPermissions(), {
    denied: ["client|pause", "failover", "client|unpause"],
    unchecked: [],
  });
  // Still a master, and the pause set above is still in force (checked with a write that waits).
  assert.match(await redis.cli("INFO", "replication"), /^role:master\r?$/m);
  const write = redis.cli("SET", "k", "v");
  const first = await Promise.race([write.then(() => "written"), delay(300).then(() => "held")]);
  assert.equal(first, "held");
  await redis.cli("CLIENT", "UNPAUSE");
  await write;
});

Deno.test("without MULTI, CLIENT UNPAUSE is left unchecked rather than run", async () => {
  await using redis = await RedisServer.start();
  await createUser(redis, "nomulti", documentedRules().filter((rule) => rule !== "+multi"));
  await using commander = commanderAs(redis, "nomulti");
  assert.deepEqual(await commander.checkPermissions(), {
    denied: [],
    unchecked: ["client|unpause"],
  });
});

Deno.test("an agent whose Redis ACL user may not run CLIENT PAUSE refuses to start (exit 2) and says so", async () => {
  await using consul = await ConsulServer.start();
  await using redis = await RedisServer.start();
  await createUser(redis, "resec", [...documentedRules(), "-client|pause"]);
  const result = await AgentProcess.runToExit({
    env: {
      CONSUL_HTTP_ADDR: consul.address,
      REDIS_ADDR: redis.address,
      REDIS_USERNAME: "resec",
      REDIS_PASSWORD: PASSWORD,
    },
    label: "agent-no-client-pause",
  });
  assert.equal(result.code, 2, result.output);
  assert.match(
    result.output,
    /does not allow ACL user \\?"resec\\?" to run CLIENT PAUSE \(NOPERM\)/,
  );
  assert.match(result.output, /ACL SETUSER resec \+client\|pause/);
  assert.ok(!result.output.includes(PASSWORD), "the password is not logged");
  const services = await consul.api<Record<string, unknown>>("GET", "/v1/agent/services");
  assert.deepEqual(Object.keys(services), []);
});

Deno.test("an agent with the documented Redis ACL user starts and leads", async () => {
  await using consul = await ConsulServer.start();
  await using redis = await RedisServer.start();
  await redis.cli("SET", "k", "v");
  await createUser(redis, "resec", documentedRules());
  await using agent = AgentProcess.start({
    env: {
      CONSUL_HTTP_ADDR: consul.address,
      REDIS_ADDR: redis.address,
      REDIS_USERNAME: "resec",
      REDIS_PASSWORD: PASSWORD,
      CONSUL_LOCK_TTL: "10s",
      HEALTHCHECK_INTERVAL: "1s",
    },
    label: "agent-documented-acl",
  });
  await agent.waitForLog(/lock acquired/);
  await agent.waitForLog(/decision changed.*'master'/);
  assert.doesNotMatch(agent.log(), /NOPERM|cannot check at start/);
});
