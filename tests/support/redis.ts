/**
 * Real redis-server processes on free loopback ports, without persistence, for tests.
 */
import { Redis, type RedisOptions } from "ioredis";
import { freePort, startOnFreePorts } from "./ports.ts";
import { type ServerLaunch, TestServer } from "./server.ts";
import { makeServerDir } from "./tmp.ts";

export interface RedisServerOptions {
  /** `requirepass` for the default user. */
  password?: string;
  /** Extra `redis-server` arguments, e.g. `["--replica-priority", "0"]`. */
  args?: string[];
  /** Start as a replica of this server. */
  replicaOf?: RedisServer;
}

/**
 * A running redis-server. Dispose it (`await using`) to stop it; without persistence, it comes back
 * from a restart empty, with the same options.
 */
export class RedisServer extends TestServer {
  readonly port: number;
  readonly dir: string;
  #launches = 0;

  private constructor(readonly options: RedisServerOptions) {
    super();
    this.port = freePort();
    this.dir = makeServerDir(`redis-${this.port}`);
  }

  /** Starts a server and waits until it answers PING. */
  static async start(options: RedisServerOptions = {}): Promise<RedisServer> {
    return await startOnFreePorts(() => new RedisServer(options), (server) => server.launch());
  }

  /** Starts `count` servers at once. */
  static startMany(count: number, options: RedisServerOptions = {}): Promise<RedisServer[]> {
    return Promise.all(Array.from({ length: count }, () => RedisServer.start(options)));
  }

  get host(): string {
    return "127.0.0.1";
  }

  /** host:port, as REDIS_ADDR takes it. */
  get address(): string {
    return `${this.host}:${this.port}`;
  }

  /** A new ioredis client for this server; the caller must `quit()` or `disconnect()` it. */
  client(options: RedisOptions = {}): Redis {
    return new Redis({
      host: this.host,
      port: this.port,
      password: this.options.password,
      lazyConnect: false,
      maxRetriesPerRequest: 1,
      connectTimeout: 2_000,
      commandTimeout: 5_000,
      retryStrategy: () => null,
      ...options,
    });
  }

  /**
   * Runs one command through redis-cli and returns its raw output, trimmed. For assertions that must
   * not depend on the client library under test.
   */
  async cli(...args: string[]): Promise<string> {
    const auth = this.options.password ? ["--no-auth-warning", "-a", this.options.password] : [];
    const output = await new Deno.Command("redis-cli", {
      args: ["-h", this.host, "-p", String(this.port), ...auth, ...args],
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(10_000),
    }).output();
    const text = new TextDecoder().decode(output.stdout).trim();
    if (!output.success) {
      throw new Error(
        `redis-cli ${args.join(" ")} failed: ${new TextDecoder().decode(output.stderr)}`,
      );
    }
    return text;
  }

  /** INFO <section> parsed into a flat record (test helper, independent of lib/redis). */
  async info(section = "replication"): Promise<Record<string, string>> {
    const text = await this.cli("INFO", section);
    const fields: Record<string, string> = {};
    for (const line of text.split(/\r?\n/)) {
      const colon = line.indexOf(":");
      if (colon > 0 && !line.startsWith("#")) fields[line.slice(0, colon)] = line.slice(colon + 1);
    }
    return fields;
  }

  /** Kills the server with SIGKILL and waits until it is gone. */
  async kill(): Promise<void> {
    this.process?.signal("SIGKILL");
    await this.process?.status;
  }

  protected launchPlan(): ServerLaunch {
    this.#launches++;
    const args = [
      "--port",
      String(this.port),
      "--bind",
      this.host,
      "--dir",
      this.dir,
      "--save",
      "",
      "--appendonly",
      "no",
      "--daemonize",
      "no",
      "--protected-mode",
      "no",
      // Start a full sync at once instead of waiting 5s for more replicas to join it.
      "--repl-diskless-sync-delay",
      "0",
    ];
    if (this.options.password) {
      args.push("--requirepass", this.options.password, "--masterauth", this.options.password);
    }
    if (this.options.replicaOf) {
      args.push("--replicaof", this.options.replicaOf.host, String(this.options.replicaOf.port));
    }
    args.push(...(this.options.args ?? []));
    return {
      name: "redis-server",
      command: "redis-server",
      args,
      logPath: `${this.dir}/redis-${this.#launches}.log`,
      isReady: () => pingAnswers(this.host, this.port),
      timeoutMs: 10_000,
      readyMessage: `redis-server on ${this.address} to answer PING`,
    };
  }
}

/**
 * Redis's own default full-sync delay (`repl-diskless-sync-delay 5`), for tests of what users run:
 * the test bed starts full syncs at once, which leaves an empty-restarted master one replication cron
 * tick (at most 1 s) to wipe its replicas, where a default Redis waits 5 s before sending anything.
 */
export const DEFAULT_FULL_SYNC_DELAY: RedisServerOptions = {
  args: ["--repl-diskless-sync-delay", "5"],
};

/** True when something on host:port answers an inline PING like Redis does (+PONG or an auth error). */
async function pingAnswers(host: string, port: number): Promise<boolean> {
  let connection: Deno.TcpConn | undefined;
  try {
    connection = await Deno.connect({ hostname: host, port });
    await connection.write(new TextEncoder().encode("PING\r\n"));
    const buffer = new Uint8Array(64);
    const conn = connection;
    // A frozen server accepts the connection but never answers: close it to end the read.
    const timer = setTimeout(() => conn.close(), 500);
    const read = await connection.read(buffer).finally(() => clearTimeout(timer));
    if (!read) return false;
    const reply = new TextDecoder().decode(buffer.subarray(0, read));
    return reply.startsWith("+PONG") || reply.startsWith("-NOAUTH");
  } catch {
    return false;
  } finally {
    try {
      connection?.close();
    } catch { /* closed by the timer */ }
  }
}
