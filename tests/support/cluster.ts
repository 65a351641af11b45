/**
 * A whole resec cluster for end-to-end tests: one Consul dev agent, N redis-servers and N agents, all
 * real processes, with short timings so elections take seconds.
 */
import { AgentProcess } from "./agent.ts";
import { ConsulServer } from "./consul.ts";
import { GoResecProcess } from "./go_resec.ts";
import { TcpProxy } from "./proxy.ts";
import { RedisServer, type RedisServerOptions } from "./redis.ts";
import { waitFor } from "./wait.ts";

/** Settings that make a test cluster fast; any can be overridden per test. */
export const FAST_AGENT_ENV: Record<string, string> = {
  CONSUL_SESSION_TTL_MIN: "1s",
  CONSUL_LOCK_TTL: "2s",
  CONSUL_LOCK_DELAY: "500ms",
  CONSUL_LOCK_MONITOR_RETRY_INTERVAL: "200ms",
  HEALTHCHECK_INTERVAL: "500ms",
  HEALTHCHECK_TIMEOUT: "500ms",
  LOG_LEVEL: "debug",
};

export interface ClusterOptions {
  nodes?: number;
  /** Environment shared by every agent (on top of FAST_AGENT_ENV). */
  env?: Record<string, string>;
  /** Per-node environment, by index. */
  nodeEnv?: (index: number, redis: RedisServer) => Record<string, string>;
  /** Per-node redis-server options, by index. */
  redis?: (index: number) => RedisServerOptions;
  /** Start only these agents at first (default: all); start the others with `startAgent`. */
  startAgents?: number[];
  /** Give every agent its own TCP proxy to Consul, so a test can cut one off. */
  consulThroughProxy?: boolean;
  consulAcl?: boolean;
}

/**
 * What an agent logs for an error that escaped every handler: lib/agent/process.ts's crash guard
 * (`unhandled rejection`, `unexpected error`) and Deno's own report of one (`Uncaught`).
 */
export const ESCAPED_ERROR = /unhandled rejection|unexpected error|\bUncaught\b/i;

/** One node: a Redis and the agent beside it (ours, or the Go resec for mixed clusters). */
export class ClusterNode {
  #agent: AgentProcess | GoResecProcess | undefined;
  /** Every agent of ours started on this node, restarts included. */
  readonly #ours: AgentProcess[] = [];

  constructor(
    readonly index: number,
    readonly redis: RedisServer,
    readonly env: Record<string, string>,
    readonly proxy: TcpProxy | undefined,
  ) {}

  /** The node's agent; throws when it was never started. */
  get agent(): AgentProcess | GoResecProcess {
    if (!this.#agent) throw new Error(`The agent of node ${this.index} was not started`);
    return this.#agent;
  }

  get started(): boolean {
    return this.#agent !== undefined;
  }

  /** Starts (or restarts, after a kill or stop) the agent with the node's environment. */
  startAgent(): AgentProcess {
    const agent = AgentProcess.start({ env: this.env, label: `agent-${this.index}` });
    this.#agent = agent;
    this.#ours.push(agent);
    return agent;
  }

  /** The log lines of this node's agents (every run of ours) that report an escaped error. */
  escapedErrors(): string[] {
    return this.#ours.flatMap((agent) =>
      agent.log().split("\n").filter((line) => ESCAPED_ERROR.test(line))
    );
  }

  /**
   * Starts (or restarts) the node's agent as the Go resec: the node's Consul and Redis addresses (and
   * token), plus `env`. None of our test timings: the Go resec refuses a lock TTL under 15 s.
   */
  startGoAgent(env: Record<string, string> = {}): GoResecProcess {
    const { CONSUL_HTTP_ADDR, REDIS_ADDR, CONSUL_HTTP_TOKEN } = this.env;
    const agent = GoResecProcess.start({
      env: {
        CONSUL_HTTP_ADDR: CONSUL_HTTP_ADDR!,
        REDIS_ADDR: REDIS_ADDR!,
        ...(CONSUL_HTTP_TOKEN ? { CONSUL_HTTP_TOKEN } : {}),
        ...env,
      },
      label: `go-resec-${this.index}`,
    });
    this.#agent = agent;
    return agent;
  }

  /** Which resec runs beside this node's Redis now. */
  get flavour(): "deno" | "go" | undefined {
    if (!this.#agent) return undefined;
    return this.#agent instanceof GoResecProcess ? "go" : "deno";
  }
}

/** A health entry as the tests read it. */
export interface ServiceInstance {
  id: string;
  address: string;
  port: number;
  tags: string[];
}

export class Cluster implements AsyncDisposable {
  private constructor(
    readonly consul: ConsulServer,
    readonly nodes: ClusterNode[],
    readonly options: ClusterOptions,
  ) {}

  static async start(options: ClusterOptions = {}): Promise<Cluster> {
    const count = options.nodes ?? 3;
    const consul = await ConsulServer.start({ acl: options.consulAcl });
    const redises: RedisServer[] = [];
    try {
      redises.push(
        ...await Promise.all(
          Array.from(
            { length: count },
            (_, index) => RedisServer.start(options.redis?.(index) ?? {}),
          ),
        ),
      );
    } catch (error) {
      for (const redis of redises) await redis.stop();
      await consul.stop();
      throw error;
    }
    const nodes = redises.map((redis, index) => {
      const proxy = options.consulThroughProxy
        ? TcpProxy.start({ hostname: "127.0.0.1", port: consul.httpPort })
        : undefined;
      const env = {
        ...FAST_AGENT_ENV,
        CONSUL_HTTP_ADDR: proxy ? proxy.address : consul.address,
        REDIS_ADDR: redis.address,
        ...(consul.managementToken ? { CONSUL_HTTP_TOKEN: consul.managementToken } : {}),
        ...options.env,
        ...options.nodeEnv?.(index, redis),
      };
      return new ClusterNode(index, redis, env, proxy);
    });
    for (const node of nodes) {
      if (!options.startAgents || options.startAgents.includes(node.index)) node.startAgent();
    }
    return new Cluster(consul, nodes, options);
  }

  /** Starts (or restarts) a node's agent with its environment. */
  startAgent(node: ClusterNode): void {
    node.startAgent();
  }

  /** The master service query of the cluster's naming mode. */
  get masterQuery(): string {
    const env = { ...FAST_AGENT_ENV, ...this.options.env };
    if (env.CONSUL_SERVICE_NAME) {
      const tag = env.MASTER_TAGS!.split(",")[0]!;
      return `/v1/health/service/${env.CONSUL_SERVICE_NAME}?passing=1&tag=${tag}`;
    }
    return `/v1/health/service/${env.CONSUL_SERVICE_PREFIX ?? "redis"}-master?passing=1`;
  }

  get slaveQuery(): string {
    const env = { ...FAST_AGENT_ENV, ...this.options.env };
    if (env.CONSUL_SERVICE_NAME) {
      const tag = env.SLAVE_TAGS!.split(",")[0]!;
      return `/v1/health/service/${env.CONSUL_SERVICE_NAME}?passing=1&tag=${tag}`;
    }
    return `/v1/health/service/${env.CONSUL_SERVICE_PREFIX ?? "redis"}-slave?passing=1`;
  }

  async passingMasters(): Promise<ServiceInstance[]> {
    return toInstances(await this.consul.api<HealthEntry[]>("GET", this.masterQuery));
  }

  async passingSlaves(): Promise<ServiceInstance[]> {
    return toInstances(await this.consul.api<HealthEntry[]>("GET", this.slaveQuery));
  }

  /** The node whose Redis is registered as the one passing master, once there is exactly one. */
  async waitForMaster(timeoutMs = 30_000, exclude?: ClusterNode): Promise<ClusterNode> {
    return await waitFor(async () => {
      const masters = await this.passingMasters();
      if (masters.length !== 1) return false;
      const node = this.nodeAt(masters[0]!.port);
      return node && node !== exclude ? node : false;
    }, { timeoutMs, intervalMs: 50, message: "exactly one passing master in Consul" });
  }

  /**
   * Waits until Consul shows one passing master and every other node as a passing slave whose Redis
   * replicates from that master with its link up.
   */
  async waitForConvergence(timeoutMs = 40_000): Promise<ClusterNode> {
    return await waitFor(async () => {
      const masters = await this.passingMasters();
      if (masters.length !== 1) return false;
      const master = this.nodeAt(masters[0]!.port);
      if (!master) return false;
      const slaves = await this.passingSlaves();
      const live = this.nodes.filter((node) =>
        node !== master && node.redis.process && node.started
      );
      if (slaves.length !== live.length) return false;
      for (const node of live) {
        const info = await node.redis.info();
        if (info.role !== "slave" || info.master_port !== String(master.redis.port)) return false;
        if (info.master_link_status !== "up") return false;
      }
      return master;
    }, { timeoutMs, intervalMs: 100, message: "the cluster to converge on one master" });
  }

  nodeAt(port: number): ClusterNode | undefined {
    return this.nodes.find((node) => node.redis.port === port);
  }

  /**
   * Dumps every agent's log tail, for a failing test's output: INFO and above, as the agents run at
   * DEBUG and its state diffs would fill any tail.
   */
  logs(tail = 12_000): string {
    return this.nodes.filter((node) => node.started).map((node) =>
      `--- agent ${node.index} (${node.flavour}, redis ${node.redis.port})\n${
        node.agent.log().split("\n").filter((line) => !/ DEBUG /.test(line)).join("\n").slice(-tail)
      }`
    ).join("\n");
  }

  /** Every agent log line, on any node, that reports an error which escaped every handler. */
  escapedErrors(): string[] {
    return this.nodes.flatMap((node) =>
      node.escapedErrors().map((line) => `agent ${node.index}: ${line}`)
    );
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await Promise.all(
      this.nodes.filter((node) => node.started).map((node) => node.agent.stop().catch(() => {})),
    );
    await Promise.all(this.nodes.map((node) => node.proxy?.close()));
    await Promise.all(this.nodes.map((node) => node.redis.stop()));
    await this.consul.stop();
  }
}

/**
 * Starts a cluster, runs `body` with it and always disposes it; when the body fails, every agent's
 * log is printed before the error goes on, so a failing test shows what the agents decided. A body
 * that passes still fails when any agent of ours logged an error that escaped every handler
 * (`ESCAPED_ERROR`), up to and including its graceful stop.
 *
 * @example
 * ```ts
 * await withCluster({ nodes: 2 }, async (cluster) => {
 *   const master = await cluster.waitForConvergence();
 *   await master.redis.kill();
 *   await cluster.waitForMaster(30_000, master);
 * });
 * ```
 */
export async function withCluster<T>(
  options: ClusterOptions,
  body: (cluster: Cluster) => Promise<T>,
): Promise<T> {
  const cluster = await Cluster.start(options);
  let result: T;
  try {
    result = await body(cluster);
  } catch (error) {
    console.error(cluster.logs());
    await cluster[Symbol.asyncDispose]();
    throw error;
  }
  await cluster[Symbol.asyncDispose]();
  const escaped = cluster.escapedErrors();
  if (escaped.length > 0) {
    console.error(cluster.logs());
    throw new Error(`An agent let an error escape every handler:\n${escaped.join("\n")}`);
  }
  return result;
}

interface HealthEntry {
  Service: { ID: string; Address: string; Port: number; Tags: string[] | null };
  Node: { Address: string };
}

function toInstances(entries: HealthEntry[]): ServiceInstance[] {
  return entries.map((entry) => ({
    id: entry.Service.ID,
    address: entry.Service.Address || entry.Node.Address,
    port: entry.Service.Port,
    tags: entry.Service.Tags ?? [],
  }));
}
