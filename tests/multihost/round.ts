/**
 * One multi-host chaos round: a fresh bed (three hosts, resec with default settings, or a peer system
 * from systems.ts), the client workload writing from its own host, the master monitor and the writability probe; one fault; then
 * every Redis read back and the round judged by the chaos suite's pure analysis (tests/chaos/analysis.ts).
 */
import {
  checkpointPrefixKept,
  type Comeback,
  emptyResult,
  firstOtherMaster,
  isWrongPromotion,
  type MasterSample,
  type PromotionCheck,
  type RoundResult,
  summarizeLoss,
  summarizeProbes,
  summarizeTimeline,
  violations,
} from "../chaos/analysis.ts";
import { Bed, type BedWriterReport, WRITER_KEY } from "../support/bed/mod.ts";
import { delay, waitFor } from "../support/wait.ts";
import type { BedFault } from "./faults.ts";
import { BedMasterMonitor, BedWritabilityProbe } from "./observe.ts";
import { type Discovery, type HostSystem, RESEC_SYSTEM } from "./systems.ts";

/** Default timings: HEALTHCHECK_INTERVAL 5 s + HEALTHCHECK_TIMEOUT 2 s, twice over (see comebackGraceMs). */
export const DEFAULT_COMEBACK_GRACE_MS = 2 * (5_000 + 2_000);
/** A healed host's Consul agent may take up to ~30 s to be taken back by the cluster's gossip. */
const CONVERGE_TIMEOUT_MS = 120_000;

export interface BedRoundOutcome {
  readonly result: RoundResult;
  readonly violations: readonly string[];
  /** Longest stretch without an acknowledged write, as the client saw it. */
  readonly longestWriteGapMs: number;
  /** Every log of the bed when a promise broke (or RESEC_BED_LOGS is set), for a person to read. */
  readonly logs: string;
}

export interface BedRoundOptions {
  round?: number;
  warmupMs?: number;
  settleMs?: number;
  note?: (message: string) => void;
  /** The system on the hosts (default: resec, the bed's own). */
  system?: HostSystem;
  /** The client reads the catalog with `?stale`, as Consul's DNS does (default: no). */
  staleLookups?: boolean;
}

/** Runs one round of `fault` on a fresh bed. */
export async function runBedRound(
  fault: BedFault,
  options: BedRoundOptions = {},
): Promise<BedRoundOutcome> {
  const round = options.round ?? 1;
  const note = (message: string) => options.note?.(`[${fault.name} #${round}] ${message}`);
  const startedAt = new Date().toISOString();
  const system = options.system ?? RESEC_SYSTEM;
  await using bed = await Bed.start({
    agent: system.agent,
    ...(system.resecEnv ? { resecEnv: system.resecEnv } : {}),
  });
  await using discovery = system.discover(bed);
  let result: RoundResult;
  let gap = 0;
  try {
    await discovery.ready();
    const measured = await measure(bed, discovery, fault, { ...options, round, startedAt, note });
    result = measured.result;
    gap = measured.longestWriteGapMs;
  } catch (error) {
    result = emptyResult(fault.name, round, startedAt, (error as Error).message);
  }
  const broken = violations(result, fault.expect);
  return {
    result,
    violations: broken,
    longestWriteGapMs: gap,
    logs: broken.length > 0 || Deno.env.get("RESEC_BED_LOGS") ? bed.logs(20_000) : "",
  };
}

async function measure(
  bed: Bed,
  discovery: Discovery,
  fault: BedFault,
  options: BedRoundOptions & { round: number; startedAt: string; note: (m: string) => void },
): Promise<{ result: RoundResult; longestWriteGapMs: number }> {
  const { note } = options;
  const before = await converged(bed, discovery, 60_000);
  note(`converged on host ${before}`);
  await using monitor = new BedMasterMonitor(() => discovery.masters());
  monitor.start();
  await using probe = new BedWritabilityProbe(bed);
  probe.start();
  const writer = bed.startWriter({
    ...(options.system ?? RESEC_SYSTEM).writerOptions(bed),
    ...(options.staleLookups ? { staleLookups: true } : {}),
  });
  let report: BedWriterReport;
  const checks: Promise<PromotionCheck>[] = [];
  const comebacks: Comeback[] = [];
  let faultAt = 0;
  let after: number | undefined;
  let convergedAt: number | undefined;
  let checkpoint: string[] = [];
  try {
    await writer.waitForAcks(20);
    await delay(options.warmupMs ?? 1_000);
    checkpoint = await replicatedCheckpoint(bed, before);
    note(`${checkpoint.length} writes on every host; injecting ${fault.name}`);
    const unsubscribe = monitor.onMasterAppeared((host, at) => {
      if (at >= faultAt) checks.push(checkPromotion(bed, host, at, checkpoint));
    });
    faultAt = Date.now();
    try {
      await fault.inject({
        bed,
        master: before,
        newMaster: (timeoutMs = 60_000) => otherMaster(discovery, before, timeoutMs),
        cameBack: (host) => comebacks.push({ port: host, at: Date.now() }),
        note,
      });
      note(`fault done after ${Date.now() - faultAt} ms; waiting for convergence`);
      try {
        after = await converged(bed, discovery, CONVERGE_TIMEOUT_MS);
        convergedAt = Date.now();
        note(`converged on host ${after} after ${convergedAt - faultAt} ms`);
      } catch (error) {
        note(`no convergence: ${(error as Error).message}`);
      }
      await delay(options.settleMs ?? 2_000);
    } finally {
      unsubscribe();
    }
  } finally {
    report = await writer.stop();
  }
  const samples = await monitor.stop();
  const probes = summarizeProbes(await probe.stop(), comebacks, { inFlightMs: 600, faultAt });
  const promotions = await Promise.all(checks);
  // A group that never converged has no master to read back from; its timings still stand (the Go
  // resec can keep two passing masters after a pulled cable is plugged back in).
  const held = after === undefined
    ? { lost: [], lostByNode: {}, divergent: [] }
    : await readBack(bed, after, report);
  const catalog = withoutRejoinEcho(samples, comebacks);
  if (catalog.echoPolls > 0) {
    note(
      `a rejoined host stayed listed as master in ${catalog.echoPolls} polls (${catalog.echoMs} ms)`,
    );
  }
  const firstAfter = catalog.samples.findIndex((sample) => sample.at >= faultAt);
  const timeline = summarizeTimeline(
    firstAfter < 0 ? [] : catalog.samples.slice(Math.max(0, firstAfter - 1)),
  );
  const loss = summarizeLoss({
    acknowledged: report.acknowledged,
    lost: held.lost,
    replicatedBeforeFault: new Set(checkpoint),
  });
  const result: RoundResult = {
    fault: fault.name,
    round: options.round,
    startedAt: options.startedAt,
    acknowledged: report.acknowledged.length,
    failedAttempts: report.failed,
    lost: loss.lost.length,
    lostRuns: loss.lostRuns,
    lostAfterReplication: loss.lostAfterReplication.length,
    lostByNode: held.lostByNode,
    divergentNodes: held.divergent,
    writerProbeRounds: 0,
    writerSplitBrainRounds: 0,
    probeRounds: probes.rounds,
    splitBrain: probes.splitBrain.map((round) => ({
      afterMs: round.at - faultAt,
      writable: round.writable,
    })),
    comebacks: comebacks.map((comeback) => comeback.port),
    comebackRounds: probes.comebackRounds.length,
    comebackWritableMs: probes.comebackWritableMs,
    comebackGraceMs: DEFAULT_COMEBACK_GRACE_MS,
    multiMasterSamples: timeline.multiMasterSamples,
    maxNoMasterMs: timeline.maxNoMasterMs,
    unansweredMs: timeline.unansweredMs,
    roleChanges: timeline.roleChanges,
    masterSequence: timeline.sequence,
    checkpoint: checkpoint.length,
    promotions,
    wrongPromotions: promotions.filter(isWrongPromotion).length,
    newMasterAfterMs: firstOtherMaster(samples, before, faultAt),
    converged: after !== undefined,
    convergedAfterMs: convergedAt === undefined ? undefined : convergedAt - faultAt,
    ...(after === undefined ? { error: "no single master to read back from" } : {}),
  };
  return { result, longestWriteGapMs: longestGapAfter(report, faultAt) };
}

/**
 * How long a host that comes back may still be listed as the master it was. Consul's catalog keeps a
 * dead node's last check states; when the node rejoins, gossip marks it alive before its agent has
 * synced the restored (critical) registration. That echo is Consul's: an agent whose sync failed
 * during the cut ignores local changes until its next full sync, which runs at a random moment
 * within `serverUpIntv` (3 s, agent/ae/ae.go) after it sees a server again, and seeing one again
 * takes gossip a moment more. Echoes of 0.7, 2.3, 3.1 and 4.5 s were seen in CI; the rejoined
 * Redis refuses writes meanwhile (the probes check that). 8 s; a longer echo breaks the promise.
 */
export const REJOIN_ECHO_GRACE_MS = 8_000;

/** The samples with a rejoined host's echo (within the grace after its comeback) taken out. */
export function withoutRejoinEcho(
  samples: readonly MasterSample[],
  comebacks: readonly Comeback[],
): { samples: MasterSample[]; echoPolls: number; echoMs: number } {
  let echoPolls = 0;
  let first: number | undefined;
  let last: number | undefined;
  // Each rejoined host's echo starts at the first poll after its comeback that lists it as a master
  // (its Consul agent joins some seconds into the boot) and may last the grace. Within it the host is
  // taken out even when listed alone: the real master may be between two checks at that moment (seen
  // in CI, where a gossip flap of the new master's node turned the echo into 0 → 1 → 0 → 1).
  const windows = comebacks.map((comeback) => {
    const start = samples.find((sample) =>
      sample.at >= comeback.at && (sample.masters ?? []).includes(comeback.port)
    )?.at;
    return { host: comeback.port, start };
  });
  const cleaned = samples.map((sample) => {
    if (!sample.masters || sample.masters.length === 0) return sample;
    const echoes = sample.masters.filter((host) =>
      windows.some((window) =>
        window.host === host && window.start !== undefined && sample.at >= window.start &&
        sample.at <= window.start + REJOIN_ECHO_GRACE_MS
      )
    );
    if (echoes.length === 0) return sample;
    echoPolls++;
    first ??= sample.at;
    last = sample.at;
    return { ...sample, masters: sample.masters.filter((host) => !echoes.includes(host)) };
  });
  return {
    samples: cleaned,
    echoPolls,
    echoMs: first === undefined || last === undefined ? 0 : last - first,
  };
}

/** Waits until discovery names one master other than `old`; returns its host. */
async function otherMaster(discovery: Discovery, old: number, timeoutMs: number): Promise<number> {
  return await waitFor(async () => {
    const masters = await discovery.masters().catch(() => []);
    return masters.length === 1 && masters[0] !== old && masters[0]! >= 0 ? masters[0]! : false;
  }, { timeoutMs, intervalMs: 200, message: `one master other than host ${old}` });
}

/** One master, every other host a replica with its link up, as discovery names them: the master. */
async function converged(bed: Bed, discovery: Discovery, timeoutMs: number): Promise<number> {
  // Held for CONVERGED_STABLE_MS: right after a quorum comes back, the catalog still shows the state
  // from before the outage until the agents update it (seen in CI: "converged" on a fenced master).
  let since: { master: number; at: number } | undefined;
  return await waitFor(async () => {
    const [masters, slaves] = await Promise.all([discovery.masters(), discovery.replicas()]);
    const master = masters.length === 1 && masters[0]! >= 0 ? masters[0] : undefined;
    if (master === undefined || slaves.length !== bed.hosts.length - 1) return since = undefined;
    for (const host of bed.hosts.filter((host) => host.index !== master)) {
      const info = await host.redis.info().catch(() => ({} as Record<string, string>));
      if (info.master_link_status !== "up") return since = undefined;
    }
    if (since?.master !== master) since = { master, at: Date.now() };
    return Date.now() - since.at >= CONVERGED_STABLE_MS ? master : false;
  }, { timeoutMs, intervalMs: 250, message: "one master and every other host its replica" });
}

/** How long readRetried keeps trying. */
const READ_RETRY_MS = 15_000;

/** How long the converged state must hold before a round counts it. */
const CONVERGED_STABLE_MS = 3_000;

/**
 * A read through a host's probe client, retried for a few seconds: that client queues nothing, so a
 * read that lands while it reconnects fails at once.
 */
async function readRetried<T>(read: () => Promise<T>, what: string): Promise<T> {
  // Long enough for a read queued behind a probe write that a fence holds until it is lifted.
  let lastError: unknown;
  const giveUpAt = Date.now() + READ_RETRY_MS;
  while (Date.now() < giveUpAt) {
    try {
      return await read();
    } catch (error) {
      lastError = error;
      await delay(100);
    }
  }
  throw new Error(`Cannot read ${what}: ${(lastError as Error)?.message}`, { cause: lastError });
}

/** The master's list once every replica holds all of it: what no failover may lose. */
async function replicatedCheckpoint(bed: Bed, master: number): Promise<string[]> {
  const values = await readRetried(
    () => bed.host(master).redis.client.lrange(WRITER_KEY, 0, -1),
    "the master's list",
  );
  for (const host of bed.hosts.filter((host) => host.index !== master)) {
    await waitFor(
      async () => (await host.redis.client.llen(WRITER_KEY).catch(() => -1)) >= values.length,
      {
        timeoutMs: 10_000,
        message: `${host.name} to replicate the checkpoint`,
      },
    );
  }
  return values;
}

async function checkPromotion(
  bed: Bed,
  host: number,
  at: number,
  checkpoint: readonly string[],
): Promise<PromotionCheck> {
  try {
    const head = await bed.host(host).redis.client.lrange(WRITER_KEY, 0, checkpoint.length - 1);
    return {
      port: host,
      at,
      kept: checkpointPrefixKept(checkpoint, head),
      checkpoint: checkpoint.length,
    };
  } catch {
    return { port: host, at, kept: undefined, checkpoint: checkpoint.length };
  }
}

async function readBack(
  bed: Bed,
  master: number | undefined,
  report: BedWriterReport,
): Promise<{ lost: string[]; lostByNode: Record<string, number>; divergent: string[] }> {
  if (master === undefined) throw new Error("No single master to read back from");
  const read = async (host: number) =>
    new Set(
      await readRetried(
        () => bed.host(host).redis.client.lrange(WRITER_KEY, 0, -1),
        `${bed.host(host).name}'s list`,
      ),
    );
  const masterLength = await readRetried(
    () => bed.host(master).redis.client.llen(WRITER_KEY),
    "the master's list length",
  );
  const divergent: string[] = [];
  const lostByNode: Record<string, number> = {};
  const stored = await read(master);
  const lost = report.acknowledged.filter((value) => !stored.has(value));
  lostByNode[bed.host(master).name] = lost.length;
  for (const host of bed.hosts.filter((host) => host.index !== master)) {
    try {
      await waitFor(
        async () => (await host.redis.client.llen(WRITER_KEY).catch(() => -1)) === masterLength,
        {
          timeoutMs: 15_000,
          message: `${host.name} to catch up`,
        },
      );
      const held = await read(host.index);
      lostByNode[host.name] = report.acknowledged.filter((value) => !held.has(value)).length;
    } catch {
      divergent.push(host.name);
    }
  }
  return { lost, lostByNode, divergent };
}

/** The longest stretch without an acknowledged write from the fault on, from the client's events. */
function longestGapAfter(report: BedWriterReport, faultAt: number): number {
  let last = faultAt;
  let longest = 0;
  for (const event of report.events) {
    if (event.at < faultAt) continue;
    // Up to the client's stop too: a client that got nothing acknowledged after the fault waited
    // all that time.
    if (event.event !== "ack" && event.event !== "stop") continue;
    longest = Math.max(longest, event.at - last);
    last = event.at;
  }
  return longest;
}
