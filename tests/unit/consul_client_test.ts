/**
 * The Consul client against a scripted fetch: what it sends (token header, dc/ns, blocking
 * parameters, deadlines) and how each kind of failure becomes a typed error without leaking the token.
 */
import assert from "node:assert/strict";
import {
  ConsulClient,
  type ConsulRequestEvent,
  MAX_RESPONSE_BYTES,
} from "../../lib/consul/client.ts";
import type { ConsulConnectionConfig } from "../../lib/consul/connection.ts";
import {
  ConsulHttpError,
  ConsulMalformedResponseError,
  ConsulNoLeaderError,
  ConsulNotFoundError,
  ConsulPermissionDeniedError,
  ConsulResponseTooLargeError,
  ConsulTimeoutError,
  ConsulUnreachableError,
  isTransientConsulError,
} from "../../lib/consul/errors.ts";
import { acquireKey, readKey } from "../../lib/consul/kv.ts";
import { consulJson, consulText, hangingAnswer, ScriptedFetch } from "../../lib/consul/testing.ts";
import { ManualClock } from "../../lib/clock.ts";

const TOKEN = "9b2f4d61-0c3a-4e8f-b7d5-2a1c6e9f8b30";

function makeClient(
  fetch: ScriptedFetch,
  connection: Partial<ConsulConnectionConfig> = {},
  extra: { onRequest?: (event: ConsulRequestEvent) => void; requestTimeoutMs?: number } = {},
) {
  return new ConsulClient({
    connection: { baseUrl: "http://consul.test:8500", token: TOKEN, ...connection },
    fetch: fetch.fetch,
    clock: new ManualClock(1_000),
    ...extra,
  });
}

Deno.test("the token travels in X-Consul-Token and never in the URL", async () => {
  const fetch = new ScriptedFetch([consulJson(true)]);
  await acquireKey(makeClient(fetch), "resec/.lock", "sess-1", "{}");
  const request = fetch.requests[0]!;
  assert.equal(request.headers.get("X-Consul-Token"), TOKEN);
  assert.ok(!request.url.href.includes(TOKEN));
  assert.equal(request.method, "PUT");
  assert.equal(request.url.pathname, "/v1/kv/resec/.lock");
  assert.equal(request.url.search, "?acquire=sess-1");
  assert.equal(request.body, "{}");
});

Deno.test("basic auth from CONSUL_HTTP_AUTH goes in the Authorization header", async () => {
  const fetch = new ScriptedFetch([consulJson("leader")]);
  const client = makeClient(fetch, { basicAuth: { user: "ops", password: "pä:ss" } });
  await client.request({ method: "GET", path: "/v1/status/leader", endpoint: "status" });
  const header = fetch.requests[0]!.headers.get("Authorization")!;
  assert.match(header, /^Basic /);
  const decoded = new TextDecoder().decode(
    Uint8Array.from(atob(header.slice(6)), (char) => char.charCodeAt(0)),
  );
  assert.equal(decoded, "ops:pä:ss");
});

Deno.test("dc and ns go on data endpoints; agent endpoints get ns but no dc", async () => {
  const fetch = new ScriptedFetch([consulJson([], { index: 5 }), consulJson(null)]);
  const client = makeClient(fetch, { datacenter: "eu1", namespace: "team a" });
  await client.request({ method: "GET", path: "/v1/health/service/redis", endpoint: "health" });
  await client.request({
    method: "PUT",
    path: "/v1/agent/check/update/x",
    endpoint: "check",
    datacenter: false,
  });
  assert.equal(fetch.requests[0]!.url.search, "?dc=eu1&ns=team%20a");
  assert.equal(fetch.requests[1]!.url.search, "?ns=team%20a");
});

Deno.test("KV keys are escaped per path segment, keeping the slashes", async () => {
  const fetch = new ScriptedFetch([consulText(404, "", { "X-Consul-Index": "3" })]);
  await readKey(makeClient(fetch), "resec/a b/#?x");
  assert.equal(fetch.requests[0]!.url.pathname, "/v1/kv/resec/a%20b/%23%3Fx");
  assert.equal(fetch.requests[0]!.url.search, "");
});

Deno.test("a blocking read sends index and wait, and gets wait + wait/16 + margin as deadline", async () => {
  const fetch = new ScriptedFetch([consulText(404, "", { "X-Consul-Index": "42" })]);
  const client = makeClient(fetch);
  const result = await readKey(client, "k", { index: 41, waitMs: 16_000, consistent: true });
  assert.equal(result.index, 42);
  assert.equal(result.entry, undefined);
  const params = fetch.requests[0]!.url.searchParams;
  assert.equal(params.get("index"), "41");
  assert.equal(params.get("wait"), "16000ms");
  assert.ok(params.has("consistent"));
  assert.equal(
    client.deadlineFor({ blocking: { index: 41, waitMs: 16_000 } }),
    16_000 + 1_000 + 5_000,
  );
  assert.equal(client.deadlineFor({}), 10_000, "a plain request gets the default deadline");
  assert.equal(client.deadlineFor({ timeoutMs: 700 }), 700);
  // Consul caps wait at 10 minutes; so do we.
  assert.equal(
    client.deadlineFor({ blocking: { index: 1, waitMs: 3_600_000 } }),
    600_000 + 37_500 + 5_000,
  );
});

Deno.test("index 0 makes a plain read: no index or wait parameter", async () => {
  const fetch = new ScriptedFetch([consulText(404, "", { "X-Consul-Index": "1" })]);
  await readKey(makeClient(fetch), "k", { index: 0, waitMs: 5_000 });
  assert.equal(fetch.requests[0]!.url.search, "");
});

Deno.test("X-Consul-Index, KnownLeader and LastContact are read from every answer", async () => {
  const fetch = new ScriptedFetch([
    consulJson([], {
      index: 77,
      headers: { "X-Consul-KnownLeader": "false", "X-Consul-LastContact": "1250" },
    }),
  ]);
  const response = await makeClient(fetch).request({
    method: "GET",
    path: "/v1/health/service/x",
    endpoint: "health",
  });
  assert.deepEqual(response.meta, { index: 77, knownLeader: false, lastContactMs: 1250 });
});

Deno.test("a 403 is a permission error naming the key, without the token even if Consul echoes it", async () => {
  const fetch = new ScriptedFetch([
    consulText(
      403,
      `Permission denied: token with AccessorID 'abc' lacks permission 'key:write' on "resec/.lock" (${TOKEN})`,
    ),
  ]);
  const error = await acquireKey(makeClient(fetch), "resec/.lock", "s", "v").then(
    () => assert.fail("expected a rejection"),
    (error) => error,
  );
  assert.ok(error instanceof ConsulPermissionDeniedError);
  assert.ok(error instanceof ConsulHttpError);
  assert.equal(error.status, 403);
  assert.match(error.message, /^Permission denied writing key "resec\/\.lock": Permission denied/);
  assert.ok(!error.message.includes(TOKEN));
  assert.ok(!error.consulMessage.includes(TOKEN));
  assert.equal(isTransientConsulError(error), false);
});

Deno.test("a 500 'No cluster leader' is a transient ConsulNoLeaderError", async () => {
  const fetch = new ScriptedFetch([consulText(500, "No cluster leader")]);
  const error = await readKey(makeClient(fetch), "k").catch((error) => error);
  assert.ok(error instanceof ConsulNoLeaderError);
  assert.equal(error.status, 500);
  assert.equal(error.message, "Consul answered 500 to GET /v1/kv/k: No cluster leader");
  assert.equal(isTransientConsulError(error), true);
});

Deno.test("other statuses: 404 is ConsulNotFoundError, 400 is permanent, 429 and 503 are transient", async () => {
  const fetch = new ScriptedFetch([
    consulText(404, "Unknown check ID"),
    consulText(400, "Bad request"),
    consulText(429, "rate limited"),
    consulText(503, "overloaded"),
  ]);
  const client = makeClient(fetch);
  const call = () =>
    client.request({ method: "PUT", path: "/v1/agent/check/update/x", endpoint: "check" })
      .catch((error) => error);
  const notFound = await call();
  assert.ok(notFound instanceof ConsulNotFoundError);
  assert.equal(isTransientConsulError(notFound), false);
  assert.equal(isTransientConsulError(await call()), false);
  assert.equal(isTransientConsulError(await call()), true);
  assert.equal(isTransientConsulError(await call()), true);
});

Deno.test("an answer that is not JSON, or JSON of the wrong shape, is malformed", async () => {
  const fetch = new ScriptedFetch([
    new Response("<html>proxy error</html>", { status: 200 }),
    consulJson([{ Key: "k", Value: 12 }], { index: 3 }),
    consulJson("yes"),
  ]);
  const client = makeClient(fetch);
  const notJson = await readKey(client, "k").catch((error) => error);
  assert.ok(notJson instanceof ConsulMalformedResponseError);
  assert.match(notJson.message, /GET \/v1\/kv\/k is malformed: not JSON/);
  const badShape = await readKey(client, "k").catch((error) => error);
  assert.ok(badShape instanceof ConsulMalformedResponseError);
  assert.match(badShape.message, /entry 0\.Value to be base64/);
  const notBoolean = await acquireKey(client, "k", "s", "v").catch((error) => error);
  assert.ok(notBoolean instanceof ConsulMalformedResponseError);
  assert.equal(isTransientConsulError(notBoolean), false);
});

Deno.test("a garbage X-Consul-Index is malformed rather than silently zero", async () => {
  const fetch = new ScriptedFetch([consulJson([], { headers: { "X-Consul-Index": "abc" } })]);
  const error = await readKey(makeClient(fetch), "k").catch((error) => error);
  assert.ok(error instanceof ConsulMalformedResponseError);
  assert.match(error.message, /X-Consul-Index "abc"/);
});

Deno.test("a connection failure is ConsulUnreachableError naming the address, not the token", async () => {
  const fetch = new ScriptedFetch([
    new TypeError(
      `error sending request for url (http://consul.test:8500/v1/kv/k?token=${TOKEN}): client error (Connect): tcp connect error: Connection refused (os error 111)`,
    ),
  ]);
  const error = await readKey(makeClient(fetch), "k").catch((error) => error);
  assert.ok(error instanceof ConsulUnreachableError);
  assert.equal(
    error.message,
    "Cannot reach Consul at http://consul.test:8500: client error (Connect): tcp connect error: Connection refused (os error 111)",
  );
  assert.equal(isTransientConsulError(error), true);
});

Deno.test("a request past its deadline is ConsulTimeoutError", async () => {
  const fetch = new ScriptedFetch([new DOMException("Signal timed out.", "TimeoutError")]);
  const error = await readKey(makeClient(fetch), "k").catch((error) => error);
  assert.ok(error instanceof ConsulTimeoutError);
  assert.equal(error.message, "Consul did not answer GET /v1/kv/k within 10000ms");
  assert.equal(isTransientConsulError(error), true);
});

Deno.test("every request carries a deadline signal that fires on a hung Consul", async () => {
  const fetch = new ScriptedFetch([hangingAnswer]);
  const client = makeClient(fetch, {}, { requestTimeoutMs: 5 });
  const error = await readKey(client, "k").catch((error) => error);
  assert.ok(error instanceof ConsulTimeoutError, String(error));
  assert.ok(fetch.requests[0]!.signal, "fetch got a signal");
});

Deno.test("cancelling through the caller's signal rejects with the caller's reason", async () => {
  const fetch = new ScriptedFetch([hangingAnswer]);
  const controller = new AbortController();
  const pending = readKey(makeClient(fetch), "k", { signal: controller.signal });
  const reason = new Error("shutting down");
  controller.abort(reason);
  await assert.rejects(pending, (error) => error === reason);
});

Deno.test("onRequest reports endpoint, status and outcome of each request, and no URL", async () => {
  const events: ConsulRequestEvent[] = [];
  const fetch = new ScriptedFetch([
    consulJson(true),
    consulText(500, "No cluster leader"),
    new TypeError("connection refused"),
  ]);
  const client = makeClient(fetch, {}, { onRequest: (event) => events.push(event) });
  await acquireKey(client, "k", "s", "v");
  await readKey(client, "k").catch(() => {});
  await readKey(client, "k").catch(() => {});
  assert.deepEqual(
    events.map(({ endpoint, method, status, outcome }) => ({ endpoint, method, status, outcome })),
    [
      { endpoint: "kv.acquire", method: "PUT", status: 200, outcome: "ok" },
      { endpoint: "kv.read", method: "GET", status: 500, outcome: "http_error" },
      { endpoint: "kv.read", method: "GET", status: 0, outcome: "unreachable" },
    ],
  );
  assert.ok(events.every((event) => event.durationMs === 0), "durations come from the clock");
});

/** A body of `chunks` chunks of `size` bytes, counting what was pulled and whether it was cancelled. */
function streamedBody(size: number, chunks = Infinity) {
  const state = { pulled: 0, cancelled: false };
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (state.pulled >= chunks) return controller.close();
      state.pulled++;
      controller.enqueue(new Uint8Array(size).fill(0x20));
    },
    cancel() {
      state.cancelled = true;
    },
  });
  return { stream, state };
}

Deno.test("an answer longer than the client reads is ConsulResponseTooLargeError after at most the limit, never an OOM", async () => {
  const events: ConsulRequestEvent[] = [];
  const endless = streamedBody(64 * 1024);
  const fetch = new ScriptedFetch([new Response(endless.stream, { status: 200 })]);
  const client = new ConsulClient({
    connection: { baseUrl: "http://consul.test:8500" },
    fetch: fetch.fetch,
    maxResponseBytes: 1024 * 1024,
    onRequest: (event) => events.push(event),
  });
  await assert.rejects(
    client.request({ method: "GET", path: "/v1/health/service/redis", endpoint: "health.service" }),
    (error: unknown) => {
      assert.ok(error instanceof ConsulResponseTooLargeError);
      assert.ok(error instanceof ConsulMalformedResponseError, "a kind of malformed answer");
      assert.equal(error.limitBytes, 1024 * 1024);
      assert.match(error.message, /longer than the 1048576 bytes the client reads/);
      return true;
    },
  );
  assert.ok(endless.state.pulled <= 1024 / 64 + 2, `${endless.state.pulled} chunks read`);
  assert.ok(endless.state.cancelled, "the rest of the body is cancelled, not drained");
  assert.equal(events[0]?.outcome, "malformed");
  assert.equal(isTransientConsulError(new ConsulResponseTooLargeError("GET", "/", 1)), false);
});

Deno.test("an answer of exactly the limit is read, JSON and error bodies alike", async () => {
  const limit = 4096;
  const json = JSON.stringify({ pad: "x".repeat(limit - 10) });
  assert.equal(json.length, limit);
  const fetch = new ScriptedFetch([
    new Response(json, { status: 200 }),
    new Response("e".repeat(limit + 1), { status: 500 }),
  ]);
  const client = new ConsulClient({
    connection: { baseUrl: "http://consul.test:8500" },
    fetch: fetch.fetch,
    maxResponseBytes: limit,
  });
  const answer = await client.request<{ pad: string }>({
    method: "GET",
    path: "/v1/kv/a",
    endpoint: "kv.read",
  });
  assert.equal(answer.value?.pad.length, limit - 10);
  // An error answer is bounded too.
  await assert.rejects(
    client.request({ method: "GET", path: "/v1/kv/a", endpoint: "kv.read" }),
    ConsulResponseTooLargeError,
  );
});

Deno.test("a Content-Length over the limit is refused without reading the body", async () => {
  const body = streamedBody(1024, 1);
  const fetch = new ScriptedFetch([
    new Response(body.stream, { status: 200, headers: { "Content-Length": "999999999" } }),
  ]);
  const client = new ConsulClient({
    connection: { baseUrl: "http://consul.test:8500" },
    fetch: fetch.fetch,
    maxResponseBytes: 1024 * 1024,
  });
  await assert.rejects(
    client.request({ method: "GET", path: "/v1/kv/a", endpoint: "kv.read" }),
    ConsulResponseTooLargeError,
  );
  assert.equal(body.state.pulled <= 1, true);
  assert.ok(body.state.cancelled);
});

Deno.test("the default limit holds the health of thousands of instances and Consul's largest KV value", () => {
  // About 3 KiB per instance in a real health answer (node, service, two checks).
  assert.ok(MAX_RESPONSE_BYTES >= 5_000 * 3 * 1024);
  // A 512 KiB value, base64-encoded inside its JSON entry.
  assert.ok(MAX_RESPONSE_BYTES >= Math.ceil((512 * 1024 * 4) / 3) + 1024);
  assert.equal(
    new ConsulClient({ connection: { baseUrl: "http://c" } }).maxResponseBytes,
    MAX_RESPONSE_BYTES,
  );
});
