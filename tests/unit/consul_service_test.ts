/**
 * Service registration against a scripted Consul: what the registration itself carries, which a
 * Consul agent restores after a restart, and what the live check says.
 */
import assert from "node:assert/strict";
import { ConsulClient } from "../../lib/consul/client.ts";
import { registerService } from "../../lib/consul/service.ts";
import { consulJson, ScriptedFetch } from "../../lib/consul/testing.ts";
import { ManualClock } from "../../lib/clock.ts";

function clientOf(fetch: ScriptedFetch) {
  return new ConsulClient({
    connection: { baseUrl: "http://consul.test:8500" },
    fetch: fetch.fetch,
    clock: new ManualClock(0),
  });
}

const CHECK = {
  id: "redis@:6379:replication-status-check",
  name: "Resec: master replication status",
  ttlMs: 10_000,
  deregisterCriticalAfterMs: 3_600_000,
};

Deno.test("a master registers critical in the definition a rebooted Consul agent restores, and passing live", async () => {
  const fetch = new ScriptedFetch([consulJson(null), consulJson(null)]);
  await registerService(clientOf(fetch), {
    id: "redis@:6379",
    name: "redis-master",
    tags: [],
    port: 6379,
    check: { ...CHECK, initialStatus: "passing", persistedStatus: "critical" },
  });
  const [register, update] = fetch.requests;
  assert.equal(register!.url.pathname, "/v1/agent/service/register");
  assert.equal(JSON.parse(register!.body as string).Check.Status, "critical");
  assert.equal(
    decodeURIComponent(update!.url.pathname),
    `/v1/agent/check/update/${CHECK.id}`,
  );
  assert.equal(JSON.parse(update!.body as string).Status, "passing");
});

Deno.test("without a persisted status the registration carries the initial one and needs no update", async () => {
  const fetch = new ScriptedFetch([consulJson(null)]);
  await registerService(clientOf(fetch), {
    id: "redis-agent@:6379",
    name: "redis-agent",
    tags: [],
    port: 6379,
    check: { ...CHECK, initialStatus: "passing" },
  });
  assert.equal(fetch.requests.length, 1);
  assert.equal(JSON.parse(fetch.requests[0]!.body as string).Check.Status, "passing");
});
