/**
 * The HTTP API on a real socket: Deno.serve on a free port, reached with fetch and with raw bytes.
 * The status source is a plain object (our own interface), so these tests need no Consul or Redis.
 */
import assert from "node:assert/strict";
import { CapturingLogger } from "../../lib/log.ts";
import { HttpListenError, startHttpServer } from "../../lib/http/server.ts";
import type { NodeStatus, StatusSource } from "../../lib/http/status.ts";
import { ResecMetrics } from "../../lib/metrics/resec.ts";
import { parseExposition } from "../../lib/metrics/testing.ts";

const LOOPBACK_ANY_PORT = { host: "127.0.0.1", port: 0 };

/** A status source whose answer the test changes as it goes. */
function mutableSource(initial: NodeStatus): StatusSource & { current: NodeStatus } {
  return {
    current: initial,
    status() {
      return this.current;
    },
    state() {
      return { decision: this.current.role === "master" ? "master" : "replica" };
    },
  };
}

const MASTER: NodeStatus = {
  role: "master",
  holdsLock: true,
  redisHealthy: true,
  agentHealthy: true,
  linkUp: false,
  lagBytes: undefined,
  paused: false,
};

const REPLICA: NodeStatus = {
  ...MASTER,
  role: "replica",
  holdsLock: false,
  linkUp: true,
  lagBytes: 10,
};

/**
 * Sends raw bytes and returns what came back: up to the end of the response head, or whatever arrived
 * before the server closed or `waitMs` passed.
 */
async function rawExchange(port: number, request: Uint8Array, waitMs = 2_000): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const chunks: Uint8Array[] = [];
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    // The server may close while we still write (a huge request): what it answered still counts.
    await conn.write(request).catch(() => {});
    const reading = (async () => {
      const buffer = new Uint8Array(16_384);
      while (true) {
        const n = await conn.read(buffer).catch(() => null);
        if (n === null) return;
        chunks.push(buffer.slice(0, n));
        if (new TextDecoder().decode(buffer.slice(0, n)).includes("\r\n\r\n")) return;
      }
    })();
    await Promise.race([
      reading,
      new Promise<void>((resolve) => timer = setTimeout(resolve, waitMs)),
    ]);
  } finally {
    clearTimeout(timer);
    conn.close();
  }
  return new TextDecoder().decode(
    chunks.reduce((all, chunk) => new Uint8Array([...all, ...chunk]), new Uint8Array()),
  );
}

const encode = (text: string) => new TextEncoder().encode(text);

Deno.test({
  name: "the server on port 0 answers checks, HEAD, /state, /metrics, 404 and 405 over real HTTP",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn() {
    const metrics = new ResecMetrics();
    metrics.setRole("master");
    const logger = new CapturingLogger();
    await using server = await startHttpServer({
      address: LOOPBACK_ANY_PORT,
      status: mutableSource(MASTER),
      metrics,
      logger,
    });
    assert.ok(server.address.port > 0);
    assert.equal(server.url, `http://127.0.0.1:${server.address.port}`);
    assert.ok(logger.lines.some((line) => line.message === "http api listening"));

    const master = await fetch(`${server.url}/master`);
    assert.equal(master.status, 200);
    assert.equal((await master.json()).holdsLock, true);

    const head = await fetch(`${server.url}/primary`, { method: "HEAD" });
    assert.equal(head.status, 200);
    assert.equal(await head.text(), "");

    const replica = await fetch(`${server.url}/replica?lag=1MB`);
    assert.equal(replica.status, 503);
    assert.equal((await replica.json()).reason, "Redis is master, not replica");

    const state = await fetch(`${server.url}/state`);
    assert.deepEqual(await state.json(), { decision: "master" });

    const scrape = await fetch(`${server.url}/metrics`);
    assert.equal(scrape.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
    assert.equal(
      parseExposition(await scrape.text()).samples.get('resec_role{role="master"}'),
      1,
    );

    const missing = await fetch(`${server.url}/does-not-exist`);
    assert.equal(missing.status, 404);
    await missing.body?.cancel();

    const post = await fetch(`${server.url}/master`, { method: "POST", body: "x".repeat(100_000) });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get("allow"), "GET, HEAD");
    await post.body?.cancel();
  },
});

Deno.test({
  name: "the check endpoints follow the status as it changes, with no restart",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn() {
    const source = mutableSource(MASTER);
    await using server = await startHttpServer({
      address: LOOPBACK_ANY_PORT,
      status: source,
      metrics: new ResecMetrics(),
    });
    const codes = async () => {
      const out: number[] = [];
      for (const path of ["/master", "/replica", "/health", "/readiness"]) {
        const response = await fetch(`${server.url}${path}`);
        await response.body?.cancel();
        out.push(response.status);
      }
      return out;
    };
    assert.deepEqual(await codes(), [200, 503, 200, 200]);
    source.current = { ...MASTER, holdsLock: false }; // lost the lock, not yet demoted
    assert.deepEqual(await codes(), [503, 503, 200, 200]);
    source.current = REPLICA;
    assert.deepEqual(await codes(), [503, 200, 200, 200]);
    source.current = { ...REPLICA, role: "unknown", redisHealthy: false };
    assert.deepEqual(await codes(), [503, 503, 503, 503]);
  },
});

Deno.test({
  name: "garbage on the wire (junk, huge URLs and headers, odd methods) never stops the server",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn() {
    const logger = new CapturingLogger();
    await using server = await startHttpServer({
      address: LOOPBACK_ANY_PORT,
      status: mutableSource(MASTER),
      metrics: new ResecMetrics(),
      logger,
    });
    const port = server.address.port;
    // What comes back: hyper refuses what it cannot parse with a 400 before our handler sees it; what
    // it can parse reaches the handler. Either way, no 5xx and the server keeps serving.
    const junk: [string, RegExp][] = [
      ["\x00\x01\x02\xff\xfe garbage\r\n\r\n", /^HTTP\/1\.1 400/],
      ["GET\r\n\r\n", /^HTTP\/1\.1 400/],
      ["GET /master HTTP/9.9\r\n\r\n", /^HTTP\/1\.1 400/],
      [`GET /master?${"a".repeat(200_000)} HTTP/1.1\r\nHost: x\r\n\r\n`, /^HTTP\/1\.1 4\d\d/],
      [`GET /${"%".repeat(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`, /^HTTP\/1\.1 404/],
      [
        `GET /master HTTP/1.1\r\nHost: x\r\nX-Big: ${"b".repeat(1_000_000)}\r\n\r\n`,
        /^HTTP\/1\.1 4\d\d/,
      ],
      ["BREW /master HTTP/1.1\r\nHost: x\r\n\r\n", /^HTTP\/1\.1 405/],
      ["G(E)T /master HTTP/1.1\r\nHost: x\r\n\r\n", /^HTTP\/1\.1 400/],
      ["OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", /^HTTP\/1\.1 404/],
      // The absolute form is valid HTTP/1.1; only the path matters.
      ["GET http://elsewhere/master HTTP/1.1\r\nHost: x\r\n\r\n", /^HTTP\/1\.1 200/],
      ["GET /master HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n", /^HTTP\/1\.1 400/],
      [
        "GET /master HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        /^(HTTP\/1\.1 [24]\d\d|)$/,
      ],
      ["GET /master HTTP/1.1\r\nHost", /^$/], // cut off mid-header: the server waits
    ];
    for (const [text, expected] of junk) {
      const answer = await rawExchange(port, encode(text), 500);
      const statusLine = answer.split("\r\n", 1)[0] ?? "";
      assert.match(statusLine, expected, JSON.stringify(text.slice(0, 40)));
      const alive = await fetch(`${server.url}/liveness`);
      assert.equal(alive.status, 200, "the server still serves after the junk");
      await alive.body?.cancel();
    }
    assert.equal(logger.lines.filter((line) => line.level === "error").length, 0);
  },
});

Deno.test({
  name: "many concurrent checks are all answered",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn() {
    await using server = await startHttpServer({
      address: LOOPBACK_ANY_PORT,
      status: mutableSource(REPLICA),
      metrics: new ResecMetrics(),
    });
    const statuses = await Promise.all(
      Array.from({ length: 200 }, async (_, i) => {
        const response = await fetch(`${server.url}/replica?lag=${i}`);
        await response.body?.cancel();
        return response.status;
      }),
    );
    assert.equal(statuses.filter((status) => status === 200).length, 190);
    assert.equal(statuses.filter((status) => status === 503).length, 10);
  },
});

Deno.test({
  name: "after close() the port refuses connections, and a second close() is harmless",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn() {
    const logger = new CapturingLogger();
    const server = await startHttpServer({
      address: LOOPBACK_ANY_PORT,
      status: mutableSource(MASTER),
      metrics: new ResecMetrics(),
      logger,
    });
    const response = await fetch(`${server.url}/liveness`);
    await response.body?.cancel();
    await server.close();
    await server.close();
    await assert.rejects(Deno.connect({ hostname: "127.0.0.1", port: server.address.port }));
    assert.ok(logger.lines.some((line) => line.message === "http api stopped"));
  },
});

Deno.test({
  name: "aborting the caller's signal stops the server",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn() {
    const controller = new AbortController();
    const server = await startHttpServer({
      address: LOOPBACK_ANY_PORT,
      status: mutableSource(MASTER),
      metrics: new ResecMetrics(),
      signal: controller.signal,
    });
    controller.abort();
    await server.finished;
    await assert.rejects(Deno.connect({ hostname: "127.0.0.1", port: server.address.port }));
  },
});

Deno.test({
  name: "a port already in use is refused with an HttpListenError naming the address",
  sanitizeOps: true,
  sanitizeResources: true,
  async fn() {
    using taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = taken.addr.port;
    await assert.rejects(
      startHttpServer({
        address: { host: "127.0.0.1", port },
        status: mutableSource(MASTER),
        metrics: new ResecMetrics(),
      }),
      (error: Error) => {
        assert.ok(error instanceof HttpListenError);
        assert.match(
          error.message,
          new RegExp(`^Cannot listen for HTTP on 127\\.0\\.0\\.1:${port}: `),
        );
        return true;
      },
    );
  },
});

function ipv6Loopback(): boolean {
  try {
    Deno.listen({ hostname: "::1", port: 0 }).close();
    return true;
  } catch {
    return false;
  }
}

Deno.test({
  name: "the server listens on IPv6 loopback when asked to",
  ignore: !ipv6Loopback(),
  sanitizeOps: true,
  sanitizeResources: true,
  async fn() {
    await using server = await startHttpServer({
      address: { host: "::1", port: 0 },
      status: mutableSource(MASTER),
      metrics: new ResecMetrics(),
    });
    assert.equal(server.url, `http://[::1]:${server.address.port}`);
    const response = await fetch(`${server.url}/master`);
    assert.equal(response.status, 200);
    await response.body?.cancel();
  },
});
