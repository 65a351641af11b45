/**
 * A second writability probe beside ContinuousWriter's: it asks the same question (which Redis
 * acknowledges a write right now?) but remembers when and which, so a split brain comes with the
 * evidence needed to explain it.
 */
import type { Cluster } from "../support/cluster.ts";
import { delay } from "../support/wait.ts";
import { ProbeClients, writableTogether } from "../support/writability.ts";
import type { ProbeRound } from "./analysis.ts";

/** Probes every running Redis with a SET every `intervalMs`; dispose it to stop. */
export class WritabilityProbe implements AsyncDisposable {
  readonly #cluster: Cluster;
  readonly #intervalMs: number;
  readonly #clients = new ProbeClients();
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
    this.#clients.close();
    return [...this.#rounds];
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  async #probe(): Promise<void> {
    while (this.#running) {
      const at = Date.now();
      const servers = this.#cluster.nodes.map((node) => node.redis).filter((redis) =>
        redis.process
      );
      const together = await writableTogether(
        servers.map((server) => this.#clients.for(server)),
        "resec:chaos:probe",
      );
      const writable = together.map((index) => servers[index]!.port);
      this.#rounds.push({ at, writable });
      await delay(this.#intervalMs);
    }
  }
}
