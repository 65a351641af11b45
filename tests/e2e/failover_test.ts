/**
 * End to end: one Consul, three Redis servers and three resec agents, all real processes. Elections,
 * failovers, and the Consul layout operators and clients rely on.
 */
import assert from "node:assert/strict";
import { type Cluster, type RedisServer, waitFor, withCluster } from "../support/mod.ts";
import { firstAcceptedWrite, seedReplicatedKey } from "../support/writes.ts";

Deno.test("three agents elect one master, two replicas link up, and data written on the master reaches both", async () => {
  await withCluster({}, async (cluster) => {
    const master = await cluster.waitForConvergence();
    // Both replicas passing, read again once settled: right after convergence, one replica's check
    // was seen not passing for a moment on a loaded CI machine (one passing slave of two).
    await waitFor(async () => (await cluster.passingSlaves()).length === 2, {
      timeoutMs: 10_000,
      message: "both replicas passing",
    });
    const masters = await cluster.passingMasters();
    assert.equal(masters.length, 1);
    // The Go resec's ID for a loopback REDIS_ADDR: the port only, Consul fills in the node.
    assert.equal(masters[0]!.id, `redis@:${master.redis.port}`);

    // The lock key: the leader's announcement (with its epoch) and the Go resec's lock flags, so a
    // Go resec agent still in the cluster during a migration contends on the same lock.
    const raw = await (await fetch(`${cluster.consul.url}/v1/kv/resec/.lock`)).text();
    assert.match(raw, /"Flags":\s*3304740253564472344\b/);
    const [entry] = JSON.parse(raw);
    const announcement = JSON.parse(atob(entry.Value));
    assert.equal(announcement.address, master.redis.address);
    assert.equal(announcement.epoch, entry.LockIndex);

    await master.redis.cli("SET", "greeting", "hello");
    for (const node of cluster.nodes.filter((node) => node !== master)) {
      await waitFor(async () => (await node.redis.cli("GET", "greeting")) === "hello", {
        message: `the key to reach ${node.redis.address}`,
      });
    }
  });
});

Deno.test("kill -9 of the master's Redis: a replica takes over, the other follows it, and the old Redis rejoins as a replica", async () => {
  await withCluster({}, async (cluster) => {
    const oldMaster = await cluster.waitForConvergence();
    const survivors = cluster.nodes.filter((node) => node !== oldMaster);
    await seedReplicatedKey(oldMaster.redis, survivors.map((node) => node.redis));

    const killedAt = Date.now();
    await oldMaster.redis.kill();
    const { server, elapsedMs } = await firstAcceptedWrite(
      survivors.map((node) => node.redis),
      killedAt,
    );
    console.log(`failover: first accepted write on the new master ${elapsedMs} ms after kill -9`);
    const newMaster = await cluster.waitForMaster(30_000, oldMaster);
    console.log(`failover: one passing master in Consul ${Date.now() - killedAt} ms after kill -9`);
    assert.equal(newMaster.redis, server, "the Redis that took the write is the one Consul names");
    assert.equal(await newMaster.redis.cli("GET", "before-failover"), "kept");
    const follower = survivors.find((node) => node !== newMaster)!;
    await waitFor(async () => {
      const info = await follower.redis.info();
      return info.master_port === String(newMaster.redis.port) && info.master_link_status === "up";
    }, { message: "the other replica to follow the new master" });
    // It kept its replication history while nobody led, so it resynced partially: no fork and no
    // RDB transfer on the new master, and no window where that replica is still loading.
    const stats = await newMaster.redis.info("stats");
    assert.equal(stats.sync_full, "0", "no full sync served by the new master");
    assert.equal(stats.sync_partial_ok, "1");

    await oldMaster.redis.restart();
    const converged = await cluster.waitForConvergence();
    assert.equal(converged, newMaster, "the restarted Redis rejoins without taking over");
    assert.equal((await oldMaster.redis.info()).role, "slave");
    assert.equal((await cluster.passingMasters()).length, 1);
  });
});

Deno.test("with the default 15 s lock TTL, kill -9 of the master's Redis: the new master takes writes long before the fence bound, because the old master's agent said its Redis was down", async () => {
  // The fence bound is 0.6 × 15 s = 9 s: a new master that waited it out for a dead former master
  // would refuse writes that long after every Redis crash.
  const fenceBoundMs = 9_000;
  await withCluster({ env: { CONSUL_LOCK_TTL: "15s" } }, async (cluster) => {
    const oldMaster = await cluster.waitForConvergence();
    // Data on every node: an empty replica would rightly wait for the dead master to come back.
    const survivors = cluster.nodes.filter((node) => node !== oldMaster);
    await seedReplicatedKey(oldMaster.redis, survivors.map((node) => node.redis));
    const killedAt = Date.now();
    await oldMaster.redis.kill();
    const { elapsedMs } = await firstAcceptedWrite(survivors.map((node) => node.redis), killedAt);
    console.log(`failover (TTL 15s): first accepted write ${elapsedMs} ms after kill -9`);
    assert.ok(
      elapsedMs < fenceBoundMs / 2,
      `first write ${elapsedMs} ms after the crash: the new master waited for a dead Redis`,
    );
    assert.match(
      cluster.nodes.map((node) => node.agent.log()).join("\n"),
      /lock released/,
      "the old master's agent gave the lock back",
    );
  });
});

Deno.test("with the default 15 s lock TTL, kill -9 of the master's agent and Redis together: a replica ends the old term and a new master leads long before the agent check lapses", async () => {
  // Consul keeps the dead agent's session until its agent check lapses (TTL − lock delay = 14.5 s
  // here), and a new master would then keep its fence for the fence bound (9 s) more: the replicas,
  // which see the master's Redis refuse their connections, end the term themselves instead.
  const agentCheckLapseMs = 14_500;
  await withCluster({ env: { CONSUL_LOCK_TTL: "15s" } }, async (cluster) => {
    const oldMaster = await cluster.waitForConvergence();
    const survivors = cluster.nodes.filter((node) => node !== oldMaster);
    await seedReplicatedKey(oldMaster.redis, survivors.map((node) => node.redis));
    // Each replica reads the master's INFO every second: let them see it list them.
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    const oldSession = await lockSession(cluster);
    assert.ok(oldSession, "the old master holds the lock");
    const killedAt = Date.now();
    await Promise.all([oldMaster.agent.kill(), oldMaster.redis.kill()]);
    const { elapsedMs } = await firstAcceptedWrite(survivors.map((node) => node.redis), killedAt);
    console.log(`agent and Redis kill -9 (TTL 15s): first accepted write after ${elapsedMs} ms`);
    assert.ok(
      elapsedMs < agentCheckLapseMs,
      `first write ${elapsedMs} ms after the kill: the replicas waited for Consul to end the term`,
    );
    assert.match(
      survivors.map((node) => node.agent.log()).join("\n"),
      new RegExp(`ended the session of a leader that no peer can reach session=${oldSession}`),
      "a replica ended the old master's session",
    );
  });
});

Deno.test("SIGTERM to the master's agent releases the lock and a new master is elected well before the TTL", async () => {
  await withCluster({ env: { CONSUL_LOCK_TTL: "10s" } }, async (cluster) => {
    const oldMaster = await cluster.waitForConvergence();
    const stoppedAt = Date.now();
    const code = await oldMaster.agent.stop();
    assert.equal(code, 0, "a graceful stop exits 0");
    assert.match(oldMaster.agent.log(), /lock released/);
    const newMaster = await cluster.waitForMaster(30_000, oldMaster);
    const elapsed = Date.now() - stoppedAt;
    console.log(`graceful stop: new master registered ${elapsed} ms after SIGTERM (TTL 10s)`);
    assert.ok(elapsed < 10_000, `took ${elapsed} ms: it waited for the session TTL`);
    assert.notEqual(newMaster, oldMaster);
    const registered = await cluster.consul.api<Record<string, unknown>>(
      "GET",
      "/v1/agent/services",
    );
    assert.ok(
      !(`redis@:${oldMaster.redis.port}` in registered),
      "the stopped agent deregistered",
    );
  });
});

Deno.test("SIGKILL of the master's agent: its agent check lapses and a new master leads within TTL + lock delay", async () => {
  // TTL 6 s, delay 1 s: the agent check (TTL − delay = 5 s) frees the lock; the session alone would
  // hold it for 6–12 s.
  await withCluster({
    env: { CONSUL_LOCK_TTL: "6s", CONSUL_LOCK_DELAY: "1s" },
  }, async (cluster) => {
    const oldMaster = await cluster.waitForConvergence();
    const killedAt = Date.now();
    await oldMaster.agent.kill();
    await cluster.waitForMaster(30_000, oldMaster);
    const elapsed = Date.now() - killedAt;
    console.log(
      `agent SIGKILL: a new passing master ${elapsed} ms after the kill (TTL 6s, delay 1s)`,
    );
    // The check was beaten at most one tick (333 ms here) before the kill.
    assert.ok(elapsed >= 4_500, `elected after ${elapsed} ms: before the agent check could lapse`);
    assert.ok(elapsed < 6_000 + 1_000 + 1_000, `took ${elapsed} ms: longer than TTL + lock delay`);
  });
});

Deno.test("an agent restarted at once after SIGKILL ends its earlier session instead of waiting out the TTL", async () => {
  await withCluster({
    env: { CONSUL_LOCK_TTL: "10s", CONSUL_LOCK_DELAY: "500ms" },
  }, async (cluster) => {
    const oldMaster = await cluster.waitForConvergence();
    const before = await lockSession(cluster);
    assert.ok(before, "the master holds the lock");
    const killedAt = Date.now();
    await oldMaster.agent.kill();
    cluster.startAgent(oldMaster);
    await waitFor(async () => {
      const holder = await lockSession(cluster);
      return holder !== undefined && holder !== before;
    }, { timeoutMs: 30_000, intervalMs: 50, message: "a new session to hold the lock" });
    const master = await cluster.waitForConvergence();
    const elapsed = Date.now() - killedAt;
    console.log(
      `agent SIGKILL + restart: a new lock holder and a converged cluster ${elapsed} ms after ` +
        `the kill (TTL 10s), master ${master.redis.address}`,
    );
    assert.match(oldMaster.agent.log(), /ended a lock session left by an earlier run/);
    assert.ok(elapsed < 10_000, `took ${elapsed} ms: it waited for the old session's TTL`);
  });
});

/** The session holding the lock key, if any. */
async function lockSession(cluster: Cluster): Promise<string | undefined> {
  const entries = await cluster.consul.api<{ Session?: string }[] | undefined>(
    "GET",
    "/v1/kv/resec/.lock",
  ).catch(() => undefined);
  return entries?.[0]?.Session;
}

/** Promotes a Redis by hand and tells whether it then takes a write within a second (no pause). */
async function takesWritesOncePromoted(redis: RedisServer): Promise<boolean> {
  await redis.cli("REPLICAOF", "NO", "ONE");
  const client = redis.client({ commandTimeout: 1_000 });
  try {
    return (await client.set("resec:test:after-pause", "written")) === "OK";
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

Deno.test("the write pause of a graceful stop is lifted once the old master replicates from the new one, and a pause left on a replica by the next agent start", async () => {
  await withCluster({}, async (cluster) => {
    const oldMaster = await cluster.waitForConvergence();
    assert.equal(await oldMaster.agent.stop(), 0);
    assert.match(oldMaster.agent.log(), /CLIENT PAUSE/);
    const newMaster = await cluster.waitForMaster(30_000, oldMaster);
    await waitFor(async () => {
      const info = await oldMaster.redis.info();
      return info.master_port === String(newMaster.redis.port) &&
        info.master_link_status === "up";
    }, { message: "the new master to point the old one at itself" });
    // The stop fenced it for a minute: were the pause still there, this write would wait for it.
    assert.ok(await takesWritesOncePromoted(oldMaster.redis), "the old master is still paused");

    // A pause an earlier run left on what is a replica now: the next agent start lifts it.
    await oldMaster.redis.cli("REPLICAOF", "127.0.0.1", String(newMaster.redis.port));
    await oldMaster.redis.cli("CLIENT", "PAUSE", "60000", "WRITE");
    cluster.startAgent(oldMaster);
    await oldMaster.agent.waitForLog(/to 'replica'/);
    assert.equal(await oldMaster.agent.stop(), 0);
    assert.ok(await takesWritesOncePromoted(oldMaster.redis), "the replica is still paused");
  });
});
