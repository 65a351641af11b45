/**
 * Decoding `/v1/health/service/<name>`: check outputs are kept only for the reads that ask for them,
 * so watches keep comparing answers without the heartbeat's noise.
 */
import assert from "node:assert/strict";
import { decodeHealthEntry } from "../../lib/consul/health.ts";

const ENTRY = {
  Node: { Node: "node-1", Address: "10.0.0.1" },
  Service: { ID: "redis@:6379", Service: "redis-slave", Tags: null, Port: 6379, Meta: null },
  Checks: [
    { CheckID: "serfHealth", Name: "Serf Health Status", Status: "passing", Output: "Agent alive" },
    {
      CheckID: "redis@:6379:replication-status-check",
      Name: "Resec: slave replication status",
      Status: "warning",
      ServiceID: "redis@:6379",
      Output: "role=slave master=10.0.0.2:6379 offset=12 link=syncing",
    },
  ],
};

Deno.test("a health entry leaves check outputs out unless asked, and keeps the worst status", () => {
  const plain = decodeHealthEntry(ENTRY);
  assert.equal(plain.status, "warning");
  assert.equal(plain.address, "10.0.0.1", "the node's address when the service has none");
  assert.ok(plain.checks.every((check) => !("output" in check)));

  const withOutput = decodeHealthEntry(ENTRY, 0, { checkOutput: true });
  assert.deepEqual(withOutput.checks.map((check) => check.output), [
    "Agent alive",
    "role=slave master=10.0.0.2:6379 offset=12 link=syncing",
  ]);
});
