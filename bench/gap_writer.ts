/**
 * A continuous writer for switchover measurements: it appends unique values to whatever Redis the
 * `resolve` function names as master, and reports the longest stretch between two acknowledged writes
 * and which acknowledged writes the final master no longer holds.
 */
import { Redis } from "ioredis";
import { sleep } from "./probes.ts";

const LIST_KEY = "bench:writes";

export interface GapReport {
  /**
   * Longest stretch without an acknowledged write that the final master still holds, in ms: the pause
   * a client really saw (a write acknowledged by a master about to be replaced, then lost, does not
   * close a gap).
   */
  readonly longestGapMs: number;
  /** Longest stretch between any two acknowledged writes, lost ones included. */
  readonly rawGapMs: number;
  readonly acknowledged: number;
  /** Acknowledged values the final master does not hold. */
  readonly lost: number;
}

export interface GapWriterOptions {
  /** The master's port, as a client of this system would find it (Sentinel, Consul). */
  resolve: () => Promise<number | undefined>;
  host?: string;
  /** Look the master up again at least this often, and at once after a failed write. */
  refreshMs?: number;
}

export class GapWriter implements AsyncDisposable {
  readonly #options: GapWriterOptions;
  readonly #clients = new Map<number, Redis>();
  /** Acknowledged values and when they were acknowledged (performance.now()). */
  readonly #acknowledged: { value: string; at: number }[] = [];
  #running = true;
  readonly #loop: Promise<void>;

  private constructor(options: GapWriterOptions) {
    this.#options = options;
    this.#loop = this.#run();
  }

  /** Starts writing. */
  static start(options: GapWriterOptions): GapWriter {
    return new GapWriter(options);
  }

  /** Milliseconds since the last acknowledged write (0 before the first). */
  sinceLastAckMs(): number {
    const last = this.#acknowledged[this.#acknowledged.length - 1];
    return last === undefined ? 0 : performance.now() - last.at;
  }

  acknowledgedCount(): number {
    return this.#acknowledged.length;
  }

  /** Stops writing and checks the acknowledged values against the master `finalPort`. */
  async stop(finalPort: number): Promise<GapReport> {
    this.#running = false;
    await this.#loop;
    const stored = new Set(await this.#client(finalPort).lrange(LIST_KEY, 0, -1));
    for (const client of this.#clients.values()) client.disconnect();
    this.#clients.clear();
    const kept = this.#acknowledged.filter((ack) => stored.has(ack.value));
    return {
      longestGapMs: longestGap(kept.map((ack) => ack.at)),
      rawGapMs: longestGap(this.#acknowledged.map((ack) => ack.at)),
      acknowledged: this.#acknowledged.length,
      lost: this.#acknowledged.length - kept.length,
    };
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.#running = false;
    await this.#loop;
    for (const client of this.#clients.values()) client.disconnect();
  }

  #client(port: number): Redis {
    let client = this.#clients.get(port);
    if (!client) {
      client = new Redis({
        host: this.#options.host ?? "127.0.0.1",
        port,
        connectTimeout: 1_000,
        commandTimeout: 250,
        enableOfflineQueue: false,
        maxRetriesPerRequest: 0,
        retryStrategy: () => 10,
      });
      client.on("error", () => {});
      this.#clients.set(port, client);
    }
    return client;
  }

  async #run(): Promise<void> {
    let counter = 0;
    let master: number | undefined;
    let resolvedAt = 0;
    const refreshMs = this.#options.refreshMs ?? 100;
    while (this.#running) {
      if (master === undefined || performance.now() - resolvedAt > refreshMs) {
        resolvedAt = performance.now();
        try {
          master = await this.#options.resolve();
        } catch {
          master = undefined;
        }
      }
      if (master === undefined) {
        await sleep(5);
        continue;
      }
      const value = `w${++counter}`;
      try {
        const client = this.#client(master);
        if (client.status !== "ready") throw new Error("not connected");
        await client.rpush(LIST_KEY, value);
        this.#acknowledged.push({ value, at: performance.now() });
      } catch {
        master = undefined;
      }
      await sleep(2);
    }
  }
}

function longestGap(times: readonly number[]): number {
  let longest = 0;
  for (let index = 1; index < times.length; index++) {
    longest = Math.max(longest, times[index]! - times[index - 1]!);
  }
  return longest;
}
