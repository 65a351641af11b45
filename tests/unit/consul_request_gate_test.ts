/**
 * The request gate: one non-blocking Consul request at a time (so an agent needs its blocking queries'
 * connections plus one), heartbeats first, blocking queries never held back.
 */
import assert from "node:assert/strict";
import {
  isBlockingRequest,
  isHeartbeatRequest,
  RequestGate,
} from "../../lib/consul/request_gate.ts";
import type { FetchLike } from "../../lib/consul/client.ts";

/** A fetch whose answers the test releases one by one, recording the order requests started in. */
function heldFetch() {
  const started: string[] = [];
  const pending = new Map<string, () => void>();
  const fetch: FetchLike = (input) => {
    const path = new URL(input).pathname;
    started.push(path);
    return new Promise((resolve) => {
      pending.set(path, () => resolve(new Response("true", { status: 200 })));
    });
  };
  /** Answers the request for `path` (default: the first one still pending). */
  const release = async (path?: string) => {
    const key = path ?? [...pending.keys()][0]!;
    pending.get(key)?.();
    pending.delete(key);
    // Let the gate hand the slot on.
    for (let turn = 0; turn < 5; turn++) await new Promise((resolve) => setTimeout(resolve, 0));
  };
  return { fetch, started, release };
}

Deno.test("blocking queries and heartbeats are told apart by their URL", () => {
  assert.equal(isBlockingRequest(new URL("http://c/v1/kv/k?index=12&wait=15000ms")), true);
  assert.equal(isBlockingRequest(new URL("http://c/v1/kv/k?recurse")), false);
  assert.equal(isBlockingRequest(new URL("http://c/v1/kv/k?index=0")), false);
  assert.equal(isHeartbeatRequest(new URL("http://c/v1/session/renew/abc")), true);
  assert.equal(isHeartbeatRequest(new URL("http://c/v1/agent/check/update/x%3Aalive")), true);
  assert.equal(isHeartbeatRequest(new URL("http://c/v1/kv/resec/.lock")), false);
});

Deno.test("one non-blocking request at a time; heartbeats go before other waiting requests", async () => {
  const { fetch, started, release } = heldFetch();
  const gate = new RequestGate(fetch);
  const answers = [
    gate.fetch("http://c/v1/kv/a", {}),
    gate.fetch("http://c/v1/kv/b", {}),
    gate.fetch("http://c/v1/agent/check/update/x", {}),
    gate.fetch("http://c/v1/kv/c?index=7&wait=60000ms", {}),
  ];
  await new Promise((resolve) => setTimeout(resolve, 0));
  // The first request and the blocking query are in flight; the rest wait.
  assert.deepEqual([...started].sort(), ["/v1/kv/a", "/v1/kv/c"]);
  assert.equal(gate.inFlight, 1);
  await release("/v1/kv/a");
  assert.deepEqual(started.slice(2), ["/v1/agent/check/update/x"]);
  await release("/v1/kv/c"); // the blocking query answers: frees no slot
  assert.equal(started.length, 3);
  await release("/v1/agent/check/update/x");
  assert.deepEqual(started.slice(3), ["/v1/kv/b"]);
  await release("/v1/kv/b");
  for (const answer of answers) assert.equal(await (await answer).text(), "true");
  assert.equal(gate.inFlight, 0);
});

Deno.test("a request whose deadline passes while it waits leaves the queue with the signal's reason", async () => {
  const { fetch, started, release } = heldFetch();
  const gate = new RequestGate(fetch);
  const first = gate.fetch("http://c/v1/kv/a", {});
  const controller = new AbortController();
  const waiting = gate.fetch("http://c/v1/kv/b", { signal: controller.signal });
  controller.abort(new DOMException("deadline", "TimeoutError"));
  await assert.rejects(
    waiting,
    (error: unknown) => (error as DOMException).name === "TimeoutError",
  );
  await release();
  await first;
  const next = gate.fetch("http://c/v1/kv/c", {});
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.deepEqual(started, ["/v1/kv/a", "/v1/kv/c"]);
  await release();
  await next;
});
