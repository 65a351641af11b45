/**
 * The multi-host bed: three Consul servers, N application hosts (Consul client agent, redis-server,
 * resec) and client machines, each in its own network namespace on one bridge, with real faults.
 */
import { makeServerDir, testRunDir } from "../tmp.ts";
import { waitFor } from "../wait.ts";
import { cutConsul, healConsul, isConsulCut } from "./firewall.ts";
import { BedConsulMachine, BedHost } from "./host.ts";
import { logTails } from "./logs.ts";
import { BedNetwork, type Machine } from "./network.ts";
import type { BedAgentLaunch } from "./resec.ts";
import { BedUnavailableError } from "./netns.ts";
import { BedWriter, type BedWriterOptions } from "./writer.ts";

/** Three servers: the smallest Consul cluster that survives the loss of one. */
const SERVER_COUNT = 3;
/**
 * With Consul's default timings three servers elect a leader and gossip settles in about 5 s; a
 * shared 2-core machine under load can take many times that.
 */
const CONSUL_READY_TIMEOUT_MS = 60_000;

export interface BedOptions {
  /** Application hosts (default 3). */
  hosts?: number;
  /** Client machines for workloads (default 1). */
  clients?: number;
  /**
   * Start resec on every host (default true). With false, hosts run Consul and Redis only and a test
   * starts resec itself with `startAgent`.
   */
  resec?: boolean;
  /** Extra environment for resec, e.g. `{ LOG_LEVEL: "debug" }`; by default resec gets none. */
  resecEnv?: Record<string, string> | ((host: number) => Record<string, string>);
  /**
   * Another agent than resec on every host (the Go resec, redis-sentinel): how to launch it there, and
   * what to set up once every Redis answers and before the agents start (e.g. replication for
   * Sentinel). The bed starts, kills and reboots it as it does resec.
   */
  agent?: BedAgent;
  /** Extra redis-server arguments for every host, e.g. `["--appendonly", "yes"]`. */
  redisArgs?: string[];
  /** Log level of every Consul agent (default "info"). */
  consulLogLevel?: string;
}

/** Another agent than resec for the hosts; see BedOptions.agent. */
export interface BedAgent {
  launch(machine: Machine, dir: string): BedAgentLaunch;
  prepare?(bed: Bed): Promise<void>;
}

/** A passing instance of a service, as Consul's health API reports it. */
export interface BedServiceInstance {
  /** The Consul node the service is registered on: "host-0" … */
  node: string;
  /** The host index of that node, when it is a host. */
  host: number | undefined;
  /** `Service.Address`, or `Node.Address` when the service has none. */
  address: string;
  port: number;
  tags: string[];
}

interface HealthEntry {
  Node: { Node: string; Address: string };
  Service: { Address: string; Port: number; Tags: string[] | null };
}

/**
 * A running bed. Dispose it (`await using bed = await Bed.start()`) to kill every process and delete
 * every namespace.
 *
 * @example
 * ```ts
 * await using bed = await Bed.start({ hosts: 3 });
 * const master = await bed.waitForMaster();
 * await bed.killHost(master);
 * await bed.waitForMaster({ exclude: master });
 * ```
 */
export class Bed implements AsyncDisposable {
  readonly #writers: BedWriter[] = [];
  #disposed = false;

  private constructor(
    readonly network: BedNetwork,
    readonly servers: BedConsulMachine[],
    readonly hosts: BedHost[],
    readonly clients: BedConsulMachine[],
    readonly options: BedOptions,
  ) {}

  /**
   * Creates the namespaces, starts the Consul cluster and waits until it has a leader and every agent
   * has joined, then starts Redis (and, unless `resec: false`, resec) on every host.
   *
   * @throws {BedUnavailableError} when this machine cannot create network namespaces (not root, no
   * iproute2): the multi-host tests fail with this message, they are never skipped.
   */
  static async start(options: BedOptions = {}): Promise<Bed> {
    const layout = {
      servers: SERVER_COUNT,
      hosts: options.hosts ?? 3,
      clients: options.clients ?? 1,
    };
    const network = await BedNetwork.create(layout, testRunDir());
    const dirOf = (machine: Machine) => makeServerDir(`bed-${network.id}-${machine.name}`);
    const logLevel = options.consulLogLevel ?? "info";
    const serverIps = network.machines.filter((m) => m.kind === "server").map((m) => m.ip);
    const of = (kind: Machine["kind"]) => network.machines.filter((m) => m.kind === kind);
    let bed: Bed;
    try {
      bed = new Bed(
        network,
        of("server").map((m) => new BedConsulMachine(network, m, dirOf(m), serverIps, logLevel)),
        of("host").map((m) => {
          const dir = dirOf(m);
          return new BedHost(network, m, dir, {
            serverIps,
            consulLogLevel: logLevel,
            redisArgs: options.redisArgs ?? [],
            resecEnv: typeof options.resecEnv === "function"
              ? options.resecEnv(m.index)
              : options.resecEnv ?? {},
            agent: options.agent?.launch(m, dir),
          });
        }),
        of("client").map((m) => new BedConsulMachine(network, m, dirOf(m), serverIps, logLevel)),
        options,
      );
    } catch (error) {
      // Nothing runs yet, but the namespaces exist.
      await network[Symbol.asyncDispose]();
      throw error;
    }
    try {
      await bed.#boot();
    } catch (error) {
      const logs = bed.logs(1_500);
      await bed[Symbol.asyncDispose]();
      if (error instanceof BedUnavailableError) throw error;
      throw new Error(`Cannot start the bed: ${(error as Error).message}\n${logs}`, {
        cause: error,
      });
    }
    return bed;
  }

  get id(): string {
    return this.network.id;
  }

  /** Whether the bed runs resec on its hosts (false when started with `resec: false`). */
  get runsResec(): boolean {
    return this.options.resec ?? true;
  }

  host(index: number): BedHost {
    return pick(this.hosts, index, "host");
  }

  server(index: number): BedConsulMachine {
    return pick(this.servers, index, "server");
  }

  client(index: number): BedConsulMachine {
    return pick(this.clients, index, "client");
  }

  // ----- observing, from the root namespace through unix sockets

  /** The index of the server that leads raft now, or undefined while there is none. */
  async consulLeader(): Promise<number | undefined> {
    const leader = await this.#askServers((server) => server.consul.api.leader());
    const ip = leader.slice(0, leader.lastIndexOf(":"));
    return this.servers.find((server) => server.ip === ip)?.index;
  }

  /** The node names in Consul's catalog. */
  async catalogNodes(): Promise<string[]> {
    const nodes = await this.#askServers((server) =>
      server.consul.api.get<{ Node: string }[]>("/v1/catalog/nodes")
    );
    return nodes.map((node) => node.Node).sort();
  }

  /** The passing instances of `service` (a server answers, so this is the cluster's view). */
  async passing(service: string): Promise<BedServiceInstance[]> {
    const entries = await this.#askServers((server) =>
      server.consul.api.get<HealthEntry[]>(
        `/v1/health/service/${encodeURIComponent(service)}?passing`,
      )
    );
    return entries.map((entry) => ({
      node: entry.Node.Node,
      host: this.hosts.find((host) => host.name === entry.Node.Node)?.index,
      address: entry.Service.Address || entry.Node.Address,
      port: entry.Service.Port,
      tags: entry.Service.Tags ?? [],
    }));
  }

  /** Passing `redis-master` instances (resec's default naming). */
  async passingMasters(): Promise<BedServiceInstance[]> {
    return await this.passing("redis-master");
  }

  /** Passing `redis-slave` instances (resec's default naming). */
  async passingSlaves(): Promise<BedServiceInstance[]> {
    return await this.passing("redis-slave");
  }

  /** Waits until exactly one host is the passing master (other than `exclude`); returns its index. */
  async waitForMaster(options: { timeoutMs?: number; exclude?: number } = {}): Promise<number> {
    return await waitFor(async () => {
      const masters = await this.passingMasters();
      const host = masters.length === 1 ? masters[0]!.host : undefined;
      return host !== undefined && host !== options.exclude ? host : false;
    }, {
      timeoutMs: options.timeoutMs ?? 60_000,
      intervalMs: 200,
      message: "exactly one passing redis-master on a host",
    });
  }

  // ----- faults

  /** Kills every process on the host at once (SIGKILL): Consul's agent, Redis and resec. */
  async killHost(index: number): Promise<number[]> {
    return await this.host(index).kill();
  }

  /**
   * Kills everything on the host, wipes Redis' data, and boots it again: Consul's agent, an empty
   * Redis, and resec when the bed runs it or it ran on the host. Network faults (a pulled cable, a Consul cut) stay: they
   * belong to the network, not to the host.
   */
  async rebootHost(index: number): Promise<void> {
    const host = this.host(index);
    // resec is a service of the host when the bed runs it or the test had started it there.
    const resec = this.runsResec || host.resec.process !== undefined;
    await host.kill();
    host.redis.wipe();
    await host.boot({ join: await this.#reachesConsul(host), resec });
  }

  /** Pulls the host's cable at the bridge: everything on it keeps running, unreachable. */
  async linkDown(index: number): Promise<void> {
    await this.network.setLink(this.host(index).machine, false);
  }

  /** Plugs the host's cable back in. */
  async linkUp(index: number): Promise<void> {
    await this.network.setLink(this.host(index).machine, true);
  }

  /**
   * Drops Consul's server RPC and gossip (8300–8302, TCP and UDP, both ways) on the host, so its
   * Consul agent loses the servers and the other agents, while Redis (6379) stays reachable.
   */
  async cutFromConsul(index: number): Promise<void> {
    const host = this.host(index);
    await cutConsul(this.network, host.machine, `${host.dir}/consul-cut.nft`);
  }

  /** Removes the host's Consul cut. */
  async healConsulCut(index: number): Promise<void> {
    await healConsul(this.network, this.host(index).machine);
  }

  /** Kills Consul server `index` (SIGKILL); its data dir stays for startServer. */
  async killServer(index: number): Promise<void> {
    await this.server(index).kill();
  }

  /** Starts Consul server `index` again on its data dir and waits until it knows a leader. */
  async startServer(index: number): Promise<void> {
    const server = this.server(index);
    if (server.consul.process) throw new Error(`Consul server ${index} is already running`);
    server.consul.start();
    await server.consul.waitUntilJoined(CONSUL_READY_TIMEOUT_MS);
  }

  /** Kills only the host's Consul client agent (SIGKILL); Redis and resec keep running. */
  async killConsulAgent(index: number): Promise<void> {
    const consul = this.host(index).consul;
    consul.process?.signal("SIGKILL");
    await consul.reap();
  }

  /** Starts the host's Consul client agent again and waits until it has joined. */
  async startConsulAgent(index: number): Promise<void> {
    const host = this.host(index);
    if (host.consul.process) {
      throw new Error(`The Consul agent of host ${index} is already running`);
    }
    host.consul.start();
    if (await this.#reachesConsul(host)) await host.consul.waitUntilJoined();
    else await host.consul.waitUntilAnswering();
  }

  /** Starts resec on the host (with the bed's defaults-only configuration). */
  startAgent(index: number): void {
    this.host(index).resec.start();
  }

  /** Stops resec on the host with SIGTERM; returns its exit code. */
  async stopAgent(index: number): Promise<number | undefined> {
    return await this.host(index).resec.stop();
  }

  /** Kills resec on the host with SIGKILL: it releases nothing. */
  async killAgent(index: number): Promise<void> {
    await this.host(index).resec.kill();
  }

  /** Stops resec on the host gracefully and starts it again. */
  async restartAgent(index: number): Promise<void> {
    await this.stopAgent(index);
    this.startAgent(index);
  }

  /** Starts the client workload in client machine `options.client` (default 0). */
  startWriter(options: BedWriterOptions & { client?: number } = {}): BedWriter {
    const client = this.client(options.client ?? 0);
    const writer = BedWriter.start(this.network, client.machine, client.dir, options);
    this.#writers.push(writer);
    return writer;
  }

  /** The tails of every log of the bed, for a failing test's output. */
  logs(tail = 3_000): string {
    const machines = [...this.servers, ...this.hosts, ...this.clients];
    return machines.map((machine) => logTails(machine.name, machine.dir, tail)).filter((text) =>
      text !== ""
    ).join("\n");
  }

  /** Kills every process of the bed and deletes its namespaces. */
  async [Symbol.asyncDispose](): Promise<void> {
    if (this.#disposed) return;
    this.#disposed = true;
    await Promise.all(this.#writers.map((writer) => writer.stop()));
    try {
      await this.network[Symbol.asyncDispose]();
    } finally {
      // The kill came from outside: reap the handles so their logs are flushed and nothing leaks.
      await Promise.all([...this.servers, ...this.clients, ...this.hosts].map((m) => m.reap()));
      for (const machine of [...this.servers, ...this.hosts, ...this.clients]) machine.close();
    }
  }

  async #boot(): Promise<void> {
    const agents = [...this.servers, ...this.hosts, ...this.clients];
    for (const machine of agents) machine.consul.start();
    await waitFor(async () => (await this.consulLeader()) !== undefined, {
      timeoutMs: CONSUL_READY_TIMEOUT_MS,
      intervalMs: 200,
      message: "the Consul servers to elect a leader",
    });
    await Promise.all(agents.map((machine) => machine.consul.waitUntilJoined()));
    const expected = agents.map((machine) => machine.name).sort();
    await waitFor(async () => {
      const nodes = await this.catalogNodes();
      return expected.every((name) => nodes.includes(name));
    }, {
      timeoutMs: CONSUL_READY_TIMEOUT_MS,
      intervalMs: 200,
      message: `Consul's catalog to list ${expected.join(", ")}`,
    });
    await Promise.all(this.hosts.map(async (host) => {
      host.redis.start();
      await host.redis.waitUntilReady();
    }));
    await this.options.agent?.prepare?.(this);
    if (this.runsResec) { for (const host of this.hosts) host.resec.start(); }
  }

  /** Whether the host's Consul agent can reach the servers: cable in and no Consul cut. */
  async #reachesConsul(host: BedHost): Promise<boolean> {
    return await this.network.linkIsUp(host.machine) &&
      !(await isConsulCut(this.network, host.machine));
  }

  /** The first answer of a running server, trying them in order. */
  async #askServers<T>(ask: (server: BedConsulMachine) => Promise<T>): Promise<T> {
    let lastError: unknown = new Error("No Consul server is running");
    for (const server of this.servers) {
      if (!server.consul.process) continue;
      try {
        return await ask(server);
      } catch (error) {
        lastError = error;
      }
    }
    throw lastError;
  }
}

function pick<T>(items: T[], index: number, kind: string): T {
  const item = items[index];
  if (item === undefined) {
    throw new RangeError(`The bed has no ${kind} ${index}: it has ${items.length}`);
  }
  return item;
}
