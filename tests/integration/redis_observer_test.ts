/**
 * RedisObserver against real redis-server processes: healthy snapshots, kill -9, SIGSTOP/SIGCONT,
 * restarts, loading, connections killed under it, and a clean close.
 */
import assert from "node:assert/strict";
import { CapturingLogger } from "../../lib/log.ts";
import type { RedisConnectionConfig } from "../../lib/redis/connection.ts";
import {
  type DownObservation,
  isHealthy,
  isReady,
  type RedisObservation,
  RedisObserver,
  type RedisObserverOptions,
  type UpObservation,
} from "../../lib/redis/observer.ts";
import { RedisServer, waitFor } from "../support/mod.ts";

const INTERVAL_MS = 200;
/** The deadline of the SIGSTOP test, which measures it. */
const TIMEOUT_MS = 300;
/** Elsewhere a roomy deadline, so a loaded test machine does not look like a frozen Redis. */
const ROOMY_TIMEOUT_MS = 2_000;

function connectionTo(server: RedisServer): RedisConnectionConfig {
  return { host: server.host, port: server.port };
}

/** An observer with test timings that records every observation with the time it arrived. */
function observe(server: RedisServer, options: Partial<RedisObserverOptions> = {}) {
  const seen: { at: number; observation: RedisObservation }[] = [];
  const observer = new RedisObserver({
    connection: connectionTo(server),
    intervalMs: INTERVAL_MS,
    timeoutMs: ROOMY_TIMEOUT_MS,
    backoff: { initialMs: 20, maxMs: INTERVAL_MS },
    ...options,
  });
  observer.onChange((observation) => seen.push({ at: performance.now(), observation }));
  observer.start();
  return { observer, seen };
}

const isUp = (o: RedisObservation): o is UpObservation => o.kind === "up";
const isDown = (o: RedisObservation): o is DownObservation => o.kind === "down";

// Resources are not checked: the harness keeps its log pipes open across a test, and Deno does not see
// node:net sockets anyway; every client here is closed explicitly.
const sanitized = { sanitizeOps: true, sanitizeResources: false };

Deno.test({
  name: "observer reports a master's role, replica-priority and whether its dataset is empty",
  ...sanitized,
  fn: async () => {
    await using redis = await RedisServer.start({ args: ["--replica-priority", "7"] });
    const { observer } = observe(redis);
    await using _ = observer;
    assert.deepEqual(observer.current(), { kind: "unknown" });
    assert.equal(isReady(observer.current()), false);

    const first = await observer.waitFor(isUp, { timeoutMs: 5_000 });
    assert.equal(first.info.role, "master");
    assert.equal(first.replicaPriority, 7);
    assert.equal(first.datasetEmpty, true);
    assert.ok(isHealthy(first));
    assert.ok(isReady(first));

    await redis.cli("SET", "k", "v");
    const later = await observer.waitFor((o) => isUp(o) && !o.datasetEmpty, { timeoutMs: 5_000 });
    assert.equal((later as UpObservation).info.totalKeys, 1);
  },
});

Deno.test({
  name: "kill -9 of the observed Redis is reported down within milliseconds, long before a poll",
  ...sanitized,
  fn: async () => {
    await using redis = await RedisServer.start();
    // A 5 s interval (the HEALTHCHECK_INTERVAL default): only the closed connection can tell us.
    const { observer, seen } = observe(redis, { intervalMs: 5_000 });
    await using _ = observer;
    await observer.waitFor(isUp, { timeoutMs: 5_000 });

    const killedAt = performance.now();
    await redis.kill();
    await observer.waitFor(isDown, { timeoutMs: 5_000 });
    const down = seen.find((entry) => isDown(entry.observation))!;
    const detectionMs = down.at - killedAt;
    console.log(`kill -9 detected in ${detectionMs.toFixed(1)} ms (interval 5000 ms)`);
    assert.ok(detectionMs < 500, `detected after ${detectionMs} ms`);
    const observation = down.observation as DownObservation;
    // Refused, or reset when the reconnection raced the dying process.
    assert.match(observation.reason, /refused|reset|closed/);
    assert.ok(isReady(observation), "still ready: it answered before");
    assert.equal(isHealthy(observation), false);
  },
});

Deno.test({
  name:
    "a Redis that restarts after kill -9 is observed up again, with a new run id, by the same observer",
  ...sanitized,
  fn: async () => {
    await using redis = await RedisServer.start();
    const { observer } = observe(redis);
    await using _ = observer;
    const before = await observer.waitFor(isUp, { timeoutMs: 5_000 });
    await redis.kill();
    const down = await observer.waitFor(isDown, { timeoutMs: 5_000 });
    assert.equal(down.lastUp?.info.runId, before.info.runId);
    await redis.restart();
    const after = await observer.waitFor(isUp, { timeoutMs: 5_000 });
    assert.notEqual(after.info.runId, before.info.runId);
  },
});

Deno.test({
  name:
    "SIGSTOP is reported down within the timeout of the first unanswered poll, and SIGCONT recovers without restarting the observer",
  ...sanitized,
  fn: async () => {
    await using redis = await RedisServer.start();
    const { observer, seen } = observe(redis, { timeoutMs: TIMEOUT_MS });
    await using _ = observer;
    const before = await observer.waitFor(isUp, { timeoutMs: 5_000 });

    const frozenAt = performance.now();
    await redis.pause();
    try {
      await observer.waitFor(isDown, { timeoutMs: 5_000 });
      const downEntry = seen.find((entry) => entry.at > frozenAt && isDown(entry.observation))!;
      const lastUp = seen.filter((entry) => entry.at < downEntry.at && isUp(entry.observation))
        .at(-1)!;
      const sinceFreezeMs = downEntry.at - frozenAt;
      // The first poll that cannot be answered starts one interval after the last answered one.
      const sincePollMs = downEntry.at - (lastUp.at + INTERVAL_MS);
      console.log(
        `SIGSTOP detected ${sinceFreezeMs.toFixed(0)} ms after the freeze, ` +
          `${sincePollMs.toFixed(0)} ms after the first unanswered poll began ` +
          `(interval ${INTERVAL_MS} ms, timeout ${TIMEOUT_MS} ms)`,
      );
      assert.ok(sinceFreezeMs <= INTERVAL_MS + TIMEOUT_MS + 300, `${sinceFreezeMs} ms`);
      assert.ok(sincePollMs <= TIMEOUT_MS + 250, `${sincePollMs} ms`);
      assert.match((downEntry.observation as DownObservation).reason, /did not answer/);
    } finally {
      redis.resume();
    }
    const resumedAt = performance.now();
    const after = await observer.waitFor(isUp, { timeoutMs: 5_000 });
    console.log(`SIGCONT: up again after ${(performance.now() - resumedAt).toFixed(0)} ms`);
    assert.equal(after.info.runId, before.info.runId, "the same Redis process, not a restart");
  },
});

Deno.test({
  name:
    "an observer started while Redis is down reports down and not ready, then up once Redis starts",
  ...sanitized,
  fn: async () => {
    await using redis = await RedisServer.start();
    await redis.kill();
    const { observer } = observe(redis);
    await using _ = observer;
    const down = await observer.waitFor(isDown, { timeoutMs: 5_000 });
    assert.match(down.reason, /refused the connection \(ECONNREFUSED\)/);
    assert.equal(isReady(down), false);
    await redis.restart();
    await observer.waitFor(isUp, { timeoutMs: 5_000 });
  },
});

Deno.test({
  name: "a connection killed by CLIENT KILL is not reported as Redis down",
  ...sanitized,
  fn: async () => {
    await using redis = await RedisServer.start();
    const { observer, seen } = observe(redis);
    await using _ = observer;
    await observer.waitFor(isUp, { timeoutMs: 5_000 });
    const clientsBefore = Number((await redis.info("stats")).total_connections_received);
    assert.equal(await redis.cli("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"), "1");
    // The observer reconnects at once and keeps reporting up.
    await waitFor(async () =>
      Number((await redis.info("stats")).total_connections_received) > clientsBefore + 1
    );
    const killedAt = seen.length;
    await waitFor(() => seen.slice(killedAt).some((entry) => isUp(entry.observation)));
    assert.deepEqual(seen.filter((entry) => isDown(entry.observation)), []);
  },
});

Deno.test({
  name: "a replica loading its master's dataset is up but not healthy, then healthy once loaded",
  ...sanitized,
  fn: async () => {
    await using master = await RedisServer.start();
    const client = master.client();
    try {
      const pipeline = client.pipeline();
      for (let i = 0; i < 5_000; i++) pipeline.set(`key:${i}`, String(i));
      await pipeline.exec();
    } finally {
      client.disconnect();
    }
    // 100 µs per key and an answer to INFO between every KB loaded: about half a second of loading.
    await using replica = await RedisServer.start({
      args: ["--key-load-delay", "100", "--loading-process-events-interval-bytes", "1024"],
    });
    const { observer } = observe(replica, { intervalMs: 50 });
    await using _ = observer;
    await observer.waitFor(isUp, { timeoutMs: 5_000 });
    await replica.cli("REPLICAOF", master.host, String(master.port));
    const loading = await observer.waitFor((o) => isUp(o) && o.info.loading, {
      timeoutMs: 10_000,
    }) as UpObservation;
    assert.equal(isHealthy(loading), false);
    assert.equal(isReady(loading), true);
    const loaded = await observer.waitFor(
      (o) => isHealthy(o) && o.info.masterLinkUp,
      { timeoutMs: 15_000 },
    ) as UpObservation;
    assert.equal(loaded.info.totalKeys, 5_000);
  },
});

Deno.test({
  name: "observer logs transitions only: one line up, one line down, none per poll",
  ...sanitized,
  fn: async () => {
    await using redis = await RedisServer.start();
    const logger = new CapturingLogger();
    const { observer } = observe(redis, { logger, intervalMs: 20 });
    await using _ = observer;
    await observer.waitFor(isUp, { timeoutMs: 5_000 });
    await new Promise((resolve) => setTimeout(resolve, 300));
    await redis.kill();
    await observer.waitFor(isDown, { timeoutMs: 5_000 });
    await new Promise((resolve) => setTimeout(resolve, 300));
    const transitions = logger.lines.filter((line) =>
      line.level !== "info" || line.message === "redis up"
    );
    assert.deepEqual(
      transitions.map((line) => line.message),
      ["redis up", "redis down"],
      logger.text(),
    );
    // At most one more line: the reason may change once (reset while dying, then refused).
    assert.ok(logger.lines.length <= 3, logger.text());
  },
});

Deno.test({
  name:
    "close() stops an observer stuck connecting to a frozen Redis at once, leaving nothing running",
  ...sanitized,
  fn: async () => {
    await using redis = await RedisServer.start();
    await redis.pause();
    try {
      const { observer } = observe(redis, { timeoutMs: 5_000 });
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.equal(observer.current().kind, "unknown");
      const started = performance.now();
      await observer.close();
      const closeMs = performance.now() - started;
      assert.ok(closeMs < 500, `close took ${closeMs} ms`);
    } finally {
      redis.resume();
    }
  },
});

Deno.test({
  name: "waitFor rejects with a timeout when no observation matches",
  ...sanitized,
  fn: async () => {
    await using redis = await RedisServer.start();
    const { observer } = observe(redis);
    await using _ = observer;
    await assert.rejects(
      () => observer.waitFor((o) => isUp(o) && o.info.role === "replica", { timeoutMs: 300 }),
      { name: "RedisTimeoutError" },
    );
  },
});

Deno.test({
  name: "refresh() polls at once and resolves with a snapshot taken after the call, up or down",
  ...sanitized,
  fn: async () => {
    await using redis = await RedisServer.start();
    // Long interval and backoff: only refresh() can explain a prompt new observation.
    const { observer } = observe(redis, {
      intervalMs: 5_000,
      backoff: { initialMs: 5_000, maxMs: 5_000 },
    });
    await using _ = observer;
    await observer.waitFor(isUp, { timeoutMs: 5_000 });

    await redis.cli("SET", "k", "v");
    let started = performance.now();
    await observer.refresh();
    assert.ok(performance.now() - started < 1_000, "far sooner than the 5 s interval");
    const current = observer.current();
    assert.ok(isUp(current) && !current.datasetEmpty, "the key written before refresh() is seen");

    await redis.kill();
    await observer.waitFor(isDown, { timeoutMs: 5_000 });
    await redis.restart();
    started = performance.now();
    await observer.refresh();
    assert.ok(performance.now() - started < 1_000, "the 5 s reconnection backoff was cut short");
    assert.equal(observer.current().kind, "up");
  },
});
