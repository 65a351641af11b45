/**
 * A second writability probe beside ContinuousWriter's: it asks the same question (which Redis
 * acknowledges a write right now?) but remembers when and which, so a split brain comes with the
 * evidence needed to explain it.
 */
import type { Redis } from "ioredis";
import type { Cluster } from "../support/cluster.ts";
import type { RedisServer } from "../support/redis.ts";
import { delay } from "../support/wait.ts";
import { probeClient, writableTogether } from "../support/writability.ts";
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
      client = probeClient(server);
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
      const together = await writableTogether(
        servers.map((server) => this.#client(server)),
        "resec:chaos:probe",
      );
      const writable = together.map((index) => servers[index]!.port);
      this.#rounds.push({ at, writable });
      await delay(this.#intervalMs);
    }
  }
}
