/**
 * The test bed's own proof for Consul: a real dev agent answers, and a session can take and give back a
 * KV lock through nothing but fetch.
 */
import assert from "node:assert/strict";
import { ConsulServer } from "../support/mod.ts";

async function call(consul: ConsulServer, method: string, path: string, body?: unknown) {
  const response = await fetch(`${consul.url}${path}`, {
    method,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(5_000),
  });
  return { status: response.status, json: await response.json() };
}

Deno.test("a Consul session acquires and releases a KV lock through raw fetch", async () => {
  await using consul = await ConsulServer.start();
  const created = await call(consul, "PUT", "/v1/session/create", { Name: "testbed", TTL: "2s" });
  assert.equal(created.status, 200);
  const session: string = created.json.ID;
  assert.match(session, /^[0-9a-f-]{36}$/);

  const acquired = await call(consul, "PUT", `/v1/kv/testbed/.lock?acquire=${session}`, {});
  assert.equal(acquired.json, true);

  const other =
    (await call(consul, "PUT", "/v1/session/create", { Name: "other", TTL: "2s" })).json.ID;
  const stolen = await call(consul, "PUT", `/v1/kv/testbed/.lock?acquire=${other}`, {});
  assert.equal(stolen.json, false, "a second session must not take a held lock");

  const held = await call(consul, "GET", "/v1/kv/testbed/.lock");
  assert.equal(held.json[0].Session, session);

  const released = await call(consul, "PUT", `/v1/kv/testbed/.lock?release=${session}`);
  assert.equal(released.json, true);
  const free = await call(consul, "GET", "/v1/kv/testbed/.lock");
  assert.equal(free.json[0].Session, undefined);

  // A voluntary release carries no lock-delay: the other session gets the lock at once.
  const taken = await call(consul, "PUT", `/v1/kv/testbed/.lock?acquire=${other}`, {});
  assert.equal(taken.json, true);
});

Deno.test("the test Consul accepts sessions shorter than Consul's default 10s floor", async () => {
  await using consul = await ConsulServer.start();
  const created = await call(consul, "PUT", "/v1/session/create", { TTL: "1s" });
  assert.equal(created.status, 200);
});

Deno.test("with ACLs on, the test Consul denies an anonymous request and accepts the bootstrap token", async () => {
  await using consul = await ConsulServer.start({ acl: true });
  assert.ok(consul.managementToken);
  const anonymous = await fetch(`${consul.url}/v1/kv/testbed/x`, {
    method: "PUT",
    body: "1",
    signal: AbortSignal.timeout(5_000),
  });
  assert.equal(anonymous.status, 403);
  await anonymous.body?.cancel();
  await consul.api("PUT", "/v1/kv/testbed/x", "1");
  const entries = await consul.api<{ Key: string }[]>("GET", "/v1/kv/testbed/x");
  assert.equal(entries[0]?.Key, "testbed/x");
});

Deno.test("a restarted test Consul answers again on the same address", async () => {
  await using consul = await ConsulServer.start();
  const before = consul.address;
  await consul.restart();
  assert.equal(consul.address, before);
  const leader = await consul.api<string>("GET", "/v1/status/leader");
  assert.ok(leader.length > 0);
});
