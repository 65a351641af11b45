/**
 * One partition round for the e2e tests: the master's agent cut off from Consul (through its proxy)
 * under a continuous writer, healed after a new master was elected, and what the writer saw.
 */
import type { Cluster, ClusterNode } from "./cluster.ts";
import { delay } from "./wait.ts";
import { ContinuousWriter, type WriterReport } from "./writer.ts";

/** What one partition round measured. */
export interface PartitionRound {
  readonly oldMaster: ClusterNode;
  readonly newMaster: ClusterNode;
  /** From the cut to the old master's agent logging its fence. */
  readonly fencedAfterMs: number;
  /** From the cut to Consul naming the new master. */
  readonly electedAfterMs: number;
  readonly report: WriterReport;
  /** Acknowledged writes missing on the new master. */
  readonly lost: string[];
}

/**
 * Cuts the converged master's agent off from Consul, waits for its fence and for a new master,
 * heals, and returns what the writer saw. The cluster must run with `consulThroughProxy`.
 *
 * @example
 * ```ts
 * const round = await partitionMaster(cluster);
 * assert.equal(round.report.splitBrainRounds, 0);
 * ```
 */
export async function partitionMaster(cluster: Cluster): Promise<PartitionRound> {
  const oldMaster = await cluster.waitForConvergence();
  const proxy = oldMaster.proxy;
  if (!proxy) throw new Error("a partition round needs agents behind proxies (consulThroughProxy)");
  const writer = new ContinuousWriter(cluster);
  writer.start();
  await delay(500);
  const cutAt = Date.now();
  proxy.cut();
  await oldMaster.agent.waitForLog(/fencing_unconfirmed_lock/, 20_000);
  const fencedAfterMs = Date.now() - cutAt;
  const newMaster = await cluster.waitForMaster(30_000, oldMaster);
  const electedAfterMs = Date.now() - cutAt;
  await delay(1_000);
  proxy.heal();
  await cluster.waitForConvergence();
  await delay(500);
  const report = await writer.stop();
  const lost = await ContinuousWriter.lostOn(newMaster.redis, report);
  return { oldMaster, newMaster, fencedAfterMs, electedAfterMs, report, lost };
}

/** One line for the test log. */
export function describeRound(label: string, round: PartitionRound): string {
  const { report, lost } = round;
  return `${label}: fenced after ${round.fencedAfterMs} ms, new master after ` +
    `${round.electedAfterMs} ms; ${report.acknowledged.length} writes acknowledged, ` +
    `${lost.length} lost; ${report.splitBrainRounds} of ${report.probeRounds} probe rounds saw ` +
    `two writable masters`;
}
