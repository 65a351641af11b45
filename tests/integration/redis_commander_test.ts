/**
 * RedisCommander against real redis-server processes: promote/demote round trips, resync from a new
 * master, client kills that spare replication and our own connections, FAILOVER under a live writer,
 * write fencing and deadlines against a frozen server.
 */
import assert from "node:assert/strict";
import type { Redis } from "ioredis";
import { CapturingLogger } from "../../lib/log.ts";
import { RedisCommander } from "../../lib/redis/commander.ts";
import type { RedisConnectionConfig } from "../../lib/redis/connection.ts";
import { RedisCommandError, RedisTimeoutError } from "../../lib/redis/errors.ts";
import {
  type RedisObservation,
  RedisObserver,
  type UpObservation,
} from "../../lib/redis/observer.ts";
import { delay, RedisServer, waitFor } from "../support/mod.ts";

const TIMEOUT_MS = 1_000;

function connectionTo(server: RedisServer): RedisConnectionConfig {
  return { host: server.host, port: server.port };
}

function commanderFor(server: RedisServer, logger = new CapturingLogger()): RedisCommander {
  return new RedisCommander({ connection: connectionTo(server), timeoutMs: TIMEOUT_MS, logger });
}

const isUp = (o: RedisObservation): o is UpObservation => o.kind === "up";

async function linkUp(replica: RedisServer, master: RedisServer): Promise<void> {
  await waitFor(async () => {
    const info = await replica.info();
    return info.master_link_status === "up" && info.master_port === String(master.port);
  }, { message: `${replica.address} to link up with ${master.address}` });
}

Deno.test("promote makes a replica a writable master, and replicateFrom makes the old master its replica", async () => {
  await using a = await RedisServer.start();
  await using b = await RedisServer.start();
  await using commandA = commanderFor(a);
  await using commandB = commanderFor(b);

  await commandB.replicateFrom(a);
  await linkUp(b, a);
  await a.cli("SET", "from-a", "1");
  await waitFor(async () => (await b.cli("GET", "from-a")) === "1");
  assert.match(await b.cli("SET", "x", "1"), /READONLY/);

  await commandB.promote();
  assert.equal((await b.info()).role, "master");
  assert.equal(await b.cli("SET", "from-b", "2"), "OK");

  await commandA.replicateFrom(b);
  await linkUp(a, b);
  await waitFor(async () => (await a.cli("GET", "from-b")) === "2");
  assert.equal((await a.info()).role, "slave");

  // And back again.
  await commandA.promote();
  await commandB.replicateFrom(a);
  await linkUp(b, a);
  assert.equal((await a.info()).role, "master");
  assert.equal(await b.cli("GET", "from-b"), "2");
});

Deno.test("a replica pointed at a new master resyncs its data and is observed with the link up", async () => {
  await using oldMaster = await RedisServer.start();
  await using newMaster = await RedisServer.start();
  await using replica = await RedisServer.start({ replicaOf: oldMaster });
  await linkUp(replica, oldMaster);
  await oldMaster.cli("SET", "only-on-old", "1");
  await newMaster.cli("SET", "only-on-new", "2");
  await waitFor(async () => (await replica.cli("GET", "only-on-old")) === "1");

  await using observer = new RedisObserver({
    connection: connectionTo(replica),
    intervalMs: 100,
    timeoutMs: TIMEOUT_MS,
  });
  observer.start();
  await using commander = commanderFor(replica);
  await commander.replicateFrom(newMaster);

  const linked = await observer.waitFor(
    (o) => isUp(o) && o.info.masterPort === newMaster.port && o.info.masterLinkUp,
    { timeoutMs: 10_000 },
  ) as UpObservation;
  assert.equal(linked.info.role, "replica");
  assert.equal(linked.info.masterHost, newMaster.host);
  assert.equal(linked.info.masterSyncInProgress, false);
  assert.equal(await replica.cli("GET", "only-on-new"), "2");
  assert.equal(await replica.cli("GET", "only-on-old"), "", "a full resync replaced the old data");
});

Deno.test("replicateFrom disconnects the applications but not the commander, the observer, nor any replication link", async () => {
  await using newMaster = await RedisServer.start();
  await using target = await RedisServer.start();
  await using chained = await RedisServer.start({ replicaOf: target });
  await linkUp(chained, target);
  await using commander = commanderFor(target);

  // First call: a real switch of master. Redis itself drops target's own replicas here (they must
  // follow the new history), so this part only checks the new link survives the client kill.
  await commander.replicateFrom(newMaster);
  await linkUp(target, newMaster);
  await linkUp(chained, target);
  await delay(300);
  assert.equal((await newMaster.info("stats")).sync_full, "1");
  assert.equal((await newMaster.info("stats")).sync_partial_ok, "0", "the new link was never cut");

  const seen: RedisObservation[] = [];
  await using observer = new RedisObserver({
    connection: connectionTo(target),
    intervalMs: 100,
    timeoutMs: TIMEOUT_MS,
  });
  observer.onChange((o) => seen.push(o));
  observer.start();
  await observer.waitFor(isUp, { timeoutMs: 5_000 });

  const app = target.client();
  let appClosed = false;
  app.on("error", () => {});
  app.on("close", () => appClosed = true);
  try {
    assert.equal(await app.ping(), "PONG");
    const commanderId = await clientIdOf(target, "resec-commander");
    const replication = async () => ({
      upstream: await newMaster.info("stats"),
      downstream: await target.info("stats"),
    });
    const before = await replication();

    // Second call, same master: Redis keeps every link, so only CLIENT KILL can cut anything.
    const observerId = await clientIdOf(target, "resec-observer");
    const { clientsKilled } = await commander.replicateFrom(newMaster);
    assert.equal(clientsKilled, 1, `killed ${clientsKilled}: only the application`);
    await waitFor(() => appClosed, { message: "the application's connection to be closed" });
    await delay(300);

    // The commander kept its connection: same client id, still answering.
    await commander.pauseWrites(1);
    assert.equal(await clientIdOf(target, "resec-commander"), commanderId);
    // Neither target's link to its master nor chained's link to target was cut: no new sync of any
    // kind was served, and both links are up.
    const after = await replication();
    for (const side of ["upstream", "downstream"] as const) {
      for (const counter of ["sync_full", "sync_partial_ok"]) {
        assert.equal(after[side][counter], before[side][counter], `${side} ${counter}`);
      }
    }
    await linkUp(target, newMaster);
    await linkUp(chained, target);
    assert.equal((await target.info()).connected_slaves, "1");
    // The observer kept its connection (resec's own are spared) and never reported Redis down.
    assert.equal(await clientIdOf(target, "resec-observer"), observerId);
    await observer.waitFor((o) => isUp(o) && o.observedAt > Date.now() - 50, {
      timeoutMs: 5_000,
    });
    assert.deepEqual(seen.filter((o) => o.kind === "down"), []);
  } finally {
    app.disconnect();
  }
});

async function clientIdOf(server: RedisServer, name: string): Promise<string> {
  const list = await server.cli("CLIENT", "LIST");
  const line = list.split("\n").find((l) => l.includes(` name=${name} `));
  assert.ok(line, `no client named ${name} in:\n${list}`);
  return /id=(\d+)/.exec(line)![1]!;
}

Deno.test("FAILOVER TO between two real servers under a continuous writer loses no acknowledged write", async () => {
  await using a = await RedisServer.start();
  await using b = await RedisServer.start({ replicaOf: a });
  await linkUp(b, a);
  const logger = new CapturingLogger();
  await using commander = new RedisCommander({
    connection: connectionTo(a),
    timeoutMs: TIMEOUT_MS,
    logger,
  });

  // Writers append unique ids to the current master; a READONLY reply means "the master moved".
  const clients: Redis[] = [];
  const acked: string[] = [];
  let refused = 0;
  let stop = false;
  const writer = async (name: string) => {
    const toA = a.client({ commandTimeout: 10_000 });
    const toB = b.client({ commandTimeout: 10_000 });
    clients.push(toA, toB);
    let target = toA;
    for (let i = 0; !stop; i++) {
      const id = `${name}:${i}`;
      try {
        await target.set(`w:${id}`, id);
        acked.push(id);
      } catch (error) {
        refused++;
        if (/READONLY/.test(String(error))) target = toB;
        else await delay(5);
      }
    }
  };
  try {
    const writers = ["w1", "w2", "w3", "w4"].map(writer);
    await delay(300);
    const ackedBefore = acked.length;
    const result = await commander.failoverTo({ host: b.host, port: b.port }, 5_000);
    assert.equal(result.outcome, "completed", JSON.stringify(result));
    await delay(300);
    stop = true;
    await Promise.all(writers);

    assert.equal((await a.info()).role, "slave");
    assert.equal((await b.info()).role, "master");
    assert.ok(acked.length > ackedBefore, "writes went on after the failover");
    // Every acknowledged write is on the new master.
    const check = b.client();
    clients.push(check);
    const lost: string[] = [];
    for (let i = 0; i < acked.length; i += 1_000) {
      const ids = acked.slice(i, i + 1_000);
      const values = await check.mget(...ids.map((id) => `w:${id}`));
      values.forEach((value, j) => value !== ids[j] && lost.push(ids[j]!));
    }
    console.log(
      `FAILOVER under 4 writers: ${acked.length} writes acknowledged (${ackedBefore} before the ` +
        `failover), ${refused} refused, ${lost.length} lost; failover took ${result.durationMs} ms`,
    );
    assert.deepEqual(lost, []);
    assert.equal(Number(await b.cli("DBSIZE")), acked.length);
  } finally {
    stop = true;
    for (const client of clients) client.disconnect();
  }
});

Deno.test("FAILOVER to a frozen replica is aborted, and the master stays master and writable", async () => {
  await using a = await RedisServer.start();
  await using b = await RedisServer.start({ replicaOf: a });
  await linkUp(b, a);
  // FAILOVER TO needs the master to list the target as an online replica, not just the link up.
  await waitFor(async () => /state=online/.test((await a.info()).slave0 ?? ""), {
    message: "the master to list its replica online",
  });
  await using commander = commanderFor(a);
  await a.cli("SET", "k", "1");
  await b.pause();
  try {
    const started = performance.now();
    const result = await commander.failoverTo({ host: b.host, port: b.port }, 400);
    const elapsed = performance.now() - started;
    assert.equal(result.outcome, "aborted", JSON.stringify(result));
    assert.ok(elapsed < 400 + TIMEOUT_MS + 300, `${elapsed} ms`);
  } finally {
    b.resume();
  }
  const info = await a.info();
  assert.equal(info.role, "master");
  assert.equal(info.master_failover_state, "no-failover");
  assert.equal(await a.cli("SET", "k", "2"), "OK");
});

Deno.test("failoverTo a server that is not a replica fails with a RedisCommandError naming FAILOVER", async () => {
  await using a = await RedisServer.start();
  await using b = await RedisServer.start();
  await using commander = commanderFor(a);
  await assert.rejects(
    () => commander.failoverTo({ host: b.host, port: b.port }, 1_000),
    (error: unknown) =>
      error instanceof RedisCommandError && error.command === "FAILOVER" &&
      /Redis refused FAILOVER: ERR/.test(error.message),
  );
});

Deno.test("pauseWrites holds writes while reads go on, and unpauseWrites releases them", async () => {
  await using redis = await RedisServer.start();
  await using commander = commanderFor(redis);
  const app = redis.client({ commandTimeout: 10_000 });
  try {
    await app.set("k", "before");
    await commander.pauseWrites(10_000);
    let written = false;
    const write = app.set("k", "after").then(() => written = true);
    const reader = redis.client();
    try {
      assert.equal(await reader.get("k"), "before");
    } finally {
      reader.disconnect();
    }
    await delay(200);
    assert.equal(written, false, "the write waits while paused");
    await commander.unpauseWrites();
    await write;
    assert.equal(await app.get("k"), "after");
  } finally {
    app.disconnect();
  }
});

Deno.test("a frozen Redis makes commands fail with RedisTimeoutError within the deadline, and they work after SIGCONT", async () => {
  await using redis = await RedisServer.start({ replicaOf: undefined });
  await using commander = commanderFor(redis);
  await commander.promote();
  await redis.pause();
  try {
    const started = performance.now();
    await assert.rejects(() => commander.promote(), RedisTimeoutError);
    const elapsed = performance.now() - started;
    assert.ok(elapsed < TIMEOUT_MS + 300, `gave up after ${elapsed} ms`);
    // A fresh connection attempt is bounded too (the frozen kernel still accepts TCP).
    await assert.rejects(() => commander.promote(), RedisTimeoutError);
  } finally {
    redis.resume();
  }
  await commander.promote();
  assert.equal((await redis.info()).role, "master");
});

Deno.test("a closed commander refuses commands", async () => {
  await using redis = await RedisServer.start();
  const commander = commanderFor(redis);
  await commander.promote();
  await commander.close();
  await assert.rejects(() => commander.promote(), /closed/);
});

Deno.test("replicateFrom on a restarted, empty master drops the full sync it had started to a replica with data", async () => {
  // Redis's default: the dataset goes out 5 s after a full sync is asked for.
  const options = { args: ["--repl-diskless-sync-delay", "5"] };
  await using a = await RedisServer.start(options);
  await using b = await RedisServer.start(options);
  await b.cli("REPLICAOF", a.host, String(a.port));
  const pipeline = a.client();
  try {
    for (let i = 0; i < 100; i++) await pipeline.set(`k${i}`, "v");
  } finally {
    pipeline.disconnect();
  }
  await waitFor(async () => Number(await b.cli("DBSIZE")) === 100, { message: "b to sync" });
  await a.kill();
  await a.restart();
  // b reconnects within a second and asks the empty a for a full sync, which a delays.
  await waitFor(async () => (await a.info()).connected_slaves === "1", {
    message: "b to ask the restarted a for a sync",
  });
  const commander = commanderFor(a);
  try {
    await commander.replicateFrom({ host: b.host, port: b.port });
  } finally {
    await commander.close();
  }
  await delay(6_500);
  assert.equal(Number(await b.cli("DBSIZE")), 100, "b kept its data");
  assert.equal(Number(await a.cli("DBSIZE")), 0);
});

Deno.test("detach on a restarted, empty master, with no peer to point it at, drops the full sync it had started", async () => {
  const options = { args: ["--repl-diskless-sync-delay", "5"] };
  await using a = await RedisServer.start(options);
  await using b = await RedisServer.start(options);
  await b.cli("REPLICAOF", a.host, String(a.port));
  for (let i = 0; i < 100; i++) await a.cli("SET", `k${i}`, "v");
  await waitFor(async () => Number(await b.cli("DBSIZE")) === 100, { message: "b to sync" });
  await a.kill();
  await a.restart();
  await waitFor(async () => (await a.info()).connected_slaves === "1", {
    message: "b to ask the restarted a for a sync",
  });
  await using commander = commanderFor(a);
  assert.deepEqual(await commander.detach(), { synced: false });
  await delay(6_500);
  assert.equal(Number(await b.cli("DBSIZE")), 100, "b kept its data");
  assert.equal((await a.info()).role, "slave");
});

Deno.test("detach keeps a replica's data and history, serves no sync, and a peer promoted later resyncs it partially", async () => {
  await using master = await RedisServer.start();
  await using a = await RedisServer.start({ replicaOf: master });
  await using b = await RedisServer.start({ replicaOf: master });
  await linkUp(a, master);
  await linkUp(b, master);
  for (let i = 0; i < 100; i++) await master.cli("SET", `key-${i}`, "v");
  await waitFor(async () => (await a.cli("DBSIZE")) === "100" && (await b.cli("DBSIZE")) === "100");
  const history = (await a.info()).master_replid;
  await master.kill();
  await using commandA = commanderFor(a);
  await using commandB = commanderFor(b);
  assert.deepEqual(await commandA.detach(), { synced: true });
  assert.deepEqual(await commandB.detach(), { synced: true });

  // A replica of itself: read-only, the same replication ID, its data kept.
  const detached = await a.info();
  assert.equal(detached.role, "slave");
  assert.equal(`${detached.master_host}:${detached.master_port}`, `127.0.0.1:${a.port}`);
  assert.equal(detached.master_replid, history);
  assert.match(await a.cli("SET", "x", "1"), /READONLY/);
  // A Redis pointed at a detached one (a master back empty, say) gets no sync from it.
  await using empty = await RedisServer.start();
  await empty.cli("REPLICAOF", "127.0.0.1", String(a.port));
  await delay(1_500);
  assert.notEqual((await empty.info()).master_link_status, "up");
  assert.equal(await a.cli("DBSIZE"), "100");

  // a wins: b follows it and resyncs partially, with no full sync (no fork, no RDB transfer).
  await commandA.promote();
  await commandB.replicateFrom(a);
  await linkUp(b, a);
  const stats = await a.info("stats");
  assert.equal(stats.sync_full, "0");
  assert.equal(stats.sync_partial_ok, "1");
  assert.equal(await b.cli("DBSIZE"), "100");
});
