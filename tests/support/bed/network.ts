/**
 * The bed's network: one namespace per machine, each plugged by a veth pair into a Linux bridge that
 * lives in a namespace of its own. Addresses exist only inside these namespaces; the root namespace
 * gets no address, no route and no interface (veth pairs are created inside the bridge namespace).
 */
import { ManagedProcess, type SpawnOptions } from "../process.ts";
import type { CommandResult } from "../process.ts";
import {
  createNamespace,
  deleteNamespace,
  deleteNamespaceSync,
  execIn,
  ip,
  ipBinary,
  killNamespaceProcesses,
  requireNamespaceSupport,
} from "./netns.ts";
import {
  bedNamespacePrefix,
  cleanStaleBeds,
  newBedId,
  removeRecord,
  writeRecord,
} from "./registry.ts";

/** RFC 2544's benchmarking range: never routed on the Internet, unlikely to clash with a LAN. */
export const BED_SUBNET = "198.18.0.0/24";
const SUBNET_BITS = 24;
const BRIDGE = "br0";
/** The interface every machine sees, as on a real host. */
const MACHINE_INTERFACE = "eth0";

/** The kinds of machine on the bed, and where each kind's addresses start (198.18.0.<base + i>). */
const ADDRESS_BASE = { server: 10, host: 20, client: 200 } as const;
const MAX_MACHINES = { server: 10, host: 80, client: 50 } as const;
/** Short tags in namespace and link names: rsbed-<id>-h0. */
const KIND_TAG = { server: "s", host: "h", client: "c" } as const;

export type MachineKind = keyof typeof ADDRESS_BASE;

/** One machine of the bed: its namespace, address and the bridge port its cable plugs into. */
export interface Machine {
  kind: MachineKind;
  index: number;
  /** The node name its Consul agent uses: "server-0", "host-1", "client-0". */
  name: string;
  namespace: string;
  ip: string;
  /** The veth end inside the bridge namespace. */
  port: string;
}

export interface NetworkLayout {
  servers: number;
  hosts: number;
  clients: number;
}

/** The address of machine `index` of a kind. */
export function machineIp(kind: MachineKind, index: number): string {
  if (!Number.isInteger(index) || index < 0 || index >= MAX_MACHINES[kind]) {
    throw new RangeError(
      `Cannot address ${kind} ${index}: the bed has room for ${MAX_MACHINES[kind]}`,
    );
  }
  return `198.18.0.${ADDRESS_BASE[kind] + index}`;
}

/**
 * The namespaces, bridge and cables of one bed, owned by this process. Dispose it to kill everything
 * in its namespaces and delete them; an `unload` handler does the same when the test process exits
 * without disposing, and the next bed cleans up after an owner that was killed outright.
 */
export class BedNetwork implements AsyncDisposable {
  readonly machines: Machine[] = [];
  readonly bridgeNamespace: string;
  readonly #created: string[] = [];
  #disposed = false;
  readonly #onUnload = () => this.#deleteAllSync();

  private constructor(readonly id: string) {
    this.bridgeNamespace = `${bedNamespacePrefix(id)}br`;
  }

  /**
   * Removes stale beds, records this process as the owner of a new one and creates its namespaces.
   *
   * @throws {BedUnavailableError} when this machine cannot create network namespaces.
   */
  static async create(layout: NetworkLayout, runDir: string): Promise<BedNetwork> {
    requireNamespaceSupport();
    await cleanStaleBeds();
    const network = new BedNetwork(newBedId());
    writeRecord(network.id, runDir);
    globalThis.addEventListener("unload", network.#onUnload);
    try {
      await network.#build(layout);
    } catch (error) {
      await network[Symbol.asyncDispose]();
      throw error;
    }
    return network;
  }

  /** Every namespace of this bed that exists now. */
  get namespaces(): string[] {
    return [...this.#created];
  }

  machine(kind: MachineKind, index: number): Machine {
    const machine = this.machines.find((m) => m.kind === kind && m.index === index);
    if (!machine) throw new RangeError(`The bed has no ${kind} ${index}`);
    return machine;
  }

  /** Plugs the machine's cable in (true) or pulls it (false) at the bridge; its processes run on. */
  async setLink(machine: Machine, up: boolean): Promise<void> {
    await ip("-n", this.bridgeNamespace, "link", "set", machine.port, up ? "up" : "down");
  }

  /** Whether the machine's bridge port is up. */
  async linkIsUp(machine: Machine): Promise<boolean> {
    const output = await ip("-n", this.bridgeNamespace, "-o", "link", "show", machine.port);
    return /[<,]UP[,>]/.test(output);
  }

  /**
   * Starts a long-running process inside the machine's namespace. `ip netns exec` execs, so the pid
   * is the process's own.
   */
  spawn(machine: Machine, command: string, options: SpawnOptions): ManagedProcess {
    return new ManagedProcess(ipBinary(), {
      ...options,
      args: ["netns", "exec", machine.namespace, command, ...options.args],
    });
  }

  /** Runs a short command inside the machine's namespace, with its output captured. */
  async exec(
    machine: Machine,
    command: string,
    args: string[],
    timeoutMs?: number,
  ): Promise<CommandResult> {
    return await execIn(machine.namespace, command, args, timeoutMs);
  }

  /** SIGKILLs every process in the machine's namespace at once; returns their pids. */
  async killAll(machine: Machine): Promise<number[]> {
    return await killNamespaceProcesses(machine.namespace);
  }

  /** Kills every process of the bed and deletes its namespaces and its ownership record. */
  async [Symbol.asyncDispose](): Promise<void> {
    if (this.#disposed) return;
    this.#disposed = true;
    globalThis.removeEventListener("unload", this.#onUnload);
    // Machines first: deleting a machine's namespace also removes its veth pair from the bridge.
    const machines = this.#created.filter((name) => name !== this.bridgeNamespace);
    await Promise.all(machines.map((name) => deleteNamespace(name)));
    if (this.#created.includes(this.bridgeNamespace)) await deleteNamespace(this.bridgeNamespace);
    this.#created.length = 0;
    removeRecord(this.id);
  }

  async #build(layout: NetworkLayout): Promise<void> {
    await this.#addNamespace(this.bridgeNamespace);
    await ip("-n", this.bridgeNamespace, "link", "add", BRIDGE, "type", "bridge");
    await ip("-n", this.bridgeNamespace, "link", "set", BRIDGE, "up");
    const wanted: [MachineKind, number][] = [
      ["server", layout.servers],
      ["host", layout.hosts],
      ["client", layout.clients],
    ];
    for (const [kind, count] of wanted) {
      for (let index = 0; index < count; index++) {
        const tag = `${KIND_TAG[kind]}${index}`;
        this.machines.push({
          kind,
          index,
          name: `${kind}-${index}`,
          namespace: `${bedNamespacePrefix(this.id)}${tag}`,
          ip: machineIp(kind, index),
          port: tag,
        });
      }
    }
    await Promise.all(this.machines.map((machine) => this.#plugIn(machine)));
  }

  async #plugIn(machine: Machine): Promise<void> {
    await this.#addNamespace(machine.namespace);
    const bridge = this.bridgeNamespace;
    // Both ends are born inside bed namespaces: nothing appears in the root namespace, even briefly.
    await ip(
      "-n",
      bridge,
      "link",
      "add",
      machine.port,
      "type",
      "veth",
      "peer",
      "name",
      MACHINE_INTERFACE,
      "netns",
      machine.namespace,
    );
    await ip("-n", bridge, "link", "set", machine.port, "master", BRIDGE, "up");
    await ip(
      "-n",
      machine.namespace,
      "addr",
      "add",
      `${machine.ip}/${SUBNET_BITS}`,
      "dev",
      MACHINE_INTERFACE,
    );
    await ip("-n", machine.namespace, "link", "set", MACHINE_INTERFACE, "up");
  }

  async #addNamespace(name: string): Promise<void> {
    await createNamespace(name);
    this.#created.push(name);
  }

  #deleteAllSync(): void {
    for (const name of this.#created) {
      try {
        deleteNamespaceSync(name);
      } catch { /* best effort while the process exits */ }
    }
    removeRecord(this.id);
  }
}
