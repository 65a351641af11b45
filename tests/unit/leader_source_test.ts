/**
 * masterOfUnannouncedHolder: which catalog entry is the master of a lock holder that announced
 * nothing (a Go resec), and when the catalog does not tell.
 */
import assert from "node:assert/strict";
import { masterOfUnannouncedHolder } from "../../lib/agent/watch/leader_source.ts";
import type { HealthEntry } from "../../lib/consul/health.ts";

function entry(overrides: Partial<HealthEntry> & { port: number }): HealthEntry {
  return {
    node: "node-1",
    address: "10.0.0.1",
    serviceId: `redis@:${overrides.port}`,
    serviceName: "redis-master",
    tags: [],
    meta: {},
    status: "passing",
    checks: [],
    ...overrides,
  };
}

Deno.test("the one passing Go master is the holder's", () => {
  assert.deepEqual(masterOfUnannouncedHolder([entry({ port: 6379 })], undefined), {
    host: "10.0.0.1",
    port: 6379,
  });
});

Deno.test("a Go master still in 'warning' (just promoted, not yet confirmed) names nobody yet", () => {
  assert.equal(
    masterOfUnannouncedHolder([entry({ port: 6379, status: "warning" })], undefined),
    undefined,
  );
  assert.equal(masterOfUnannouncedHolder([], undefined), undefined);
});

Deno.test("a master registered by a resec agent is never the master of a holder that announced nothing", () => {
  const stale = entry({ port: 6380, meta: { resec_version: "0.1.0" } });
  assert.deepEqual(masterOfUnannouncedHolder([stale, entry({ port: 6379 })], undefined), {
    host: "10.0.0.1",
    port: 6379,
  });
  assert.equal(masterOfUnannouncedHolder([stale], undefined), undefined);
});

Deno.test("two passing Go masters: the one on the holder's node, else nobody", () => {
  const lostLock = entry({ port: 6379, node: "node-1", address: "10.0.0.1" });
  const holder = entry({ port: 6379, node: "node-2", address: "10.0.0.2" });
  assert.deepEqual(masterOfUnannouncedHolder([lostLock, holder], "node-2"), {
    host: "10.0.0.2",
    port: 6379,
  });
  assert.equal(masterOfUnannouncedHolder([lostLock, holder], undefined), undefined);
  assert.equal(masterOfUnannouncedHolder([lostLock], "node-2"), undefined);
});
