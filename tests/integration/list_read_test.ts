/**
 * `resec list`'s reads against a real Consul, in both naming modes: the role services by name
 * (prefix mode) or by tag (tag mode), the agents' service, and only the group's own keys.
 */
import assert from "node:assert/strict";
import { parseConfig } from "../../lib/config.ts";
import { ConsulClient } from "../../lib/consul/client.ts";
import { putKey } from "../../lib/consul/kv.ts";
import { registerService, type ServiceDefinition } from "../../lib/consul/service.ts";
import { listGroup } from "../../lib/list/model.ts";
import { listSettings, readGroupRecords } from "../../lib/list/read.ts";
import { ConsulServer } from "../support/mod.ts";

function role(name: string, port: number, tags: string[]): ServiceDefinition {
  const id = `${name.replace(/-(master|slave)$/, "")}@127.0.0.1:${port}`;
  return {
    id,
    name,
    tags,
    port,
    check: {
      id: `${id}:replication-status-check`,
      name: "Resec: replication status",
      ttlMs: 30_000,
      deregisterCriticalAfterMs: 3_600_000,
      initialStatus: "passing",
    },
  };
}

async function listWith(consul: ConsulServer, env: Record<string, string>) {
  const parsed = parseConfig({
    REDIS_ADDR: "127.0.0.1:7001",
    CONSUL_HTTP_ADDR: consul.address,
    ...env,
  });
  assert.ok(parsed.ok, JSON.stringify(parsed));
  using client = new ConsulClient({ connection: parsed.config.consul });
  return listGroup(await readGroupRecords(client, parsed.config), listSettings(parsed.config));
}

Deno.test("prefix mode reads <prefix>-master and <prefix>-slave; tag mode tells the roles by tag", async () => {
  await using consul = await ConsulServer.start();
  using admin = new ConsulClient({ connection: { baseUrl: consul.url } });
  await registerService(admin, role("cache-master", 7001, []));
  await registerService(admin, role("cache-slave", 7002, []));
  await registerService(admin, role("sessions", 7011, ["primary", "v1"]));
  await registerService(admin, role("sessions", 7012, ["replica"]));
  await registerService(admin, role("sessions", 7013, ["replica"]));
  await putKey(admin, "cache/.lock.candidates/127.0.0.1:7002", "{}");
  await putKey(admin, "cache/.lock2.candidates/127.0.0.1:7999", "{}");

  const prefix = await listWith(consul, {
    CONSUL_SERVICE_PREFIX: "cache",
    CONSUL_LOCK_KEY: "cache/.lock",
  });
  assert.deepEqual(
    prefix.members.map((member) => [member.address, member.consulRole, member.invalidCandidacy]),
    [
      ["127.0.0.1:7001", "master", undefined],
      ["127.0.0.1:7002", "slave", '"address" is missing'],
    ],
    "another group's keys that share the lock key's spelling are left out",
  );
  assert.deepEqual(prefix.passingMasters, ["127.0.0.1:7001"]);

  const tagged = await listWith(consul, {
    CONSUL_SERVICE_NAME: "sessions",
    MASTER_TAGS: "primary",
    SLAVE_TAGS: "replica",
    CONSUL_LOCK_KEY: "sessions/.lock",
  });
  assert.deepEqual(
    tagged.members.map((member) => [member.address, member.consulRole]),
    [["127.0.0.1:7011", "master"], ["127.0.0.1:7012", "slave"], ["127.0.0.1:7013", "slave"]],
  );
  assert.equal(tagged.verdict, "degraded", "none publishes a candidacy");
});
