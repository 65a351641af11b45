/**
 * ConsulLock's decisions against a scripted Consul and a manual clock: a refusal with no holder is a
 * lock-delay and is retried after a short pause, and transient monitor failures are retried exactly
 * CONSUL_LOCK_MONITOR_RETRIES times before the lock counts as lost.
 */
import assert from "node:assert/strict";
import { ConsulClient } from "../../lib/consul/client.ts";
import { ConsulLock, destroyUntilGone, LockLostError } from "../../lib/consul/lock.ts";
import { silentLogger } from "../../lib/log.ts";
import {
  consulJson,
  consulText,
  hangingAnswer,
  type RecordedRequest,
  ScriptedFetch,
} from "../../lib/consul/testing.ts";
import { ManualClock } from "../../lib/clock.ts";

const SESSION = "5d1b7c0e-2f3a-4b5c-8d9e-0a1b2c3d4e5f";

function entry(session?: string) {
  return [{
    Key: "resec/.lock",
    Value: btoa("v"),
    LockIndex: 7,
    Flags: 0,
    CreateIndex: 3,
    ModifyIndex: 20,
    ...(session ? { Session: session } : {}),
  }];
}

/** Answers handed out one per request, in order; a request with none waiting waits for the next. */
class AnswerQueue {
  readonly #answers: (Response | Error)[] = [];
  readonly #waiters: (() => void)[] = [];
  push(...answers: (Response | Error)[]): void {
    this.#answers.push(...answers);
    for (const wake of this.#waiters.splice(0)) wake();
  }
  async take(request: RecordedRequest): Promise<Response> {
    while (this.#answers.length === 0) {
      if (request.signal?.aborted) throw request.signal.reason;
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        request.signal?.addEventListener("abort", () => resolve(), { once: true });
      });
    }
    const answer = this.#answers.shift()!;
    if (answer instanceof Error) throw answer;
    return answer;
  }
}

/**
 * A Consul where the key is free but lock-delayed until `freeAt`, then ours once acquired. Once the
 * acquisition is confirmed, every read of the key (the holder's watch) takes its answer from
 * `monitorAnswers`. `intercept` may answer a request first (Consul unreachable).
 */
function lockDelayedConsul(
  clock: ManualClock,
  freeAt: number,
  intercept: (request: RecordedRequest) => Response | undefined = () => undefined,
) {
  let held = false;
  let monitoring = false;
  const monitorAnswers = new AnswerQueue();
  const route = (request: RecordedRequest): Response | Promise<Response> => {
    const intercepted = intercept(request);
    if (intercepted) return intercepted;
    const path = request.url.pathname;
    if (path === "/v1/session/create") return consulJson({ ID: SESSION });
    if (path.startsWith("/v1/session/renew/")) return hangingAnswer(request);
    if (path.startsWith("/v1/session/destroy/")) return consulJson(true);
    if (request.method === "PUT" && request.url.searchParams.has("acquire")) {
      held = clock.now() >= freeAt;
      return consulJson(held);
    }
    if (request.method === "PUT" && request.url.searchParams.has("release")) {
      held = false;
      return consulJson(true);
    }
    if (monitoring) return monitorAnswers.take(request);
    if (held && request.url.searchParams.has("consistent")) monitoring = true;
    return held
      ? consulJson(entry(SESSION), { index: 20 })
      : consulText(404, "", { "X-Consul-Index": "20" });
  };
  return { fetch: new ScriptedFetch([], route), monitorAnswers };
}

function lockOn(fetch: ScriptedFetch, clock: ManualClock, lockDelayMs: number) {
  const client = new ConsulClient({
    connection: { baseUrl: "http://c:8500" },
    fetch: fetch.fetch,
    clock,
  });
  return new ConsulLock({
    client,
    key: "resec/.lock",
    sessionName: "resec",
    ttlMs: 15_000,
    lockDelayMs,
    monitorRetries: 3,
    monitorRetryIntervalMs: 1_000,
    clock,
  });
}

Deno.test("a refusal with no holder is a lock-delay: retried after a short pause, not 5 s", async () => {
  const clock = new ManualClock(0);
  const { fetch } = lockDelayedConsul(clock, 2_000);
  const acquiring = lockOn(fetch, clock, 15_000).acquire("v", new AbortController().signal);
  let acquiredAt: number | undefined;
  acquiring.then(() => (acquiredAt = clock.now()));
  for (let step = 0; step < 30 && acquiredAt === undefined; step++) await clock.advance(100);
  assert.equal(acquiredAt, 2_000, "taken at the first retry after the delay ends (1 s pauses)");
  const attempts = fetch.requests.filter((request) => request.url.searchParams.has("acquire"));
  assert.equal(attempts.length, 3, "tries at 0, 1 s and 2 s");
  const hold = await acquiring;
  assert.equal(hold.lockIndex, 7);
  assert.equal(hold.session, SESSION);
  await hold.release();
});

Deno.test("transient monitor failures are retried CONSUL_LOCK_MONITOR_RETRIES times, then the lock is lost", async () => {
  const clock = new ManualClock(0);
  const { fetch, monitorAnswers } = lockDelayedConsul(clock, 0);
  const hold = await lockOn(fetch, clock, 0).acquire("v", new AbortController().signal);
  const refused = () => new TypeError("connection refused");
  // Two failures, a good answer (the count starts over), then four failures in a row.
  monitorAnswers.push(
    refused(),
    consulText(500, "No cluster leader"),
    consulJson(entry(SESSION), { index: 21 }),
    refused(),
    refused(),
    refused(),
  );
  await clock.advance(2_000);
  assert.equal(hold.lost.aborted, false, "two failures, then recovery");
  await clock.advance(2_000);
  assert.equal(hold.lost.aborted, false, "three failures are within the retries");
  monitorAnswers.push(refused());
  await clock.advance(1_000);
  assert.equal(hold.lost.aborted, true, "the fourth failure in a row loses the lock");
  const reason = hold.lost.reason as LockLostError;
  assert.ok(reason instanceof LockLostError);
  assert.equal(reason.lossCause, "monitor-failed");
  await hold.release();
});

Deno.test("a monitor answer naming another session loses the lock at once", async () => {
  const clock = new ManualClock(0);
  const { fetch, monitorAnswers } = lockDelayedConsul(clock, 0);
  const hold = await lockOn(fetch, clock, 0).acquire("v", new AbortController().signal);
  monitorAnswers.push(consulJson(entry("someone-else"), { index: 30 }));
  await clock.advance(10);
  assert.equal((hold.lost.reason as LockLostError).lossCause, "other-holder");
  assert.match(String(hold.lost.reason), /session "someone-else" holds it now/);
  await hold.release();
});

Deno.test("a lost lock's session is destroyed once Consul answers again, not left to expire", async () => {
  const clock = new ManualClock(0);
  const noLeader = () => consulText(500, "rpc error making call: No cluster leader");
  const fetch = new ScriptedFetch([noLeader(), noLeader(), noLeader(), consulJson(true)]);
  const client = new ConsulClient({
    connection: { baseUrl: "http://consul.test:8500" },
    fetch: fetch.fetch,
    clock,
  });
  const done = destroyUntilGone(client, SESSION, {
    giveUpAfterMs: 30_000,
    clock,
    logger: silentLogger,
  });
  while (fetch.requests.length < 4) await clock.advance(250);
  assert.equal(await done, true);
  assert.ok(fetch.requests.every((request) => request.url.pathname.endsWith(SESSION)));
  assert.ok(clock.now() < 5_000, `destroyed ${clock.now()} ms later`);
});

Deno.test("destroying a lost lock's session gives up once Consul has surely expired it (2 × TTL)", async () => {
  const clock = new ManualClock(0);
  const fetch = new ScriptedFetch([], consulText(500, "rpc error making call: No cluster leader"));
  const client = new ConsulClient({
    connection: { baseUrl: "http://consul.test:8500" },
    fetch: fetch.fetch,
    clock,
  });
  let result: boolean | undefined;
  const done = destroyUntilGone(client, SESSION, {
    giveUpAfterMs: 30_000,
    clock,
    logger: silentLogger,
  }).then((value) => result = value);
  while (result === undefined) await clock.advance(1_000);
  await done;
  assert.equal(result, false);
  assert.ok(clock.now() <= 31_000 && fetch.requests.length >= 20, `${fetch.requests.length} tries`);
});

Deno.test("a release that Consul cannot take is followed by a destroy retried until Consul answers", async () => {
  // Simulator seed 10912: a session left behind holds the lock, and replicas keep following a node
  // whose Redis may restart empty meanwhile.
  const clock = new ManualClock(0);
  let reachable = true;
  const destroyed: number[] = [];
  const { fetch } = lockDelayedConsul(clock, 0, (request) => {
    const destroying = request.url.pathname.startsWith("/v1/session/destroy/");
    const ending = destroying || request.url.searchParams.has("release");
    if (ending && !reachable) return consulText(500, "rpc error making call: No cluster leader");
    if (destroying) destroyed.push(clock.now());
    return undefined;
  });
  const hold = await lockOn(fetch, clock, 0).acquire("v", new AbortController().signal);
  reachable = false;
  await hold.release();
  assert.deepEqual(destroyed, [], "nothing reached Consul yet");
  await clock.advance(3_000);
  reachable = true;
  await clock.advance(2_000);
  assert.equal(destroyed.length, 1, "destroyed once Consul answered again");
  assert.ok(destroyed[0]! >= 3_000 && destroyed[0]! <= 4_000, `destroyed at ${destroyed[0]} ms`);
});
