/**
 * Where an agent announces its Redis: the node's address for the default loopback REDIS_ADDR, so three
 * hosts with default settings announce three different addresses; and a refusal when no address is safe.
 */
import assert from "node:assert/strict";
import {
  announceAddress,
  AnnounceAddressError,
  resolvePlacement,
} from "../../lib/agent/placement.ts";
import { parseConfig } from "../../lib/config.ts";
import { ConsulClient } from "../../lib/consul/client.ts";
import { ConsulPermissionDeniedError } from "../../lib/consul/errors.ts";
import { decodeAgentSelf } from "../../lib/consul/node.ts";
import { consulJson, consulText, ScriptedFetch } from "../../lib/consul/testing.ts";
import { ManualClock } from "../../lib/clock.ts";
import type { Environment } from "../../lib/env.ts";
import { silentLogger } from "../../lib/log.ts";

function configOf(env: Environment) {
  const result = parseConfig(env, { readTextFile: () => "" });
  if (!result.ok) assert.fail(result.problems.map((problem) => problem.message).join("\n"));
  return result.config;
}

const SELF = (node: string, address: string) => ({
  Config: { NodeName: node, Datacenter: "dc1" },
  Member: { Name: node, Addr: address, Port: 8301 },
});

Deno.test("hosts with default settings announce their Consul node's addresses, not 127.0.0.1", () => {
  const config = configOf({});
  const announced = ["10.0.0.1", "10.0.0.2", "10.0.0.3"].map((address, index) =>
    announceAddress(config, { name: `host-${index}`, address })
  );
  assert.deepEqual(announced, [
    { host: "10.0.0.1", port: 6379 },
    { host: "10.0.0.2", port: 6379 },
    { host: "10.0.0.3", port: 6379 },
  ]);
});

Deno.test("an IPv6 node address is announced as a host", () => {
  assert.deepEqual(announceAddress(configOf({}), { name: "h", address: "2001:db8::7" }), {
    host: "2001:db8::7",
    port: 6379,
  });
});

Deno.test("a Consul agent on loopback (one host, a dev agent) keeps a loopback announcement", () => {
  const config = configOf({ REDIS_ADDR: "127.0.0.1:6390" });
  assert.deepEqual(announceAddress(config, { name: "dev", address: "127.0.0.1" }), {
    host: "127.0.0.1",
    port: 6390,
  });
});

Deno.test("ANNOUNCE_ADDR and a routable REDIS_ADDR win over the node's address", () => {
  const node = { name: "h", address: "10.0.0.9" };
  assert.deepEqual(announceAddress(configOf({ ANNOUNCE_ADDR: "192.0.2.4:7000" }), node), {
    host: "192.0.2.4",
    port: 7000,
  });
  assert.deepEqual(announceAddress(configOf({ REDIS_ADDR: "192.0.2.5:6379" }), node), {
    host: "192.0.2.5",
    port: 6379,
  });
});

Deno.test("a node advertising no usable address is refused with the fix in the message", () => {
  for (const address of ["0.0.0.0", "", "::", "not an address:"]) {
    assert.throws(
      () => announceAddress(configOf({}), { name: "h", address }),
      (error: unknown) =>
        error instanceof AnnounceAddressError && /Set ANNOUNCE_ADDR/.test(error.message) &&
        error.message.includes('node "h"'),
      `address ${JSON.stringify(address)}`,
    );
  }
});

Deno.test("agent/self is decoded to the node name and its advertised address", () => {
  assert.deepEqual(decodeAgentSelf(SELF("web-1", "10.0.0.5")), {
    name: "web-1",
    address: "10.0.0.5",
  });
  assert.throws(() => decodeAgentSelf({ Config: {} }), TypeError);
});

function clientOf(fetch: ScriptedFetch, clock: ManualClock) {
  return new ConsulClient({
    connection: { baseUrl: "http://consul.test:8500" },
    fetch: fetch.fetch,
    clock,
  });
}

Deno.test("placement waits for a Consul agent that is not up yet, then uses its node", async () => {
  const clock = new ManualClock(0);
  const fetch = new ScriptedFetch([
    new TypeError("connection refused"),
    new TypeError("connection refused"),
    consulJson(SELF("host-2", "10.0.0.2")),
  ]);
  const placing = resolvePlacement({
    client: clientOf(fetch, clock),
    config: configOf({}),
    logger: silentLogger,
    clock,
  });
  while (fetch.requests.length < 3) await clock.advance(1_000);
  const placement = await placing;
  assert.deepEqual(placement, { node: "host-2", announce: { host: "10.0.0.2", port: 6379 } });
  assert.ok(fetch.requests.every((request) => request.url.pathname === "/v1/agent/self"));
});

Deno.test("without agent:read the node is found through a throwaway session and the catalog", async () => {
  const clock = new ManualClock(0);
  const fetch = new ScriptedFetch([
    consulText(403, "Permission denied: token lacks agent:read"),
    consulJson({ ID: "probe-1" }),
    consulJson([{
      ID: "probe-1",
      Name: "resec",
      Node: "host-3",
      LockDelay: 0,
      Behavior: "delete",
      TTL: "15s",
      CreateIndex: 5,
    }]),
    consulJson(true),
    consulJson({ Node: { Node: "host-3", Address: "10.0.0.3" }, Services: {} }),
  ]);
  const placement = await resolvePlacement({
    client: clientOf(fetch, clock),
    config: configOf({}),
    logger: silentLogger,
    clock,
  });
  assert.deepEqual(placement, { node: "host-3", announce: { host: "10.0.0.3", port: 6379 } });
  assert.deepEqual(fetch.requests.map((request) => `${request.method} ${request.url.pathname}`), [
    "GET /v1/agent/self",
    "PUT /v1/session/create",
    "GET /v1/session/info/probe-1",
    "PUT /v1/session/destroy/probe-1",
    "GET /v1/catalog/node/host-3",
  ]);
});

Deno.test("a token that may not even create a session is refused, not retried", async () => {
  const clock = new ManualClock(0);
  const fetch = new ScriptedFetch([
    consulText(403, "Permission denied"),
    consulText(403, "Permission denied"),
  ]);
  await assert.rejects(
    resolvePlacement({
      client: clientOf(fetch, clock),
      config: configOf({}),
      logger: silentLogger,
      clock,
    }),
    ConsulPermissionDeniedError,
  );
});
