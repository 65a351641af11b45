/**
 * ACLs in default-deny mode: the least-privilege policy documented in docs/consul-acl.md (read from
 * that file, so the docs cannot drift from what is proven) works end to end, and a token without the
 * right gets a permission error that names the resource.
 */
import assert from "node:assert/strict";
import { ConsulClient } from "../../lib/consul/client.ts";
import { ConsulPermissionDeniedError } from "../../lib/consul/errors.ts";
import { healthService, watchHealthService } from "../../lib/consul/health.ts";
import { listPrefix, putKey, readKey } from "../../lib/consul/kv.ts";
import { ConsulLock } from "../../lib/consul/lock.ts";
import { deregisterService, registerService, updateCheck } from "../../lib/consul/service.ts";
import { sessionInfo } from "../../lib/consul/session.ts";
import { endEarlierRunSessions } from "../../lib/agent/earlier_run.ts";
import { localNode } from "../../lib/consul/node.ts";
import { CapturingLogger } from "../../lib/log.ts";
import { ConsulServer, waitFor } from "../support/mod.ts";
import { masterService, presenceService } from "../support/services.ts";

/** The HCL policy of docs/consul-acl.md: its first ```hcl block. */
function documentedPolicy(): string {
  const text = Deno.readTextFileSync(new URL("../../docs/consul-acl.md", import.meta.url));
  const match = /```hcl\n([\s\S]*?)```/.exec(text);
  if (!match) throw new Error("docs/consul-acl.md has no ```hcl block");
  return match[1]!;
}

/** The documented policy with one rule replaced; fails if the rule is not there to replace. */
function policyWith(rule: RegExp, replacement: string): string {
  const policy = documentedPolicy().replace(rule, replacement);
  assert.notEqual(policy, documentedPolicy(), `the documented policy has a rule matching ${rule}`);
  return policy;
}

const SERVICE = masterService();

function lockFor(client: ConsulClient, logger = new CapturingLogger()): ConsulLock {
  return new ConsulLock({
    client,
    key: "resec/.lock",
    sessionName: "resec",
    ttlMs: 2_000,
    lockDelayMs: 1_000,
    monitorRetries: 3,
    monitorRetryIntervalMs: 500,
    logger,
  });
}

Deno.test("a token from the documented least-privilege policy runs every resec call end to end", async () => {
  await using consul = await ConsulServer.start({ acl: true });
  const token = await consul.createToken("resec", documentedPolicy());
  const logger = new CapturingLogger();
  using client = new ConsulClient({ connection: { baseUrl: consul.url, token }, logger });

  // Lock: session, blocking reads, acquire, value update, consistent monitor, release.
  const hold = await lockFor(client, logger).acquire(
    '{"address":"127.0.0.1:6379"}',
    AbortSignal.timeout(10_000),
  );
  await hold.updateValue('{"address":"127.0.0.1:6380"}');
  assert.equal((await readKey(client, "resec/.lock")).entry?.session, hold.session);
  await putKey(client, "resec/state/node-1", "{}");
  assert.deepEqual(
    (await listPrefix(client, "resec/")).entries.map((entry) => entry.key),
    ["resec/.lock", "resec/state/node-1"],
  );

  // Service: register with its TTL check, heartbeat, discover through health, deregister.
  await registerService(client, SERVICE);
  await using watch = watchHealthService(client, "redis-master", { passing: true });
  const seen = watch[Symbol.asyncIterator]();
  assert.deepEqual((await seen.next()).value, [], "warning is not passing");
  await updateCheck(client, SERVICE.check.id, "passing", "role:master");
  assert.deepEqual(
    ((await seen.next()).value as { serviceId: string }[]).map((entry) => entry.serviceId),
    [SERVICE.id],
  );
  const tagged = await healthService(client, "redis-master", { passing: true, tag: "master" });
  assert.deepEqual(tagged.entries.map((entry) => entry.address), ["127.0.0.1"]);
  await deregisterService(client, SERVICE.id);
  assert.deepEqual((await healthService(client, "redis-master")).entries, []);

  assert.equal(hold.lost.aborted, false);
  await hold.release();
  assert.equal((await readKey(client, "resec/.lock")).entry?.session, undefined);
  assert.ok(!logger.text().includes(token), "the token never reaches a log line");
});

Deno.test("a token without key write gets a permission error naming the lock key", async () => {
  await using consul = await ConsulServer.start({ acl: true });
  const readOnlyKeys = policyWith(
    /key_prefix "resec\/" \{\s*policy = "write"\s*\}/,
    'key_prefix "resec/" { policy = "read" }',
  );
  const token = await consul.createToken("no-key-write", readOnlyKeys);
  const logger = new CapturingLogger();
  using client = new ConsulClient({ connection: { baseUrl: consul.url, token }, logger });

  const error = await lockFor(client, logger).acquire("v", AbortSignal.timeout(10_000)).catch(
    (error) => error,
  );
  assert.ok(error instanceof ConsulPermissionDeniedError, String(error));
  assert.equal(error.status, 403);
  console.log(`denied: ${error.message}`);
  assert.match(error.message, /^Permission denied writing key "resec\/\.lock": /);
  assert.match(error.message, /key:write/);
  assert.ok(!error.message.includes(token));
  assert.ok(!logger.text().includes(token));
  // The failed attempt cleaned up the session it made.
  assert.deepEqual(await consul.api("GET", "/v1/session/list"), []);
});

Deno.test("without node read the health endpoint shows no instance: why the policy grants it", async () => {
  await using consul = await ConsulServer.start({ acl: true });
  const full = await consul.createToken("resec", documentedPolicy());
  const withoutNodeRead = await consul.createToken(
    "no-node-read",
    policyWith(/node_prefix "" \{\s*policy = "read"\s*\}/, ""),
  );
  using client = new ConsulClient({ connection: { baseUrl: consul.url, token: full } });
  using blind = new ConsulClient({ connection: { baseUrl: consul.url, token: withoutNodeRead } });
  await registerService(client, {
    ...SERVICE,
    check: { ...SERVICE.check, initialStatus: "passing" },
  });
  assert.equal((await healthService(client, "redis-master")).entries.length, 1);
  assert.deepEqual((await healthService(blind, "redis-master")).entries, []);
});

Deno.test("an anonymous request is denied with a message naming what was attempted", async () => {
  await using consul = await ConsulServer.start({ acl: true });
  using client = new ConsulClient({ connection: { baseUrl: consul.url } });
  const error = await registerService(client, SERVICE).catch((error) => error);
  assert.ok(error instanceof ConsulPermissionDeniedError, String(error));
  assert.match(
    error.message,
    /^Permission denied registering service "redis-master" \(ID "redis@127\.0\.0\.1:6379"\): /,
  );
});

const PRESENCE = presenceService(30_000);

Deno.test("the documented policy lets the agent register its presence, tie its session to it, and end an earlier run's", async () => {
  await using consul = await ConsulServer.start({ acl: true });
  const token = await consul.createToken("resec", documentedPolicy());
  using client = new ConsulClient({ connection: { baseUrl: consul.url, token } });
  await registerService(client, PRESENCE);
  await updateCheck(client, PRESENCE.check.id, "passing", "alive");
  const lock = new ConsulLock({
    client,
    key: "resec/.lock",
    sessionName: "resec",
    ttlMs: 10_000,
    lockDelayMs: 0,
    serviceChecks: () => [PRESENCE.check.id],
    monitorRetries: 3,
    monitorRetryIntervalMs: 500,
  });
  const hold = await lock.acquire('{"address":"127.0.0.1:6379"}', AbortSignal.timeout(10_000));
  const logger = new CapturingLogger();
  // The documented policy grants no agent:read: the node is found through a throwaway session.
  const node = await localNode(client, { probeSession: { name: "resec", ttlMs: 10_000 } });
  assert.equal(node.name, (await sessionInfo(client, hold.session))?.node);
  assert.equal(node.address, "127.0.0.1");
  // A restarted agent's first act: end the sessions of its earlier run.
  const ended = await endEarlierRunSessions({
    client,
    node: node.name,
    sessionName: "resec",
    agentCheckId: PRESENCE.check.id,
    logger,
    deadlineMs: 3_000,
  });
  assert.equal(ended, 1);
  assert.match(logger.text(), /ended a lock session left by an earlier run/);
  assert.equal((await readKey(client, "resec/.lock")).entry?.session, undefined, "lock released");
  await waitFor(() => hold.lost.aborted, { timeoutMs: 5_000, message: "the holder to notice" });
});

Deno.test("a token limited to the role services is refused the presence with a clear error, and the lock still works untied", async () => {
  await using consul = await ConsulServer.start({ acl: true });
  const roleServicesOnly = policyWith(
    /service_prefix "redis" \{\s*policy = "write"\s*\}/,
    'service "redis-master" { policy = "write" }\nservice "redis-slave" { policy = "write" }',
  );
  const token = await consul.createToken("resec-roles-only", roleServicesOnly);
  using client = new ConsulClient({ connection: { baseUrl: consul.url, token } });
  const error = await registerService(client, PRESENCE).catch((error) => error);
  assert.ok(error instanceof ConsulPermissionDeniedError, String(error));
  assert.match(error.message, /redis-agent/);
  const hold = await lockFor(client).acquire("{}", AbortSignal.timeout(10_000));
  assert.deepEqual((await sessionInfo(client, hold.session))?.serviceChecks, []);
  await hold.release();
});
