/**
 * End to end, the operator surface: load-balancer endpoints that follow the roles, planned switchover
 * with no acknowledged write lost, maintenance mode, and role-change hooks that cannot hurt the agent.
 */
import assert from "node:assert/strict";
import {
  AgentProcess,
  type ClusterNode,
  ContinuousWriter,
  delay,
  freePort,
  waitFor,
  withCluster,
} from "../support/mod.ts";

function httpOf(node: ClusterNode): string {
  return `http://${node.env.HTTP_ADDR}`;
}

async function statusOf(node: ClusterNode, path: string): Promise<number> {
  const response = await fetch(`${httpOf(node)}${path}`, { signal: AbortSignal.timeout(2_000) });
  await response.body?.cancel();
  return response.status;
}

Deno.test("the /master, /replica and /health endpoints follow the roles through a failover", async () => {
  await withCluster({
    nodeEnv: () => ({ HTTP_ADDR: `127.0.0.1:${freePort()}` }),
  }, async (cluster) => {
    const master = await cluster.waitForConvergence();
    const replicas = cluster.nodes.filter((node) => node !== master);
    await waitFor(async () => (await statusOf(master, "/master")) === 200, {
      message: "/master 200",
    });
    assert.equal(await statusOf(master, "/primary"), 200);
    assert.equal(await statusOf(master, "/replica"), 503);
    for (const replica of replicas) {
      assert.equal(await statusOf(replica, "/master"), 503);
      await waitFor(async () => (await statusOf(replica, "/replica")) === 200, {
        message: "/replica 200",
      });
      assert.equal(await statusOf(replica, "/health"), 200);
    }
    const metrics = await (await fetch(`${httpOf(master)}/metrics`)).text();
    assert.match(metrics, /resec_lock_held 1/);
    assert.match(metrics, /resec_agent_check_registered 1/, "its lock session is tied");
    const agentServices = await cluster.consul.api<unknown[]>(
      "GET",
      "/v1/health/service/redis-agent?passing=1",
    );
    assert.equal(agentServices.length, cluster.nodes.length, "every agent is present and alive");

    await master.redis.kill();
    const newMaster = await cluster.waitForMaster(30_000, master);
    await waitFor(async () => (await statusOf(newMaster, "/master")) === 200, {
      message: "the new master's /master to answer 200",
    });
    assert.equal(await statusOf(master, "/master"), 503, "the old master's Redis is down");
    assert.equal(await statusOf(master, "/health"), 503);
    assert.equal(await statusOf(master, "/liveness"), 200, "the agent itself is alive");
    const state = await (await fetch(`${httpOf(newMaster)}/state`)).json();
    assert.equal(state.decision.name, "master");
    assert.doesNotMatch(JSON.stringify(state), /"password"|CONSUL_HTTP_TOKEN/);
  });
});

Deno.test("a planned switchover under a continuous writer swaps the roles and loses no acknowledged write", async () => {
  await withCluster({}, async (cluster) => {
    const oldMaster = await cluster.waitForConvergence();
    const target = cluster.nodes.find((node) => node !== oldMaster)!;
    const writer = new ContinuousWriter(cluster);
    writer.start();
    await delay(500);
    const { code, output } = await AgentProcess.run({
      env: oldMaster.env,
      args: ["switchover", "--to", target.redis.address, "--timeout", "10s"],
    });
    assert.equal(code, 0, output);
    assert.match(output, /switchover done/);
    // The old master's re-registration as a slave may land a moment after "done": wait for the
    // catalog to name another master, then check it is the requested one.
    const newMaster = await cluster.waitForMaster(10_000, oldMaster);
    assert.equal(newMaster, target, "the requested replica leads");
    await cluster.waitForConvergence();
    await delay(500);
    const report = await writer.stop();
    const lost = await ContinuousWriter.lostOn(target.redis, report);
    console.log(
      `switchover: ${report.acknowledged.length} writes acknowledged, ${lost.length} lost, ` +
        `longest write pause ${report.longestGapMs} ms, ${report.splitBrainRounds} split-brain probe rounds`,
    );
    assert.equal(lost.length, 0, `lost: ${lost.slice(0, 10).join(",")}`);
    assert.equal(report.splitBrainRounds, 0);
    assert.equal((await oldMaster.redis.info()).role, "slave");
    assert.deepEqual((await cluster.passingMasters()).map((master) => master.port), [
      target.redis.port,
    ]);
  });
});

Deno.test("a switchover to an unknown node is refused with the reason and nothing changes", async () => {
  await withCluster({}, async (cluster) => {
    const master = await cluster.waitForConvergence();
    const { code, output } = await AgentProcess.run({
      env: master.env,
      args: ["switchover", "--to", "127.0.0.1:1", "--timeout", "5s"],
    });
    assert.equal(code, 1, output);
    assert.match(output, /switchover refused.*127\.0\.0\.1:1 is unknown/);
    assert.equal(await cluster.waitForMaster(), master);
  });
});

Deno.test("while paused nothing is promoted after the master dies; after resume a failover happens", async () => {
  await withCluster({}, async (cluster) => {
    const master = await cluster.waitForConvergence();
    const paused = await AgentProcess.run({ env: master.env, args: ["pause", "--reason", "test"] });
    assert.equal(paused.code, 0, paused.output);
    for (const node of cluster.nodes) await node.agent.waitForLog(/maintenance mode on/);
    await master.redis.kill();
    await delay(3_000);
    assert.equal((await cluster.passingMasters()).length, 0, "no master was promoted while paused");
    for (const node of cluster.nodes.filter((node) => node !== master)) {
      assert.equal((await node.redis.info()).role, "slave", "replicas were left alone");
    }
    const resumed = await AgentProcess.run({ env: master.env, args: ["resume"] });
    assert.equal(resumed.code, 0, resumed.output);
    const newMaster = await cluster.waitForMaster(30_000, master);
    assert.notEqual(newMaster, master);
  });
});

Deno.test("ON_ROLE_CHANGE gets the roles and master address; a hook that fails or hangs does not stop the agent", async () => {
  const dir = await Deno.makeTempDir();
  const recorder = `${dir}/record.sh`;
  Deno.writeTextFileSync(
    recorder,
    `#!/bin/sh\necho "$1 $2 $3 $RESEC_ROLE" >> ${dir}/roles\nexit 3\n`,
  );
  const hanging = `${dir}/hang.sh`;
  Deno.writeTextFileSync(hanging, "#!/bin/sh\nsleep 30\n");
  Deno.chmodSync(recorder, 0o755);
  Deno.chmodSync(hanging, 0o755);
  try {
    await withCluster({
      nodes: 3,
      // Nodes 0 and 1 record their arguments (and exit 3, a failure); node 2's hook hangs.
      // The recorders get a timeout no busy machine reaches, so they always end with exit 3.
      nodeEnv: (index) => ({
        ON_ROLE_CHANGE: index === 2 ? hanging : recorder,
        ON_ROLE_CHANGE_TIMEOUT: index === 2 ? "500ms" : "10s",
      }),
    }, async (cluster) => {
      const master = await cluster.waitForConvergence();
      const masterAddress = master.redis.address;
      await waitFor(() => {
        try {
          return Deno.readTextFileSync(`${dir}/roles`).trim().split("\n").length >=
            (master.index === 2 ? 1 : 2);
        } catch {
          return false;
        }
      }, { message: "the hooks to run" });
      const lines = Deno.readTextFileSync(`${dir}/roles`).trim().split("\n");
      if (master.index !== 2) {
        assert.ok(lines.includes(`master none ${masterAddress} master`), lines.join("\n"));
      }
      assert.ok(lines.includes(`slave none ${masterAddress} slave`), lines.join("\n"));
      await cluster.nodes[0]!.agent.waitForLog(/ON_ROLE_CHANGE failed .*exitCode=3/);
      await cluster.nodes[2]!.agent.waitForLog(/ON_ROLE_CHANGE timed out and was killed/);
      // Still doing its job after failed and hung hooks: a failover works.
      await master.redis.kill();
      await cluster.waitForMaster(30_000, master);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
