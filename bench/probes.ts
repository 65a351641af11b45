/**
 * Measuring instruments for failovers: a write prober that tells when each Redis first (and last)
 * acknowledged a write, and a poller that times when a condition first holds.
 */
import { Redis } from "ioredis";

/** A Redis to probe, by address. */
export interface ProbeTarget {
  readonly host: string;
  readonly port: number;
  readonly password?: string;
}

/** How long one probe SET may take before it counts as refused (a fenced Redis hangs writes). */
const WRITE_DEADLINE_MS = 250;

/**
 * Sends short-deadline SETs to every target every few milliseconds, on connections opened before the
 * fault so no connect time is counted. Records, relative to `mark()`, when each target first and last
 * acknowledged a write. A replica answers READONLY and a paused (fenced) master never answers within the
 * deadline: neither counts.
 */
export class WriteProber implements AsyncDisposable {
  readonly #clients: Map<number, Redis>;
  readonly #firstAck = new Map<number, number>();
  readonly #lastAck = new Map<number, number>();
  #origin = performance.now();
  #running = true;
  #sequence = 0;
  readonly #loop: Promise<void>;

  private constructor(targets: readonly ProbeTarget[], readonly intervalMs: number) {
    this.#clients = new Map(targets.map((target) => {
      const client = new Redis({
        host: target.host,
        port: target.port,
        password: target.password,
        connectTimeout: 1_000,
        commandTimeout: WRITE_DEADLINE_MS,
        enableOfflineQueue: false,
        maxRetriesPerRequest: 0,
        // Reconnect at once: a promotion may CLIENT KILL our connection.
        retryStrategy: () => 5,
      });
      client.on("error", () => {});
      return [target.port, client];
    }));
    this.#loop = this.#run();
  }

  /** Connects to every target and starts probing. */
  static async start(
    targets: readonly ProbeTarget[],
    options: { intervalMs?: number } = {},
  ): Promise<WriteProber> {
    const prober = new WriteProber(targets, options.intervalMs ?? 5);
    await prober.#connected();
    return prober;
  }

  /** Sets the origin (the fault's instant) and forgets what was recorded before it. */
  mark(origin = performance.now()): void {
    this.#origin = origin;
    this.#firstAck.clear();
    this.#lastAck.clear();
  }

  /** Stops probing a target (the Redis that was just killed). */
  drop(port: number): void {
    const client = this.#clients.get(port);
    this.#clients.delete(port);
    client?.disconnect();
  }

  /** Milliseconds from the origin to the first write `port` acknowledged, if any. */
  firstAckMs(port: number): number | undefined {
    return this.#firstAck.get(port);
  }

  /** Milliseconds from the origin to the last write `port` acknowledged, if any. */
  lastAckMs(port: number): number | undefined {
    return this.#lastAck.get(port);
  }

  /** Waits until one of `ports` has acknowledged a write; returns it and its first ack time. */
  async firstOf(
    ports: readonly number[],
    timeoutMs: number,
  ): Promise<{ port: number; ms: number } | undefined> {
    const deadline = performance.now() + timeoutMs;
    while (performance.now() < deadline) {
      const acked = ports
        .map((port) => ({ port, ms: this.#firstAck.get(port) }))
        .filter((entry): entry is { port: number; ms: number } => entry.ms !== undefined)
        .sort((a, b) => a.ms - b.ms);
      if (acked[0]) return acked[0];
      await sleep(5);
    }
    return undefined;
  }

  async close(): Promise<void> {
    this.#running = false;
    await this.#loop;
    for (const client of this.#clients.values()) client.disconnect();
    this.#clients.clear();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #connected(): Promise<void> {
    const deadline = performance.now() + 5_000;
    while (performance.now() < deadline) {
      if ([...this.#clients.values()].every((client) => client.status === "ready")) return;
      await sleep(10);
    }
    throw new Error("The write prober could not connect to every Redis within 5 s");
  }

  async #run(): Promise<void> {
    while (this.#running) {
      const round = ++this.#sequence;
      await Promise.all([...this.#clients].map(async ([port, client]) => {
        if (await acknowledges(client, `bench:probe:${port}`, `p${round}`)) {
          const at = performance.now() - this.#origin;
          if (!this.#firstAck.has(port)) this.#firstAck.set(port, at);
          this.#lastAck.set(port, at);
        }
      }));
      await sleep(this.intervalMs);
    }
  }
}

async function acknowledges(client: Redis, key: string, value: string): Promise<boolean> {
  if (client.status !== "ready") return false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const reply = await Promise.race([
      client.set(key, value),
      new Promise<string>((resolve) => {
        timer = setTimeout(() => resolve("timeout"), WRITE_DEADLINE_MS);
      }),
    ]);
    return reply === "OK";
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Calls `probe` every `intervalMs` until it returns true; resolves with the milliseconds from `origin`
 * to that moment, or undefined after `timeoutMs`. A probe that throws counts as "not yet".
 */
export async function timeUntil(
  probe: () => Promise<boolean>,
  options: { origin: number; timeoutMs: number; intervalMs?: number },
): Promise<number | undefined> {
  const deadline = options.origin + options.timeoutMs;
  while (performance.now() < deadline) {
    try {
      if (await probe()) return performance.now() - options.origin;
    } catch { /* not yet */ }
    await sleep(options.intervalMs ?? 10);
  }
  return undefined;
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
