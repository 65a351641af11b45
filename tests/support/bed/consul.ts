/**
 * Consul on the bed: server and client agents with Consul's default timings, each in its machine's
 * namespace, and their HTTP API reached from the root namespace through a unix socket (unix sockets
 * are not network-namespaced, so no route into the bed is needed).
 */
import { consulBinary } from "../consul.ts";
import type { ManagedProcess } from "../process.ts";
import { GiveUpError, waitFor } from "../wait.ts";
import type { BedNetwork, Machine } from "./network.ts";
import { startLog } from "./logs.ts";

/** Local requests to an agent answer in milliseconds; a slow one means the agent is stuck. */
const API_TIMEOUT_MS = 5_000;
/**
 * How often an agent retries joining. Consul's default is 30s, which would stall a bed whose client
 * started a moment before the servers listened; it is not a failure-detection timing.
 */
const RETRY_JOIN_INTERVAL = "1s";
/** The longest path a unix socket address holds on Linux (sun_path, less the trailing NUL). */
const MAX_SOCKET_PATH = 107;

/** An HTTP answer of a Consul agent that was not 2xx. */
export class ConsulApiError extends Error {
  override name = "ConsulApiError";
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

/** Consul's HTTP API over its unix socket. Close it (or dispose) when done. */
export class ConsulSocket {
  readonly #client: Deno.HttpClient;

  constructor(readonly path: string) {
    if (path.length > MAX_SOCKET_PATH) {
      throw new Error(
        `Cannot use unix socket "${path}": longer than ${MAX_SOCKET_PATH} bytes; ` +
          "set RESEC_TEST_TMP to a shorter directory",
      );
    }
    this.#client = Deno.createHttpClient({ proxy: { transport: "unix", path } });
  }

  /** Calls the API and parses the JSON answer; throws ConsulApiError on a non-2xx status. */
  async request<T = unknown>(
    method: string,
    path: string,
    body?: unknown,
    timeoutMs = API_TIMEOUT_MS,
  ): Promise<T> {
    // The host part is ignored: the client always dials the socket.
    const response = await fetch(`http://consul${path}`, {
      method,
      client: this.#client,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await response.text();
    if (!response.ok) {
      throw new ConsulApiError(
        response.status,
        `Consul at ${this.path}: ${method} ${path} answered ${response.status}: ${text.trim()}`,
      );
    }
    return (text === "" ? undefined : JSON.parse(text)) as T;
  }

  /** GET `path` (with its query) and parse the JSON answer. */
  async get<T = unknown>(path: string, timeoutMs?: number): Promise<T> {
    return await this.request<T>("GET", path, undefined, timeoutMs);
  }

  /** The raft leader's "ip:8300" as this agent knows it, or "" while it knows none. */
  async leader(): Promise<string> {
    return await this.get<string>("/v1/status/leader");
  }

  close(): void {
    this.#client.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

export interface ConsulAgentSpec {
  /** Run as one of the servers (-server -bootstrap-expect) rather than as a client agent. */
  server: boolean;
  /** The servers' addresses, for -retry-join (a server leaves its own out). */
  serverIps: string[];
  /** Holds the data dir, the config file, the socket and the log. */
  dir: string;
  logLevel: string;
}

/** One Consul agent of the bed; it keeps its data dir across kills, as a machine keeps its disk. */
export class BedConsulAgent {
  readonly api: ConsulSocket;
  readonly logPath: string;
  readonly #configPath: string;
  #process: ManagedProcess | undefined;
  #launches = 0;

  constructor(
    readonly network: BedNetwork,
    readonly machine: Machine,
    readonly spec: ConsulAgentSpec,
  ) {
    this.logPath = `${spec.dir}/consul.log`;
    this.#configPath = `${spec.dir}/consul.json`;
    const socketPath = `${spec.dir}/consul.sock`;
    this.api = new ConsulSocket(socketPath);
    Deno.writeTextFileSync(
      this.#configPath,
      JSON.stringify(
        {
          // 127.0.0.1 for resec and applications inside the namespace (CONSUL_HTTP_ADDR's default),
          // the socket for the test process outside it.
          addresses: { http: `127.0.0.1 unix://${socketPath}` },
          disable_update_check: true,
        },
        null,
        2,
      ),
    );
  }

  get process(): ManagedProcess | undefined {
    return this.#process;
  }

  /** Starts the agent (again). It joins on its own; see waitUntilJoined. */
  start(): void {
    this.#launches++;
    try {
      Deno.removeSync(this.api.path); // a killed agent leaves its socket file behind
    } catch { /* none */ }
    const { machine, spec } = this;
    const args = [
      "agent",
      ...(spec.server ? ["-server", `-bootstrap-expect=${spec.serverIps.length + 1}`] : []),
      `-node=${machine.name}`,
      `-bind=${machine.ip}`,
      "-client=127.0.0.1",
      `-data-dir=${spec.dir}/data`,
      ...spec.serverIps.map((ip) => `-retry-join=${ip}`),
      `-retry-interval=${RETRY_JOIN_INTERVAL}`,
      // Every agent shares this machine's host id: derive node ids from it and they would clash.
      "-disable-host-node-id=true",
      `-log-level=${spec.logLevel}`,
      `-config-file=${this.#configPath}`,
    ];
    startLog(this.logPath, `consul agent, launch ${this.#launches}`);
    this.#process = this.network.spawn(machine, consulBinary(), {
      args,
      logPath: this.logPath,
      env: { CHECKPOINT_DISABLE: "1" },
    });
  }

  /** Waits until the agent answers on its socket and knows a raft leader (it has joined). */
  async waitUntilJoined(timeoutMs = 60_000): Promise<void> {
    const process = this.#process;
    await waitFor(async () => {
      if (process && !(await process.isRunning())) {
        throw new GiveUpError(
          `consul on ${this.machine.name} exited early; its log:\n${
            process.readLog().slice(-3000)
          }`,
        );
      }
      return (await this.api.leader()) !== "";
    }, { timeoutMs, intervalMs: 200, message: `consul on ${this.machine.name} to know a leader` });
  }

  /** Waits until the agent answers on its socket at all (joined or not). */
  async waitUntilAnswering(timeoutMs = 30_000): Promise<void> {
    await waitFor(async () => {
      await this.api.get("/v1/agent/self");
      return true;
    }, { timeoutMs, intervalMs: 100, message: `consul on ${this.machine.name} to answer` });
  }

  /** Waits for the process to be gone after something killed it. */
  async reap(): Promise<void> {
    await this.#process?.stop(0);
    this.#process = undefined;
  }

  /** Stops the agent (SIGTERM, then SIGKILL): a graceful leave. */
  async stop(): Promise<void> {
    await this.#process?.stop();
    this.#process = undefined;
  }

  close(): void {
    this.api.close();
  }
}
