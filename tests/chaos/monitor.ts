/**
 * Watches Consul the way a client would: asks for the passing masters every ~50 ms, with a short
 * deadline so a frozen or restarting Consul shows as "no answer" instead of stalling the timeline.
 */
import type { Cluster, ClusterNode } from "../support/cluster.ts";
import { delay } from "../support/wait.ts";
import type { MasterSample } from "./analysis.ts";

export interface MasterMonitorOptions {
  /** Pause between polls (default 50 ms). */
  intervalMs?: number;
  /** Deadline of one poll (default 500 ms). */
  timeoutMs?: number;
}

/** Called when Consul names one passing master and the previous poll did not name that one alone. */
export type MasterAppearedListener = (port: number, at: number) => void;

/** Polls the cluster's master query until stopped; dispose it to stop. */
export class MasterMonitor implements AsyncDisposable {
  readonly #cluster: Cluster;
  readonly #intervalMs: number;
  readonly #timeoutMs: number;
  readonly #samples: MasterSample[] = [];
  readonly #listeners = new Set<MasterAppearedListener>();
  #running = false;
  #loop: Promise<void> | undefined;

  constructor(cluster: Cluster, options: MasterMonitorOptions = {}) {
    this.#cluster = cluster;
    this.#intervalMs = options.intervalMs ?? 50;
    this.#timeoutMs = options.timeoutMs ?? 500;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#loop = this.#poll();
  }

  /** Stops polling and returns every sample taken. */
  async stop(): Promise<MasterSample[]> {
    this.#running = false;
    await this.#loop;
    return [...this.#samples];
  }

  /** The samples so far. */
  samples(): readonly MasterSample[] {
    return this.#samples;
  }

  /** The latest sample, if any. */
  latest(): MasterSample | undefined {
    return this.#samples.at(-1);
  }

  /** Subscribes to master appearances; returns the unsubscribe function. */
  onMasterAppeared(listener: MasterAppearedListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Waits until the latest poll names exactly one passing master that is not `other`, and returns
   * its node.
   */
  async waitForMasterOtherThan(other: ClusterNode, timeoutMs = 30_000): Promise<ClusterNode> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const masters = this.latest()?.masters;
      if (masters?.length === 1 && masters[0] !== other.redis.port) {
        const node = this.#cluster.nodeAt(masters[0]!);
        if (node) return node;
      }
      await delay(this.#intervalMs / 2);
    }
    throw new Error(
      `Consul named no passing master other than ${other.redis.address} within ${timeoutMs} ms`,
    );
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  async #poll(): Promise<void> {
    const url = `${this.#cluster.consul.url}${this.#cluster.masterQuery}`;
    const headers: Record<string, string> = {};
    const token = this.#cluster.consul.managementToken;
    if (token) headers["X-Consul-Token"] = token;
    while (this.#running) {
      let masters: number[] | null;
      try {
        const response = await fetch(url, {
          headers,
          signal: AbortSignal.timeout(this.#timeoutMs),
        });
        if (response.ok) {
          const entries = await response.json() as { Service: { Port: number } }[];
          masters = entries.map((entry) => entry.Service.Port).sort((a, b) => a - b);
        } else {
          await response.body?.cancel();
          masters = null;
        }
      } catch {
        masters = null;
      }
      const at = Date.now();
      const previous = this.#samples.at(-1)?.masters;
      this.#samples.push({ at, masters });
      if (
        masters?.length === 1 && !(previous?.length === 1 && previous[0] === masters[0])
      ) {
        for (const listener of this.#listeners) listener(masters[0]!, at);
      }
      await delay(this.#intervalMs);
    }
  }
}
