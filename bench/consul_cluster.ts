/**
 * A Consul-based HA cluster for the benchmarks: one Consul dev agent, three redis-servers and an agent
 * beside each, either this project's (via the test harness's AgentProcess) or the Go resec binary. The
 * agents run with their DEFAULT settings; only the addresses differ from a production setup.
 */
import { AgentProcess } from "../tests/support/agent.ts";
import { ConsulServer } from "../tests/support/consul.ts";
import { ManagedProcess } from "../tests/support/process.ts";
import { RedisServer } from "../tests/support/redis.ts";
import { makeServerDir } from "../tests/support/tmp.ts";
import { CountingProxy } from "./counting_proxy.ts";
import { sleep } from "./probes.ts";

/** Which agent runs beside each Redis. */
export type AgentKind = "resec" | "go-resec";

/** One agent process, whichever implementation. */
export interface AgentHandle {
  readonly pid: number;
  kill(): Promise<void>;
  stop(): Promise<void>;
  log(): string;
}

/** One node: a Redis and its agent. */
export interface ConsulNode {
  readonly index: number;
  readonly redis: RedisServer;
  readonly agent: AgentHandle;
  /** When the agent was spawned (performance.now()). */
  readonly spawnedAt: number;
  /** The counting proxy the agent reaches Consul through, when asked for. */
  readonly proxy: CountingProxy | undefined;
}

export interface ConsulClusterOptions {
  kind: AgentKind;
  /** Path of the Go resec binary (kind "go-resec"). */
  goResecBin?: string;
  /** Put a counting proxy between each agent and Consul. */
  countRequests?: boolean;
}

/** Health entry fields the benchmark reads. */
interface HealthEntry {
  Service: { ID: string; Port: number };
}

/** Startup figures of one node, in ms from its agent's spawn. */
export interface NodeStartup {
  /** To the first registration of its service in the Consul agent (any role, any check status). */
  registeredMs: number | undefined;
}

const SERVICE_PREFIX = "redis";

export class ConsulCluster implements AsyncDisposable {
  #disposed = false;

  private constructor(
    readonly kind: AgentKind,
    readonly consul: ConsulServer,
    readonly nodes: ConsulNode[],
  ) {}

  /** Starts Consul, three empty redis-servers, then the three agents at once. */
  static async start(options: ConsulClusterOptions): Promise<ConsulCluster> {
    const consul = await ConsulServer.start();
    const redises: RedisServer[] = [];
    const proxies: CountingProxy[] = [];
    try {
      redises.push(...await RedisServer.startMany(3));
      const nodes = redises.map((redis, index): ConsulNode => {
        const proxy = options.countRequests ? CountingProxy.start(consul.address) : undefined;
        if (proxy) proxies.push(proxy);
        // Only what a dev Consul on loopback needs; every timing stays at the implementation's default.
        const env = {
          CONSUL_HTTP_ADDR: proxy?.address ?? consul.address,
          REDIS_ADDR: redis.address,
        };
        const spawnedAt = performance.now();
        const agent = options.kind === "resec"
          ? startOurAgent(env, index)
          : startGoResec(options.goResecBin ?? "resec", env, index);
        return { index, redis, agent, spawnedAt, proxy };
      });
      return new ConsulCluster(options.kind, consul, nodes);
    } catch (error) {
      for (const proxy of proxies) await proxy.close();
      for (const redis of redises) await redis.stop();
      await consul.stop();
      throw error;
    }
  }

  /** The passing master registrations, as clients discover them. */
  async passingMasters(): Promise<{ id: string; port: number }[]> {
    const response = await fetch(
      `${this.consul.url}/v1/health/service/${SERVICE_PREFIX}-master?passing=1`,
      { signal: AbortSignal.timeout(1_000) },
    );
    if (!response.ok) throw new Error(`Consul answered ${response.status}`);
    const entries = await response.json() as HealthEntry[];
    return entries.map((entry) => ({ id: entry.Service.ID, port: entry.Service.Port }));
  }

  async passingSlaves(): Promise<number[]> {
    const response = await fetch(
      `${this.consul.url}/v1/health/service/${SERVICE_PREFIX}-slave?passing=1`,
      { signal: AbortSignal.timeout(1_000) },
    );
    if (!response.ok) throw new Error(`Consul answered ${response.status}`);
    const entries = await response.json() as HealthEntry[];
    return entries.map((entry) => entry.Service.Port);
  }

  /** Ports of every service the Consul agent has registered (whatever its health). */
  async registeredPorts(): Promise<Set<number>> {
    const response = await fetch(`${this.consul.url}/v1/agent/services`, {
      signal: AbortSignal.timeout(1_000),
    });
    if (!response.ok) throw new Error(`Consul answered ${response.status}`);
    const services = await response.json() as Record<string, { Port: number }>;
    return new Set(Object.values(services).map((service) => service.Port));
  }

  /** Waits for each agent's first registration; returns ms from each agent's spawn. */
  async startup(timeoutMs: number): Promise<NodeStartup[]> {
    const result: NodeStartup[] = this.nodes.map(() => ({ registeredMs: undefined }));
    const deadline = performance.now() + timeoutMs;
    while (
      performance.now() < deadline && result.some((entry) => entry.registeredMs === undefined)
    ) {
      try {
        const ports = await this.registeredPorts();
        const now = performance.now();
        for (const node of this.nodes) {
          if (result[node.index]!.registeredMs === undefined && ports.has(node.redis.port)) {
            result[node.index]!.registeredMs = now - node.spawnedAt;
          }
        }
      } catch { /* Consul busy: try again */ }
      await sleep(10);
    }
    return result;
  }

  /**
   * Waits until the cluster is steady: one passing master, two passing slaves replicating from it with
   * their links up and their offsets caught up. Writes a small dataset first, so the replicas hold data
   * (a data-safe agent never promotes an empty replica). Returns the master node.
   */
  async waitSteady(timeoutMs: number): Promise<ConsulNode> {
    const deadline = performance.now() + timeoutMs;
    let seeded = false;
    let lastProblem = "nothing checked yet";
    while (performance.now() < deadline) {
      try {
        const problem = await this.#steadyProblem(seeded);
        if (problem === "seed") {
          seeded = true;
          continue;
        }
        if (typeof problem !== "string") return problem;
        lastProblem = problem;
      } catch (error) {
        lastProblem = (error as Error).message;
      }
      await sleep(100);
    }
    throw new Error(
      `The ${this.kind} cluster did not settle within ${timeoutMs} ms: ${lastProblem}\n${
        this.logs(1500)
      }`,
    );
  }

  async #steadyProblem(seeded: boolean): Promise<ConsulNode | string> {
    const masters = await this.passingMasters();
    if (masters.length !== 1) return `${masters.length} passing masters`;
    const master = this.nodes.find((node) => node.redis.port === masters[0]!.port);
    if (!master) return `a master on unknown port ${masters[0]!.port}`;
    const slaves = await this.passingSlaves();
    if (slaves.length !== 2) return `${slaves.length} passing slaves`;
    const masterInfo = await master.redis.info();
    if (masterInfo.role !== "master") return "the registered master's Redis is not master";
    for (const node of this.nodes.filter((node) => node !== master)) {
      const info = await node.redis.info();
      if (info.role !== "slave" || info.master_port !== String(master.redis.port)) {
        return `${node.redis.address} does not replicate from the master yet`;
      }
      if (info.master_link_status !== "up") return `${node.redis.address} link is down`;
    }
    if (!seeded) {
      await seedDataset(master.redis);
      return "seed";
    }
    const offset = Number((await master.redis.info()).master_repl_offset);
    for (const node of this.nodes.filter((node) => node !== master)) {
      const info = await node.redis.info();
      if (Number(info.slave_repl_offset) < offset) return `${node.redis.address} lags`;
    }
    return master;
  }

  /** The tail of every agent's log, for an error message. */
  logs(tail = 3000): string {
    return this.nodes.map((node) =>
      `--- ${this.kind} agent ${node.index} (redis ${node.redis.port})\n${
        node.agent.log().slice(-tail)
      }`
    ).join("\n");
  }

  /** Stops everything: agents (gracefully, then by force), proxies, Redis servers, Consul. */
  async close(): Promise<void> {
    if (this.#disposed) return;
    this.#disposed = true;
    await Promise.all(this.nodes.map((node) => node.agent.stop().catch(() => {})));
    await Promise.all(this.nodes.map((node) => node.proxy?.close()));
    await Promise.all(this.nodes.map((node) => node.redis.stop()));
    await this.consul.stop();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** Writes 1000 small keys, so the replicas have a dataset and a non-zero offset. */
async function seedDataset(redis: RedisServer): Promise<void> {
  const client = redis.client();
  try {
    const pipeline = client.pipeline();
    for (let index = 0; index < 1_000; index++) pipeline.set(`bench:seed:${index}`, `v${index}`);
    await pipeline.exec();
  } finally {
    client.disconnect();
  }
}

/**
 * Settings of ours the bench passes on from its own environment, to compare a feature on and off
 * in one session (`FAST_TAKEOVER=false ./scripts/deno.sh run -A bench/run.ts …`).
 */
const PASSED_ON = ["FAST_TAKEOVER"];

function startOurAgent(env: Record<string, string>, index: number): AgentHandle {
  const passed = Object.fromEntries(
    PASSED_ON.flatMap((name) => {
      const value = Deno.env.get(name);
      return value === undefined ? [] : [[name, value]];
    }),
  );
  const agent = AgentProcess.start({ env: { ...env, ...passed }, label: `bench-resec-${index}` });
  return {
    pid: agent.pid,
    kill: () => agent.kill(),
    stop: async () => {
      await agent.stop(5_000);
    },
    log: () => agent.log(),
  };
}

function startGoResec(bin: string, env: Record<string, string>, index: number): AgentHandle {
  const dir = makeServerDir(`bench-go-resec-${index}`);
  const process = new ManagedProcess(bin, {
    args: [],
    logPath: `${dir}/resec.log`,
    env: { ...env, PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin" },
    clearEnv: true,
    cwd: dir,
  });
  return {
    pid: process.pid,
    kill: async () => {
      process.signal("SIGKILL");
      await process.status;
    },
    stop: async () => {
      await process.stop(5_000);
    },
    log: () => process.readLog(),
  };
}
