/**
 * One host's redis-server on the bed: port 6379 on the host's address and 127.0.0.1 inside its
 * namespace, plus a unix socket through which the test process in the root namespace observes it.
 */
import { Redis } from "ioredis";
import type { ManagedProcess } from "../process.ts";
import { GiveUpError, waitFor } from "../wait.ts";
import { startLog } from "./logs.ts";
import type { BedNetwork, Machine } from "./network.ts";

/** The port every host's Redis listens on, as on real hosts. */
export const REDIS_PORT = 6379;
/** Probes must not hang on a dead or frozen Redis: one short deadline for every probe command. */
const PROBE_TIMEOUT_MS = 500;

/** A redis-server on one host; it starts empty unless the test asked for persistence. */
export class BedRedis {
  readonly socketPath: string;
  readonly dataDir: string;
  readonly logPath: string;
  #process: ManagedProcess | undefined;
  #client: Redis | undefined;
  #launches = 0;

  constructor(
    readonly network: BedNetwork,
    readonly machine: Machine,
    dir: string,
    readonly extraArgs: string[] = [],
  ) {
    this.socketPath = `${dir}/redis.sock`;
    this.dataDir = `${dir}/redis-data`;
    this.logPath = `${dir}/redis.log`;
    Deno.mkdirSync(this.dataDir, { recursive: true });
  }

  get process(): ManagedProcess | undefined {
    return this.#process;
  }

  /** "ip:6379", the address peers and clients inside the bed use. */
  get address(): string {
    return `${this.machine.ip}:${REDIS_PORT}`;
  }

  /** Starts redis-server (again); see waitUntilReady. */
  start(): void {
    this.#launches++;
    const args = [
      "--port",
      String(REDIS_PORT),
      "--bind",
      this.machine.ip,
      "127.0.0.1",
      // Peers connect over the bridge without a password, as in the other end-to-end tests.
      "--protected-mode",
      "no",
      "--unixsocket",
      this.socketPath,
      "--unixsocketperm",
      "777",
      "--dir",
      this.dataDir,
      // No persistence: a rebooted host comes back empty (extraArgs may turn it on).
      "--save",
      "",
      "--appendonly",
      "no",
      "--daemonize",
      "no",
      // Start a full sync at once instead of waiting 5s for more replicas to join it.
      "--repl-diskless-sync-delay",
      "0",
      ...this.extraArgs,
    ];
    startLog(this.logPath, `redis-server, launch ${this.#launches}`);
    this.#process = this.network.spawn(this.machine, "redis-server", {
      args,
      logPath: this.logPath,
    });
  }

  /** Waits until the server answers PING on its socket. */
  async waitUntilReady(timeoutMs = 15_000): Promise<void> {
    const process = this.#process;
    await waitFor(async () => {
      if (process && !(await process.isRunning())) {
        throw new GiveUpError(
          `redis-server on ${this.machine.name} exited early; its log:\n${
            process.readLog().slice(-3000)
          }`,
        );
      }
      return (await this.cli("PING")) === "PONG";
    }, {
      timeoutMs,
      intervalMs: 50,
      message: `redis-server on ${this.machine.name} to answer PING`,
    });
    // The probe client queues nothing: have it connected before a test's first probe.
    await waitFor(() => this.client.status === "ready", {
      timeoutMs,
      message: `the probe client of ${this.machine.name}'s Redis to connect`,
    });
  }

  /** Deletes everything Redis wrote to disk, as a reinstalled or wiped machine would. */
  wipe(): void {
    for (const entry of Deno.readDirSync(this.dataDir)) {
      Deno.removeSync(`${this.dataDir}/${entry.name}`, { recursive: true });
    }
  }

  /**
   * The bed's own ioredis client over the socket, suited to probing: short deadlines, no queueing,
   * reconnects every 100 ms, errors swallowed. Pass it to `writableTogether`. Do not quit it.
   */
  get client(): Redis {
    if (!this.#client) {
      this.#client = new Redis({
        path: this.socketPath,
        connectTimeout: PROBE_TIMEOUT_MS,
        commandTimeout: PROBE_TIMEOUT_MS,
        enableOfflineQueue: false,
        maxRetriesPerRequest: 0,
        retryStrategy: () => 100,
      });
      this.#client.on("error", () => {});
    }
    return this.#client;
  }

  /**
   * Runs one command through `redis-cli -s <socket>` and returns its raw output, trimmed: for
   * assertions that must not depend on a client library.
   */
  async cli(...args: string[]): Promise<string> {
    const output = await new Deno.Command("redis-cli", {
      args: ["-s", this.socketPath, ...args],
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(10_000),
    }).output();
    const decoder = new TextDecoder();
    const text = decoder.decode(output.stdout).trim();
    // redis-cli exits 0 on a refused connection, printing the error to stderr.
    const error = decoder.decode(output.stderr).trim();
    if (!output.success || (text === "" && error !== "")) {
      throw new Error(`redis-cli ${args.join(" ")} on ${this.machine.name} failed: ${error}`);
    }
    return text;
  }

  /** INFO <section> as a flat record (independent of lib/redis). */
  async info(section = "replication"): Promise<Record<string, string>> {
    const fields: Record<string, string> = {};
    for (const line of (await this.cli("INFO", section)).split(/\r?\n/)) {
      const colon = line.indexOf(":");
      if (colon > 0 && !line.startsWith("#")) fields[line.slice(0, colon)] = line.slice(colon + 1);
    }
    return fields;
  }

  /** Waits for the process to be gone after something killed it. */
  async reap(): Promise<void> {
    await this.#process?.stop(0);
    this.#process = undefined;
  }

  /** Stops the server gracefully (SIGTERM, then SIGKILL). */
  async stop(): Promise<void> {
    await this.#process?.stop();
    this.#process = undefined;
  }

  /** Disconnects the probe client. */
  close(): void {
    this.#client?.disconnect();
    this.#client = undefined;
  }
}
