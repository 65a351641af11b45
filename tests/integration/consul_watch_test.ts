/**
 * Blocking watches against a real Consul: a service's health and a KV key, seen as they change, with
 * few requests (no polling), and recovery from a Consul restart.
 */
import assert from "node:assert/strict";
import { ConsulClient, type ConsulRequestEvent } from "../../lib/consul/client.ts";
import { ConsulUnreachableError } from "../../lib/consul/errors.ts";
import { type HealthEntry, watchHealthService } from "../../lib/consul/health.ts";
import { type KvEntry, putKey, readKey, watchKey, watchPrefix } from "../../lib/consul/kv.ts";
import { registerService, updateCheck } from "../../lib/consul/service.ts";
import type { BlockingWatch } from "../../lib/consul/watch.ts";
import { ConsulServer, delay, freePort } from "../support/mod.ts";
import { masterService } from "../support/services.ts";

/** Pulls values out of a watch one at a time, with a deadline on each. */
class Reader<T> {
  readonly #iterator: AsyncIterator<T>;
  constructor(watch: BlockingWatch<T>) {
    this.#iterator = watch[Symbol.asyncIterator]();
  }
  async next(timeoutMs = 5_000): Promise<T> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error(`no value within ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      const result = await Promise.race([this.#iterator.next(), timeout]);
      if (result.done) throw new Error("the watch ended");
      return result.value;
    } finally {
      clearTimeout(timer);
    }
  }
}

Deno.test("a health watch sees a service become passing, then critical, at once and without polling", async () => {
  await using consul = await ConsulServer.start();
  const events: ConsulRequestEvent[] = [];
  using client = new ConsulClient({
    connection: { baseUrl: consul.url },
    onRequest: (event) => events.push(event),
  });
  const service = masterService();
  await registerService(client, service);

  await using watch = watchHealthService(client, "redis-master", { waitMs: 60_000 });
  const reader = new Reader<HealthEntry[]>(watch);
  const first = await reader.next();
  assert.equal(first.length, 1);
  assert.equal(first[0]!.status, "warning");
  assert.equal(first[0]!.address, "127.0.0.1");
  assert.deepEqual(first[0]!.tags, ["master"]);

  const healthReads = () => events.filter((event) => event.endpoint === "health.service").length;
  const readsBefore = healthReads();
  let changedAt = performance.now();
  await updateCheck(client, service.check.id, "passing", "role:master");
  const passing = await reader.next();
  const passingMs = performance.now() - changedAt;
  assert.equal(passing[0]!.status, "passing");

  changedAt = performance.now();
  await updateCheck(client, service.check.id, "critical", "INFO failed");
  const critical = await reader.next();
  const criticalMs = performance.now() - changedAt;
  assert.equal(critical[0]!.status, "critical");
  const reads = healthReads() - readsBefore;
  console.log(
    `health watch: passing seen after ${passingMs.toFixed(0)} ms, critical after ` +
      `${criticalMs.toFixed(0)} ms, ${reads} blocking reads for 2 changes`,
  );
  assert.ok(passingMs < 1_000 && criticalMs < 1_000, "a blocking query answers on the change");
  assert.ok(reads <= 4, `no polling: ${reads} reads for two changes`);
});

Deno.test("a passing-only watch drops an instance whose check turns critical", async () => {
  await using consul = await ConsulServer.start();
  using client = new ConsulClient({ connection: { baseUrl: consul.url } });
  const check = {
    id: "r1:check",
    name: "replication",
    ttlMs: 30_000,
    deregisterCriticalAfterMs: 3_600_000,
    initialStatus: "passing" as const,
  };
  await registerService(client, { id: "r1", name: "redis", tags: ["master"], port: 6379, check });
  await using watch = watchHealthService(client, "redis", { tag: "master", passing: true });
  const reader = new Reader<HealthEntry[]>(watch);
  assert.equal((await reader.next()).length, 1);
  await updateCheck(client, "r1:check", "critical", "down");
  assert.deepEqual(await reader.next(), []);
});

Deno.test("a KV watch sees a key appear and change at once, with one blocking read per change", async () => {
  await using consul = await ConsulServer.start();
  const events: ConsulRequestEvent[] = [];
  using client = new ConsulClient({
    connection: { baseUrl: consul.url },
    onRequest: (event) => events.push(event),
  });
  await using watch = watchKey(client, "resec/.lock", { waitMs: 60_000 });
  const reader = new Reader<KvEntry | undefined>(watch);
  assert.equal(await reader.next(), undefined, "absent at first");
  const start = performance.now();
  await putKey(client, "resec/.lock", '{"address":"10.0.0.1:6379"}');
  assert.equal((await reader.next())?.value, '{"address":"10.0.0.1:6379"}');
  await putKey(client, "resec/.lock", '{"address":"10.0.0.2:6379"}');
  assert.equal((await reader.next())?.value, '{"address":"10.0.0.2:6379"}');
  const elapsed = performance.now() - start;
  const reads = events.filter((event) => event.endpoint === "kv.read").length;
  console.log(`KV watch: 2 changes seen in ${elapsed.toFixed(0)} ms with ${reads} reads in all`);
  assert.ok(elapsed < 1_500);
  assert.ok(reads <= 4, `${reads} reads`);
});

Deno.test("a prefix watch sees keys added under the prefix", async () => {
  await using consul = await ConsulServer.start();
  using client = new ConsulClient({ connection: { baseUrl: consul.url } });
  await using watch = watchPrefix(client, "resec/");
  const reader = new Reader<KvEntry[]>(watch);
  assert.deepEqual(await reader.next(), []);
  await putKey(client, "resec/a", "1");
  assert.deepEqual((await reader.next()).map((entry) => entry.key), ["resec/a"]);
  await putKey(client, "elsewhere/b", "2"); // outside the prefix: no wake-up for the reader
  await putKey(client, "resec/b", "2");
  assert.deepEqual((await reader.next()).map((entry) => entry.key), ["resec/a", "resec/b"]);
});

Deno.test("a watch recovers by itself when Consul is stopped mid-watch and started again", async () => {
  await using consul = await ConsulServer.start();
  using client = new ConsulClient({ connection: { baseUrl: consul.url } });
  const errors: unknown[] = [];
  await using watch = watchKey(client, "resec/.lock", {
    waitMs: 60_000,
    backoff: { initialMs: 100, maxMs: 500 },
    onError: (error) => errors.push(error),
  });
  const reader = new Reader<KvEntry | undefined>(watch);
  assert.equal(await reader.next(), undefined);
  await putKey(client, "resec/.lock", "before");
  assert.equal((await reader.next())?.value, "before");

  await consul.stop(); // the blocking read in flight fails; retries fail while Consul is down
  await delay(1_000);
  assert.ok(errors.length >= 1, "the outage was noticed");
  assert.ok(errors.every((error) => error instanceof ConsulUnreachableError), String(errors));
  await consul.restart(); // same address; a dev agent comes back empty, with a lower index
  const restartedAt = performance.now();
  assert.equal(await reader.next(), undefined, "the watch sees the emptied store");
  const recoveredMs = performance.now() - restartedAt;
  await putKey(client, "resec/.lock", "after");
  assert.equal((await reader.next())?.value, "after");
  console.log(
    `watch recovered ${recoveredMs.toFixed(0)} ms after Consul came back; ` +
      `${errors.length} failed reads during the 1 s outage`,
  );
  assert.ok(recoveredMs < 1_000, `recovered in ${recoveredMs} ms`);
});

Deno.test("a watch recovers within one wait when Consul restarts between two of its reads", async () => {
  await using consul = await ConsulServer.start();
  using client = new ConsulClient({ connection: { baseUrl: consul.url } });
  // The restart may fall between two reads, so no read fails: the next one then blocks on an index
  // the new agent has not reached, and only the end of its wait reveals the index went backwards.
  const waitMs = 3_000;
  await using watch = watchKey(client, "resec/.lock", { waitMs });
  const reader = new Reader<KvEntry | undefined>(watch);
  assert.equal(await reader.next(), undefined);
  await putKey(client, "resec/.lock", "before");
  assert.equal((await reader.next())?.value, "before");
  await consul.restart();
  const restartedAt = performance.now();
  assert.equal(await reader.next(10_000), undefined, "the watch sees the emptied store");
  const recoveredMs = performance.now() - restartedAt;
  console.log(
    `watch recovered ${recoveredMs.toFixed(0)} ms after a quick restart (wait ${waitMs} ms)`,
  );
  assert.ok(recoveredMs < waitMs * (1 + 1 / 16) + 1_000, `recovered in ${recoveredMs} ms`);
  await putKey(client, "resec/.lock", "after");
  assert.equal((await reader.next())?.value, "after");
});

Deno.test("a request to an address where nothing listens fails fast as unreachable", async () => {
  using client = new ConsulClient({ connection: { baseUrl: `http://127.0.0.1:${freePort()}` } });
  const start = performance.now();
  const error = await readKey(client, "resec/.lock").catch((error) => error);
  const elapsed = performance.now() - start;
  assert.ok(error instanceof ConsulUnreachableError, String(error));
  assert.match(error.message, /^Cannot reach Consul at http:\/\/127\.0\.0\.1:\d+: .*refused/i);
  assert.ok(elapsed < 1_000, `failed in ${elapsed} ms`);
});
