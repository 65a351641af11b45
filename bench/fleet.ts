/**
 * The fleet benchmark: G groups of three agents (each group with its own three redis-servers, lock
 * key and service names) against ONE Consul dev agent, to see what a fleet costs that Consul. It
 * measures, over a steady-state window: Raft applies per agent-minute (Consul's `consul_raft_apply`),
 * Consul HTTP requests per agent-minute by endpoint (each agent's own `resec_consul_requests_total`),
 * the HTTP connections each agent holds open to Consul, the agents' memory and CPU, and the Consul
 * server's CPU; then the failover of one group (`kill -9` of its master Redis) while all the others
 * run.
 *
 *   ./scripts/deno.sh run -A bench/fleet.ts [--groups 10] [--window-seconds 60] [--settle-seconds 30]
 *       [--failover-rounds 3] [--kind resec|go-resec] [--out DIR]
 *   ./scripts/deno.sh run -A bench/fleet.ts --render DIR/fleet.json   # the tables again
 *
 * Agents run with their defaults; only CONSUL_HTTP_ADDR, REDIS_ADDR, the group's CONSUL_LOCK_KEY and
 * CONSUL_SERVICE_PREFIX, and (ours) HTTP_ADDR for the metrics are set. RESEC_UNDER_TEST chooses our
 * artifact as in the tests; GO_RESEC_BIN the Go resec (else scripts/provision-go-resec.sh builds it).
 */
import { parseArgs } from "node:util";
import { parseExposition } from "../lib/metrics/testing.ts";
import { AgentProcess } from "../tests/support/agent.ts";
import { consulBinary, ConsulServer } from "../tests/support/consul.ts";
import { provisionGoResec } from "../tests/support/go_resec.ts";
import { freePort } from "../tests/support/ports.ts";
import { ManagedProcess } from "../tests/support/process.ts";
import { RedisServer } from "../tests/support/redis.ts";
import { makeServerDir } from "../tests/support/tmp.ts";
import { connectionsTo, cpuSeconds, measureUsage } from "./proc.ts";
import { sleep, timeUntil, WriteProber } from "./probes.ts";
import { formatMs } from "./report.ts";
import { quantile, summarize } from "./stats.ts";

/** Which agent runs beside each Redis. */
type FleetKind = "resec" | "go-resec";

/** Groups started together; the next batch waits for their masters, so startup never storms. */
const START_BATCH_GROUPS = 5;
/** How often the connections of every agent are counted during the window. */
const CONNECTION_SAMPLE_MS = 5_000;
const FAILOVER_TIMEOUT_MS = 60_000;
/** Length of the window that measures the Consul server before any agent runs. */
const IDLE_WINDOW_MS = 60_000;
/** A fresh Consul writes its own setup for a few seconds: the idle window starts after this. */
const CONSUL_WARMUP_MS = 15_000;

interface Options {
  render: string | undefined;
  groups: number;
  windowSeconds: number;
  settleSeconds: number;
  failoverRounds: number;
  kind: FleetKind;
  out: string | undefined;
}

/** A command line we cannot run. */
class UsageError extends Error {
  override name = "UsageError";
}

function parseOptions(args: string[]): Options {
  let values;
  try {
    values = parseArgs({
      args,
      options: {
        groups: { type: "string", default: "10" },
        "window-seconds": { type: "string", default: "60" },
        "settle-seconds": { type: "string", default: "30" },
        "failover-rounds": { type: "string", default: "3" },
        kind: { type: "string", default: "resec" },
        out: { type: "string" },
        render: { type: "string" },
      },
      strict: true,
    }).values;
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const count = (name: string, text: string, min: number, max = Infinity) => {
    const value = Number(text);
    if (!Number.isInteger(value) || value < min || value > max) {
      throw new UsageError(
        `Cannot use --${name} "${text}": expected a whole number from ${min}${
          max === Infinity ? "" : ` to ${max}`
        }`,
      );
    }
    return value;
  };
  if (values.kind !== "resec" && values.kind !== "go-resec") {
    throw new UsageError(`Cannot use --kind "${values.kind}": expected resec or go-resec`);
  }
  return {
    render: values.render,
    groups: count("groups", values.groups, 1, 200),
    windowSeconds: count("window-seconds", values["window-seconds"], 10),
    settleSeconds: count("settle-seconds", values["settle-seconds"], 0),
    failoverRounds: count("failover-rounds", values["failover-rounds"], 0),
    kind: values.kind,
    out: values.out,
  };
}

/** One agent process, whichever implementation. */
interface AgentHandle {
  readonly pid: number;
  stop(): Promise<void>;
  log(): string;
}

interface FleetNode {
  readonly redis: RedisServer;
  readonly agent: AgentHandle;
  /** Where our agent serves /metrics; undefined for the Go resec. */
  readonly metricsUrl: string | undefined;
}

interface FleetGroup {
  readonly index: number;
  readonly lockKey: string;
  readonly prefix: string;
  readonly nodes: FleetNode[];
}

/** What one steady-state window measured. */
export interface FleetWindow {
  agents: number;
  minutes: number;
  /** `consul_raft_apply` growth over the window, all agents together. */
  raftApplies: number;
  /** The same growth per minute with no agent running (Consul's own writes). */
  idleRaftAppliesPerMinute: number;
  /** Per agent: Consul requests per minute (ours only), by endpoint and in all. */
  requestsPerMinute: { role: string; total: number; byEndpoint: Record<string, number> }[];
  /** Per agent: the most connections to Consul seen in one sample, and the median over samples. */
  connections: { max: number; median: number }[];
  /** Per agent: median RSS (MiB), largest RSS, CPU seconds per minute. */
  usage: { rssMib: number; rssMaxMib: number; cpuSecondsPerMinute: number }[];
  consul: { cpuSecondsPerMinute: number; idleCpuSecondsPerMinute: number; rssMib: number };
}

export interface FleetFailover {
  writeMs: number | undefined;
  discoveryMs: number | undefined;
  note?: string;
}

export interface FleetResults {
  startedAt: string;
  finishedAt?: string;
  machine: Record<string, string>;
  options: Omit<Options, "render" | "out">;
  window?: FleetWindow;
  failovers: FleetFailover[];
  notes: string[];
}

function log(message: string): void {
  console.error(`[${new Date().toISOString().slice(11, 19)}] ${message}`);
}

function startAgent(
  kind: FleetKind,
  env: Record<string, string>,
  label: string,
  goResecBin: string | undefined,
): AgentHandle {
  if (kind === "resec") {
    const agent = AgentProcess.start({ env, label });
    return {
      pid: agent.pid,
      stop: async () => void await agent.stop(5_000),
      log: () => agent.log(),
    };
  }
  const dir = makeServerDir(label);
  const process = new ManagedProcess(goResecBin!, {
    args: [],
    logPath: `${dir}/resec.log`,
    env: { ...env, PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin" },
    clearEnv: true,
    cwd: dir,
  });
  return {
    pid: process.pid,
    stop: async () => void await process.stop(5_000),
    log: () => process.readLog(),
  };
}

/** Starts one group's three Redis servers and agents (does not wait for them). */
async function startGroup(
  consul: ConsulServer,
  index: number,
  kind: FleetKind,
  goResecBin: string | undefined,
): Promise<FleetGroup> {
  const lockKey = `resec/fleet-${index}/.lock`;
  const prefix = `redis-fleet-${index}`;
  const redises = await RedisServer.startMany(3);
  const nodes = redises.map((redis, node): FleetNode => {
    const httpPort = kind === "resec" ? freePort() : undefined;
    const env: Record<string, string> = {
      CONSUL_HTTP_ADDR: consul.address,
      REDIS_ADDR: redis.address,
      CONSUL_LOCK_KEY: lockKey,
      CONSUL_SERVICE_PREFIX: prefix,
      ...(httpPort !== undefined ? { HTTP_ADDR: `127.0.0.1:${httpPort}` } : {}),
    };
    return {
      redis,
      agent: startAgent(kind, env, `fleet-${index}-${node}`, goResecBin),
      metricsUrl: httpPort !== undefined ? `http://127.0.0.1:${httpPort}/metrics` : undefined,
    };
  });
  return { index, lockKey, prefix, nodes };
}

/** Passing check counts by service name, from the (single) Consul agent every service sits on. */
async function passingByService(consul: ConsulServer): Promise<Map<string, number>> {
  const checks = await consul.api<Record<string, { ServiceName: string; Status: string }>>(
    "GET",
    "/v1/agent/checks",
  );
  const passing = new Map<string, number>();
  for (const check of Object.values(checks)) {
    if (check.Status === "passing" && check.ServiceName) {
      passing.set(check.ServiceName, (passing.get(check.ServiceName) ?? 0) + 1);
    }
  }
  return passing;
}

/** Groups that do not have one passing master and two passing slaves yet. */
async function unsteadyGroups(consul: ConsulServer, groups: FleetGroup[]): Promise<FleetGroup[]> {
  const passing = await passingByService(consul);
  return groups.filter((group) =>
    passing.get(`${group.prefix}-master`) !== 1 || passing.get(`${group.prefix}-slave`) !== 2
  );
}

async function waitSteady(
  consul: ConsulServer,
  groups: FleetGroup[],
  timeoutMs: number,
): Promise<void> {
  let left = groups;
  const ok = await timeUntil(async () => {
    left = await unsteadyGroups(consul, groups);
    return left.length === 0;
  }, { origin: performance.now(), timeoutMs, intervalMs: 250 });
  if (ok === undefined) {
    const group = left[0]!;
    throw new Error(
      `${left.length} group(s) did not settle within ${timeoutMs} ms; group ${group.index}'s logs:\n${
        group.nodes.map((node) => node.agent.log().slice(-1500)).join("\n---\n")
      }`,
    );
  }
}

/** The port of a group's passing master, if exactly one. */
async function masterPort(consul: ConsulServer, group: FleetGroup): Promise<number | undefined> {
  const entries = await consul.api<{ Service: { Port: number } }[]>(
    "GET",
    `/v1/health/service/${group.prefix}-master?passing=1`,
  );
  return entries.length === 1 ? entries[0]!.Service.Port : undefined;
}

async function raftApplies(consul: ConsulServer): Promise<number> {
  const response = await fetch(`${consul.url}/v1/agent/metrics?format=prometheus`, {
    signal: AbortSignal.timeout(5_000),
  });
  const text = await response.text();
  const value = /^consul_raft_apply (\S+)$/m.exec(text)?.[1];
  if (value === undefined) throw new Error("Consul reports no consul_raft_apply counter");
  return Number(value);
}

/** An agent's resec_consul_requests_total by endpoint (`METHOD`-less label, summed over codes). */
async function requestCounts(url: string): Promise<Map<string, number>> {
  const response = await fetch(url, { signal: AbortSignal.timeout(5_000) });
  const exposition = parseExposition(await response.text());
  const counts = new Map<string, number>();
  for (const [series, value] of exposition.samples) {
    if (!series.startsWith("resec_consul_requests_total{")) continue;
    const endpoint = /[{,]endpoint="([^"]*)"/.exec(series)?.[1];
    if (endpoint !== undefined) counts.set(endpoint, (counts.get(endpoint) ?? 0) + value);
  }
  return counts;
}

/** Seeds a group's master with 1000 keys, so its replicas hold data (as in bench/run.ts). */
async function seed(group: FleetGroup, port: number): Promise<void> {
  const master = group.nodes.find((node) => node.redis.port === port)!.redis;
  const client = master.client();
  try {
    const pipeline = client.pipeline();
    for (let index = 0; index < 1_000; index++) pipeline.set(`fleet:seed:${index}`, `v${index}`);
    await pipeline.exec();
  } finally {
    client.disconnect();
  }
}

async function measureWindow(
  consul: ConsulServer,
  groups: FleetGroup[],
  idle: { appliesPerMinute: number; cpuSecondsPerMinute: number },
  windowMs: number,
): Promise<FleetWindow> {
  const nodes = groups.flatMap((group) => group.nodes);
  const masters = new Set<number>();
  for (const group of groups) {
    const port = await masterPort(consul, group);
    if (port !== undefined) masters.add(port);
  }
  const pids = nodes.map((node) => node.agent.pid);
  const consulPid = consul.process!.pid;
  const countsOf = () =>
    Promise.all(nodes.map((node) => node.metricsUrl ? requestCounts(node.metricsUrl) : undefined));
  const appliesBefore = await raftApplies(consul);
  const requestsBefore = await countsOf();
  const samples: Map<number, number>[] = [];
  const sampling = (async () => {
    const end = performance.now() + windowMs;
    while (performance.now() < end) {
      samples.push(connectionsTo(pids, consul.httpPort));
      await sleep(Math.min(CONNECTION_SAMPLE_MS, Math.max(0, end - performance.now())));
    }
  })();
  const started = performance.now();
  const usage = await measureUsage([...pids, consulPid], { windowMs });
  const minutes = (performance.now() - started) / 60_000;
  await sampling;
  const appliesAfter = await raftApplies(consul);
  const requestsAfter = await countsOf();
  const consulUsage = usage.get(consulPid);
  return {
    agents: nodes.length,
    minutes,
    raftApplies: appliesAfter - appliesBefore,
    idleRaftAppliesPerMinute: idle.appliesPerMinute,
    requestsPerMinute: nodes.flatMap((node, index) => {
      const before = requestsBefore[index];
      const after = requestsAfter[index];
      if (!before || !after) return [];
      const byEndpoint: Record<string, number> = {};
      let total = 0;
      for (const [endpoint, count] of after) {
        const delta = count - (before.get(endpoint) ?? 0);
        if (delta <= 0) continue;
        byEndpoint[endpoint] = delta / minutes;
        total += delta / minutes;
      }
      return [{ role: masters.has(node.redis.port) ? "master" : "replica", total, byEndpoint }];
    }),
    connections: pids.map((pid) => {
      const seen = samples.map((sample) => sample.get(pid)).filter((n) => n !== undefined)
        .sort((a, b) => a - b);
      return {
        max: seen.length > 0 ? seen[seen.length - 1]! : NaN,
        median: seen.length > 0 ? quantile(seen, 0.5) : NaN,
      };
    }),
    usage: pids.map((pid) =>
      usage.get(pid) ?? { rssMib: NaN, rssMaxMib: NaN, cpuSecondsPerMinute: NaN }
    ),
    consul: {
      cpuSecondsPerMinute: consulUsage?.cpuSecondsPerMinute ?? NaN,
      idleCpuSecondsPerMinute: idle.cpuSecondsPerMinute,
      rssMib: consulUsage?.rssMib ?? NaN,
    },
  };
}

/** One `kill -9` of a group's master Redis while every other group runs; restarts it after. */
async function failover(consul: ConsulServer, group: FleetGroup): Promise<FleetFailover> {
  const port = await masterPort(consul, group);
  const master = group.nodes.find((node) => node.redis.port === port);
  if (!master) return { writeMs: undefined, discoveryMs: undefined, note: "no single master" };
  const survivors = group.nodes.filter((node) => node !== master);
  await using prober = await WriteProber.start(group.nodes.map((node) => node.redis));
  const origin = performance.now();
  prober.mark(origin);
  master.redis.process!.signal("SIGKILL");
  prober.drop(master.redis.port);
  await master.redis.process!.status.catch(() => {});
  const [write, discoveryMs] = await Promise.all([
    prober.firstOf(survivors.map((node) => node.redis.port), FAILOVER_TIMEOUT_MS),
    timeUntil(async () => {
      const now = await masterPort(consul, group).catch(() => undefined);
      return now !== undefined && now !== master.redis.port;
    }, { origin, timeoutMs: FAILOVER_TIMEOUT_MS }),
  ]);
  await master.redis.restart();
  const sample: FleetFailover = { writeMs: write?.ms, discoveryMs };
  if (!write || discoveryMs === undefined) {
    sample.note = `no ${write ? "new master in Consul" : "write accepted"} within ${
      FAILOVER_TIMEOUT_MS / 1_000
    } s`;
  }
  return sample;
}

function fixed(value: number, digits = 1): string {
  return Number.isFinite(value) ? value.toFixed(digits) : "–";
}

/** The Markdown report of a run. */
export function renderFleet(results: FleetResults): string {
  const window = results.window;
  const lines: string[] = [];
  const { groups, kind } = results.options;
  lines.push(`### Fleet: ${groups} groups × 3 ${kind} agents against one Consul`, "");
  if (window) {
    const perAgentMinute = (count: number) => count / window.agents / window.minutes;
    // Consul's own rate is estimated over a minute alone; a difference below it is noise, not a gain.
    const netApplies = Math.max(
      0,
      window.raftApplies / window.minutes - window.idleRaftAppliesPerMinute,
    );
    const stat = (values: number[], digits = 1) => {
      const summary = summarize(values.filter(Number.isFinite));
      return summary
        ? `${fixed(summary.median, digits)} (${fixed(summary.min, digits)}–${
          fixed(summary.max, digits)
        })`
        : "–";
    };
    const byRole = (role: string) => window.requestsPerMinute.filter((row) => row.role === role);
    const endpoints = (role: string) => {
      const rows = byRole(role);
      const sums = new Map<string, number>();
      for (const row of rows) {
        for (const [endpoint, rate] of Object.entries(row.byEndpoint)) {
          sums.set(endpoint, (sums.get(endpoint) ?? 0) + rate / rows.length);
        }
      }
      return [...sums].sort((a, b) => b[1] - a[1]).map(([endpoint, rate]) =>
        `${endpoint} ${fixed(rate)}`
      ).join("; ");
    };
    const requests = window.requestsPerMinute.map((row) => row.total);
    lines.push(
      `Window: ${fixed(window.minutes * 60, 0)} s of steady state, ${window.agents} agents.`,
      "",
      "| measure | per agent: median (min–max) |",
      "| --- | --- |",
      `| Raft applies per agent-minute (\`consul_raft_apply\`, Consul's own ${
        fixed(window.idleRaftAppliesPerMinute)
      }/min subtracted) | ${fixed(netApplies / window.agents, 2)} (all agents: ${
        fixed(netApplies)
      }/min; raw ${fixed(perAgentMinute(window.raftApplies), 2)}) |`,
      `| Consul HTTP requests per minute | ${
        requests.length > 0 ? stat(requests) : "– (not reported)"
      } |`,
      `| … master | ${stat(byRole("master").map((row) => row.total))}: ${endpoints("master")} |`,
      `| … replica | ${stat(byRole("replica").map((row) => row.total))}: ${endpoints("replica")} |`,
      `| HTTP connections to Consul (most in one sample) | ${
        stat(window.connections.map((c) => c.max), 0)
      } |`,
      `| RSS (MiB; median over the window) | ${stat(window.usage.map((u) => u.rssMib))} (peak ${
        fixed(Math.max(...window.usage.map((u) => u.rssMaxMib).filter(Number.isFinite)))
      }) |`,
      `| CPU seconds per minute | ${stat(window.usage.map((u) => u.cpuSecondsPerMinute), 3)} |`,
      `| Consul server: CPU seconds per minute (idle before the agents) | ${
        fixed(window.consul.cpuSecondsPerMinute, 2)
      } (${fixed(window.consul.idleCpuSecondsPerMinute, 2)}); RSS ${
        fixed(window.consul.rssMib)
      } MiB |`,
      "",
    );
  }
  if (results.failovers.length > 0) {
    const write = summarize(results.failovers.map((sample) => sample.writeMs));
    const discovery = summarize(results.failovers.map((sample) => sample.discoveryMs));
    const cell = (summary: ReturnType<typeof summarize>) =>
      summary
        ? `**${formatMs(summary.median)}** (${formatMs(summary.min)}–${
          formatMs(summary.max)
        }; n=${summary.n}${summary.failed > 0 ? `, ${summary.failed} failed` : ""})`
        : "–";
    lines.push(
      "| one group's master Redis `kill -9`, the others running | time |",
      "| --- | --- |",
      `| → first acknowledged write on the new master | ${cell(write)} |`,
      `| → discovery names the new master | ${cell(discovery)} |`,
      "",
    );
  }
  if (results.notes.length > 0) {
    lines.push("Notes:", ...results.notes.map((note) => `- ${note.split("\n")[0]}`), "");
  }
  return lines.join("\n");
}

async function main(): Promise<void> {
  const options = parseOptions(Deno.args);
  if (options.render) {
    console.log(renderFleet(JSON.parse(Deno.readTextFileSync(options.render)) as FleetResults));
    return;
  }
  const scratch = Deno.makeTempDirSync({ prefix: "resec-fleet-" });
  Deno.env.set("RESEC_TEST_TMP", scratch);
  const out = options.out ?? Deno.makeTempDirSync({ prefix: "resec-fleet-results-" });
  Deno.mkdirSync(out, { recursive: true });
  const goResecBin = options.kind === "go-resec" ? await provisionGoResec() : undefined;
  const { render: _render, out: _out, ...recorded } = options;
  const results: FleetResults = {
    startedAt: new Date().toISOString(),
    machine: {
      nproc: String(navigator.hardwareConcurrency),
      deno: Deno.version.deno,
      agentUnderTest: options.kind === "go-resec"
        ? goResecBin!
        : Deno.env.get("RESEC_UNDER_TEST") ?? "source (deno run main.ts)",
      consul: consulBinary(),
      loadAverageAtStart: Deno.readTextFileSync("/proc/loadavg").trim(),
    },
    options: recorded,
    failovers: [],
    notes: [],
  };
  const save = () => {
    Deno.writeTextFileSync(`${out}/fleet.json`, JSON.stringify(results, null, 2));
    Deno.writeTextFileSync(`${out}/fleet.md`, renderFleet(results));
  };

  // Every agent here reaches Consul from 127.0.0.1; on real hosts each has its own Consul agent.
  const consul = await ConsulServer.start({ telemetry: true, maxConnsPerClient: 5_000 });
  const groups: FleetGroup[] = [];
  try {
    await sleep(CONSUL_WARMUP_MS);
    log(`Consul up; measuring it idle for ${IDLE_WINDOW_MS / 1_000} s`);
    const idleApplies = await raftApplies(consul);
    const idleCpu = cpuSeconds(consul.process!.pid) ?? 0;
    const idleStarted = performance.now();
    await sleep(IDLE_WINDOW_MS);
    const idleMinutes = (performance.now() - idleStarted) / 60_000;
    const idle = {
      appliesPerMinute: ((await raftApplies(consul)) - idleApplies) / idleMinutes,
      cpuSecondsPerMinute: ((cpuSeconds(consul.process!.pid) ?? 0) - idleCpu) / idleMinutes,
    };

    for (let first = 0; first < options.groups; first += START_BATCH_GROUPS) {
      const batch: FleetGroup[] = [];
      for (
        let index = first;
        index < Math.min(options.groups, first + START_BATCH_GROUPS);
        index++
      ) {
        batch.push(await startGroup(consul, index, options.kind, goResecBin));
      }
      groups.push(...batch);
      log(`started groups ${first}–${first + batch.length - 1}; waiting for their masters`);
      await waitSteady(consul, batch, 120_000);
    }
    await waitSteady(consul, groups, 120_000);
    const measured = groups[0]!;
    const port = await masterPort(consul, measured);
    if (port !== undefined) await seed(measured, port);
    log(`all ${groups.length} groups steady; settling ${options.settleSeconds} s`);
    await sleep(options.settleSeconds * 1_000);

    log(`measuring ${options.windowSeconds} s of steady state`);
    results.window = await measureWindow(consul, groups, idle, options.windowSeconds * 1_000);
    save();

    for (let round = 1; round <= options.failoverRounds; round++) {
      await waitSteady(consul, groups, 120_000);
      await sleep(5_000);
      log(`failover round ${round}/${options.failoverRounds} of group ${measured.index}`);
      const sample = await failover(consul, measured);
      log(
        `  first write ${sample.writeMs?.toFixed(0)} ms, discovery ${
          sample.discoveryMs?.toFixed(0)
        } ms`,
      );
      if (sample.note) results.notes.push(`failover round ${round}: ${sample.note}`);
      results.failovers.push(sample);
      save();
    }
  } catch (error) {
    results.notes.push(`run failed: ${(error as Error).message}`);
    log((error as Error).message);
  } finally {
    log("stopping every agent, Redis and Consul");
    for (let first = 0; first < groups.length; first += START_BATCH_GROUPS) {
      const batch = groups.slice(first, first + START_BATCH_GROUPS).flatMap((group) => group.nodes);
      await Promise.all(batch.map((node) => node.agent.stop().catch(() => {})));
    }
    await Promise.all(groups.flatMap((group) => group.nodes).map((node) => node.redis.stop()));
    await consul.stop();
  }
  results.finishedAt = new Date().toISOString();
  results.machine.loadAverageAtEnd = Deno.readTextFileSync("/proc/loadavg").trim();
  save();
  console.log(renderFleet(results));
  log(`results written to ${out}/fleet.md and fleet.json`);
  if (results.notes.length === 0) Deno.removeSync(scratch, { recursive: true });
  else log(`logs kept in ${scratch}`);
}

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.addSignalListener(signal, () => {
    log(`${signal}: stopping every server of this run`);
    Deno.exit(130);
  });
}

if (import.meta.main) {
  try {
    await main();
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(`bench/fleet.ts: ${error.message}`);
    Deno.exit(2);
  }
}
