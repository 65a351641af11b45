/**
 * Regressions found by fuzzing Consul's answers (tests/fuzz/consul_decode_test.ts): shapes the decoders
 * took for valid and passed on as numbers or statuses they are not.
 */
import assert from "node:assert/strict";
import { decodeHealthEntry } from "../../lib/consul/health.ts";
import { decodeEntry } from "../../lib/consul/kv.ts";
import { decodeSession } from "../../lib/consul/session.ts";

const HEALTH_ENTRY = {
  Node: { Node: "node-1", Address: "10.0.0.1" },
  Service: { ID: "redis@:6379", Service: "redis-master", Tags: ["master"], Port: 6379 },
  Checks: [{ CheckID: "serfHealth", Name: "Serf Health Status", Status: "passing" }],
};

const KV_ENTRY = {
  Key: "resec/.lock",
  Value: null,
  LockIndex: 3,
  ModifyIndex: 120,
  CreateIndex: 100,
  Flags: 3304740253564472344,
};

const SESSION = {
  ID: "adf4238a-882b-9ddc-4a9d-5b6758e4159e",
  LockDelay: 1_000_000_000,
  NodeChecks: ["serfHealth"],
  CreateIndex: 10,
};

Deno.test("a check status named after an Object property (__proto__, toString) is refused, not taken for a status", () => {
  for (const status of ["__proto__", "toString", "constructor", "hasOwnProperty"]) {
    const entry = { ...HEALTH_ENTRY, Checks: [{ CheckID: "serfHealth", Status: status }] };
    assert.throws(() => decodeHealthEntry(entry), TypeError, status);
  }
});

Deno.test("a service port outside 0–65535 or not whole is refused", () => {
  for (const port of [-1, 65_536, 6379.5, 1e308]) {
    const entry = { ...HEALTH_ENTRY, Service: { ...HEALTH_ENTRY.Service, Port: port } };
    assert.throws(() => decodeHealthEntry(entry), /Service\.Port to be a port number/);
  }
  const portless = { ...HEALTH_ENTRY, Service: { ...HEALTH_ENTRY.Service, Port: 0 } };
  assert.equal(decodeHealthEntry(portless).port, 0);
});

Deno.test("KV indexes must be whole numbers below 2^53; the flags may be any uint64", () => {
  for (const index of [1e308, -1, 1.5, 2 ** 53]) {
    for (const field of ["LockIndex", "ModifyIndex", "CreateIndex"]) {
      assert.throws(() => decodeEntry({ ...KV_ENTRY, [field]: index }), TypeError, `${field}`);
    }
  }
  // The Go resec's lock flags are above 2^53: JSON.parse rounds them, and that is fine.
  assert.equal(decodeEntry(KV_ENTRY).flags, 3304740253564472344);
  assert.throws(() => decodeEntry({ ...KV_ENTRY, Flags: -1 }), /Flags to be a whole number/);
});

Deno.test("a session's node checks must be strings, its lock delay and index whole numbers", () => {
  assert.deepEqual(decodeSession(SESSION).nodeChecks, ["serfHealth"]);
  assert.deepEqual(decodeSession({ ...SESSION, NodeChecks: undefined, Checks: ["a"] }).nodeChecks, [
    "a",
  ]);
  assert.throws(() => decodeSession({ ...SESSION, NodeChecks: [{}] }), /NodeChecks\[0\]/);
  assert.throws(() => decodeSession({ ...SESSION, LockDelay: -5 }), /LockDelay/);
  assert.throws(() => decodeSession({ ...SESSION, CreateIndex: 1e308 }), /CreateIndex/);
});
