/**
 * The blocking-query rules of BlockingWatch, against a scripted Consul and a manual clock: index
 * carrying and resets, rate limiting, backoff on errors, and yielding only real changes.
 */
import assert from "node:assert/strict";
import { backoffDelay } from "../../lib/backoff.ts";
import { CapturingLogger } from "../../lib/log.ts";
import { ConsulClient } from "../../lib/consul/client.ts";
import { healthService, watchHealthService } from "../../lib/consul/health.ts";
import { consulJson, ScriptedFetch } from "../../lib/consul/testing.ts";
import { ManualClock, settle } from "../../lib/clock.ts";
import {
  type BlockingQuery,
  type BlockingResult,
  BlockingWatch,
  nextBlockingIndex,
} from "../../lib/consul/watch.ts";

Deno.test("nextBlockingIndex carries the index, resets to 0 when it goes backwards, never blocks below 1", () => {
  const table: [sent: number, returned: number, next: number][] = [
    [0, 10, 10], // first read
    [10, 10, 10], // timeout without change
    [10, 15, 15], // change
    [15, 3, 0], // went backwards: a restarted Consul
    [0, 0, 1], // Consul answered index 0: block on 1, never loop on 0
    [7, 0, 1], // index 0 is never trusted, even as a reset
    [0, 1, 1],
  ];
  for (const [sent, returned, next] of table) {
    assert.equal(nextBlockingIndex(sent, returned), next, `${sent} → ${returned}`);
  }
});

/** A scripted blocking endpoint: each call takes the next answer and records the query. */
function scripted<T>(answers: (BlockingResult<T> | Error)[]) {
  const queries: Omit<BlockingQuery, "signal">[] = [];
  let calls = 0;
  const fetch = (query: BlockingQuery): Promise<BlockingResult<T>> => {
    queries.push({ index: query.index, waitMs: query.waitMs });
    const answer = answers[calls++];
    if (answer === undefined) {
      // Nothing more to say: hang like a blocking query until the watch is closed.
      return new Promise((_resolve, reject) =>
        query.signal.addEventListener("abort", () => reject(query.signal.reason), { once: true })
      );
    }
    return answer instanceof Error ? Promise.reject(answer) : Promise.resolve(answer);
  };
  return { fetch, queries };
}

/** Collects what a watch yields while the clock is advanced step by step. */
async function drive<T>(watch: BlockingWatch<T>, clock: ManualClock, steps: number[]) {
  const seen: T[] = [];
  const done = (async () => {
    for await (const value of watch) seen.push(value);
  })();
  for (const step of steps) await clock.advance(step);
  watch.close();
  await done;
  return seen;
}

Deno.test("a watch yields the first value, then only values that changed, carrying the index", async () => {
  const clock = new ManualClock();
  const { fetch, queries } = scripted<string[]>([
    { value: ["a"], index: 5 },
    { value: ["a"], index: 5 }, // wait ran out
    { value: ["a"], index: 9 }, // index moved, value did not (an idempotent write)
    { value: ["a", "b"], index: 12 },
  ]);
  const watch = new BlockingWatch({ fetch, clock, waitMs: 30_000, minIntervalMs: 100 });
  const seen = await drive(watch, clock, [100, 100, 100, 100]);
  assert.deepEqual(seen, [["a"], ["a", "b"]]);
  assert.deepEqual(queries.map((query) => query.index), [0, 5, 5, 9, 12]);
  assert.ok(queries.every((query) => query.waitMs === 30_000));
});

Deno.test("a watch whose index goes backwards starts over with a non-blocking read", async () => {
  const clock = new ManualClock();
  const { fetch, queries } = scripted<number>([
    { value: 1, index: 500 },
    { value: 1, index: 20 }, // restored or restarted cluster
    { value: 2, index: 21 },
  ]);
  const watch = new BlockingWatch({ fetch, clock, minIntervalMs: 10 });
  const seen = await drive(watch, clock, [10, 10, 10]);
  assert.deepEqual(queries.map((query) => query.index), [0, 500, 0, 21]);
  assert.deepEqual(seen, [1, 2]);
});

Deno.test("a watch never blocks on index 0 when Consul answers index 0", async () => {
  const clock = new ManualClock();
  const { fetch, queries } = scripted<string>([{ value: "x", index: 0 }, { value: "x", index: 0 }]);
  const watch = new BlockingWatch({ fetch, clock, minIntervalMs: 10 });
  await drive(watch, clock, [10, 10]);
  assert.deepEqual(queries.map((query) => query.index), [0, 1, 1]);
});

Deno.test("a watch is rate-limited: answers that return at once do not make a busy loop", async () => {
  const clock = new ManualClock();
  const answers = Array.from({ length: 50 }, (_, index) => ({ value: index, index: index + 1 }));
  const { fetch, queries } = scripted<number>(answers);
  const watch = new BlockingWatch({ fetch, clock, minIntervalMs: 250 });
  await drive(watch, clock, [1_000]);
  // At t=0, 250, 500, 750, 1000: five queries in one second, not fifty.
  assert.equal(queries.length, 5);
});

Deno.test("a failing watch backs off with jitter, reports the error, and re-reads without blocking", async () => {
  const clock = new ManualClock();
  const logger = new CapturingLogger();
  const boom = new Error("connection refused");
  const { fetch, queries } = scripted<string>([
    { value: "v1", index: 40 },
    boom,
    boom,
    { value: "v1", index: 41 },
    { value: "v2", index: 42 },
  ]);
  const errors: number[] = [];
  const backoff = { initialMs: 200, maxMs: 5_000 };
  const watch = new BlockingWatch({
    fetch,
    clock,
    logger,
    backoff,
    minIntervalMs: 10,
    random: () => 0.5, // no jitter
    onError: (_error, failures) => errors.push(failures),
  });
  const seen: string[] = [];
  const done = (async () => {
    for await (const value of watch) seen.push(value);
  })();
  await clock.advance(10); // second query fails
  assert.equal(queries.length, 2);
  await clock.advance(backoffDelay(backoff, 1, () => 0.5) - 1);
  assert.equal(queries.length, 2, "no retry before the first backoff delay (200 ms)");
  await clock.advance(1); // third query fails
  assert.equal(queries.length, 3);
  await clock.advance(400); // second backoff delay: 400 ms, then a successful read
  assert.equal(queries.length, 4);
  await clock.advance(10); // the rate limit, then a blocking read on the new index
  assert.equal(queries.length, 5);
  watch.close();
  await done;
  assert.deepEqual(errors, [1, 2]);
  assert.deepEqual(queries.map((query) => query.index), [0, 40, 0, 0, 41]);
  assert.deepEqual(seen, ["v1", "v2"]);
  assert.ok(logger.lines.some((line) => line.message === "consul watch recovered"));
});

Deno.test("closing a watch ends a pending iteration without a value", async () => {
  const clock = new ManualClock();
  const { fetch } = scripted<string>([{ value: "only", index: 3 }]);
  const watch = new BlockingWatch({ fetch, clock });
  const iterator = watch[Symbol.asyncIterator]();
  assert.deepEqual(await iterator.next(), { value: "only", done: false });
  const pending = iterator.next();
  await clock.advance(200);
  watch.close();
  assert.deepEqual(await pending, { value: undefined, done: true });
  assert.equal(watch.closed, true);
});

Deno.test("a watch stops when the signal it was given aborts", async () => {
  const clock = new ManualClock();
  const controller = new AbortController();
  const { fetch } = scripted<string>([{ value: "a", index: 3 }]);
  const watch = new BlockingWatch({ fetch, clock, signal: controller.signal });
  const seen: string[] = [];
  const done = (async () => {
    for await (const value of watch) seen.push(value);
  })();
  await clock.advance(200);
  controller.abort();
  await done;
  assert.deepEqual(seen, ["a"]);
});

const HEALTH = [
  {
    Node: { Node: "node-1", Address: "10.0.0.1" },
    Service: {
      ID: "redis@10.0.0.1:6379",
      Service: "redis",
      Tags: ["master"],
      Address: "",
      Port: 6379,
    },
    Checks: [
      { CheckID: "serfHealth", Name: "Serf", Status: "passing", Output: "ok" },
      { CheckID: "redis:check", Name: "Repl", Status: "warning", ServiceID: "redis@10.0.0.1:6379" },
    ],
  },
  {
    Node: { Node: "node-2", Address: "10.0.0.2" },
    Service: { ID: "redis-2", Service: "redis", Tags: null, Address: "192.168.1.2", Port: 6380 },
    Checks: [{ CheckID: "c", Name: "", Status: "critical" }],
  },
];

Deno.test("health entries take Service.Address, else Node.Address, and the worst check status", async () => {
  const fetch = new ScriptedFetch([consulJson(HEALTH, { index: 12 })]);
  const client = new ConsulClient({ connection: { baseUrl: "http://c:8500" }, fetch: fetch.fetch });
  const result = await healthService(client, "redis", { tag: "master", passing: true });
  assert.equal(fetch.requests[0]!.url.search, "?tag=master&passing");
  assert.equal(result.index, 12);
  assert.deepEqual(
    result.entries.map(({ node, address, port, serviceId, tags, status }) => ({
      node,
      address,
      port,
      serviceId,
      tags,
      status,
    })),
    [
      {
        node: "node-1",
        address: "10.0.0.1",
        port: 6379,
        serviceId: "redis@10.0.0.1:6379",
        tags: ["master"],
        status: "warning",
      },
      {
        node: "node-2",
        address: "192.168.1.2",
        port: 6380,
        serviceId: "redis-2",
        tags: [],
        status: "critical",
      },
    ],
  );
  assert.deepEqual(result.entries[0]!.checks[1], {
    id: "redis:check",
    name: "Repl",
    status: "warning",
    serviceId: "redis@10.0.0.1:6379",
  });
});

Deno.test("a health watch does not wake its reader when only check output changed", async () => {
  const clock = new ManualClock();
  const withOutput = (output: string) =>
    consulJson(
      [{ ...HEALTH[0], Checks: [{ CheckID: "c", Name: "n", Status: "passing", Output: output }] }],
      { index: Number(output) },
    );
  const fetch = new ScriptedFetch([withOutput("1"), withOutput("2"), withOutput("3")]);
  const client = new ConsulClient({
    connection: { baseUrl: "http://c:8500" },
    fetch: fetch.fetch,
    clock,
  });
  const watch = watchHealthService(client, "redis", { minIntervalMs: 10 });
  const seen: unknown[] = [];
  const done = (async () => {
    for await (const entries of watch) seen.push(entries);
  })();
  await clock.advance(10);
  await clock.advance(10);
  await settle();
  watch.close();
  await done;
  assert.equal(fetch.requests.length >= 3, true);
  assert.equal(seen.length, 1);
});

Deno.test("a watch keeps querying while its reader is busy, and a slow reader gets the latest value", async () => {
  const clock = new ManualClock();
  const { fetch, queries } = scripted<string>([
    { value: "a", index: 1 },
    { value: "b", index: 2 },
    { value: "c", index: 3 },
  ]);
  const watch = new BlockingWatch({ fetch, clock, minIntervalMs: 10 });
  await clock.advance(100); // nobody reads yet
  assert.equal(queries.length, 4, "three answers and a fourth query blocking");
  assert.equal(watch.current, "c");
  const iterator = watch[Symbol.asyncIterator]();
  assert.deepEqual(await iterator.next(), { value: "c", done: false });
  await watch[Symbol.asyncDispose]();
  assert.deepEqual(await iterator.next(), { value: undefined, done: true });
});

Deno.test("a value that changes and changes back while the reader is busy is not yielded again", async () => {
  const clock = new ManualClock();
  const { fetch } = scripted<string>([
    { value: "a", index: 1 },
    { value: "b", index: 2 },
    { value: "a", index: 3 },
  ]);
  const watch = new BlockingWatch({ fetch, clock, minIntervalMs: 10 });
  const iterator = watch[Symbol.asyncIterator]();
  assert.deepEqual(await iterator.next(), { value: "a", done: false });
  await clock.advance(100);
  const pending = iterator.next();
  await clock.advance(100);
  watch.close();
  assert.deepEqual(await pending, { value: undefined, done: true });
});

Deno.test("breaking out of a for-await loop over a watch closes it", async () => {
  const clock = new ManualClock();
  const { fetch } = scripted<string>([{ value: "a", index: 1 }]);
  const watch = new BlockingWatch({ fetch, clock });
  for await (const value of watch) {
    assert.equal(value, "a");
    break;
  }
  assert.equal(watch.closed, true);
  await watch[Symbol.asyncDispose]();
});
