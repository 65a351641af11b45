/**
 * A Redis Sentinel deployment for the benchmarks: three redis-servers (one master, two replicas) and
 * three sentinels (Debian's `redis-sentinel`) with quorum 2, all on loopback.
 */
import { Redis } from "ioredis";
import { freePort } from "../tests/support/ports.ts";
import { ManagedProcess } from "../tests/support/process.ts";
import { RedisServer } from "../tests/support/redis.ts";
import { makeServerDir } from "../tests/support/tmp.ts";
import { sleep } from "./probes.ts";

export const MASTER_NAME = "bench";

export interface SentinelSettings {
  downAfterMs: number;
  failoverTimeoutMs: number;
}

export interface SentinelProcess {
  readonly port: number;
  readonly process: ManagedProcess;
  readonly client: Redis;
  readonly spawnedAt: number;
}

export class SentinelCluster implements AsyncDisposable {
  #disposed = false;

  private constructor(
    readonly settings: SentinelSettings,
    readonly redis: RedisServer[],
    readonly sentinels: SentinelProcess[],
  ) {}

  /** Starts the Redis servers as master + 2 replicas, seeds data, then the three sentinels. */
  static async start(settings: SentinelSettings): Promise<SentinelCluster> {
    const redis = await RedisServer.startMany(3);
    const sentinels: SentinelProcess[] = [];
    try {
      const [master, ...replicas] = redis as [RedisServer, ...RedisServer[]];
      for (const replica of replicas) {
        await replica.cli("REPLICAOF", master.host, String(master.port));
      }
      const client = master.client();
      const pipeline = client.pipeline();
      for (let index = 0; index < 1_000; index++) pipeline.set(`bench:seed:${index}`, `v${index}`);
      await pipeline.exec();
      client.disconnect();
      await waitUntil(
        async () => {
          const offset = Number((await master.info()).master_repl_offset);
          for (const replica of replicas) {
            const info = await replica.info();
            if (info.master_link_status !== "up" || Number(info.slave_repl_offset) < offset) {
              return false;
            }
          }
          return true;
        },
        15_000,
        "the replicas to sync",
      );
      for (let index = 0; index < 3; index++) {
        sentinels.push(startSentinel(master, settings, index));
      }
      return new SentinelCluster(settings, redis, sentinels);
    } catch (error) {
      await closeSentinels(sentinels);
      for (const server of redis) await server.stop();
      throw error;
    }
  }

  /** The master's port according to one sentinel. */
  async masterPortFrom(sentinel: SentinelProcess): Promise<number | undefined> {
    const reply = await sentinel.client.call("SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME);
    if (!Array.isArray(reply) || reply.length < 2) return undefined;
    return Number(reply[1]);
  }

  /**
   * Waits until every sentinel is ready to fail over: it sees two replicas and two other sentinels,
   * and `SENTINEL CKQUORUM` agrees. Returns ms from each sentinel's spawn.
   */
  async waitReady(timeoutMs: number): Promise<number[]> {
    const readyAt: (number | undefined)[] = this.sentinels.map(() => undefined);
    const deadline = performance.now() + timeoutMs;
    while (performance.now() < deadline) {
      await Promise.all(this.sentinels.map(async (sentinel, index) => {
        if (readyAt[index] !== undefined) return;
        try {
          if (await this.#ready(sentinel)) readyAt[index] = performance.now() - sentinel.spawnedAt;
        } catch { /* still starting */ }
      }));
      if (readyAt.every((value) => value !== undefined)) return readyAt as number[];
      await sleep(20);
    }
    throw new Error(`The sentinels were not ready within ${timeoutMs} ms`);
  }

  async #ready(sentinel: SentinelProcess): Promise<boolean> {
    const flat = await sentinel.client.call("SENTINEL", "MASTER", MASTER_NAME) as string[];
    const fields = new Map<string, string>();
    for (let index = 0; index + 1 < flat.length; index += 2) {
      fields.set(flat[index]!, flat[index + 1]!);
    }
    if (fields.get("flags") !== "master") return false;
    if (fields.get("num-slaves") !== "2" || fields.get("num-other-sentinels") !== "2") return false;
    const replicas = await sentinel.client.call("SENTINEL", "REPLICAS", MASTER_NAME) as string[][];
    for (const replica of replicas) {
      const flags = replica[replica.indexOf("flags") + 1] ?? "";
      const link = replica[replica.indexOf("master-link-status") + 1] ?? "";
      if (flags !== "slave" || link !== "ok") return false;
    }
    const quorum = await sentinel.client.call("SENTINEL", "CKQUORUM", MASTER_NAME);
    return typeof quorum === "string" && quorum.startsWith("OK");
  }

  async close(): Promise<void> {
    if (this.#disposed) return;
    this.#disposed = true;
    await closeSentinels(this.sentinels);
    await Promise.all(this.redis.map((server) => server.stop()));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

function startSentinel(
  master: RedisServer,
  settings: SentinelSettings,
  index: number,
): SentinelProcess {
  const port = freePort();
  const dir = makeServerDir(`bench-sentinel-${port}`);
  const configPath = `${dir}/sentinel.conf`;
  // Sentinel rewrites its config file as it learns the topology, so it must be writable.
  Deno.writeTextFileSync(
    configPath,
    [
      `port ${port}`,
      "bind 127.0.0.1",
      "protected-mode no",
      "daemonize no",
      `dir ${dir}`,
      `sentinel monitor ${MASTER_NAME} ${master.host} ${master.port} 2`,
      `sentinel down-after-milliseconds ${MASTER_NAME} ${settings.downAfterMs}`,
      `sentinel failover-timeout ${MASTER_NAME} ${settings.failoverTimeoutMs}`,
      `sentinel parallel-syncs ${MASTER_NAME} 1`,
      "",
    ].join("\n"),
  );
  const spawnedAt = performance.now();
  const process = new ManagedProcess("redis-sentinel", {
    args: [configPath],
    logPath: `${dir}/sentinel-${index}.log`,
  });
  const client = new Redis({
    host: "127.0.0.1",
    port,
    connectTimeout: 1_000,
    commandTimeout: 1_000,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: true,
    retryStrategy: () => 20,
  });
  client.on("error", () => {});
  return { port, process, client, spawnedAt };
}

async function closeSentinels(sentinels: SentinelProcess[]): Promise<void> {
  for (const sentinel of sentinels) sentinel.client.disconnect();
  await Promise.all(sentinels.map((sentinel) => sentinel.process.stop()));
}

async function waitUntil(
  probe: () => Promise<boolean>,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    try {
      if (await probe()) return;
    } catch { /* not yet */ }
    await sleep(50);
  }
  throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
}
