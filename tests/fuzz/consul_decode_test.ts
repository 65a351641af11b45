/**
 * Fuzzing Consul's answers: whatever JSON comes back, each decoder returns typed values or throws a
 * TypeError (the client's ConsulMalformedResponseError), and the client rejects with a ConsulError
 * only, whatever bytes come back.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import { ConsulClient } from "../../lib/consul/client.ts";
import { ConsulError } from "../../lib/consul/errors.ts";
import { decodeHealthEntry, healthService } from "../../lib/consul/health.ts";
import { decodeEntry, readKey } from "../../lib/consul/kv.ts";
import { decodeAgentSelf } from "../../lib/consul/node.ts";
import { decodeSession, sessionInfo } from "../../lib/consul/session.ts";
import { ScriptedFetch } from "../../lib/consul/testing.ts";
import { checkProperty, edgyJson, jsonMutants } from "./fuzz.ts";

const SESSION = {
  ID: "adf4238a-882b-9ddc-4a9d-5b6758e4159e",
  Name: "resec",
  Node: "redis-1",
  LockDelay: 1_000_000_000,
  Behavior: "release",
  TTL: "15s",
  NodeChecks: ["serfHealth"],
  ServiceChecks: [{ ID: "service:redis-agent@:6379", Namespace: "" }],
  CreateIndex: 1086449,
  ModifyIndex: 1086449,
};

const HEALTH_ENTRY = {
  Node: { ID: "40e4a748", Node: "redis-1", Address: "10.0.0.1", Datacenter: "dc1" },
  Service: {
    ID: "redis@:6379",
    Service: "redis-master",
    Tags: ["master"],
    Address: "",
    Meta: { resec: "0.1.0" },
    Port: 6379,
  },
  Checks: [
    { CheckID: "serfHealth", Name: "Serf Health Status", Status: "passing", ServiceID: "" },
    {
      CheckID: "service:redis@:6379",
      Name: "redis",
      Status: "passing",
      ServiceID: "redis@:6379",
      Output: "role master",
    },
  ],
};

const KV_ENTRY = {
  Key: "resec/.lock",
  Value: btoa('{"address":"10.0.0.1:6379","agent":"resec","since":"2026-01-01T00:00:00.000Z"}'),
  Session: "adf4238a-882b-9ddc-4a9d-5b6758e4159e",
  LockIndex: 3,
  ModifyIndex: 120,
  CreateIndex: 100,
  Flags: 3304740253564472344,
};

const AGENT_SELF = { Config: { NodeName: "redis-1" }, Member: { Addr: "10.0.0.1", Port: 8301 } };

/** JSON for a decoder: mutants of a valid answer most of the time, anything at all otherwise. */
function answers(valid: unknown): fc.Arbitrary<unknown> {
  return fc.oneof(
    { arbitrary: jsonMutants(valid), weight: 4 },
    { arbitrary: edgyJson, weight: 1 },
  );
}

/** Runs a decoder: a TypeError is the expected refusal; any other error fails the property. */
function decodeOrRefuse<T>(decode: () => T): T | undefined {
  try {
    return decode();
  } catch (error) {
    if (error instanceof TypeError) return undefined;
    throw error;
  }
}

const isIndex = (value: unknown) => Number.isSafeInteger(value) && (value as number) >= 0;
const isStringList = (value: unknown) =>
  Array.isArray(value) && value.every((item) => typeof item === "string");

Deno.test("decodeSession returns a typed session or throws TypeError, for any JSON", async (t) => {
  await checkProperty(
    t,
    fc.property(answers(SESSION), (json) => {
      const session = decodeOrRefuse(() => decodeSession(json));
      if (session === undefined) return;
      assert.equal(typeof session.id, "string");
      assert.ok(session.ttlMs === undefined || Number.isFinite(session.ttlMs), `${session.ttlMs}`);
      assert.ok(Number.isFinite(session.lockDelayMs) && session.lockDelayMs >= 0);
      assert.ok(session.behavior === "release" || session.behavior === "delete");
      assert.ok(isStringList(session.nodeChecks), JSON.stringify(session.nodeChecks));
      assert.ok(isStringList(session.serviceChecks));
      assert.ok(isIndex(session.createIndex), `${session.createIndex}`);
    }),
  );
});

Deno.test("decodeHealthEntry returns a typed instance or throws TypeError, for any JSON", async (t) => {
  await checkProperty(
    t,
    fc.property(answers(HEALTH_ENTRY), (json) => {
      const entry = decodeOrRefuse(() => decodeHealthEntry(json, 0, { checkOutput: true }));
      if (entry === undefined) return;
      for (const field of [entry.node, entry.address, entry.serviceId, entry.serviceName]) {
        assert.equal(typeof field, "string");
      }
      // 0: a service registered without a port.
      assert.ok(
        Number.isInteger(entry.port) && entry.port >= 0 && entry.port <= 65_535,
        `port ${entry.port}`,
      );
      assert.ok(isStringList(entry.tags));
      assert.ok(Object.values(entry.meta).every((value) => typeof value === "string"));
      assert.ok(["passing", "warning", "critical"].includes(entry.status));
      for (const check of entry.checks) {
        assert.equal(typeof check.id, "string");
        assert.ok(["passing", "warning", "critical"].includes(check.status));
      }
    }),
  );
});

Deno.test("decodeEntry returns a typed KV entry or throws TypeError, for any JSON", async (t) => {
  await checkProperty(
    t,
    fc.property(answers(KV_ENTRY), (json) => {
      const entry = decodeOrRefuse(() => decodeEntry(json));
      if (entry === undefined) return;
      assert.equal(typeof entry.key, "string");
      assert.equal(typeof entry.value, "string");
      assert.ok(entry.bytes instanceof Uint8Array);
      assert.ok(entry.session === undefined || typeof entry.session === "string");
      for (const index of [entry.lockIndex, entry.modifyIndex, entry.createIndex]) {
        assert.ok(isIndex(index), `index ${index}`);
      }
      assert.ok(Number.isInteger(entry.flags) && entry.flags >= 0, `flags ${entry.flags}`);
    }),
  );
});

Deno.test("decodeAgentSelf returns the node's name and address or throws TypeError, for any JSON", async (t) => {
  await checkProperty(
    t,
    fc.property(answers(AGENT_SELF), (json) => {
      const node = decodeOrRefuse(() => decodeAgentSelf(json));
      if (node === undefined) return;
      assert.equal(typeof node.name, "string");
      assert.equal(typeof node.address, "string");
    }),
  );
});

/** A body Consul might send: JSON lists of mutants, arbitrary JSON, or arbitrary text. */
function bodies(valid: unknown): fc.Arbitrary<string> {
  return fc.oneof(
    fc.array(answers(valid), { maxLength: 3 }).map((list) => JSON.stringify(list)),
    answers(valid).map((json) => String(JSON.stringify(json))),
    fc.string({ unit: "binary", maxLength: 200 }),
  );
}

Deno.test("the client rejects with a ConsulError only, whatever Consul answers to a KV, health or session read", async (t) => {
  const index = fc.oneof(
    fc.constant(undefined),
    fc.nat().map(String),
    fc.string({ maxLength: 12 }),
  );
  await checkProperty(
    t,
    fc.asyncProperty(
      fc.constantFrom("kv", "health", "session"),
      fc.constantFrom(200, 404, 403, 429, 500),
      index,
      fc.oneof(bodies(KV_ENTRY), bodies(HEALTH_ENTRY), bodies(SESSION)),
      async (endpoint, status, consulIndex, body) => {
        const headers: Record<string, string> = { "Content-Type": "application/json" };
        if (consulIndex !== undefined) headers["X-Consul-Index"] = consulIndex;
        const fetch = new ScriptedFetch([new Response(body, { status, headers })]);
        using client = new ConsulClient({
          connection: { baseUrl: "http://consul.test:8500" },
          fetch: fetch.fetch,
        });
        try {
          if (endpoint === "kv") await readKey(client, "resec/.lock");
          else if (endpoint === "health") await healthService(client, "redis-master");
          else await sessionInfo(client, SESSION.ID);
        } catch (error) {
          if (!(error instanceof ConsulError)) throw error;
        }
      },
    ),
    { runs: 500 },
  );
});
