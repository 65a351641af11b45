/**
 * A real Consul dev agent on free loopback ports, for integration and end-to-end tests; or, with
 * `joinTo`, a client agent joined to one (a second "host" of the same datacenter).
 *
 * `session_ttl_min` is lowered to 1s so tests can use short sessions; with `acl: true` the agent runs in
 * default-deny mode and `managementToken` holds the bootstrap (initial management) token.
 */
import { freePort, startOnFreePorts } from "./ports.ts";
import { type ServerLaunch, TestServer } from "./server.ts";
import { makeServerDir } from "./tmp.ts";
import { waitFor } from "./wait.ts";

export interface ConsulOptions {
  /** Enable ACLs with `default_policy = "deny"` and a bootstrap token. */
  acl?: boolean;
  /** Log level of the agent (default "warn"). */
  logLevel?: string;
  /** Run as a client agent (not -dev) joined to this server's gossip pool. */
  joinTo?: ConsulServer;
  /**
   * Keep Prometheus metrics (`/v1/agent/metrics?format=prometheus`), for the benchmarks: cumulative
   * counters such as `consul_raft_apply`.
   */
  telemetry?: boolean;
  /**
   * `limits.http_max_conns_per_client` (Consul's default 200): every test agent connects from
   * 127.0.0.1, so a fleet of them on one Consul needs more than hosts that each have their own agent.
   */
  maxConnsPerClient?: number;
}

/**
 * The path of the consul binary: $CONSUL_BIN (set by scripts/test.sh), else the one
 * scripts/provision-consul.sh cached, else `consul` on PATH.
 */
export function consulBinary(): string {
  const fromEnv = Deno.env.get("CONSUL_BIN");
  if (fromEnv) return fromEnv;
  const cache = Deno.env.get("RESEC_CACHE_DIR") ??
    `${Deno.env.get("XDG_CACHE_HOME") ?? `${Deno.env.get("HOME")}/.cache`}/resec`;
  try {
    for (const entry of Deno.readDirSync(cache)) {
      const candidate = `${cache}/${entry.name}/consul`;
      if (entry.name.startsWith("consul-") && Deno.statSync(candidate).isFile) return candidate;
    }
  } catch { /* no cache yet */ }
  return "consul";
}

/**
 * A running Consul dev agent. Dispose it (`await using`) to stop it; stopped or restarted, it loses
 * its in-memory state (sessions, KV, services). Paused, requests hang as with a Consul that stopped
 * answering.
 */
export class ConsulServer extends TestServer {
  readonly httpPort: number;
  readonly serfLanPort: number;
  readonly dir: string;
  readonly managementToken: string | undefined;
  readonly #configPath: string;

  private constructor(readonly options: ConsulOptions) {
    super();
    if (options.acl && options.joinTo) {
      throw new Error("the harness runs client agents without ACLs");
    }
    this.dir = makeServerDir("consul");
    this.httpPort = freePort();
    this.serfLanPort = freePort();
    this.managementToken = options.acl ? crypto.randomUUID() : undefined;
    this.#configPath = `${this.dir}/agent.json`;
    Deno.writeTextFileSync(this.#configPath, JSON.stringify(this.#config(), null, 2));
  }

  /** Starts an agent and waits until it has a leader (and, with ACLs, until the token works). */
  static async start(options: ConsulOptions = {}): Promise<ConsulServer> {
    return await startOnFreePorts(() => new ConsulServer(options), (server) => server.launch());
  }

  /** host:port of the HTTP API, as CONSUL_HTTP_ADDR takes it. */
  get address(): string {
    return `127.0.0.1:${this.httpPort}`;
  }

  /** Base URL of the HTTP API. */
  get url(): string {
    return `http://${this.address}`;
  }

  /** Calls the HTTP API with the management token (when ACLs are on); throws on a non-2xx answer. */
  async api<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = {};
    if (this.managementToken) headers["X-Consul-Token"] = this.managementToken;
    const response = await fetch(`${this.url}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
    const text = await response.text();
    if (!response.ok) {
      throw new Error(`Consul ${method} ${path} answered ${response.status}: ${text}`);
    }
    return (text === "" ? undefined : JSON.parse(text)) as T;
  }

  /**
   * Creates an ACL token with the given rules (HCL) and returns its secret; ACL mode only.
   */
  async createToken(name: string, rules: string): Promise<string> {
    const policy = await this.api<{ ID: string }>("PUT", "/v1/acl/policy", {
      Name: `${name}-${crypto.randomUUID().slice(0, 8)}`,
      Rules: rules,
    });
    const token = await this.api<{ SecretID: string }>("PUT", "/v1/acl/token", {
      Description: name,
      Policies: [{ ID: policy.ID }],
    });
    return token.SecretID;
  }

  #config(): Record<string, unknown> {
    const join = this.options.joinTo;
    const config: Record<string, unknown> = {
      node_name: `resec-test-${join ? "client-" : ""}${this.httpPort}`,
      bind_addr: "127.0.0.1",
      client_addr: "127.0.0.1",
      advertise_addr: "127.0.0.1",
      log_level: this.options.logLevel ?? "warn",
      disable_update_check: true,
      // Tests use sessions of one or two seconds; Consul's default floor is 10s.
      session_ttl_min: "1s",
      ports: {
        http: this.httpPort,
        https: -1,
        dns: -1,
        grpc: -1,
        grpc_tls: -1,
        serf_lan: this.serfLanPort,
        serf_wan: join ? -1 : freePort(),
        server: freePort(),
      },
    };
    if (join) {
      config.server = false;
      config.data_dir = `${this.dir}/data`;
      config.retry_join = [`127.0.0.1:${join.serfLanPort}`];
      config.retry_interval = "1s";
      delete config.session_ttl_min; // a server setting: the server it joins has it
    }
    if (this.options.maxConnsPerClient !== undefined) {
      config.limits = { http_max_conns_per_client: this.options.maxConnsPerClient };
    }
    if (this.options.telemetry) {
      config.telemetry = { prometheus_retention_time: "24h", disable_hostname: true };
    }
    if (this.managementToken) {
      config.acl = {
        enabled: true,
        default_policy: "deny",
        down_policy: "extend-cache",
        enable_token_persistence: false,
        tokens: { initial_management: this.managementToken, agent: this.managementToken },
      };
    }
    return config;
  }

  protected launchPlan(): ServerLaunch {
    return {
      name: "consul",
      command: consulBinary(),
      args: ["agent", ...(this.options.joinTo ? [] : ["-dev"]), `-config-file=${this.#configPath}`],
      logPath: `${this.dir}/consul.log`,
      isReady: async () => {
        const response = await fetch(`${this.url}/v1/status/leader`, {
          signal: AbortSignal.timeout(1_000),
        });
        const leader = await response.text();
        return response.ok && leader.length > 2;
      },
      timeoutMs: 30_000,
      readyMessage: `Consul on ${this.address} to elect itself leader`,
    };
  }

  /** Launches the agent and waits until it has a leader (and, with ACLs, until the token works). */
  protected override async launch(): Promise<void> {
    await super.launch();
    if (this.managementToken) {
      await waitFor(async () => {
        await this.api("GET", "/v1/acl/token/self");
        return true;
      }, { timeoutMs: 30_000, message: "Consul's ACL system to accept the bootstrap token" });
    }
    // A leader is not enough: until the agent's own node is in the catalog, creating a session fails
    // with "Missing node registration" (seen once in CI on a slow machine).
    await waitFor(async () => {
      const self = await this.api("GET", "/v1/agent/self") as { Config?: { NodeName?: string } };
      const nodeName = self.Config?.NodeName;
      if (!nodeName) return false;
      const node = await this.api("GET", `/v1/catalog/node/${encodeURIComponent(nodeName)}`);
      return node !== null && typeof node === "object";
    }, { timeoutMs: 30_000, message: `Consul on ${this.address} to register its own node` });
  }
}
