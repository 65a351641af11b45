/**
 * ServiceRegistrar: what reaches the Consul agent for each intent, with the catalog replaced by an
 * in-memory recorder of the registrar's own port (no Consul involved: this is the unit's boundary).
 */
import assert from "node:assert/strict";
import { type CatalogPort, ServiceRegistrar } from "../../lib/agent/apply/registrar.ts";
import type { ServiceDefinition } from "../../lib/consul/service.ts";
import { silentLogger } from "../../lib/log.ts";
import type { CheckStatus, Role } from "../../lib/reconciler/model.ts";

class UnknownCheck extends Error {}

function recorder() {
  const calls: string[] = [];
  let forgetChecks = false;
  const catalog: CatalogPort = {
    register: (service) => {
      calls.push(`register ${service.name} ${service.check.initialStatus}`);
      return Promise.resolve();
    },
    updateCheck: (id, status, output) => {
      if (forgetChecks) {
        forgetChecks = false;
        return Promise.reject(new UnknownCheck(id));
      }
      calls.push(`update ${status} ${output}`);
      return Promise.resolve();
    },
    deregister: (id) => {
      calls.push(`deregister ${id}`);
      return Promise.resolve();
    },
    isUnknownCheck: (error) => error instanceof UnknownCheck,
  };
  const registrar = new ServiceRegistrar({
    catalog,
    definitionFor: (role: Role, status: CheckStatus, output: string): ServiceDefinition => ({
      id: "redis@10.0.0.1:6379",
      name: `redis-${role}`,
      tags: [],
      port: 6379,
      check: {
        id: "redis@10.0.0.1:6379:replication-status-check",
        name: `Resec: ${role} replication status`,
        ttlMs: 10_000,
        deregisterCriticalAfterMs: 60_000,
        initialStatus: status,
        output,
      },
    }),
    heartbeatMs: 3_000,
    logger: silentLogger,
  });
  return { calls, registrar, forget: () => forgetChecks = true };
}

const MASTER = {
  kind: "registered",
  role: "master",
  status: "passing",
  output: "role=master",
} as const;

Deno.test("a first registration carries its status, so a new master never shows as warning", async () => {
  const { calls, registrar } = recorder();
  await registrar.apply(MASTER, 0);
  assert.deepEqual(calls, ["register redis-master passing"]);
  assert.deepEqual(registrar.registration(), { role: "master", status: "passing" });
});

Deno.test("the same intent heartbeats the check only once the heartbeat interval has passed", async () => {
  const { calls, registrar } = recorder();
  await registrar.apply(MASTER, 0);
  await registrar.apply(MASTER, 1_000);
  await registrar.apply({ kind: "unchanged" }, 2_000);
  assert.equal(calls.length, 1, "nothing sent within the interval");
  await registrar.apply({ kind: "unchanged" }, 3_000);
  assert.deepEqual(calls.slice(1), ["update passing role=master"]);
});

Deno.test("a tick that comes a little early still refreshes the check, so a refresh never slips a whole tick", async () => {
  const { calls, registrar } = recorder();
  await registrar.apply(MASTER, 0);
  await registrar.apply({ kind: "unchanged" }, 2_990);
  assert.deepEqual(calls.slice(1), ["update passing role=master"]);
});

Deno.test("a changed output or status is sent at once", async () => {
  const { calls, registrar } = recorder();
  await registrar.apply(MASTER, 0);
  await registrar.apply({ ...MASTER, output: "role=master replicas=2" }, 10);
  await registrar.apply({ ...MASTER, status: "critical", output: "down" }, 20);
  assert.deepEqual(calls.slice(1), [
    "update passing role=master replicas=2",
    "update critical down",
  ]);
  assert.equal(registrar.registration()?.status, "critical");
});

Deno.test("a role change registers the new role under the same service ID", async () => {
  const { calls, registrar } = recorder();
  await registrar.apply(MASTER, 0);
  await registrar.apply({ kind: "registered", role: "slave", status: "warning", output: "x" }, 10);
  assert.deepEqual(calls, ["register redis-master passing", "register redis-slave warning"]);
});

Deno.test("a Consul agent that forgot the check gets a fresh registration", async () => {
  const { calls, registrar, forget } = recorder();
  await registrar.apply(MASTER, 0);
  forget();
  await registrar.apply({ kind: "unchanged" }, 5_000);
  assert.deepEqual(calls, ["register redis-master passing", "register redis-master passing"]);
});

Deno.test("absent deregisters once and then does nothing", async () => {
  const { calls, registrar } = recorder();
  await registrar.apply(MASTER, 0);
  await registrar.apply({ kind: "absent" }, 10);
  await registrar.apply({ kind: "absent" }, 20);
  assert.deepEqual(calls, ["register redis-master passing", "deregister redis@10.0.0.1:6379"]);
  assert.equal(registrar.registration(), undefined);
});
