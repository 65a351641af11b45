/**
 * Minimal reproductions of agent bugs the chaos suite found. Each test states the promise the agent
 * must keep; docs/chaos.md ("Findings") has the evidence and the analysis.
 */
import assert from "node:assert/strict";
import { type ClusterNode, withCluster } from "../support/cluster.ts";
import { delay, waitFor } from "../support/wait.ts";
import { probeClient, writableTogether } from "../support/writability.ts";

/** Sets a key on every Redis as fast as they answer; returns the rounds where two or more were writable together. */
async function probeWritable(
  nodes: readonly ClusterNode[],
  durationMs: number,
): Promise<{ rounds: number; doubles: { afterMs: number; ports: number[] }[] }> {
  const clients = nodes.map((node) => probeClient(node.redis));
  const started = Date.now();
  const doubles: { afterMs: number; ports: number[] }[] = [];
  let rounds = 0;
  try {
    while (Date.now() - started < durationMs) {
      const at = Date.now();
      const together = await writableTogether(clients, "resec:regression:probe");
      rounds++;
      const ports = together.map((index) => nodes[index]!.redis.port);
      if (ports.length > 1) doubles.push({ afterMs: at - started, ports });
      await delay(1);
    }
  } finally {
    for (const client of clients) client.disconnect();
  }
  return { rounds, doubles };
}

Deno.test("a master cut off from Consul rejoins after the heal as a replica that applies the new master's writes", async () => {
  await withCluster({ consulThroughProxy: true }, async (cluster) => {
    const oldMaster = await cluster.waitForConvergence();
    oldMaster.proxy!.cut();
    // The old master fences itself (CLIENT PAUSE WRITE); the new master points it at itself, and
    // the old agent sees its Redis as a replica before it hears from Consul again.
    const newMaster = await cluster.waitForMaster(30_000, oldMaster);
    await waitFor(async () => (await oldMaster.redis.info()).role === "slave", {
      message: "the new master to point the old one at itself",
    });
    await delay(1_500);
    oldMaster.proxy!.heal();
    await cluster.waitForConvergence();
    await newMaster.redis.cli("SET", "after-heal", "applied");
    // Redis 7 holds a replica's replication stream while CLIENT PAUSE WRITE is in force, with the
    // link still "up": a fence left in place makes a healthy-looking replica that applies nothing.
    await waitFor(async () => (await oldMaster.redis.cli("GET", "after-heal")) === "applied", {
      timeoutMs: 5_000,
      message: "the former master to apply a write made on the new master after the heal",
    });
  });
});

Deno.test("a master cut off from Consul is never named a passing master again once the partition heals", async () => {
  await withCluster({ consulThroughProxy: true }, async (cluster) => {
    const oldMaster = await cluster.waitForConvergence();
    oldMaster.proxy!.cut();
    await cluster.waitForMaster(30_000, oldMaster);
    await waitFor(async () => (await oldMaster.redis.info()).role === "slave", {
      message: "the new master to point the old one at itself",
    });
    await delay(1_500);
    // While its lock is unconfirmed the old master keeps heartbeating its master check as passing;
    // the first heartbeat that gets through must not put it back in the catalog beside the new one.
    oldMaster.proxy!.heal();
    const healedAt = Date.now();
    const doubles: number[] = [];
    let polls = 0;
    while (Date.now() - healedAt < 3_000) {
      if ((await cluster.passingMasters()).length > 1) doubles.push(Date.now() - healedAt);
      polls++;
      await delay(2);
    }
    assert.equal(
      doubles.length,
      0,
      `${doubles.length} of ${polls} polls named two passing masters (first at ${
        doubles.slice(0, 5).join(", ")
      } ms after the heal)`,
    );
  });
});

Deno.test("after the master's agent dies, the new master takes no write while the orphaned old master still does", async () => {
  await withCluster({}, async (cluster) => {
    const oldMaster = await cluster.waitForConvergence();
    // Nobody fences a Redis whose agent is gone: the new master must point it away (REPLICAOF)
    // before it lifts its own fence, or both take writes for a moment.
    await oldMaster.agent.kill();
    const { rounds, doubles } = await probeWritable(cluster.nodes, 7_000);
    await cluster.waitForMaster(30_000, oldMaster);
    assert.equal(
      doubles.length,
      0,
      `${doubles.length} of ${rounds} probe rounds found two writable Redis after the agent died: ${
        JSON.stringify(doubles.slice(0, 5))
      }`,
    );
  });
});

Deno.test("when Consul restarts empty, the old master never takes writes beside a newly elected one", async () => {
  // The default lock-monitor retry interval (1 s): the old master learns of the lost lock late.
  await withCluster({ env: { CONSUL_LOCK_MONITOR_RETRY_INTERVAL: "1s" } }, async (cluster) => {
    await cluster.waitForConvergence();
    const probing = probeWritable(cluster.nodes, 5_000);
    await delay(200);
    await cluster.consul.restart();
    const { rounds, doubles } = await probing;
    await cluster.waitForConvergence();
    assert.equal(
      doubles.length,
      0,
      `${doubles.length} of ${rounds} probe rounds found two writable Redis after the restart: ${
        JSON.stringify(doubles.slice(0, 5))
      }`,
    );
  });
});
