/**
 * A continuous writer for failover tests: it writes unique values to whatever Consul names as the
 * master, remembers which writes Redis acknowledged, and probes every Redis for writability so a test
 * can tell whether two masters ever took writes at the same time.
 */
import type { Cluster } from "./cluster.ts";
import type { RedisServer } from "./redis.ts";
import { delay } from "./wait.ts";
import { ProbeClients, writableTogether } from "./writability.ts";

/** What a run of the writer saw. */
export interface WriterReport {
  acknowledged: string[];
  failedAttempts: number;
  /** Probe rounds in which more than one Redis accepted a write. */
  splitBrainRounds: number;
  probeRounds: number;
  /** Longest stretch without an acknowledged write, in ms. */
  longestGapMs: number;
}

const LIST_KEY = "resec:test:writes";

export class ContinuousWriter {
  readonly #cluster: Cluster;
  readonly #clients = new ProbeClients();
  readonly #acknowledged: string[] = [];
  #failed = 0;
  #splitBrain = 0;
  #probeRounds = 0;
  #lastAckAt = 0;
  #longestGap = 0;
  #running = false;
  #loops: Promise<void>[] = [];

  constructor(cluster: Cluster) {
    this.#cluster = cluster;
  }

  start(): void {
    this.#running = true;
    this.#lastAckAt = Date.now();
    this.#loops = [this.#writeLoop(), this.#probeLoop()];
  }

  /** Stops and reports. */
  async stop(): Promise<WriterReport> {
    this.#running = false;
    await Promise.all(this.#loops);
    this.#clients.close();
    return {
      acknowledged: [...this.#acknowledged],
      failedAttempts: this.#failed,
      splitBrainRounds: this.#splitBrain,
      probeRounds: this.#probeRounds,
      longestGapMs: this.#longestGap,
    };
  }

  /** Acknowledged values missing from `server`'s list. */
  static async lostOn(server: RedisServer, report: WriterReport): Promise<string[]> {
    const stored = new Set((await server.cli("LRANGE", LIST_KEY, "0", "-1")).split("\n"));
    return report.acknowledged.filter((value) => !stored.has(value));
  }

  async #writeLoop(): Promise<void> {
    let counter = 0;
    let master: RedisServer | undefined;
    let lookedUpAt = 0;
    while (this.#running) {
      if (!master || Date.now() - lookedUpAt > 100) {
        lookedUpAt = Date.now();
        try {
          const masters = await this.#cluster.passingMasters();
          master = masters.length === 1 ? this.#cluster.nodeAt(masters[0]!.port)?.redis : undefined;
        } catch {
          master = undefined;
        }
      }
      if (!master) {
        await delay(20);
        continue;
      }
      const value = `w${++counter}`;
      try {
        const reply = await this.#clients.for(master).rpush(LIST_KEY, value);
        if (typeof reply === "number") {
          this.#acknowledged.push(value);
          const now = Date.now();
          this.#longestGap = Math.max(this.#longestGap, now - this.#lastAckAt);
          this.#lastAckAt = now;
        }
      } catch {
        this.#failed++;
        master = undefined;
      }
      await delay(5);
    }
  }

  async #probeLoop(): Promise<void> {
    let round = 0;
    while (this.#running) {
      round++;
      const servers = this.#cluster.nodes.map((node) => node.redis).filter((redis) =>
        redis.process
      );
      const together = await writableTogether(
        servers.map((server) => this.#clients.for(server)),
        "resec:test:probe",
      );
      this.#probeRounds++;
      if (together.length > 1) this.#splitBrain++;
      await delay(25);
    }
  }
}
