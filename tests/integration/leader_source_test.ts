/**
 * LeaderSource against a real Consul when a Go resec holds the lock: it writes an empty value, so the
 * lock is held by someone whose address only the health catalog can tell.
 */
import assert from "node:assert/strict";
import { LeaderSource } from "../../lib/agent/watch/leader_source.ts";
import { ConsulClient } from "../../lib/consul/client.ts";
import { acquireKey, releaseKey } from "../../lib/consul/kv.ts";
import { registerService, updateCheck } from "../../lib/consul/service.ts";
import { createSession, destroySession } from "../../lib/consul/session.ts";
import { silentLogger } from "../../lib/log.ts";
import { ConsulServer, delay, waitFor } from "../support/mod.ts";
import { masterService } from "../support/services.ts";

const KEY = "resec/.lock";
const GO_LOCK_FLAGS = 3304740253564472344n;

Deno.test("a lock a Go resec holds is never read as free: its master is unknown until the catalog shows it passing", async () => {
  await using consul = await ConsulServer.start();
  using client = new ConsulClient({ connection: { baseUrl: consul.url } });
  // The Go holder: its session, the key with an empty value and its flags, and its new master
  // registration, whose check it registers as "warning" and turns passing one tick later.
  const session = await createSession(client, {
    name: "resec",
    ttlMs: 15_000,
    lockDelayMs: 0,
    behavior: "release",
  });
  assert.ok(await acquireKey(client, KEY, session, "", { flags: GO_LOCK_FLAGS }));
  const master = { ...masterService(), id: "redis@:6379", address: undefined, tags: [] };
  await registerService(client, master);
  // A passing master entry a resec agent left (it lost the lock): never the Go holder's.
  await registerService(client, {
    ...masterService(),
    id: "redis@127.0.0.1:6390",
    port: 6390,
    meta: { resec_version: "0.1.0" },
    check: { ...masterService().check, id: "stale:replication", initialStatus: "passing" },
  });

  await using source = new LeaderSource({
    client,
    lockKey: KEY,
    masterService: { name: "redis-master" },
    waitMs: 5_000,
    logger: silentLogger,
  });
  await waitFor(() => source.reachable() === true, { message: "the first answer" });
  // Long enough for the catalog watch to have answered.
  await delay(500);
  assert.equal(source.leader(), undefined, "held by a Go resec: not free, address unknown");
  assert.equal(source.vacancy(), 0);

  await updateCheck(client, master.check.id, "passing", "");
  const leader = await waitFor(() => source.leader() ?? false, {
    timeoutMs: 5_000,
    message: "the Go master to be named once its check passes",
  });
  assert.deepEqual(leader.address, { host: "127.0.0.1", port: 6379 });
  assert.equal(leader.session, session);

  assert.ok(await releaseKey(client, KEY, session, "", { flags: GO_LOCK_FLAGS }));
  await waitFor(() => source.leader() === null, { message: "the released lock to read free" });
  await destroySession(client, session);
});
