/**
 * A Redis older than 6.2 (no CLIENT PAUSE … WRITE, no FAILOVER), or one naming no version resec can
 * read, is never managed: the agent refuses to start beside one (exit 2, with the reason), and the
 * observer reports one that shows up later as down. The old Redis is a small stand-in speaking the
 * protocol: only Redis 7.0 is installed here.
 */
import assert from "node:assert/strict";
import { OBSERVED_INFO_SECTIONS, RedisObserver } from "../../lib/redis/observer.ts";
import { AgentProcess, ConsulServer, waitFor } from "../support/mod.ts";

/**
 * Answers INFO as a Redis 6.0 master would (or with the INFO text given), refusing sections as a Redis
 * before 7.0 does, CONFIG GET with a priority, and anything else with OK.
 */
class OldRedisStandIn implements AsyncDisposable {
  readonly #listener: Deno.Listener<Deno.TcpConn, Deno.NetAddr>;
  readonly #served: Promise<void>;
  readonly #connections = new Set<Deno.TcpConn>();
  readonly commands: string[] = [];
  /** The arguments of every INFO, in order. */
  readonly infoArgs: string[][] = [];

  constructor(readonly info = INFO_6_0) {
    this.#listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.#served = this.#serve();
  }

  get port(): number {
    return this.#listener.addr.port;
  }

  async #serve(): Promise<void> {
    const sessions: Promise<void>[] = [];
    try {
      for await (const connection of this.#listener) sessions.push(this.#session(connection));
    } catch { /* closed */ }
    await Promise.allSettled(sessions);
  }

  async #session(connection: Deno.TcpConn): Promise<void> {
    this.#connections.add(connection);
    const encoder = new TextEncoder();
    const decoder = new TextDecoder();
    let pending = "";
    try {
      for await (const chunk of connection.readable) {
        pending += decoder.decode(chunk);
        let parsed;
        while ((parsed = takeCommand(pending)) !== undefined) {
          pending = parsed.rest;
          const name = parsed.args.map((arg) => arg.toUpperCase()).slice(0, 2).join(" ");
          this.commands.push(name);
          if (/^INFO/.test(name)) this.infoArgs.push(parsed.args.slice(1));
          await connection.write(encoder.encode(reply(parsed.args, this.info)));
        }
      }
    } catch {
      /* closed */
    } finally {
      this.#connections.delete(connection);
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.#listener.close();
    for (const connection of this.#connections) {
      try {
        connection.close();
      } catch { /* already closed */ }
    }
    await this.#served;
  }
}

const INFO_6_0 = [
  "# Server",
  "redis_version:6.0.16",
  "run_id:4f2b7c9e1a3d5f6b8c0e2a4d6f8b0c2e4a6d8f0b",
  "uptime_in_seconds:120",
  "# Persistence",
  "loading:0",
  "# Replication",
  "role:master",
  "connected_slaves:0",
  "master_replid:8d1e3f5a7c9b1d3f5a7c9e1b3d5f7a9c1e3b5d7f",
  "master_replid2:0000000000000000000000000000000000000000",
  "master_repl_offset:0",
  "# Keyspace",
  "",
].join("\r\n");

function reply(args: string[], info: string): string {
  const command = args.map((arg) => arg.toUpperCase()).slice(0, 2).join(" ");
  const major = Number(/redis_version:(\d+)/.exec(info)?.[1]);
  // Before 7.0, INFO takes one section at most.
  if (command.startsWith("INFO") && args.length > 2 && !(major >= 7)) {
    return "-ERR syntax error\r\n";
  }
  if (command.startsWith("INFO")) {
    return `$${new TextEncoder().encode(info).length}\r\n${info}\r\n`;
  }
  if (command.startsWith("CONFIG")) return "*2\r\n$16\r\nreplica-priority\r\n$3\r\n100\r\n";
  return "+OK\r\n";
}

/** One RESP array of bulk strings from the front of `text`, or undefined when it is incomplete. */
function takeCommand(text: string): { args: string[]; rest: string } | undefined {
  const header = /^\*(\d+)\r\n/.exec(text);
  if (!header) return undefined;
  let offset = header[0].length;
  const args: string[] = [];
  for (let index = 0; index < Number(header[1]); index++) {
    const length = /^\$(\d+)\r\n/.exec(text.slice(offset));
    if (!length) return undefined;
    offset += length[0].length;
    const end = offset + Number(length[1]);
    if (text.length < end + 2) return undefined;
    args.push(text.slice(offset, end));
    offset = end + 2;
  }
  return { args, rest: text.slice(offset) };
}

Deno.test("an agent beside a Redis older than 6.2 refuses to start (exit 2), says why, and leaves Consul alone", async () => {
  await using consul = await ConsulServer.start();
  await using redis = new OldRedisStandIn();
  const result = await AgentProcess.runToExit({
    env: { CONSUL_HTTP_ADDR: consul.address, REDIS_ADDR: `127.0.0.1:${redis.port}` },
    label: "agent-old-redis",
  });
  assert.equal(result.code, 2, result.output);
  assert.match(result.output, /6\.0\.16, older than 6\.2.*CLIENT PAUSE/s);
  // Nothing was sent that changes Redis.
  assert.deepEqual(redis.commands.filter((command) => !/^(CLIENT SETNAME|INFO)/.test(command)), []);
  const services = await consul.api<Record<string, unknown>>("GET", "/v1/agent/services");
  assert.deepEqual(Object.keys(services), []);
  const keys = await fetch(`${consul.url}/v1/kv/resec/?recurse`);
  await keys.body?.cancel();
  assert.equal(keys.status, 404, "no key under resec/");
});

Deno.test("an agent beside a Redis naming no version it can read refuses to start (exit 2) and says why", async () => {
  await using consul = await ConsulServer.start();
  await using redis = new OldRedisStandIn(
    INFO_6_0.replace("redis_version:6.0.16", "redis_version:x"),
  );
  const result = await AgentProcess.runToExit({
    env: { CONSUL_HTTP_ADDR: consul.address, REDIS_ADDR: `127.0.0.1:${redis.port}` },
    label: "agent-unknown-redis",
  });
  assert.equal(result.code, 2, result.output);
  assert.match(result.output, /names no version resec can read \(redis_version \\?"x\\?"\)/);
  assert.deepEqual(redis.commands.filter((command) => !/^(CLIENT SETNAME|INFO)/.test(command)), []);
});

Deno.test("the observer reports a Redis older than 6.2 as down, with the reason", async () => {
  await using redis = new OldRedisStandIn();
  const observer = new RedisObserver({
    connection: { host: "127.0.0.1", port: redis.port },
    intervalMs: 100,
    timeoutMs: 1_000,
    backoff: { initialMs: 50, maxMs: 200 },
  });
  try {
    observer.start();
    await waitFor(() => observer.current().kind === "down", { timeoutMs: 5_000 });
    const current = observer.current();
    assert.equal(current.kind, "down");
    assert.match(current.kind === "down" ? current.reason : "", /6\.0\.16, older than 6\.2/);
  } finally {
    await observer.close();
  }
});

Deno.test("the observer polls a Redis 6.2 with the whole INFO and, from 7.0 on, with only the sections it reads", async () => {
  for (const [version, later] of [["6.2.14", []], ["7.0.15", OBSERVED_INFO_SECTIONS]] as const) {
    await using redis = new OldRedisStandIn(INFO_6_0.replace("6.0.16", version));
    const observer = new RedisObserver({
      connection: { host: "127.0.0.1", port: redis.port },
      intervalMs: 20,
      timeoutMs: 1_000,
    });
    try {
      observer.start();
      await waitFor(() => redis.infoArgs.length >= 4, { timeoutMs: 5_000 });
      const current = observer.current();
      assert.equal(current.kind, "up", `Redis ${version}: ${JSON.stringify(current)}`);
      assert.equal(current.kind === "up" ? current.info.role : undefined, "master");
      // The first poll of a connection learns the version from the whole INFO.
      assert.deepEqual(redis.infoArgs[0], [], `Redis ${version}`);
      for (const args of redis.infoArgs.slice(1)) assert.deepEqual(args, later, `Redis ${version}`);
    } finally {
      await observer.close();
    }
  }
});
