/**
 * The Go resec (built from ../shared/peers/go-resec) and ours in one cluster: one lock, one master,
 * failovers either way, and docs/migration.md's rolling migration and its rollback under a continuous
 * writer. Real Consul, redis-server and both agents; the Go resec refuses a lock TTL under 15 s, so
 * every agent runs with the Go resec's default timings.
 */
import assert from "node:assert/strict";
import {
  AgentProcess,
  Cluster,
  type ClusterNode,
  ContinuousWriter,
  waitFor,
  type WriterReport,
} from "../support/mod.ts";
import { goResecBinary } from "../support/go_resec.ts";

/** Skipped, saying why, on a machine without the Go resec (a clone without ../shared). */
const ignore = goResecBinary() === undefined;
if (ignore) {
  console.warn(
    "mixed_go_test: skipped: no Go resec (GO_RESEC_BIN; scripts/provision-go-resec.sh builds it)",
  );
}

/** Our agents with the Go resec's defaults, as an operator's shared environment file gives them. */
const GO_DEFAULTS: Record<string, string> = {
  CONSUL_SESSION_TTL_MIN: "10s",
  CONSUL_LOCK_TTL: "15s",
  CONSUL_LOCK_MONITOR_RETRY_INTERVAL: "1s",
  HEALTHCHECK_INTERVAL: "5s",
  HEALTHCHECK_TIMEOUT: "2s",
  LOG_LEVEL: "debug",
};

/** The list ContinuousWriter appends to. */
const WRITES = "resec:test:writes";

async function writesOn(node: ClusterNode): Promise<string[]> {
  const text = await node.redis.cli("LRANGE", WRITES, "0", "-1");
  return text === "" ? [] : text.split("\n");
}

/** The master's writes once every other node holds all of them: no failover may lose these. */
async function replicatedCheckpoint(cluster: Cluster, master: ClusterNode): Promise<string[]> {
  const values = await writesOn(master);
  assert.ok(values.length > 0, "the writer acknowledged nothing yet");
  for (const node of cluster.nodes.filter((node) => node !== master)) {
    await waitFor(
      async () => Number(await node.redis.cli("LLEN", WRITES)) >= values.length,
      { timeoutMs: 10_000, message: `${node.redis.address} to replicate the checkpoint` },
    );
  }
  return values;
}

function missing(expected: readonly string[], stored: readonly string[]): string[] {
  const have = new Set(stored);
  return expected.filter((value) => !have.has(value));
}

/** The line a test prints about the writer, for the run's log. */
function describeWriter(report: WriterReport): string {
  return `${report.acknowledged.length} writes acknowledged, ${report.failedAttempts} failed, ` +
    `longest gap ${report.longestGapMs} ms, split brain in ${report.splitBrainRounds}/` +
    `${report.probeRounds} probe rounds`;
}

/**
 * Runs `step` under a continuous writer that follows Consul, and checks what it saw: never two Redis
 * taking writes together, and every write already replicated everywhere when the step began kept by
 * the master Consul names at its end. A Redis restarted after a crash is left out: it is writable on
 * its own for a moment, before any agent sees it (the Go resec never fences it at all).
 */
async function underWriter(
  cluster: Cluster,
  label: string,
  step: () => Promise<ClusterNode>,
): Promise<{ report: WriterReport; lost: string[] }> {
  const before = await cluster.waitForConvergence(40_000);
  const writer = new ContinuousWriter(cluster);
  writer.start();
  let report: WriterReport | undefined;
  try {
    await waitFor(async () => (await writesOn(before)).length > 20, { message: "first writes" });
    const checkpoint = await replicatedCheckpoint(cluster, before);
    const after = await step();
    // Writes land on the new master before the writer stops.
    const landed = (await writesOn(after)).length;
    await waitFor(async () => (await writesOn(after)).length > landed + 20, {
      message: `writes on the new master ${after.redis.address}`,
    });
    report = await writer.stop();
    const final = await writesOn(after);
    const lost = missing(report.acknowledged, final);
    console.log(`${label}: ${describeWriter(report)}, ${lost.length} acknowledged writes lost`);
    assert.equal(report.splitBrainRounds, 0, `${label}: two Redis took writes at the same time`);
    assert.deepEqual(missing(checkpoint, final), [], `${label}: replicated writes were lost`);
    return { report, lost };
  } finally {
    if (!report) await writer.stop();
  }
}

Deno.test({
  name:
    "a Go resec and ours share one lock: one master, and a kill -9 of either one's master Redis hands over to the other",
  ignore,
  fn: async () => {
    const started = Date.now();
    await using cluster = await Cluster.start({ nodes: 2, startAgents: [], env: GO_DEFAULTS });
    const [goNode, ourNode] = cluster.nodes as [ClusterNode, ClusterNode];
    try {
      goNode.startGoAgent({ LOG_LEVEL: "debug" });
      assert.equal(await cluster.waitForMaster(30_000), goNode, "the Go resec leads first");
      cluster.startAgent(ourNode);
      assert.equal(await cluster.waitForConvergence(40_000), goNode);

      // The Go master's Redis dies: the Go resec gives the lock up, ours takes it.
      await underWriter(cluster, "Go master's Redis killed", async () => {
        const faultAt = Date.now();
        await goNode.redis.kill();
        assert.equal(await cluster.waitForMaster(30_000, goNode), ourNode);
        console.log(
          `Go master's Redis killed: ours passing master after ${Date.now() - faultAt} ms`,
        );
        return ourNode;
      });
      // It comes back empty: the Go resec makes it a replica of ours, which it does not overwrite.
      await goNode.redis.restart();
      assert.equal(await cluster.waitForConvergence(40_000), ourNode);

      // Our master's Redis dies: ours gives the lock up, the Go resec takes it.
      await underWriter(cluster, "our master's Redis killed", async () => {
        const faultAt = Date.now();
        await ourNode.redis.kill();
        assert.equal(await cluster.waitForMaster(30_000, ourNode), goNode);
        console.log(
          `our master's Redis killed: Go passing master after ${Date.now() - faultAt} ms`,
        );
        return goNode;
      });
      // Ours follows the Go master, found through the catalog (the Go lock value is empty).
      await ourNode.redis.restart();
      assert.equal(await cluster.waitForConvergence(40_000), goNode);
      console.log(`mixed failovers: ${Math.round((Date.now() - started) / 1000)} s in all`);
    } catch (error) {
      console.error(cluster.logs(6_000));
      throw error;
    }
  },
});

/** Runs our command line (`pause`, `resume`, `--check`) with a node's environment; must exit 0. */
async function resecCommand(node: ClusterNode, args: string[]): Promise<string> {
  const { code, output } = await AgentProcess.run({ env: node.env, args, label: "resec-cli" });
  assert.equal(code, 0, `resec ${args.join(" ")} exited ${code}:\n${output}`);
  return output;
}

/** Swaps a node's agent for the other flavour: SIGTERM, then the new one on the same Redis. */
async function replaceAgent(cluster: Cluster, node: ClusterNode, by: "deno" | "go"): Promise<void> {
  assert.equal(await node.agent.stop(), 0, `the ${node.flavour} agent stopped cleanly`);
  if (by === "go") node.startGoAgent({ LOG_LEVEL: "debug" });
  else cluster.startAgent(node);
}

/** Waits until `node` is a passing slave whose Redis replicates with its link up. */
async function passingSlave(cluster: Cluster, node: ClusterNode): Promise<void> {
  await waitFor(async () => {
    const slaves = await cluster.passingSlaves();
    if (!slaves.some((slave) => slave.port === node.redis.port)) return false;
    const info = await node.redis.info();
    return info.role === "slave" && info.master_link_status === "up";
  }, { timeoutMs: 30_000, message: `${node.redis.address} to pass as a slave` });
}

Deno.test({
  name:
    "the rolling migration of docs/migration.md from the Go resec, and its rollback, under a continuous writer: one master, no write lost",
  ignore,
  fn: async () => {
    const started = Date.now();
    await using cluster = await Cluster.start({ nodes: 3, startAgents: [], env: GO_DEFAULTS });
    try {
      // A Go resec group: the first agent leads, the others follow.
      cluster.nodes[0]!.startGoAgent({ LOG_LEVEL: "debug" });
      await cluster.waitForMaster(30_000);
      for (const node of cluster.nodes.slice(1)) node.startGoAgent({ LOG_LEVEL: "debug" });
      const goMaster = await cluster.waitForConvergence(40_000);
      const replicas = cluster.nodes.filter((node) => node !== goMaster);

      const migration = await underWriter(cluster, "migration", async () => {
        // 1. Each host's settings pass --check.
        await resecCommand(goMaster, ["--check"]);
        // 2. The replicas' agents, one at a time: each keeps its Redis replicating, and passes.
        for (const node of replicas) {
          await replaceAgent(cluster, node, "deno");
          await passingSlave(cluster, node);
        }
        // 3–5. Pause, replace the master's agent, resume.
        await resecCommand(goMaster, ["pause", "--reason", "resec upgrade"]);
        const stoppedAt = Date.now();
        await replaceAgent(cluster, goMaster, "deno");
        await resecCommand(goMaster, ["resume"]);
        const master = await cluster.waitForMaster(30_000);
        console.log(
          `migration: ${master.redis.address} passing master ${Date.now() - stoppedAt} ms ` +
            `after the Go master's agent stopped (it led before: ${master === goMaster})`,
        );
        return await cluster.waitForConvergence(40_000);
      });
      assert.deepEqual(migration.lost, [], "the migration lost acknowledged writes");
      assert.ok(
        migration.report.longestGapMs < 20_000,
        `writers found no master for ${migration.report.longestGapMs} ms`,
      );

      // The rollback: the same steps the other way, without the pause (the Go resec ignores it).
      const ourMaster = await cluster.waitForConvergence(40_000);
      const rollback = await underWriter(cluster, "rollback", async () => {
        for (const node of cluster.nodes.filter((node) => node !== ourMaster)) {
          await replaceAgent(cluster, node, "go");
          await passingSlave(cluster, node);
        }
        const stoppedAt = Date.now();
        assert.equal(await ourMaster.agent.stop(), 0);
        // The Go resec takes the lock our agent released: the key kept the Go lock flags.
        const master = await cluster.waitForMaster(30_000, ourMaster);
        console.log(
          `rollback: Go master ${master.redis.address} passing ${Date.now() - stoppedAt} ms ` +
            "after our master's agent stopped",
        );
        // Before it exited, our agent made its fenced Redis the Go master's replica and lifted the
        // fence: no Go resec would have.
        const info = await ourMaster.redis.info();
        assert.equal(info.master_port, String(master.redis.port), "handed over to the Go master");
        assert.match(await ourMaster.redis.cli("INFO", "commandstats"), /cmdstat_client\|unpause/);
        ourMaster.startGoAgent({ LOG_LEVEL: "debug" });
        return await cluster.waitForConvergence(40_000);
      });
      assert.deepEqual(rollback.lost, [], "the rollback lost acknowledged writes");
      assert.ok(
        rollback.report.longestGapMs < 20_000,
        `writers found no master for ${rollback.report.longestGapMs} ms`,
      );
      console.log(`migration and rollback: ${Math.round((Date.now() - started) / 1000)} s in all`);
    } catch (error) {
      console.error(cluster.logs(8_000));
      throw error;
    }
  },
});
