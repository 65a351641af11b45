/**
 * End to end, FAILSAFE_MODE with real Consul and Redis: a Consul that answers nobody is no write
 * outage while every peer's agent confirms the master, and the master still stops taking writes as
 * soon as one peer cannot confirm, or when it alone is cut off from Consul.
 */
import assert from "node:assert/strict";
import {
  type ClusterNode,
  delay,
  freePort,
  makeServerDir,
  waitFor,
  withCluster,
} from "../support/mod.ts";
import { describeRound, partitionMaster } from "../support/partition.ts";

/** The lock TTL of these tests: a little longer than the test bed's, for slack on a busy machine. */
const LOCK_TTL = "3s";

/** The fence bound: 0.6 × the lock TTL. */
const FENCE_BOUND_MS = 1_800;

/** A write that takes longer is refused: a paused Redis holds it instead of answering. */
const WRITE_TIMEOUT_MS = 300;

/** How long Consul stays frozen: several fence bounds, and longer than a session TTL. */
const FREEZE_MS = 6_000;

/** A key file the agents share; `secret` differs for the node that must not be believed. */
function keyFile(secret: string): string {
  const path = `${makeServerDir("failsafe-key")}/key`;
  Deno.writeTextFileSync(path, `${secret}\n`);
  return path;
}

/** Failsafe settings for every node, the key of node `otherKeyFor` (if any) being another one. */
function failsafeEnv(otherKeyFor?: number) {
  const groupKey = keyFile("the group's failsafe secret");
  const otherKey = keyFile("a secret of some other group");
  return (index: number) => ({
    FAILSAFE_MODE: "true",
    FAILSAFE_KEY_FILE: index === otherKeyFor ? otherKey : groupKey,
    HTTP_ADDR: `127.0.0.1:${freePort()}`,
  });
}

/** Whether the node's Redis takes a write now (a paused one does not answer in time). */
async function takesWrites(node: ClusterNode): Promise<boolean> {
  const client = node.redis.client({ commandTimeout: WRITE_TIMEOUT_MS, maxRetriesPerRequest: 0 });
  client.on("error", () => {});
  try {
    await client.ping();
    return (await client.set("failsafe:probe", String(Date.now()))) === "OK";
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

Deno.test("with Consul frozen, a master fences itself without failsafe mode and keeps taking writes with it", async () => {
  for (const failsafe of [false, true]) {
    const env = { CONSUL_LOCK_TTL: LOCK_TTL };
    await withCluster({ env, ...(failsafe ? { nodeEnv: failsafeEnv() } : {}) }, async (cluster) => {
      const master = await cluster.waitForConvergence();
      await delay(500);
      await cluster.consul.pause();
      const frozenAt = Date.now();
      try {
        // Past the fence bound, then probe until Consul has been frozen FREEZE_MS.
        await delay(FENCE_BOUND_MS + 1_000);
        const writable = [];
        while (Date.now() - frozenAt < FREEZE_MS) {
          writable.push(await takesWrites(master));
          await delay(500);
        }
        console.log(`failsafe ${failsafe}: master writable in probes ${JSON.stringify(writable)}`);
        assert.ok(writable.length >= 4);
        assert.ok(
          writable.every((ok) => ok === failsafe),
          failsafe ? "failsafe mode keeps writes open" : "the master fenced itself",
        );
        if (failsafe) assert.match(master.agent.log(), /failsafe_master/);
      } finally {
        cluster.consul.resume();
      }
      await cluster.waitForConvergence();
    });
  }
});

Deno.test("failsafe mode: with every request to Consul failing at once, the master keeps taking writes past the lock monitor's retries", async () => {
  // Every agent's connections to Consul are refused, as a quorum loss answers "No cluster leader":
  // errors, not silence, which use up CONSUL_LOCK_MONITOR_RETRIES (3 × 200 ms here) within a second.
  const env = { CONSUL_LOCK_TTL: LOCK_TTL };
  await withCluster(
    { env, consulThroughProxy: true, nodeEnv: failsafeEnv() },
    async (cluster) => {
      const master = await cluster.waitForConvergence();
      await delay(500);
      for (const node of cluster.nodes) node.proxy!.refuse();
      const refusedAt = Date.now();
      try {
        await delay(FENCE_BOUND_MS + 1_000);
        const writable = [];
        while (Date.now() - refusedAt < FREEZE_MS) {
          writable.push(await takesWrites(master));
          await delay(500);
        }
        console.log(
          `failsafe, Consul refused: master writable in probes ${JSON.stringify(writable)}`,
        );
        assert.ok(writable.length >= 4);
        assert.ok(writable.every((ok) => ok), "failsafe mode keeps writes open");
      } finally {
        for (const node of cluster.nodes) node.proxy!.heal();
      }
      await cluster.waitForConvergence();
    },
  );
});

Deno.test("failsafe mode: with Consul frozen, the master fences once one peer's agent stops confirming (killed, or another key)", async () => {
  for (const fault of ["peer killed", "peer with another key"] as const) {
    const otherKeyFor = fault === "peer with another key" ? 2 : undefined;
    const env = { CONSUL_LOCK_TTL: LOCK_TTL };
    await withCluster({ env, nodeEnv: failsafeEnv(otherKeyFor) }, async (cluster) => {
      const master = await cluster.waitForConvergence();
      const peer = cluster.nodes.find((node) => node !== master && node.index === 2) ??
        cluster.nodes.find((node) => node !== master)!;
      await delay(500);
      await cluster.consul.pause();
      try {
        if (fault === "peer killed") {
          await delay(FENCE_BOUND_MS + 1_000);
          assert.ok(await takesWrites(master), "writable while both peers confirm");
          await peer.agent.kill();
        }
        const since = Date.now();
        // The last grant runs out one fence bound after it was asked for, at the latest.
        await waitFor(async () => !(await takesWrites(master)), {
          timeoutMs: FENCE_BOUND_MS + 3_000,
          message: `the master to fence itself (${fault})`,
        });
        console.log(`failsafe, ${fault}: master fenced after ${Date.now() - since} ms`);
        if (otherKeyFor !== undefined) {
          assert.match(
            cluster.nodes[otherKeyFor]!.agent.log(),
            /signature does not match/,
            "the peer with another key refused the master's calls",
          );
        }
      } finally {
        cluster.consul.resume();
      }
      if (fault === "peer killed") cluster.startAgent(peer);
      await cluster.waitForConvergence();
    });
  }
});

Deno.test("failsafe mode: a master cut off from Consul alone stops taking writes before another is elected", async () => {
  const env = { CONSUL_LOCK_TTL: LOCK_TTL };
  await withCluster({ env, consulThroughProxy: true, nodeEnv: failsafeEnv() }, async (cluster) => {
    const round = await partitionMaster(cluster);
    console.log(describeRound("failsafe, partition", round));
    assert.ok(
      round.fencedAfterMs < round.electedAfterMs,
      "the old master was fenced before the new one was elected",
    );
    assert.match(
      cluster.nodes.filter((node) => node !== round.oldMaster).map((node) => node.agent.log())
        .join("\n"),
      /refused a failsafe call/,
      "the peers saw the lock freed and refused the cut-off master",
    );
    assert.equal(round.report.splitBrainRounds, 0, "never two writable masters");
    assert.equal(round.lost.length, 0, `acknowledged writes lost: ${round.lost.slice(0, 10)}`);
  });
});
