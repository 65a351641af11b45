/**
 * The bed side of the client workload: starts client.ts inside a client namespace, reads its JSON
 * lines as they come, and reports what was acknowledged and what may be lost.
 */
import { waitFor } from "../wait.ts";
import type { WriterEvent } from "./client.ts";
import { startLog } from "./logs.ts";
import type { BedNetwork, Machine } from "./network.ts";
import { ipBinary } from "./netns.ts";
import type { BedRedis } from "./redis.ts";

const CLIENT_SCRIPT = new URL("./client.ts", import.meta.url).pathname;

/** The list every writer pushes onto, unless a test names another. */
export const WRITER_KEY = "resec:bed:writes";

export interface BedWriterOptions {
  /** The list key (default WRITER_KEY). */
  key?: string;
  /** The Consul service the client writes to (default "redis-master", resec's default naming). */
  service?: string;
  /** Sentinels ("ip:port") the client asks for the master instead of Consul (default none). */
  sentinels?: string[];
  /** The name the Sentinels monitor the master under (with `sentinels`). */
  masterName?: string;
  /** Prefix of the unique values (default "w"). */
  prefix?: string;
  /** Pause between writes in ms (default 5). */
  intervalMs?: number;
  /** Deadline of a connect and of one write's answer, in ms (default 1000). */
  timeoutMs?: number;
  /**
   * Read the catalog with `?stale`, as Consul's DNS interface does by default: any server answers,
   * with or without a leader (default: Consul's default consistency, which needs a leader).
   */
  staleLookups?: boolean;
}

/** What a writer saw from start to stop. */
export interface BedWriterReport {
  /** Values Redis acknowledged, in order: none may be lost. */
  acknowledged: string[];
  /** Writes refused or never sent (not applied). */
  failed: number;
  /** Writes sent without an answer (applied or not). */
  unknown: string[];
  /** Longest stretch without an acknowledged write, in ms, from the client's start. */
  longestGapMs: number;
  /** The masters ("ip:port") that acknowledged writes, in the order they first did. */
  masters: string[];
  events: WriterEvent[];
}

/** A running client workload; stop it (or dispose) to get its report. */
export class BedWriter implements AsyncDisposable {
  readonly events: WriterEvent[] = [];
  readonly logPath: string;
  readonly key: string;
  readonly #child: Deno.ChildProcess;
  readonly #reading: Promise<void>;
  #report: Promise<BedWriterReport> | undefined;

  private constructor(
    readonly network: BedNetwork,
    readonly machine: Machine,
    dir: string,
    options: BedWriterOptions,
  ) {
    this.key = options.key ?? WRITER_KEY;
    this.logPath = `${dir}/writer.log`;
    startLog(this.logPath, "client.ts writer");
    const flags = [
      `--key=${this.key}`,
      `--service=${options.service ?? "redis-master"}`,
      `--prefix=${options.prefix ?? "w"}`,
      ...(options.sentinels
        ? [
          `--sentinels=${options.sentinels.join(",")}`,
          `--master-name=${options.masterName ?? ""}`,
        ]
        : []),
      `--interval-ms=${options.intervalMs ?? 5}`,
      `--timeout-ms=${options.timeoutMs ?? 1_000}`,
      ...(options.staleLookups ? ["--stale=true"] : []),
    ];
    this.#child = new Deno.Command(ipBinary(), {
      args: [
        "netns",
        "exec",
        machine.namespace,
        Deno.execPath(),
        "run",
        "--quiet",
        "--no-config",
        "--no-lock",
        "--allow-net",
        CLIENT_SCRIPT,
        ...flags,
      ],
      env: {
        DENO_NO_UPDATE_CHECK: "1",
        NO_COLOR: "1",
        PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
        DENO_DIR: `${dir}/deno-dir`,
      },
      clearEnv: true,
      cwd: dir,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#reading = Promise.all([
      this.#readEvents(this.#child.stdout),
      this.#copyToLog(this.#child.stderr),
    ]).then(() => {});
  }

  /** Starts the client in `machine`'s namespace; it writes through the Consul agent there. */
  static start(
    network: BedNetwork,
    machine: Machine,
    dir: string,
    options: BedWriterOptions = {},
  ): BedWriter {
    return new BedWriter(network, machine, dir, options);
  }

  /** The values acknowledged so far. */
  get acknowledged(): string[] {
    return this.events.flatMap((event) => event.event === "ack" ? [event.value] : []);
  }

  /** Waits until `count` more writes than now are acknowledged. */
  async waitForAcks(count: number, timeoutMs = 30_000): Promise<void> {
    const target = this.acknowledged.length + count;
    await waitFor(() => this.acknowledged.length >= target, {
      timeoutMs,
      intervalMs: 50,
      message: `${count} acknowledged writes from the client on ${this.machine.name}; ` +
        `last events: ${JSON.stringify(this.events.slice(-5))}`,
    });
  }

  /** SIGTERM, then the report once the client has flushed its last line. */
  stop(): Promise<BedWriterReport> {
    this.#report ??= (async () => {
      try {
        this.#child.kill("SIGTERM");
      } catch { /* exited already */ }
      const timer = setTimeout(() => {
        try {
          this.#child.kill("SIGKILL");
        } catch { /* exited already */ }
      }, 5_000);
      try {
        await this.#child.status;
      } finally {
        clearTimeout(timer);
      }
      await this.#reading;
      return summarize(this.events);
    })();
    return this.#report;
  }

  /** Acknowledged values missing from the list on `redis`. */
  async lostOn(redis: BedRedis, report: BedWriterReport): Promise<string[]> {
    const stored = new Set((await redis.cli("LRANGE", this.key, "0", "-1")).split("\n"));
    return report.acknowledged.filter((value) => !stored.has(value));
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  async #readEvents(stream: ReadableStream<Uint8Array>): Promise<void> {
    let pending = "";
    for await (const text of stream.pipeThrough(new TextDecoderStream())) {
      Deno.writeTextFileSync(this.logPath, text, { append: true });
      pending += text;
      let newline: number;
      while ((newline = pending.indexOf("\n")) >= 0) {
        const line = pending.slice(0, newline).trim();
        pending = pending.slice(newline + 1);
        if (line.startsWith("{")) this.events.push(JSON.parse(line) as WriterEvent);
      }
    }
  }

  async #copyToLog(stream: ReadableStream<Uint8Array>): Promise<void> {
    for await (const text of stream.pipeThrough(new TextDecoderStream())) {
      Deno.writeTextFileSync(this.logPath, text, { append: true });
    }
  }
}

function summarize(events: WriterEvent[]): BedWriterReport {
  const acknowledged: string[] = [];
  const unknown: string[] = [];
  const masters: string[] = [];
  let failed = 0;
  let longestGapMs = 0;
  let lastAckAt: number | undefined;
  for (const event of events) {
    if (event.event === "start") lastAckAt = event.at;
    if (event.event === "ack") {
      acknowledged.push(event.value);
      if (!masters.includes(event.address)) masters.push(event.address);
    }
    if (event.event === "error") failed++;
    if (event.event === "unknown") unknown.push(event.value);
    if ((event.event === "ack" || event.event === "stop") && lastAckAt !== undefined) {
      longestGapMs = Math.max(longestGapMs, event.at - lastAckAt);
      if (event.event === "ack") lastAckAt = event.at;
    }
  }
  return { acknowledged, failed, unknown, longestGapMs, masters, events: [...events] };
}
