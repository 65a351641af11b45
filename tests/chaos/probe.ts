/**
 * A second writability probe beside ContinuousWriter's: it asks the same question (which Redis
 * acknowledges a write right now?) but remembers when and which, so a split brain comes with the
 * evidence needed to explain it.
 */
import type { Redis } from "ioredis";
import type { Cluster } from "../support/cluster.ts";
import type { RedisServer } from "../support/redis.ts";
import { delay } from "../support/wait.ts";
import type { ProbeRound } from "./analysis.ts";

/** Probes every running Redis with a SET every `intervalMs`; dispose it to stop. */
export class WritabilityProbe implements AsyncDisposable {
  readonly #cluster: Cluster;
  readonly #intervalMs: number;
  readonly #clients = new Map<RedisServer, Redis>();
  readonly #rounds: ProbeRound[] = [];
  #running = false;
  #loop: Promise<void> | undefined;

  constructor(cluster: Cluster, options: { intervalMs?: number } = {}) {
    this.#cluster = cluster;
    this.#intervalMs = options.intervalMs ?? 25;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#loop = this.#probe();
  }

  /** Stops and returns every round probed. */
  async stop(): Promise<ProbeRound[]> {
    this.#running = false;
    await this.#loop;
    for (const client of this.#clients.values()) client.disconnect();
    this.#clients.clear();
    return [...this.#rounds];
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  #client(server: RedisServer): Redis {
    let client = this.#clients.get(server);
    if (!client) {
      client = server.client({
        commandTimeout: 250,
        enableOfflineQueue: false,
        maxRetriesPerRequest: 0,
        retryStrategy: () => 50,
      });
      client.on("error", () => {});
      this.#clients.set(server, client);
    }
    return client;
  }

  async #probe(): Promise<void> {
    while (this.#running) {
      const at = Date.now();
      const servers = this.#cluster.nodes.map((node) => node.redis).filter((redis) =>
        redis.process
      );
      // Two passes, the second sent only after every answer to the first: a Redis that takes both
      // writes was writable throughout the gap between them, so two such Redis were writable at the
      // same instant. One write alone is a Redis changing role mid-round (REPLICAOF or UNPAUSE
      // landing between the probes), which is sequential, not split brain.
      const pass = () =>
        Promise.all(servers.map(async (server) => {
          try {
            const reply = await this.#client(server).set("resec:chaos:probe", String(at));
            return reply === "OK" ? server.port : undefined;
          } catch {
            return undefined;
          }
        }));
      const first = await pass();
      const second = await pass();
      const writable = first.filter((port): port is number =>
        port !== undefined && second.includes(port)
      );
      this.#rounds.push({ at, writable });
      await delay(this.#intervalMs);
    }
  }
}
