/**
 * End to end, the promises the Go resec never made: never promote an empty or never-synced Redis,
 * never let a restarted-empty master wipe the replicas, never promote `replica-priority 0`, fence a
 * master cut off from Consul, and bring a frozen master back as a replica.
 */
import assert from "node:assert/strict";
import { type ClusterNode, delay, waitFor, withCluster } from "../support/mod.ts";
import { DEFAULT_FULL_SYNC_DELAY } from "../support/redis.ts";
import { describeRound, partitionMaster } from "../support/partition.ts";

const PASSWORD = "e2e-secret";

async function writeKeys(node: ClusterNode, prefix: string, count: number): Promise<void> {
  const client = node.redis.client();
  try {
    const pipeline = client.pipeline();
    for (let i = 0; i < count; i++) pipeline.set(`${prefix}:${i}`, String(i));
    await pipeline.exec();
  } finally {
    client.disconnect();
  }
}

async function keyCount(node: ClusterNode): Promise<number> {
  return Number(await node.redis.cli("DBSIZE"));
}

Deno.test("a synced replica always wins over one that never synced, and no node loses data (3 rounds)", async () => {
  // Node 2 gets the wrong masterauth: its replication link can never come up, so it stays empty.
  await withCluster({
    redis: (index) => ({
      password: PASSWORD,
      ...(index === 2 ? { args: ["--masterauth", "wrong-password"] } : {}),
    }),
    env: { REDIS_PASSWORD: PASSWORD },
    startAgents: [0, 1],
  }, async (cluster) => {
    const [first, second, neverSynced] = cluster.nodes as [ClusterNode, ClusterNode, ClusterNode];
    let master = await cluster.waitForMaster();
    await writeKeys(master, "data", 500);
    const synced = master === first ? second : first;
    await waitFor(async () => (await keyCount(synced)) >= 500, { message: "the replica to sync" });
    cluster.startAgent(neverSynced);
    await waitFor(
      async () => (await neverSynced.redis.info()).master_port === String(master.redis.port),
      {
        message: "the never-synced node to point at the master",
      },
    );
    assert.equal((await neverSynced.redis.info()).master_link_status, "down");

    for (let round = 1; round <= 3; round++) {
      const old = master;
      const expected = old === first ? second : first;
      await old.redis.kill();
      master = await cluster.waitForMaster(30_000, old);
      assert.equal(master, expected, `round ${round}: the synced replica must win`);
      assert.ok((await keyCount(master)) >= 500, `round ${round}: the new master kept the data`);
      assert.equal(await keyCount(neverSynced), 0, "the never-synced node stayed empty");
      await old.redis.restart();
      await waitFor(async () => (await keyCount(old)) >= 500, {
        timeoutMs: 30_000,
        message: `round ${round}: the old master to rejoin and resync`,
      });
      // Its agent has seen it rejoin: Consul lists it as a passing slave again.
      await waitFor(
        async () => (await cluster.passingSlaves()).some((slave) => slave.port === old.redis.port),
        { timeoutMs: 30_000, message: `round ${round}: the rejoined node to pass as a slave` },
      );
    }
  });
});

Deno.test("a master whose Redis restarts empty at once does not wipe the replicas", async () => {
  // Redis's default full-sync delay, as users run it: the bed's 0 races the agents against 1 s.
  await withCluster({ redis: () => DEFAULT_FULL_SYNC_DELAY }, async (cluster) => {
    const master = await cluster.waitForConvergence();
    await writeKeys(master, "keep", 1000);
    const replicas = cluster.nodes.filter((node) => node !== master);
    for (const replica of replicas) {
      await waitFor(async () => (await keyCount(replica)) === 1000, { message: "replication" });
    }
    // Kill and restart straight away, as a supervisor would: faster than any poll interval.
    await master.redis.kill();
    await master.redis.restart();
    const newMaster = await cluster.waitForMaster(30_000, master);
    assert.notEqual(newMaster, master, "the empty node did not keep or retake the lead");
    await cluster.waitForConvergence();
    for (const node of cluster.nodes) {
      assert.equal(await keyCount(node), 1000, `${node.redis.address} has every key`);
    }
  });
});

/**
 * The master is cut off from Consul, so its session outlives what follows and the replicas keep
 * following it; then its Redis restarts empty (with its agent too when `agentRestarts`, as in a host
 * reboot: no memory of leading, and no Consul to ask). Past Redis's default 5 s full-sync delay,
 * every replica must still hold every key, and once the cut heals a node with the data leads.
 */
async function emptyRestartKeepsReplicas(agentRestarts: boolean): Promise<void> {
  await withCluster(
    // With the default 15 s TTL the session outlives the 5 s delay; the test bed's 2 s would not.
    {
      consulThroughProxy: true,
      redis: () => DEFAULT_FULL_SYNC_DELAY,
      env: { CONSUL_LOCK_TTL: "15s" },
    },
    async (cluster) => {
      const master = await cluster.waitForConvergence();
      await writeKeys(master, "keep", 1000);
      const replicas = cluster.nodes.filter((node) => node !== master);
      for (const replica of replicas) {
        await waitFor(async () => (await keyCount(replica)) === 1000, { message: "replication" });
      }
      master.proxy!.cut();
      await delay(500);
      if (agentRestarts) await master.agent.kill();
      await master.redis.kill();
      await master.redis.restart();
      if (agentRestarts) master.startAgent();
      // Past Redis's full-sync delay, while the cut-off master's session still holds the lock.
      await delay(8_000);
      for (const replica of replicas) {
        assert.equal(await keyCount(replica), 1000, `${replica.redis.address} kept every key`);
      }
      master.proxy!.heal();
      const newMaster = await cluster.waitForMaster(30_000, master);
      await cluster.waitForConvergence();
      assert.notEqual(newMaster, master, "the empty node did not keep or retake the lead");
      for (const node of cluster.nodes) {
        assert.equal(await keyCount(node), 1000, `${node.redis.address} has every key`);
      }
    },
  );
}

Deno.test("a master cut off from Consul whose Redis restarts empty does not wipe the replicas that still follow it", async () => {
  await emptyRestartKeepsReplicas(false);
});

Deno.test("a master whose host reboots empty while cut off from Consul does not wipe the replicas that still follow it, though its new agent knows nothing of having led", async () => {
  await emptyRestartKeepsReplicas(true);
});

Deno.test("a replica with replica-priority 0 is never promoted, even as the only healthy node", async () => {
  await withCluster({
    nodes: 2,
    redis: (index) => (index === 1 ? { args: ["--replica-priority", "0"] } : {}),
    startAgents: [0],
  }, async (cluster) => {
    const [leader, neverMaster] = cluster.nodes as [ClusterNode, ClusterNode];
    await cluster.waitForMaster();
    cluster.startAgent(neverMaster);
    await cluster.waitForConvergence();
    await leader.redis.kill();
    await neverMaster.agent.waitForLog(/no_eligible_candidate/);
    assert.match(neverMaster.agent.log(), /may not be promoted: priority 0/);
    await delay(2_000);
    assert.equal((await cluster.passingMasters()).length, 0, "no master was registered");
    assert.doesNotMatch(neverMaster.agent.log(), /lock acquired/);
  });
});

Deno.test("a master cut off from Consul stops taking writes before another is elected", async () => {
  // Every agent reaches Consul through its own proxy, so the test can partition any one of them.
  await withCluster({ consulThroughProxy: true }, async (cluster) => {
    const round = await partitionMaster(cluster);
    console.log(describeRound("partition (TTL 2s)", round));
    assert.ok(
      round.fencedAfterMs < round.electedAfterMs,
      "the old master was fenced before the new one was elected",
    );
    assert.equal(round.report.splitBrainRounds, 0, "never two writable masters");
    assert.equal(round.lost.length, 0, `acknowledged writes lost: ${round.lost.slice(0, 10)}`);
    assert.equal(
      (await round.oldMaster.redis.info()).role,
      "slave",
      "the cut-off master rejoined as a replica",
    );
  });
});

Deno.test("a master frozen for longer than the TTL comes back as a replica, not a second master", async () => {
  await withCluster({}, async (cluster) => {
    const master = await cluster.waitForConvergence();
    await master.redis.pause();
    const newMaster = await cluster.waitForMaster(30_000, master);
    await delay(2_500);
    master.redis.resume();
    await waitFor(async () => {
      const info = await master.redis.info();
      return info.role === "slave" && info.master_port === String(newMaster.redis.port) &&
        info.master_link_status === "up";
    }, { timeoutMs: 30_000, message: "the thawed master to replicate from the new one" });
    assert.equal((await cluster.passingMasters()).length, 1);
  });
});
