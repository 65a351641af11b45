/**
 * One round of each benchmark scenario: start a fresh deployment, wait until it is steady, inject the
 * fault, time the recovery, and tear everything down. Every wait has a deadline; a round that misses
 * it yields `undefined` values (counted as failed rounds) and a note, never a hang.
 */
import { agentCommand } from "../tests/support/agent.ts";
import { type AgentKind, ConsulCluster, type ConsulNode } from "./consul_cluster.ts";
import { GapWriter } from "./gap_writer.ts";
import { measureUsage } from "./proc.ts";
import { sleep, timeUntil, WriteProber } from "./probes.ts";
import { MASTER_NAME, SentinelCluster, type SentinelSettings } from "./sentinel_cluster.ts";

/** What one failover round measured, in ms from the fault. */
export interface FailoverSample {
  /** To the first write a surviving Redis (not the old master) acknowledged. */
  writeMs: number | undefined;
  /** To discovery naming exactly one new master (Consul) or a new address (Sentinel). */
  discoveryMs: number | undefined;
  /**
   * Agent death only: how long the old master (still running) went on acknowledging writes after the
   * new master took its first one. 0 when it stopped before; `undefined` when not applicable.
   */
  twoWritableMs?: number | undefined;
  /** Agent death only: the last write the old master acknowledged, in ms from the fault. */
  oldMasterLastAckMs?: number | undefined;
  /** Startup figures of the deployment this round started, for the startup table. */
  startup?: StartupSample;
  note?: string;
}

/** Startup of one deployment, in ms. */
export interface StartupSample {
  /** Per agent (or sentinel): spawn → its service is registered in Consul (sentinel: ready). */
  perProcessMs: (number | undefined)[];
  /** First spawn → exactly one passing master in Consul (not measured for Sentinel). */
  masterMs?: number | undefined;
}

export interface SwitchoverSample {
  /** Longest pause between acknowledged writes that survived the switchover. */
  longestGapMs: number | undefined;
  /** The same over every acknowledged write, lost ones included. */
  rawGapMs: number | undefined;
  /** Acknowledged writes the new master does not hold. */
  lost: number | undefined;
  /** From the request to discovery naming the new master. */
  switchMs: number | undefined;
  note?: string;
}

/** Steady-state cost of one agent (or sentinel) process. */
export interface FootprintRow {
  role: string;
  rssMib: number;
  rssMaxMib: number;
  cpuSecondsPerMinute: number;
  /** Consul HTTP requests per minute, for the Consul-based agents. */
  consulRequestsPerMinute?: number;
  /** The busiest endpoints, `METHOD /path: per minute`. */
  topRequests?: string;
}

/** The faults for the Consul-based agents. */
export type ConsulFault = "redis-crash" | "agent-kill" | "host-death";

/** Room for Consul's 2 × TTL session expiry plus the lock delay of either implementation. */
const DEATH_TIMEOUT_MS = 100_000;
const CRASH_TIMEOUT_MS = 60_000;
const SETTLE_MS = 3_000;
/**
 * Before a planned switchover, wait past one default HEALTHCHECK_INTERVAL (5 s) and a candidacy
 * publication, so every agent has observed its Redis since the replicas attached (Redis gives the
 * master a new replication ID when its first replica attaches).
 */
const SWITCHOVER_SETTLE_MS = 8_000;
const ROOT = new URL("../", import.meta.url).pathname;

/** Starts a Consul-based cluster and measures its startup; the caller owns (and closes) it. */
async function startConsulCluster(
  kind: AgentKind,
  goResecBin: string | undefined,
  countRequests = false,
): Promise<{ cluster: ConsulCluster; startup: StartupSample }> {
  const cluster = await ConsulCluster.start({ kind, goResecBin, countRequests });
  const firstSpawn = Math.min(...cluster.nodes.map((node) => node.spawnedAt));
  const [registered, masterMs] = await Promise.all([
    cluster.startup(60_000),
    timeUntil(async () => (await cluster.passingMasters()).length === 1, {
      origin: firstSpawn,
      timeoutMs: 60_000,
    }),
  ]);
  return {
    cluster,
    startup: { perProcessMs: registered.map((entry) => entry.registeredMs), masterMs },
  };
}

/** One failover round of a Consul-based agent. */
export async function consulFailover(
  kind: AgentKind,
  fault: ConsulFault,
  goResecBin?: string,
): Promise<FailoverSample> {
  const { cluster, startup } = await startConsulCluster(kind, goResecBin);
  try {
    const master = await cluster.waitSteady(90_000);
    await sleep(SETTLE_MS);
    const survivors = cluster.nodes.filter((node) => node !== master);
    await using prober = await WriteProber.start(cluster.nodes.map((node) => node.redis));
    const origin = performance.now();
    await inject(fault, master, prober, origin);
    const timeoutMs = fault === "redis-crash" ? CRASH_TIMEOUT_MS : DEATH_TIMEOUT_MS;
    const [write, discoveryMs] = await Promise.all([
      prober.firstOf(survivors.map((node) => node.redis.port), timeoutMs),
      timeUntil(async () => {
        const masters = await cluster.passingMasters();
        return masters.length === 1 && masters[0]!.port !== master.redis.port;
      }, { origin, timeoutMs }),
    ]);
    const sample: FailoverSample = { writeMs: write?.ms, discoveryMs, startup };
    if (fault === "agent-kill" && write) {
      // Watch the old master a little longer: does it stop taking writes once replaced?
      await sleep(3_000);
      const lastOld = prober.lastAckMs(master.redis.port);
      sample.oldMasterLastAckMs = lastOld;
      sample.twoWritableMs = lastOld === undefined ? 0 : Math.max(0, lastOld - write.ms);
    }
    if (!write || discoveryMs === undefined) {
      sample.note = `${kind} ${fault}: no ${
        write ? "single new master in Consul" : "write accepted"
      } within ${timeoutMs} ms\n${cluster.logs(1500)}`;
    }
    return sample;
  } finally {
    await cluster.close();
  }
}

async function inject(
  fault: ConsulFault,
  master: ConsulNode,
  prober: WriteProber,
  origin: number,
): Promise<void> {
  prober.mark(origin);
  const redisProcess = master.redis.process!;
  if (fault === "redis-crash" || fault === "host-death") {
    redisProcess.signal("SIGKILL");
    prober.drop(master.redis.port);
  }
  if (fault === "agent-kill" || fault === "host-death") await master.agent.kill();
  if (fault !== "agent-kill") await redisProcess.status.catch(() => {});
}

/** One `kill -9` of the master Redis under Sentinel. */
export async function sentinelCrash(settings: SentinelSettings): Promise<FailoverSample> {
  await using cluster = await SentinelCluster.start(settings);
  const readyMs = await cluster.waitReady(30_000);
  await sleep(SETTLE_MS);
  const [master, ...survivors] = cluster.redis as [
    typeof cluster.redis[0],
    ...typeof cluster.redis,
  ];
  await using prober = await WriteProber.start(cluster.redis);
  const origin = performance.now();
  master.process!.signal("SIGKILL");
  prober.drop(master.port);
  prober.mark(origin);
  const timeoutMs = CRASH_TIMEOUT_MS;
  const [write, discoveryMs] = await Promise.all([
    prober.firstOf(survivors.map((server) => server.port), timeoutMs),
    timeUntil(async () => {
      const ports = await Promise.all(
        cluster.sentinels.map((sentinel) =>
          cluster.masterPortFrom(sentinel).catch(() => undefined)
        ),
      );
      return ports.some((port) => port !== undefined && port !== master.port);
    }, { origin, timeoutMs }),
  ]);
  const sample: FailoverSample = {
    writeMs: write?.ms,
    discoveryMs,
    startup: { perProcessMs: readyMs },
  };
  if (!write || discoveryMs === undefined) {
    sample.note = `sentinel@${settings.downAfterMs} crash: no failover within ${timeoutMs} ms`;
  }
  return sample;
}

/** One `SENTINEL FAILOVER` under a continuous writer that finds the master through Sentinel. */
export async function sentinelSwitchover(settings: SentinelSettings): Promise<SwitchoverSample> {
  await using cluster = await SentinelCluster.start(settings);
  await cluster.waitReady(30_000);
  await sleep(SWITCHOVER_SETTLE_MS);
  const resolver = cluster.sentinels[0]!;
  return await measureSwitchover({
    oldPort: cluster.redis[0]!.port,
    resolve: () => cluster.masterPortFrom(resolver),
    request: async () => {
      await resolver.client.call("SENTINEL", "FAILOVER", MASTER_NAME);
    },
  });
}

/**
 * One `resec switchover` under a continuous writer that finds the master through Consul, as a client
 * of a resec cluster does.
 */
export async function resecSwitchover(): Promise<SwitchoverSample> {
  const { cluster } = await startConsulCluster("resec", undefined);
  try {
    const master = await cluster.waitSteady(90_000);
    await sleep(SWITCHOVER_SETTLE_MS);
    return await measureSwitchover({
      oldPort: master.redis.port,
      resolve: async () => {
        const masters = await cluster.passingMasters();
        return masters.length === 1 ? masters[0]!.port : undefined;
      },
      request: async () => {
        const { command, args } = agentCommand();
        const output = await new Deno.Command(command, {
          args: [...args, "switchover", "--timeout", "30s"],
          env: {
            CONSUL_HTTP_ADDR: cluster.consul.address,
            REDIS_ADDR: master.redis.address,
            NO_COLOR: "1",
            DENO_NO_UPDATE_CHECK: "1",
            PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
          },
          clearEnv: true,
          cwd: ROOT,
          stdout: "piped",
          stderr: "piped",
          signal: AbortSignal.timeout(90_000),
        }).output();
        if (!output.success) {
          throw new Error(
            `resec switchover exited ${output.code}: ${new TextDecoder().decode(output.stderr)}`,
          );
        }
      },
    });
  } finally {
    await cluster.close();
  }
}

async function measureSwitchover(options: {
  oldPort: number;
  resolve: () => Promise<number | undefined>;
  request: () => Promise<void>;
}): Promise<SwitchoverSample> {
  const failed = (note: string): SwitchoverSample => ({
    longestGapMs: undefined,
    rawGapMs: undefined,
    lost: undefined,
    switchMs: undefined,
    note,
  });
  const writer = GapWriter.start({ resolve: options.resolve });
  try {
    const warm = await timeUntil(() => Promise.resolve(writer.acknowledgedCount() >= 50), {
      origin: performance.now(),
      timeoutMs: 10_000,
    });
    if (warm === undefined) return failed("no writes before the switchover");
    const origin = performance.now();
    const requested = options.request().then(() => undefined, (error: Error) => error.message);
    let newPort: number | undefined;
    const switchMs = await timeUntil(async () => {
      newPort = await options.resolve();
      return newPort !== undefined && newPort !== options.oldPort;
    }, { origin, timeoutMs: 45_000 });
    const problem = await requested;
    if (problem) return failed(problem);
    // Let writes flow on the new master for a while, so the gap around the switch is closed.
    const resumed = await timeUntil(
      () => Promise.resolve(performance.now() - origin > 2_000 && writer.sinceLastAckMs() < 50),
      { origin, timeoutMs: 45_000 },
    );
    if (switchMs === undefined || resumed === undefined || newPort === undefined) {
      return failed("the switchover did not complete");
    }
    const report = await writer.stop(newPort);
    return {
      longestGapMs: report.longestGapMs,
      rawGapMs: report.rawGapMs,
      lost: report.lost,
      switchMs,
    };
  } finally {
    await writer[Symbol.asyncDispose]();
  }
}

/** Steady-state footprint of the Consul-based agents, through counting proxies. */
export async function consulFootprint(
  kind: AgentKind,
  windowMs: number,
  goResecBin?: string,
): Promise<FootprintRow[]> {
  const { cluster } = await startConsulCluster(kind, goResecBin, true);
  try {
    const master = await cluster.waitSteady(90_000);
    await sleep(10_000);
    const before = cluster.nodes.map((node) => node.proxy!.counts());
    const started = performance.now();
    const usage = await measureUsage(cluster.nodes.map((node) => node.agent.pid), { windowMs });
    const minutes = (performance.now() - started) / 60_000;
    return cluster.nodes.map((node, index) => {
      const process = usage.get(node.agent.pid);
      const after = node.proxy!.counts();
      const perMinute = new Map<string, number>();
      let total = 0;
      for (const [key, count] of after) {
        const delta = count - (before[index]!.get(key) ?? 0);
        total += delta;
        if (delta > 0) perMinute.set(key, delta / minutes);
      }
      const top = [...perMinute].sort((a, b) => b[1] - a[1]).slice(0, 4)
        .map(([key, rate]) => `${key}: ${rate.toFixed(1)}`).join("; ");
      return {
        role: node === master ? "master" : "replica",
        rssMib: process?.rssMib ?? NaN,
        rssMaxMib: process?.rssMaxMib ?? NaN,
        cpuSecondsPerMinute: process?.cpuSecondsPerMinute ?? NaN,
        consulRequestsPerMinute: total / minutes,
        topRequests: top,
      };
    });
  } finally {
    await cluster.close();
  }
}

/** Steady-state footprint of the three sentinels. */
export async function sentinelFootprint(
  settings: SentinelSettings,
  windowMs: number,
): Promise<FootprintRow[]> {
  await using cluster = await SentinelCluster.start(settings);
  await cluster.waitReady(30_000);
  await sleep(10_000);
  const pids = cluster.sentinels.map((sentinel) => sentinel.process.pid);
  const usage = await measureUsage(pids, { windowMs });
  return pids.map((pid) => {
    const process = usage.get(pid);
    return {
      role: "sentinel",
      rssMib: process?.rssMib ?? NaN,
      rssMaxMib: process?.rssMaxMib ?? NaN,
      cpuSecondsPerMinute: process?.cpuSecondsPerMinute ?? NaN,
    };
  });
}
