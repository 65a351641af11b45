/**
 * Sessions, the session keeper's schedule and what it remembers, and the service/check helpers,
 * against a scripted Consul and a manual clock.
 */
import assert from "node:assert/strict";
import { ConsulClient } from "../../lib/consul/client.ts";
import { ConsulHttpError, ConsulNotFoundError } from "../../lib/consul/errors.ts";
import {
  deregisterService,
  isUnknownToAgent,
  registerService,
  trimCheckOutput,
  updateCheck,
} from "../../lib/consul/service.ts";
import {
  createSession,
  renewSession,
  SessionGoneError,
  sessionInfo,
  SessionKeeper,
} from "../../lib/consul/session.ts";
import {
  consulJson,
  consulText,
  type RecordedRequest,
  ScriptedFetch,
} from "../../lib/consul/testing.ts";
import { ManualClock } from "../../lib/clock.ts";

const SESSION = {
  ID: "0b6f5c2e-7a7d-4b8e-9f3a-1c2d3e4f5a6b",
  Name: "resec",
  Node: "node-1",
  LockDelay: 1_500_000_000,
  Behavior: "release",
  TTL: "15s",
  NodeChecks: [],
  ServiceChecks: null,
  CreateIndex: 18,
  ModifyIndex: 18,
};

function makeClient(fetch: ScriptedFetch, clock = new ManualClock(10_000)) {
  return new ConsulClient({ connection: { baseUrl: "http://c:8500" }, fetch: fetch.fetch, clock });
}

Deno.test("createSession sends explicit TTL, LockDelay, Behavior and checks", async () => {
  const fetch = new ScriptedFetch([consulJson({ ID: SESSION.ID })]);
  const id = await createSession(makeClient(fetch), {
    name: "resec",
    ttlMs: 15_000,
    lockDelayMs: 1_500,
    behavior: "delete",
    nodeChecks: [],
    serviceChecks: ["redis:check"],
  });
  assert.equal(id, SESSION.ID);
  assert.deepEqual(JSON.parse(fetch.requests[0]!.body!), {
    Name: "resec",
    TTL: "15s",
    LockDelay: "1500ms",
    Behavior: "delete",
    NodeChecks: [],
    ServiceChecks: [{ ID: "redis:check" }],
  });
});

Deno.test("createSession without nodeChecks leaves Consul's serfHealth default alone", async () => {
  const fetch = new ScriptedFetch([consulJson({ ID: SESSION.ID })]);
  await createSession(makeClient(fetch), {
    name: "x",
    ttlMs: 10_000,
    lockDelayMs: 0,
    behavior: "release",
  });
  assert.deepEqual(JSON.parse(fetch.requests[0]!.body!), {
    Name: "x",
    TTL: "10s",
    LockDelay: "0s",
    Behavior: "release",
  });
});

Deno.test("renewing a session Consul no longer knows is SessionGoneError", async () => {
  const fetch = new ScriptedFetch([
    consulJson([SESSION]),
    consulText(404, `Session id '${SESSION.ID}' not found`),
  ]);
  const client = makeClient(fetch);
  const info = await renewSession(client, SESSION.ID);
  assert.equal(info.ttlMs, 15_000);
  assert.equal(info.lockDelayMs, 1_500, "LockDelay arrives in nanoseconds");
  const error = await renewSession(client, SESSION.ID).catch((error) => error);
  assert.ok(error instanceof SessionGoneError);
  assert.ok(error.cause instanceof ConsulNotFoundError);
  assert.equal(fetch.requests[0]!.url.pathname, `/v1/session/renew/${SESSION.ID}`);
});

Deno.test("sessionInfo of an unknown session is undefined", async () => {
  const fetch = new ScriptedFetch([consulJson([], { index: 19 }), consulJson([SESSION])]);
  const client = makeClient(fetch);
  assert.equal(await sessionInfo(client, "nope"), undefined);
  assert.equal((await sessionInfo(client, SESSION.ID))?.name, "resec");
});

Deno.test("the keeper renews every TTL/3 and lastRenewedAt is when a successful renewal was sent", async () => {
  const clock = new ManualClock(10_000);
  // Each renewal takes 700 ms of clock time to answer.
  const slowOk = async (request: RecordedRequest) => {
    await clock.sleep(700, request.signal);
    return consulJson([SESSION]);
  };
  const fetch = new ScriptedFetch([], slowOk);
  const keeper = new SessionKeeper({
    client: makeClient(fetch, clock),
    session: SESSION.ID,
    ttlMs: 15_000,
    confirmedAt: 9_990,
    clock,
  });
  assert.equal(keeper.intervalMs, 5_000);
  assert.equal(keeper.lastRenewedAt(), 9_990, "creation counts as the first confirmation");
  await clock.advance(4_999);
  assert.equal(fetch.requests.length, 0);
  await clock.advance(1); // t = 15 000: first renewal sent
  assert.equal(fetch.requests.length, 1);
  assert.equal(keeper.lastRenewedAt(), 9_990, "not yet answered");
  await clock.advance(700); // answered at 15 700
  assert.equal(keeper.lastRenewedAt(), 15_000, "the SEND time, not the answer time");
  await clock.advance(5_000); // next renewal 5 s after the answer
  assert.equal(fetch.requests.length, 2);
  await keeper.close();
});

Deno.test("the keeper retries a failed renewal soon and does not count it as a renewal", async () => {
  const clock = new ManualClock(0);
  const fetch = new ScriptedFetch([
    consulText(500, "No cluster leader"),
    new TypeError("connection refused"),
    consulJson([SESSION]),
  ]);
  const keeper = new SessionKeeper({
    client: makeClient(fetch, clock),
    session: SESSION.ID,
    ttlMs: 15_000,
    confirmedAt: 0,
    clock,
    retry: { initialMs: 100, maxMs: 2_500, jitter: 0 },
  });
  await clock.advance(5_000); // first renewal: 500
  assert.equal(fetch.requests.length, 1);
  assert.equal(keeper.lastRenewedAt(), 0);
  await clock.advance(100); // retry after 100 ms: unreachable
  assert.equal(fetch.requests.length, 2);
  await clock.advance(200); // retry after 200 ms: ok
  assert.equal(fetch.requests.length, 3);
  assert.equal(keeper.lastRenewedAt(), 5_300);
  assert.equal(keeper.gone.aborted, false);
  await keeper.close();
});

Deno.test("the keeper reports the session gone on a 404 and stops renewing", async () => {
  const clock = new ManualClock(0);
  const fetch = new ScriptedFetch([consulText(404, "Session id 'x' not found")]);
  const keeper = new SessionKeeper({
    client: makeClient(fetch, clock),
    session: SESSION.ID,
    ttlMs: 3_000,
    confirmedAt: 0,
    clock,
  });
  await clock.advance(1_000);
  assert.equal(keeper.gone.aborted, true);
  assert.ok(keeper.gone.reason instanceof SessionGoneError);
  await clock.advance(10_000);
  assert.equal(fetch.requests.length, 1);
  await keeper.close();
});

Deno.test("registerService sends the service and its TTL check in one request", async () => {
  const fetch = new ScriptedFetch([new Response(null, { status: 200 })]);
  await registerService(makeClient(fetch), {
    id: "redis@10.0.0.5:6379",
    name: "redis",
    tags: ["master"],
    address: "10.0.0.5",
    port: 6379,
    check: {
      id: "redis@10.0.0.5:6379:replication",
      name: "Resec: master replication status",
      ttlMs: 6_000,
      deregisterCriticalAfterMs: 72 * 3_600_000,
      initialStatus: "warning",
    },
  });
  assert.equal(fetch.requests.length, 1);
  const request = fetch.requests[0]!;
  assert.equal(request.url.pathname, "/v1/agent/service/register");
  assert.equal(request.url.search, "?replace-existing-checks");
  assert.deepEqual(JSON.parse(request.body!), {
    ID: "redis@10.0.0.5:6379",
    Name: "redis",
    Tags: ["master"],
    Address: "10.0.0.5",
    Port: 6379,
    Check: {
      CheckID: "redis@10.0.0.5:6379:replication",
      Name: "Resec: master replication status",
      TTL: "6s",
      DeregisterCriticalServiceAfter: "259200s",
      Status: "warning",
    },
  });
});

Deno.test("updateCheck trims the output below Consul's 4 KB cap", async () => {
  const fetch = new ScriptedFetch([new Response(null, { status: 200 })]);
  await updateCheck(makeClient(fetch), "c1", "passing", "é".repeat(5_000));
  const body = JSON.parse(fetch.requests[0]!.body!);
  assert.equal(body.Status, "passing");
  assert.ok(new TextEncoder().encode(body.Output).length < 4_096);
  assert.match(body.Output, /^é+\n… \(trimmed, 10000 bytes in all\)$/);
});

Deno.test("trimCheckOutput keeps short output and never splits a character", () => {
  assert.equal(trimCheckOutput("role:master"), "role:master");
  for (const size of [100, 101, 102, 103]) {
    const trimmed = trimCheckOutput("😀".repeat(200), size);
    assert.ok(new TextEncoder().encode(trimmed).length <= size, String(size));
    assert.ok(!trimmed.includes("\uFFFD"), "no broken character");
  }
});

Deno.test("an unknown check or service (a restarted agent) is recognised for re-registration", async () => {
  const fetch = new ScriptedFetch([
    consulText(
      404,
      'Unknown check ID "c1". Ensure that the check ID is passed, not the check name.',
    ),
    new Response(null, { status: 404 }),
  ]);
  const client = makeClient(fetch);
  const error = await updateCheck(client, "c1", "passing", "").catch((error) => error);
  assert.equal(isUnknownToAgent(error), true);
  assert.equal(
    isUnknownToAgent(
      new ConsulHttpError(500, 'CheckID "c1" does not have associated TTL', "PUT", "/"),
    ),
    true,
  );
  assert.equal(isUnknownToAgent(new ConsulHttpError(500, "No cluster leader", "PUT", "/")), false);
  await deregisterService(client, "gone"); // an unknown service is not an error
});
