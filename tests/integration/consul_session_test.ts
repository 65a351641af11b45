/**
 * Sessions, services and deadlines against a real Consul: the keeper holds a short session alive and
 * notices when it is gone, a restarted agent's forgotten check is recognised and re-registered, and a
 * frozen Consul costs a request its deadline, not forever.
 */
import assert from "node:assert/strict";
import { ConsulClient } from "../../lib/consul/client.ts";
import { ConsulTimeoutError, isTransientConsulError } from "../../lib/consul/errors.ts";
import { healthService } from "../../lib/consul/health.ts";
import { readKey } from "../../lib/consul/kv.ts";
import {
  deregisterService,
  isUnknownToAgent,
  registerService,
  type ServiceDefinition,
  updateCheck,
} from "../../lib/consul/service.ts";
import {
  createSession,
  destroySession,
  isSessionCheckNotReady,
  listSessions,
  SessionGoneError,
  sessionInfo,
  SessionKeeper,
} from "../../lib/consul/session.ts";
import { ConsulServer, delay, waitFor } from "../support/mod.ts";
import { presenceService } from "../support/services.ts";

Deno.test("the keeper holds a 1 s session alive for 3 s, and the session expires once it stops", async () => {
  await using consul = await ConsulServer.start();
  using client = new ConsulClient({ connection: { baseUrl: consul.url } });
  const sentAt = Date.now();
  const session = await createSession(client, {
    name: "kept",
    ttlMs: 1_000,
    lockDelayMs: 0,
    behavior: "release",
    nodeChecks: [],
  });
  const info = await sessionInfo(client, session);
  assert.equal(info?.ttlMs, 1_000);
  assert.deepEqual(info?.nodeChecks, [], "no serfHealth: only the TTL decides");
  const keeper = new SessionKeeper({ client, session, ttlMs: 1_000, confirmedAt: sentAt });
  await delay(3_000);
  assert.ok(await sessionInfo(client, session), "alive after three TTLs");
  assert.ok(Date.now() - keeper.lastRenewedAt() < 1_000 / 3 + 300);
  assert.equal(keeper.gone.aborted, false);
  await keeper.close();
  const stoppedAt = Date.now();
  await waitFor(async () => (await sessionInfo(client, session)) === undefined, {
    timeoutMs: 5_000,
    message: "the session to expire",
  });
  const expiredAfter = Date.now() - stoppedAt;
  console.log(`session (TTL 1000 ms) expired ${expiredAfter} ms after renewals stopped`);
  assert.ok(expiredAfter < 2 * 1_000 + 1_000, "Consul waits at most about 2 × TTL");
});

Deno.test("the keeper reports the session gone when Consul destroys it", async () => {
  await using consul = await ConsulServer.start();
  using client = new ConsulClient({ connection: { baseUrl: consul.url } });
  const session = await createSession(client, {
    name: "doomed",
    ttlMs: 1_000,
    lockDelayMs: 0,
    behavior: "release",
    nodeChecks: [],
  });
  await using keeper = new SessionKeeper({
    client,
    session,
    ttlMs: 1_000,
    confirmedAt: Date.now(),
  });
  await destroySession(client, session);
  await waitFor(() => keeper.gone.aborted, { timeoutMs: 2_000, message: "the keeper to notice" });
  assert.ok(keeper.gone.reason instanceof SessionGoneError);
});

const SERVICE: ServiceDefinition = {
  id: "redis@127.0.0.1:6379",
  name: "redis-slave",
  tags: ["slave"],
  port: 6379,
  check: {
    id: "redis@127.0.0.1:6379:replication",
    name: "Resec: slave replication status",
    ttlMs: 1_000,
    deregisterCriticalAfterMs: 3_600_000,
    initialStatus: "passing",
    output: "role:slave master_link_status:up",
  },
};

Deno.test("a registered TTL check goes critical when not updated, and an update brings it back", async () => {
  await using consul = await ConsulServer.start();
  using client = new ConsulClient({ connection: { baseUrl: consul.url } });
  await registerService(client, SERVICE);
  const checks = await consul.api<Record<string, { Status: string; Output: string }>>(
    "GET",
    "/v1/agent/checks",
  );
  assert.equal(checks[SERVICE.check.id]?.Status, "passing");
  assert.equal(checks[SERVICE.check.id]?.Output, "role:slave master_link_status:up");
  await waitFor(
    async () => (await healthService(client, "redis-slave")).entries[0]?.status === "critical",
    { timeoutMs: 4_000, message: "the TTL check to lapse" },
  );
  await updateCheck(client, SERVICE.check.id, "passing", "x".repeat(20_000));
  const entry = (await healthService(client, "redis-slave", { passing: true })).entries[0];
  assert.equal(entry?.status, "passing");
  const output = (await consul.api<Record<string, { Output: string }>>("GET", "/v1/agent/checks"))[
    SERVICE.check.id
  ]!.Output;
  assert.ok(output.length < 4_096 && output.endsWith("(trimmed, 20000 bytes in all)"), output);
});

Deno.test("a restarted agent's forgotten check is recognised, and registering again restores it", async () => {
  await using consul = await ConsulServer.start();
  using client = new ConsulClient({ connection: { baseUrl: consul.url } });
  await registerService(client, SERVICE);
  await consul.restart();
  const error = await updateCheck(client, SERVICE.check.id, "passing", "ok").catch((error) =>
    error
  );
  assert.ok(isUnknownToAgent(error), String(error));
  await registerService(client, SERVICE);
  await updateCheck(client, SERVICE.check.id, "passing", "ok");
  assert.equal((await healthService(client, "redis-slave", { passing: true })).entries.length, 1);
});

Deno.test("a request to a frozen Consul fails at its deadline with a transient timeout", async () => {
  await using consul = await ConsulServer.start();
  using client = new ConsulClient({ connection: { baseUrl: consul.url }, requestTimeoutMs: 500 });
  await readKey(client, "resec/.lock"); // a pooled connection exists before the freeze
  await consul.pause();
  try {
    const start = performance.now();
    const error = await readKey(client, "resec/.lock").catch((error) => error);
    const elapsed = performance.now() - start;
    assert.ok(error instanceof ConsulTimeoutError, String(error));
    assert.equal(isTransientConsulError(error), true);
    assert.ok(elapsed >= 450 && elapsed < 1_500, `failed after ${elapsed} ms`);
  } finally {
    consul.resume();
  }
  assert.equal((await readKey(client, "resec/.lock")).entry, undefined, "works again once thawed");
});

const PRESENCE = presenceService(1_500);

function tiedSession(client: ConsulClient, name: string): Promise<string> {
  return createSession(client, {
    name,
    ttlMs: 30_000,
    lockDelayMs: 0,
    behavior: "release",
    nodeChecks: [],
    serviceChecks: [PRESENCE.check.id],
  });
}

Deno.test("a session tied to the agent check dies when that check lapses, long before its own TTL", async () => {
  await using consul = await ConsulServer.start();
  using client = new ConsulClient({ connection: { baseUrl: consul.url } });
  await registerService(client, PRESENCE);
  const session = await tiedSession(client, "tied");
  const tiedAt = Date.now();
  assert.deepEqual((await sessionInfo(client, session))?.serviceChecks, [PRESENCE.check.id]);
  assert.ok(
    (await listSessions(client)).some((listed) => listed.id === session),
    "the session list shows it",
  );
  await waitFor(async () => (await sessionInfo(client, session)) === undefined, {
    timeoutMs: 15_000,
    message: "the session to die with the agent check",
  });
  const diedAfter = Date.now() - tiedAt;
  console.log(`session (TTL 30 s) died ${diedAfter} ms after its 1.5 s agent check was last set`);
  // Not before the check's TTL, and far sooner than the session's own 30 s (a busy machine slows
  // the polling, so the upper bound only has to tell the two apart).
  assert.ok(diedAfter >= 1_300 && diedAfter < 15_000, `died after ${diedAfter} ms`);
});

Deno.test("a tied session lives on while the check is heartbeaten and re-registered, and dies with its deregistration", async () => {
  await using consul = await ConsulServer.start();
  using client = new ConsulClient({ connection: { baseUrl: consul.url } });
  await registerService(client, PRESENCE);
  const session = await tiedSession(client, "tied");
  for (let beat = 0; beat < 6; beat++) {
    await updateCheck(client, PRESENCE.check.id, "passing", "alive");
    await delay(500);
  }
  // What a restarted agent does first: register the presence again, passing.
  await registerService(client, PRESENCE);
  await delay(500);
  assert.ok(await sessionInfo(client, session), "alive after 3.5 s and a re-registration");
  await deregisterService(client, PRESENCE.id);
  await waitFor(async () => (await sessionInfo(client, session)) === undefined, {
    timeoutMs: 2_000,
    message: "deregistering the presence to end the session",
  });
});

Deno.test("a session cannot be tied to an agent check that is missing, and the error is transient", async () => {
  await using consul = await ConsulServer.start();
  using client = new ConsulClient({ connection: { baseUrl: consul.url } });
  const error = await tiedSession(client, "early").catch((error) => error);
  console.log(`Consul's answer: ${String(error)}`);
  assert.ok(isSessionCheckNotReady(error), String(error));
  assert.equal(isTransientConsulError(error), true, "retried until the registration arrives");
});
