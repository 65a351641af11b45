/**
 * End to end: the seeds' other naming mode (one service, role tags), ANNOUNCE_ADDR, and configurations
 * the agent refuses before touching anything.
 */
import assert from "node:assert/strict";
import { AgentProcess, ConsulServer, FAST_AGENT_ENV, withCluster } from "../support/mod.ts";

Deno.test("tag mode registers one service name with the master and slave tags", async () => {
  await withCluster({
    env: { CONSUL_SERVICE_NAME: "cache", MASTER_TAGS: "master,primary", SLAVE_TAGS: "slave" },
  }, async (cluster) => {
    const master = await cluster.waitForConvergence();
    const masters = await cluster.passingMasters();
    assert.deepEqual(masters[0]!.tags, ["master", "primary"]);
    assert.equal(masters[0]!.port, master.redis.port);
    const slaves = await cluster.passingSlaves();
    assert.equal(slaves.length, 2);
    for (const slave of slaves) assert.deepEqual(slave.tags, ["slave"]);
    assert.ok(masters[0]!.id.startsWith("cache@"));
  });
});

Deno.test("with ANNOUNCE_ADDR the services carry the announced address and replicas follow it", async () => {
  // Each Redis is announced as localhost:<port> — a different spelling of the same endpoint — so the
  // agents must use the announced address, not REDIS_ADDR, for the service and for replication.
  await withCluster({
    nodeEnv: (_index, redis) => ({ ANNOUNCE_ADDR: `localhost:${redis.port}` }),
  }, async (cluster) => {
    const master = await cluster.waitForConvergence();
    const masters = await cluster.passingMasters();
    assert.equal(masters[0]!.id, `redis@localhost:${master.redis.port}`);
    for (const node of cluster.nodes.filter((node) => node !== master)) {
      assert.equal((await node.redis.info()).master_host, "localhost");
    }
  });
});

Deno.test("refused configurations exit 2 with a message naming the variable, and register nothing", async () => {
  await using consul = await ConsulServer.start();
  const cases: [Record<string, string>, RegExp][] = [
    [{ HEALTHCHECK_INTERVAL: "5x" }, /HEALTHCHECK_INTERVAL "5x"/],
    [{ CONSUL_LOCK_TTL: "-5s" }, /CONSUL_LOCK_TTL "-5s" is out of range/],
    [{ CONSUL_SERVICE_NAME: "cache" }, /MASTER_TAGS is empty/],
    [{ CONSUL_SERVICE_NAME: "cache", MASTER_TAGS: "a", SLAVE_TAGS: "a" }, /first tags must differ/],
    [{ REDIS_ADDR: "redis" }, /REDIS_ADDR/],
    [
      { CONSUL_LOCK_TTL: "25h" },
      /CONSUL_LOCK_TTL "25h" is out of range: expected between 1s \(CONSUL_SESSION_TTL_MIN\) and 24h/,
    ],
    [{ CONSUL_LOCK_TTL: "5s", CONSUL_SESSION_TTL_MIN: "" }, /between 10s and 24h/],
  ];
  for (const [env, message] of cases) {
    const { code, output } = await AgentProcess.run({
      env: {
        ...FAST_AGENT_ENV,
        CONSUL_HTTP_ADDR: consul.address,
        REDIS_ADDR: "127.0.0.1:1",
        ...env,
      },
    });
    assert.equal(code, 2, `${JSON.stringify(env)} → exit ${code}\n${output}`);
    assert.match(output, message);
  }
  const services = await consul.api<Record<string, unknown>>("GET", "/v1/agent/services");
  assert.deepEqual(services, {});
  const sessions = await consul.api<unknown[]>("GET", "/v1/session/list");
  assert.deepEqual(sessions, []);
});

Deno.test("SIGUSR2 dumps the whole agent state as one JSON line without secrets", async () => {
  // SIGUSR2 is safe under `deno run`; SIGUSR1 would open Deno's inspector there (see formatDump's test).
  await withCluster({
    nodes: 1,
    env: { REDIS_PASSWORD: "", CONSUL_HTTP_TOKEN: "token-that-must-not-leak" },
  }, async (cluster) => {
    await cluster.waitForMaster();
    const [node] = cluster.nodes;
    node!.agent.signal("SIGUSR2");
    await node!.agent.waitForLog(/"dump":"agent state"/);
    const line = node!.agent.log().split("\n").find((text) =>
      text.includes('"dump":"agent state"')
    )!;
    const dump = JSON.parse(line);
    assert.equal(dump.state.decision.name, "master");
    assert.equal(dump.state.observed.lock.phase, "held");
    assert.doesNotMatch(line, /token-that-must-not-leak/);
  });
});
