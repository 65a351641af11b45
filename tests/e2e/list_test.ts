/**
 * End to end, `resec list` as an operator runs it (the agent's entry point and permission flags) on a
 * real cluster: the table of a converged group, the JSON, `--watch` until Ctrl-C, and the exit codes of
 * a degraded group after a failover and of a paused group whose master died.
 */
import assert from "node:assert/strict";
import { AgentProcess, type ClusterNode, waitFor, withCluster } from "../support/mod.ts";

/** Runs `resec list` with a node's environment. */
async function list(node: ClusterNode, args: string[] = []) {
  return await AgentProcess.run({ env: node.env, args: ["list", ...args], label: "list" });
}

/** Runs `resec list` until it exits with `code` (the agents' checks settle within a few TTLs). */
async function listUntil(node: ClusterNode, code: number, also: RegExp = /./) {
  let last = { code: -1, output: "" };
  try {
    return await waitFor(async () => {
      last = await list(node);
      return last.code === code && also.test(last.output) ? last : false;
    }, { timeoutMs: 30_000, intervalMs: 200, message: `resec list to exit ${code}` });
  } catch (error) {
    console.error(`last listing (exit ${last.code}):\n${last.output}`);
    throw error;
  }
}

/** The table row of one member. */
function rowOf(output: string, address: string): string {
  const row = output.split("\n").find((line) => line.startsWith(`${address} `));
  assert.ok(row, `no row for ${address} in:\n${output}`);
  return row;
}

Deno.test("resec list shows the master and two replicas and exits 0, then 1 after a failover and 3 with no master", async () => {
  await withCluster({}, async (cluster) => {
    const master = await cluster.waitForConvergence();
    const replicas = cluster.nodes.filter((node) => node !== master);
    const healthy = await listUntil(master, 0);
    console.log(`resec list on a converged cluster:\n${healthy.output}`);
    assert.match(
      rowOf(healthy.output, master.redis.address),
      / holder +master +master +passing +alive +0 /,
    );
    for (const replica of replicas) {
      assert.match(
        rowOf(healthy.output, replica.redis.address),
        /^\S+ +\S+ +replica +slave +passing +alive +\d+ +\d+ +\S+ ago +yes$/,
      );
    }
    assert.match(healthy.output, new RegExp(`lock held by ${master.redis.address} \\(epoch \\d+`));
    assert.match(healthy.output, /status: healthy \(exit 0\)/);

    const json = await list(master, ["--json"]);
    assert.equal(json.code, 0, json.output);
    const listing = JSON.parse(json.output);
    assert.equal(listing.verdict, "healthy");
    assert.equal(listing.lock.holder, master.redis.address);
    assert.deepEqual(
      listing.members.map((member: { address: string }) => member.address).sort(),
      cluster.nodes.map((node) => node.redis.address).sort(),
    );
    const holder = listing.members.find((member: { lockHolder: boolean }) => member.lockHolder);
    assert.equal(holder.address, master.redis.address);
    assert.equal(holder.redis.role, "master");
    assert.equal(holder.consulRole, "master");

    // --watch as a real process: it refreshes until Ctrl-C, then exits with the last verdict.
    const watcher = AgentProcess.start({
      env: master.env,
      args: ["list", "--watch=1s"],
      label: "watch",
    });
    await watcher.waitForLog(/status: healthy[\s\S]*status: healthy/);
    watcher.signal("SIGINT");
    assert.equal((await watcher.process.status).code, 0, watcher.log());
    await watcher.process.stop();

    await master.redis.kill();
    const newMaster = await cluster.waitForMaster(30_000, master);
    const degraded = await listUntil(
      newMaster,
      1,
      new RegExp(`lock held by ${newMaster.redis.address}`),
    );
    console.log(`after the master's Redis was killed:\n${degraded.output}`);
    assert.match(
      rowOf(degraded.output, newMaster.redis.address),
      / holder +master +master +passing /,
    );
    assert.match(rowOf(degraded.output, master.redis.address), / down /);
    assert.match(degraded.output, /status: degraded \(exit 1\)/);

    const paused = await AgentProcess.run({
      env: master.env,
      args: ["pause", "--reason", "list test"],
    });
    assert.equal(paused.code, 0, paused.output);
    for (const node of cluster.nodes) await node.agent.waitForLog(/maintenance mode on/);
    await newMaster.redis.kill();
    const masterless = await listUntil(newMaster, 3);
    console.log(`paused, with the new master's Redis killed too:\n${masterless.output}`);
    assert.match(masterless.output, /maintenance mode: ON since \S+ \("list test"\)/);
    assert.match(masterless.output, /status: no-master \(exit 3\)/);
  });
});
