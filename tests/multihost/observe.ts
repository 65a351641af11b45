/**
 * The multi-host chaos suite's eyes, from the root namespace through unix sockets: which hosts Consul's
 * servers name as passing masters (as a client asking Consul would learn), and which hosts' Redis take
 * a write at the same instant. Nodes are identified by host index.
 */
import type { MasterSample, ProbeRound } from "../chaos/analysis.ts";
import type { Bed } from "../support/bed/mod.ts";
import { delay } from "../support/wait.ts";
import { writableTogether } from "../support/writability.ts";

/** The key the writability probe sets; never the writer's list. */
const PROBE_KEY = "resec:bed:probe";

/** Polls discovery (Consul's servers, or the Sentinels) for the masters it names until stopped. */
export class BedMasterMonitor implements AsyncDisposable {
  readonly #samples: MasterSample[] = [];
  readonly #listeners = new Set<(host: number, at: number) => void>();
  #running = false;
  #loop: Promise<void> | undefined;

  /** `masters` names the master hosts now (see Discovery.masters). */
  constructor(readonly masters: () => Promise<number[]>, readonly intervalMs = 100) {}

  start(): void {
    this.#running = true;
    this.#loop = this.#poll();
  }

  /** Called each time discovery starts naming `host` as the single master. */
  onMasterAppeared(listener: (host: number, at: number) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  async stop(): Promise<MasterSample[]> {
    this.#running = false;
    await this.#loop;
    return [...this.#samples];
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  async #poll(): Promise<void> {
    let single: number | undefined;
    while (this.#running) {
      let masters: number[] | null;
      try {
        masters = await this.masters();
      } catch {
        masters = null;
      }
      const at = Date.now();
      this.#samples.push({ at, masters });
      const now = masters?.length === 1 ? masters[0] : undefined;
      if (now !== undefined && now !== single) {
        for (const listener of this.#listeners) listener(now, at);
      }
      single = now;
      await delay(this.intervalMs);
    }
  }
}

/** Probes every running host's Redis with two passes of SET (see writableTogether). */
export class BedWritabilityProbe implements AsyncDisposable {
  readonly #rounds: ProbeRound[] = [];
  #running = false;
  #loop: Promise<void> | undefined;

  constructor(readonly bed: Bed, readonly intervalMs = 50) {}

  start(): void {
    this.#running = true;
    this.#loop = this.#probe();
  }

  async stop(): Promise<ProbeRound[]> {
    this.#running = false;
    await this.#loop;
    return [...this.#rounds];
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  async #probe(): Promise<void> {
    while (this.#running) {
      const at = Date.now();
      const hosts = this.bed.hosts.filter((host) => host.redis.process !== undefined);
      const writable = await writableTogether(hosts.map((host) => host.redis.client), PROBE_KEY);
      this.#rounds.push({ at, writable: writable.map((index) => hosts[index]!.index) });
      await delay(this.intervalMs);
    }
  }
}
