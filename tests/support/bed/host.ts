/**
 * The machines of the bed as a test sees them: a host runs a Consul client agent, redis-server and the
 * resec agent; a server runs a Consul server; a client runs a Consul client agent for its workload.
 */
import { BedConsulAgent } from "./consul.ts";
import type { BedNetwork, Machine } from "./network.ts";
import { BedRedis } from "./redis.ts";
import { type BedAgentLaunch, BedResec } from "./resec.ts";

/** A machine that runs only a Consul agent: one of the servers, or a client's. */
export class BedConsulMachine {
  readonly consul: BedConsulAgent;

  constructor(
    readonly network: BedNetwork,
    readonly machine: Machine,
    readonly dir: string,
    serverIps: string[],
    logLevel: string,
  ) {
    this.consul = new BedConsulAgent(network, machine, {
      server: machine.kind === "server",
      serverIps: serverIps.filter((ip) => ip !== machine.ip),
      dir,
      logLevel,
    });
  }

  get index(): number {
    return this.machine.index;
  }

  get name(): string {
    return this.machine.name;
  }

  get ip(): string {
    return this.machine.ip;
  }

  /** Kills every process on the machine at once (SIGKILL) and waits until they are gone. */
  async kill(): Promise<number[]> {
    const pids = await this.network.killAll(this.machine);
    await this.reap();
    return pids;
  }

  /** Waits for the machine's processes to be gone after something killed them. */
  async reap(): Promise<void> {
    await this.consul.reap();
  }

  close(): void {
    this.consul.close();
  }
}

export interface BedHostSettings {
  serverIps: string[];
  consulLogLevel: string;
  redisArgs: string[];
  /** The extras a test gives the resec agent; by default none. */
  resecEnv: Record<string, string>;
  /** Another agent to run instead of resec (see BedOptions.agent). */
  agent?: BedAgentLaunch;
}

/** An application host: Consul client agent, redis-server on 6379, and the resec agent. */
export class BedHost extends BedConsulMachine {
  readonly redis: BedRedis;
  readonly resec: BedResec;

  constructor(network: BedNetwork, machine: Machine, dir: string, settings: BedHostSettings) {
    super(network, machine, dir, settings.serverIps, settings.consulLogLevel);
    this.redis = new BedRedis(network, machine, dir, settings.redisArgs);
    this.resec = new BedResec(network, machine, dir, settings.resecEnv, settings.agent);
  }

  /**
   * Boots the host's services in the order a service manager would: Consul's agent (waiting until it
   * joined, when `join` says the network lets it), Redis (waiting until it answers), then resec.
   */
  async boot(options: { join: boolean; resec: boolean }): Promise<void> {
    this.consul.start();
    if (options.join) await this.consul.waitUntilJoined();
    else await this.consul.waitUntilAnswering();
    this.redis.start();
    await this.redis.waitUntilReady();
    if (options.resec) this.resec.start();
  }

  override async reap(): Promise<void> {
    await Promise.all([this.consul.reap(), this.redis.reap(), this.resec.reap()]);
  }

  override close(): void {
    super.close();
    this.redis.close();
  }
}
