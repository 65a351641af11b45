/**
 * One chaos round: a fresh cluster, a continuous writer and a Consul monitor, one fault, then the
 * read-back of every node and the numbers the report needs.
 */
import type { Redis } from "ioredis";
import { Cluster, type ClusterNode } from "../support/cluster.ts";
import { delay, waitFor } from "../support/wait.ts";
import { ContinuousWriter, type WriterReport } from "../support/writer.ts";
import {
  checkpointPrefixKept,
  type Comeback,
  emptyResult,
  firstOtherMaster,
  isWrongPromotion,
  type PromotionCheck,
  type RoundResult,
  summarizeLoss,
  summarizeProbes,
  summarizeTimeline,
  violations,
} from "./analysis.ts";
import { comebackGraceMs, type Fault, lockTtlMs } from "./faults.ts";
import { MasterMonitor } from "./monitor.ts";
import { WritabilityProbe } from "./probe.ts";

/** The list ContinuousWriter appends to. */
const WRITES_KEY = "resec:test:writes";

export interface RoundOptions {
  /** Round number, for the report (default 1). */
  round?: number;
  /** Writes before the fault (default 1 000 ms). */
  warmupMs?: number;
  /** Writes after convergence, to see any late master change (default 1 500 ms). */
  settleMs?: number;
  /** How long the cluster may take to converge after the fault (default 40 000 ms). */
  convergeTimeoutMs?: number;
  /** Progress lines (default: none). */
  note?: (message: string) => void;
}

/** A round's result, the promises it broke, and the agents' logs for a person to read. */
export interface RoundOutcome {
  readonly result: RoundResult;
  readonly violations: readonly string[];
  /** Every agent's log (and kept logs of replaced agents), newest last. */
  readonly logs: string;
}

/**
 * Runs one round of `fault` on a fresh three-node cluster.
 *
 * @example
 * ```ts
 * const outcome = await runRound(redisKill, { round: 1 });
 * if (outcome.violations.length > 0) console.error(outcome.logs);
 * ```
 */
export async function runRound(fault: Fault, options: RoundOptions = {}): Promise<RoundOutcome> {
  const round = options.round ?? 1;
  const note = (message: string) => options.note?.(`[${fault.name} #${round}] ${message}`);
  const kept: string[] = [];
  const startedAt = new Date().toISOString();
  let started: Cluster;
  try {
    started = await Cluster.start(fault.cluster ?? {});
  } catch (error) {
    const result = emptyResult(fault.name, round, startedAt, `no cluster: ${errorMessage(error)}`);
    return { result, violations: violations(result, fault.expect), logs: "" };
  }
  await using cluster = started;
  let result: RoundResult;
  try {
    result = await measure(cluster, fault, {
      round,
      startedAt,
      warmupMs: options.warmupMs ?? 1_000,
      settleMs: options.settleMs ?? 1_500,
      convergeTimeoutMs: options.convergeTimeoutMs ?? 40_000,
      note,
      keepLog: (label, text) => kept.push(`--- ${label}\n${eventLines(text)}`),
    });
  } catch (error) {
    result = emptyResult(fault.name, round, startedAt, errorMessage(error));
  }
  const current = cluster.nodes.filter((node) => node.started).map((node) =>
    `--- agent ${node.index} (redis ${node.redis.port}, ${node.agent.dir})\n${
      eventLines(node.agent.log())
    }`
  );
  const logs = [...kept, ...current].join("\n");
  return { result, violations: violations(result, fault.expect), logs };
}

interface MeasureOptions {
  round: number;
  startedAt: string;
  warmupMs: number;
  settleMs: number;
  convergeTimeoutMs: number;
  note: (message: string) => void;
  keepLog: (label: string, text: string) => void;
}

async function measure(
  cluster: Cluster,
  fault: Fault,
  options: MeasureOptions,
): Promise<RoundResult> {
  const { note } = options;
  const before = await cluster.waitForConvergence(40_000);
  note(`converged on ${before.redis.address}`);
  await using monitor = new MasterMonitor(cluster);
  monitor.start();
  await using probe = new WritabilityProbe(cluster);
  probe.start();
  const writer = new ContinuousWriter(cluster);
  writer.start();
  let report: WriterReport | undefined;
  try {
    await delay(options.warmupMs);
    const checkpoint = await replicatedCheckpoint(cluster, before);
    note(`${checkpoint.length} writes on every node; injecting ${fault.name}`);

    const checks: Promise<PromotionCheck>[] = [];
    const unsubscribe = monitor.onMasterAppeared((port, at) => {
      const node = cluster.nodeAt(port);
      if (node) checks.push(checkPromotion(node, at, checkpoint));
    });
    const comebacks: Comeback[] = [];
    const faultAt = Date.now();
    let converged: ClusterNode | undefined;
    let convergedAt: number | undefined;
    try {
      await fault.inject({
        cluster,
        master: before,
        monitor,
        lockTtlMs: lockTtlMs(fault.cluster?.env),
        cameBack: (node) => comebacks.push({ port: node.redis.port, at: Date.now() }),
        keepLog: options.keepLog,
        note,
      });
      note(`fault done after ${Date.now() - faultAt} ms; waiting for convergence`);
      try {
        converged = await cluster.waitForConvergence(options.convergeTimeoutMs);
        convergedAt = Date.now();
        note(`converged on ${converged.redis.address} after ${convergedAt - faultAt} ms`);
      } catch (error) {
        note(`no convergence: ${errorMessage(error)}`);
      }
      await delay(options.settleMs);
    } finally {
      report = await writer.stop();
      unsubscribe();
    }
    const samples = await monitor.stop();
    // Probe writes time out after 250 ms: one sent just before a comeback may be answered after it.
    const probes = summarizeProbes(await probe.stop(), comebacks, {
      inFlightMs: 300,
      faultAt,
    });
    const promotions = (await Promise.all(checks)).filter((check) => check.at >= faultAt);
    const readBack = await readBackEveryNode(cluster, converged, report);
    // From the last poll before the fault: the old master opens the sequence.
    const firstAfter = samples.findIndex((sample) => sample.at >= faultAt);
    const timeline = summarizeTimeline(
      firstAfter < 0 ? [] : samples.slice(Math.max(0, firstAfter - 1)),
    );
    const loss = summarizeLoss({
      acknowledged: report.acknowledged,
      lost: readBack.lost,
      replicatedBeforeFault: new Set(checkpoint),
    });
    return {
      fault: fault.name,
      round: options.round,
      startedAt: options.startedAt,
      acknowledged: report.acknowledged.length,
      failedAttempts: report.failedAttempts,
      lost: loss.lost.length,
      lostRuns: loss.lostRuns,
      lostAfterReplication: loss.lostAfterReplication.length,
      lostByNode: readBack.lostByNode,
      divergentNodes: readBack.divergent,
      writerProbeRounds: report.probeRounds,
      writerSplitBrainRounds: report.splitBrainRounds,
      probeRounds: probes.rounds,
      splitBrain: probes.splitBrain.map((round) => ({
        afterMs: round.at - faultAt,
        writable: round.writable,
      })),
      comebacks: comebacks.map((comeback) => comeback.port),
      comebackRounds: probes.comebackRounds.length,
      comebackWritableMs: probes.comebackWritableMs,
      comebackGraceMs: comebackGraceMs(fault.cluster?.env),
      multiMasterSamples: timeline.multiMasterSamples,
      maxNoMasterMs: timeline.maxNoMasterMs,
      unansweredMs: timeline.unansweredMs,
      roleChanges: timeline.roleChanges,
      masterSequence: timeline.sequence,
      checkpoint: checkpoint.length,
      promotions,
      wrongPromotions: promotions.filter(isWrongPromotion).length,
      newMasterAfterMs: firstOtherMaster(samples, before.redis.port, faultAt),
      converged: converged !== undefined,
      convergedAfterMs: convergedAt === undefined ? undefined : convergedAt - faultAt,
    };
  } finally {
    if (!report) await writer.stop();
  }
}

/**
 * The master's list once every replica holds all of it: writes that were replicated everywhere before
 * the fault, which no failover may lose.
 */
async function replicatedCheckpoint(cluster: Cluster, master: ClusterNode): Promise<string[]> {
  const values = await withClient(master, (client) => client.lrange(WRITES_KEY, 0, -1));
  if (values.length === 0) throw new Error("The writer acknowledged nothing before the fault");
  for (const node of cluster.nodes.filter((node) => node !== master)) {
    await waitFor(
      async () => (await withClient(node, (client) => client.llen(WRITES_KEY))) >= values.length,
      { timeoutMs: 10_000, message: `${node.redis.address} to replicate the checkpoint` },
    );
  }
  return values;
}

/** What a newly named master holds of the checkpoint, read at once. */
async function checkPromotion(
  node: ClusterNode,
  at: number,
  checkpoint: readonly string[],
): Promise<PromotionCheck> {
  try {
    const head = await withClient(
      node,
      (client) => client.lrange(WRITES_KEY, 0, checkpoint.length - 1),
    );
    return {
      port: node.redis.port,
      at,
      kept: checkpointPrefixKept(checkpoint, head),
      checkpoint: checkpoint.length,
    };
  } catch {
    return { port: node.redis.port, at, kept: undefined, checkpoint: checkpoint.length };
  }
}

/**
 * Reads every live node back once its replication has caught up with the master, and counts the
 * acknowledged writes each one lacks.
 */
async function readBackEveryNode(
  cluster: Cluster,
  converged: ClusterNode | undefined,
  report: WriterReport,
): Promise<{ lost: string[]; lostByNode: Record<string, number>; divergent: string[] }> {
  const master = converged ?? await currentMaster(cluster);
  if (!master) throw new Error("No single passing master to read back from");
  const masterLength = await withClient(master, (client) => client.llen(WRITES_KEY));
  const live = cluster.nodes.filter((node) =>
    node !== master && node.started && node.redis.process
  );
  const divergent: string[] = [];
  for (const node of live) {
    let length: number | undefined;
    try {
      await waitFor(async () => {
        length = await withClient(node, (client) => client.llen(WRITES_KEY));
        return length === masterLength;
      }, { timeoutMs: 10_000, message: `${node.redis.address} to catch up with the master` });
    } catch {
      divergent.push(`${node.redis.address} (${length ?? "?"} writes, master ${masterLength})`);
    }
  }
  const lost = await ContinuousWriter.lostOn(master.redis, report);
  const lostByNode: Record<string, number> = { [master.redis.address]: lost.length };
  for (const node of live) {
    try {
      lostByNode[node.redis.address] = (await ContinuousWriter.lostOn(node.redis, report)).length;
    } catch {
      divergent.push(`${node.redis.address} (unreadable)`);
    }
  }
  return { lost, lostByNode, divergent };
}

async function currentMaster(cluster: Cluster): Promise<ClusterNode | undefined> {
  try {
    const masters = await cluster.passingMasters();
    return masters.length === 1 ? cluster.nodeAt(masters[0]!.port) : undefined;
  } catch {
    return undefined;
  }
}

async function withClient<T>(node: ClusterNode, use: (client: Redis) => Promise<T>): Promise<T> {
  const client = node.redis.client({ commandTimeout: 2_000, maxRetriesPerRequest: 0 });
  client.on("error", () => {});
  try {
    return await use(client);
  } finally {
    client.disconnect();
  }
}

/** The last agent log lines that are events (debug state dumps left out). */
function eventLines(log: string, count = 80): string {
  return log.split("\n").filter((line) => line !== "" && !line.includes(" DEBUG ")).slice(-count)
    .join("\n");
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
