/**
 * Which system runs on the bed's hosts, for the long-form runs that set resec beside its peers: resec
 * with its defaults, the Go resec with its defaults, or Redis Sentinel (one sentinel beside each Redis,
 * quorum 2) with a chosen down-after-milliseconds. Each says how the bed starts it, how a client finds
 * the master, and what discovery names as master and replicas, so a round measures every system the
 * same way.
 */
import { Redis } from "ioredis";
import {
  type Bed,
  type BedAgent,
  type BedWriterOptions,
  type Machine,
  REDIS_PORT,
} from "../support/bed/mod.ts";
import { provisionGoResec } from "../support/go_resec.ts";
import { waitFor } from "../support/wait.ts";

/** What discovery tells a client now: host indices (-1 for a node that is no host). */
export interface Discovery extends AsyncDisposable {
  /** Waits until the system can fail over (Sentinels that know each other and the replicas). */
  ready(): Promise<void>;
  /** The hosts named as master. */
  masters(): Promise<number[]>;
  /** The hosts named as healthy replicas. */
  replicas(): Promise<number[]>;
}

export interface HostSystem {
  /** "resec", "go-resec", "sentinel-1s", "sentinel-30s". */
  readonly name: string;
  /** One line for the report. */
  readonly title: string;
  /** How the bed starts it on each host; undefined: resec, the bed's own. */
  readonly agent?: BedAgent;
  /** Settings for resec on every host (resec only). */
  readonly resecEnv?: Record<string, string>;
  /** How the client workload finds the master. */
  writerOptions(bed: Bed): BedWriterOptions;
  discover(bed: Bed): Discovery;
}

/** The names `systemByName` knows, in the order a report lists them. */
export const SYSTEM_NAMES = [
  "resec",
  "resec-failsafe",
  "go-resec",
  "sentinel-1s",
  "sentinel-30s",
] as const;

/** The port of resec's HTTP API on every host in failsafe mode, which peers call. */
const FAILSAFE_HTTP_PORT = 8008;

/** Sentinel's own port, as on real hosts. */
const SENTINEL_PORT = 26379;
/** The name the Sentinels monitor the group under. */
const MASTER_NAME = "resec-bed";
/** Quorum 2 of 3 Sentinels: one host may be lost. */
const SENTINEL_QUORUM = 2;
/** A Sentinel query from the test process must not hang on a frozen one. */
const SENTINEL_QUERY_TIMEOUT_MS = 500;
/** Sentinels find each other by hello messages every 2 s, and the replicas by INFO every 10 s. */
const SENTINEL_READY_TIMEOUT_MS = 60_000;

/**
 * The system called `name`; the Go resec's binary comes from GO_RESEC_BIN or
 * scripts/provision-go-resec.sh.
 *
 * @throws {Error} for an unknown name, or when the Go resec cannot be provisioned.
 */
export async function systemByName(name: string): Promise<HostSystem> {
  if (name === "resec") return RESEC_SYSTEM;
  if (name === "resec-failsafe") return failsafeSystem();
  if (name === "go-resec") {
    const binary = await provisionGoResec();
    return consulSystem(name, "Go resec, default settings", {
      // With no settings it finds Redis at 127.0.0.1:6379 and registers the port only, so Consul
      // announces the node's address: it needs nothing from the bed.
      launch: () => ({ label: "go-resec", command: binary, args: [] }),
    });
  }
  const match = /^sentinel-(\d+)s$/.exec(name);
  if (match) return sentinelSystem(name, Number(match[1]) * 1_000);
  throw new Error(`Unknown system "${name}": expected one of ${SYSTEM_NAMES.join(", ")}`);
}

/**
 * resec with FAILSAFE_MODE on every host: the defaults plus what failsafe mode needs, the HTTP API on
 * every interface and one key file for the group (docs/failsafe.md).
 */
export function failsafeSystem(): HostSystem {
  const dir = Deno.makeTempDirSync({ prefix: "resec-failsafe-key-" });
  const keyFile = `${dir}/failsafe.key`;
  Deno.writeTextFileSync(keyFile, `${crypto.randomUUID()}\n`, { mode: 0o600 });
  return {
    ...consulSystem("resec-failsafe", "resec, defaults plus FAILSAFE_MODE"),
    resecEnv: {
      FAILSAFE_MODE: "true",
      FAILSAFE_KEY_FILE: keyFile,
      HTTP_ADDR: `:${FAILSAFE_HTTP_PORT}`,
    },
  };
}

/** resec or the Go resec: the master is the passing redis-master in Consul. */
export const RESEC_SYSTEM: HostSystem = consulSystem("resec", "resec, default settings");

function consulSystem(name: string, title: string, agent?: BedAgent): HostSystem {
  return {
    name,
    title,
    agent,
    writerOptions: () => ({}),
    discover: (bed) => ({
      ready: () => Promise.resolve(),
      masters: async () => (await bed.passingMasters()).map((entry) => entry.host ?? -1),
      replicas: async () => (await bed.passingSlaves()).map((entry) => entry.host ?? -1),
      [Symbol.asyncDispose]: () => Promise.resolve(),
    }),
  };
}

/**
 * Redis Sentinel: host 0 starts as master with the others its replicas, then one sentinel per host
 * (Debian's redis-sentinel, defaults but down-after) monitors it with quorum 2. The client asks the
 * Sentinels; discovery is what a quorum of them names.
 */
function sentinelSystem(name: string, downAfterMs: number): HostSystem {
  return {
    name,
    title: `Redis Sentinel, down-after-milliseconds ${downAfterMs}`,
    agent: {
      launch: (_machine, dir) => ({
        label: "redis-sentinel",
        command: "redis-sentinel",
        args: [sentinelConfigPath(dir)],
      }),
      prepare: (bed) => prepareSentinels(bed, downAfterMs),
    },
    writerOptions: (bed) => ({
      sentinels: bed.hosts.map((host) => `${host.ip}:${SENTINEL_PORT}`),
      masterName: MASTER_NAME,
    }),
    discover: (bed) => new SentinelDiscovery(bed),
  };
}

function sentinelConfigPath(dir: string): string {
  return `${dir}/sentinel.conf`;
}

function sentinelSocketPath(dir: string): string {
  return `${dir}/sentinel.sock`;
}

/** Replication from host 0, then each host's sentinel.conf (Sentinel rewrites it as it learns). */
async function prepareSentinels(bed: Bed, downAfterMs: number): Promise<void> {
  const [first, ...others] = bed.hosts;
  if (!first) throw new Error("Cannot run Sentinel on a bed without hosts");
  for (const host of others) await host.redis.cli("REPLICAOF", first.ip, String(REDIS_PORT));
  await waitFor(async () => {
    for (const host of others) {
      if ((await host.redis.info()).master_link_status !== "up") return false;
    }
    return true;
  }, { timeoutMs: 30_000, message: "the replicas of host 0 to sync" });
  for (const host of bed.hosts) {
    Deno.writeTextFileSync(
      sentinelConfigPath(host.dir),
      sentinelConfig(host.machine, host.dir, {
        master: first.ip,
        downAfterMs,
      }),
    );
  }
}

function sentinelConfig(
  machine: Machine,
  dir: string,
  settings: { master: string; downAfterMs: number },
): string {
  return [
    `port ${SENTINEL_PORT}`,
    `bind ${machine.ip} 127.0.0.1`,
    "protected-mode no",
    "daemonize no",
    `dir ${dir}`,
    // For the test process, which reaches the bed only through unix sockets.
    `unixsocket ${sentinelSocketPath(dir)}`,
    "unixsocketperm 777",
    `sentinel monitor ${MASTER_NAME} ${settings.master} ${REDIS_PORT} ${SENTINEL_QUORUM}`,
    `sentinel down-after-milliseconds ${MASTER_NAME} ${settings.downAfterMs}`,
    "",
  ].join("\n");
}

/** Asks every running sentinel through its unix socket; a master counts once a quorum names it. */
class SentinelDiscovery implements Discovery {
  readonly #clients = new Map<number, Redis>();

  constructor(readonly bed: Bed) {}

  async ready(): Promise<void> {
    const others = String(this.bed.hosts.length - 1);
    await waitFor(async () => {
      for (const host of this.bed.hosts) {
        const fields = await this.#ask(host.index, "SENTINEL", "MASTER", MASTER_NAME)
          .then(pairs).catch(() => new Map<string, string>());
        if (fields.get("num-other-sentinels") !== others || fields.get("num-slaves") !== others) {
          return false;
        }
      }
      return true;
    }, {
      timeoutMs: SENTINEL_READY_TIMEOUT_MS,
      intervalMs: 250,
      message: "every sentinel to know the other sentinels and the replicas",
    });
  }

  async masters(): Promise<number[]> {
    const named = await this.#namedMasters();
    if (named.every((host) => host === undefined)) throw new Error("No sentinel answered");
    const counts = new Map<number, number>();
    for (const host of named) if (host !== undefined) counts.set(host, (counts.get(host) ?? 0) + 1);
    return [...counts].filter(([, count]) => count >= SENTINEL_QUORUM).map(([host]) => host);
  }

  async replicas(): Promise<number[]> {
    const [master] = await this.masters();
    if (master === undefined) return [];
    const named = await this.#namedMasters();
    const sentinel = named.findIndex((host) => host === master);
    const replicas = await this.#ask(sentinel, "SENTINEL", "REPLICAS", MASTER_NAME) as unknown[];
    return replicas.map(pairs).filter((fields) =>
      fields.get("flags") === "slave" && fields.get("master-link-status") === "ok"
    ).map((fields) => this.#hostAt(fields.get("ip")));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    for (const client of this.#clients.values()) client.disconnect();
    this.#clients.clear();
    await Promise.resolve();
  }

  /** Per host, the master its sentinel names (undefined: no answer, or no sentinel runs there). */
  async #namedMasters(): Promise<(number | undefined)[]> {
    return await Promise.all(this.bed.hosts.map(async (host) => {
      if (!host.resec.process) return undefined;
      try {
        const reply = await this.#ask(
          host.index,
          "SENTINEL",
          "GET-MASTER-ADDR-BY-NAME",
          MASTER_NAME,
        );
        return Array.isArray(reply) ? this.#hostAt(String(reply[0])) : undefined;
      } catch {
        return undefined;
      }
    }));
  }

  #hostAt(ip: string | undefined): number {
    return this.bed.hosts.find((host) => host.ip === ip)?.index ?? -1;
  }

  async #ask(host: number, ...args: string[]): Promise<unknown> {
    let client = this.#clients.get(host);
    if (!client) {
      client = new Redis({
        path: sentinelSocketPath(this.bed.host(host).dir),
        connectTimeout: SENTINEL_QUERY_TIMEOUT_MS,
        commandTimeout: SENTINEL_QUERY_TIMEOUT_MS,
        enableOfflineQueue: false,
        maxRetriesPerRequest: 0,
        retryStrategy: () => 100,
      });
      client.on("error", () => {});
      this.#clients.set(host, client);
    }
    return await client.call(args[0]!, ...args.slice(1));
  }
}

/** A flat [field, value, …] reply as a map. */
function pairs(reply: unknown): Map<string, string> {
  const flat = Array.isArray(reply) ? reply.map(String) : [];
  const fields = new Map<string, string>();
  for (let index = 0; index + 1 < flat.length; index += 2) {
    fields.set(flat[index]!, flat[index + 1]!);
  }
  return fields;
}
