/**
 * ConsulLock against a real Consul dev agent: mutual exclusion, prompt hand-over on release, take-over
 * after a destroyed or expired session (with the lock-delay measured), loss detection, cancellation.
 */
import assert from "node:assert/strict";
import { ConsulClient } from "../../lib/consul/client.ts";
import { acquireKey, deleteKey, readKey } from "../../lib/consul/kv.ts";
import { ConsulLock, type LockHold, LockLostError } from "../../lib/consul/lock.ts";
import { createSession, destroySession, sessionInfo } from "../../lib/consul/session.ts";
import { ConsulServer, delay, waitFor } from "../support/mod.ts";

const KEY = "resec/.lock";
const TTL_MS = 1_000;
const LOCK_DELAY_MS = 1_500;

function clientFor(consul: ConsulServer): ConsulClient {
  return new ConsulClient({ connection: { baseUrl: consul.url } });
}

function lockFor(client: ConsulClient, name: string): ConsulLock {
  return new ConsulLock({
    client,
    key: KEY,
    sessionName: name,
    ttlMs: TTL_MS,
    lockDelayMs: LOCK_DELAY_MS,
    nodeChecks: [],
    monitorRetries: 3,
    monitorRetryIntervalMs: 200,
    waitMs: 10_000,
  });
}

/** Resolves to "pending" when the promise has not settled within `ms`. */
async function settledWithin<T>(promise: Promise<T>, ms: number): Promise<T | "pending"> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const pending = new Promise<"pending">((resolve) => {
    timer = setTimeout(() => resolve("pending"), ms);
  });
  try {
    return await Promise.race([promise, pending]);
  } finally {
    clearTimeout(timer);
  }
}

async function sessionsNamed(consul: ConsulServer, name: string): Promise<unknown[]> {
  const all = await consul.api<{ Name: string }[]>("GET", "/v1/session/list");
  return all.filter((session) => session.Name === name);
}

Deno.test("of two competing lock holders only one wins, and the other wins promptly after a release", async () => {
  await using consul = await ConsulServer.start();
  using client = clientFor(consul);
  const controller = new AbortController();
  const contenders = ["holder-a", "holder-b"].map((name, position) => ({
    name,
    hold: lockFor(client, name).acquire(
      `{"address":"10.0.0.${position + 1}:6379"}`,
      controller.signal,
    ),
  }));
  const winnerIndex = await Promise.race(
    contenders.map((contender, position) => contender.hold.then(() => position)),
  );
  const first = await contenders[winnerIndex]!.hold;
  const second = contenders[1 - winnerIndex]!.hold;
  assert.equal(await settledWithin(second, 1_000), "pending", "the loser must keep waiting");

  const entry = (await readKey(client, KEY)).entry!;
  assert.equal(entry.session, first.session);
  assert.equal(entry.lockIndex, first.lockIndex);
  assert.match(entry.value, /"address":"10\.0\.0\.[12]:6379"/);

  const releasedAt = performance.now();
  await first.release();
  const winner = await second;
  const handOverMs = performance.now() - releasedAt;
  console.log(`lock hand-over after a voluntary release: ${handOverMs.toFixed(0)} ms`);
  assert.ok(handOverMs < 1_000, `a release carries no lock-delay (took ${handOverMs} ms)`);
  assert.ok(winner.lockIndex > first.lockIndex, "the fencing epoch grows with each holder");
  assert.equal(first.lost.aborted, false, "a voluntary release is not a loss");
  assert.deepEqual(await sessionsNamed(consul, contenders[winnerIndex]!.name), []);
  await winner.release();
  assert.equal((await readKey(client, KEY)).entry?.session, undefined);
  assert.deepEqual(await consul.api("GET", "/v1/session/list"), [], "release destroys the session");
});

Deno.test("when the holder's session is destroyed, it learns it lost the lock and the other wins after the lock-delay", async () => {
  await using consul = await ConsulServer.start();
  using client = clientFor(consul);
  const signal = new AbortController().signal;
  const holder = await lockFor(client, "holder").acquire("a", signal);
  const waiting = lockFor(client, "waiter").acquire("b", signal);
  assert.equal(await settledWithin(waiting, 300), "pending");

  const destroyedAt = performance.now();
  await destroySession(client, holder.session);
  // The holder may hear of it before destroySession's own answer arrives: poll, never wait for an
  // abort event that may already have fired (this hung a CI run).
  await waitFor(() => holder.lost.aborted, {
    timeoutMs: 5_000,
    intervalMs: 5,
    message: "the holder to hear that it lost the lock",
  });
  const lostReason = holder.lost.reason;
  const lostAfterMs = performance.now() - destroyedAt;
  const winner = await waiting;
  const takeoverMs = performance.now() - destroyedAt;
  console.log(
    `session destroyed: holder told it lost the lock after ${lostAfterMs.toFixed(0)} ms; ` +
      `the other took over after ${
        takeoverMs.toFixed(0)
      } ms (configured lock-delay ${LOCK_DELAY_MS} ms)`,
  );
  assert.ok(lostReason instanceof LockLostError);
  assert.ok(lostAfterMs < 500, `the holder hears at once (${lostAfterMs} ms)`);
  assert.ok(takeoverMs >= LOCK_DELAY_MS - 50, `Consul's lock-delay holds (${takeoverMs} ms)`);
  assert.ok(takeoverMs < LOCK_DELAY_MS + 700, `no 5 s retry pause (${takeoverMs} ms)`);
  assert.ok(winner.lockIndex > holder.lockIndex);
  await holder.release(); // harmless after a loss
  await winner.release();
});

Deno.test("when the holder stops renewing, the other wins after the TTL lapses plus the lock-delay", async () => {
  await using consul = await ConsulServer.start();
  using client = clientFor(consul);
  // A holder that crashed: it took the lock and never renewed its session again.
  const lastRenewal = performance.now();
  const crashed = await createSession(client, {
    name: "crashed",
    ttlMs: TTL_MS,
    lockDelayMs: LOCK_DELAY_MS,
    behavior: "release",
    nodeChecks: [],
  });
  assert.equal(await acquireKey(client, KEY, crashed, "old"), true);

  const winner = await lockFor(client, "survivor").acquire("new", new AbortController().signal);
  const takeoverMs = performance.now() - lastRenewal;
  console.log(
    `TTL lapse: the other took over ${takeoverMs.toFixed(0)} ms after the holder's last renewal ` +
      `(TTL ${TTL_MS} ms, Consul may wait 2 × TTL, + lock-delay ${LOCK_DELAY_MS} ms)`,
  );
  assert.ok(
    takeoverMs >= TTL_MS + LOCK_DELAY_MS,
    `never before TTL + lock-delay (${takeoverMs} ms)`,
  );
  assert.ok(takeoverMs < 2 * TTL_MS + LOCK_DELAY_MS + 1_000, `soon after (${takeoverMs} ms)`);
  assert.equal(await sessionInfo(client, crashed), undefined);
  await winner.release();
});

Deno.test("a held lock stays held past its TTL while renewed, and lastConfirmedAt stays within TTL/3 of now", async () => {
  await using consul = await ConsulServer.start();
  using client = clientFor(consul);
  const hold = await lockFor(client, "steady").acquire("v", new AbortController().signal);
  await delay(3 * TTL_MS);
  assert.equal(hold.lost.aborted, false);
  assert.equal((await readKey(client, KEY)).entry?.session, hold.session);
  const age = Date.now() - hold.lastConfirmedAt();
  assert.ok(age < TTL_MS / 3 + 300, `last confirmation ${age} ms ago`);
  await hold.updateValue('{"address":"10.0.0.9:6379"}');
  assert.equal((await readKey(client, KEY)).entry?.value, '{"address":"10.0.0.9:6379"}');
  assert.equal(hold.lost.aborted, false, "updating the value is not a loss");
  await hold.release();
});

Deno.test("a holder whose key is deleted learns at once that it lost the lock", async () => {
  await using consul = await ConsulServer.start();
  using client = clientFor(consul);
  const hold: LockHold = await lockFor(client, "h").acquire("v", new AbortController().signal);
  await deleteKey(client, KEY);
  await waitFor(() => hold.lost.aborted, { timeoutMs: 2_000, message: "the loss to be noticed" });
  const reason = hold.lost.reason as LockLostError;
  assert.equal(reason.lossCause, "key-deleted");
  assert.equal(reason.message, `Lost the lock on key "${KEY}": the key was deleted`);
  await assert.rejects(hold.updateValue("x"), LockLostError);
  // Losing stops the renewals and destroys the session, so nothing lingers in Consul.
  await waitFor(async () => (await sessionInfo(client, hold.session)) === undefined, {
    timeoutMs: 3_000,
    message: "the lost session to be destroyed",
  });
  await hold.release();
});

Deno.test("waiting for a lock can be cancelled at any moment, and the waiter's session is destroyed", async () => {
  await using consul = await ConsulServer.start();
  using client = clientFor(consul);
  const holder = await lockFor(client, "holder").acquire("a", new AbortController().signal);
  const controller = new AbortController();
  const waiting = lockFor(client, "waiter").acquire("b", controller.signal);
  await waitFor(async () => (await sessionsNamed(consul, "waiter")).length === 1, {
    message: "the waiter's session",
  });
  const reason = new Error("shutting down");
  const abortedAt = performance.now();
  controller.abort(reason);
  await assert.rejects(waiting, (error) => error === reason);
  const cancelMs = performance.now() - abortedAt;
  assert.ok(cancelMs < 500, `cancelled promptly (${cancelMs} ms)`);
  assert.deepEqual(await sessionsNamed(consul, "waiter"), []);
  assert.equal((await readKey(client, KEY)).entry?.session, holder.session);
  await holder.release();
});

Deno.test("a Consul freeze shorter than the TTL does not lose the lock", async () => {
  await using consul = await ConsulServer.start();
  using client = new ConsulClient({ connection: { baseUrl: consul.url }, requestTimeoutMs: 1_000 });
  const lock = new ConsulLock({
    client,
    key: KEY,
    sessionName: "steady",
    ttlMs: 2_000,
    lockDelayMs: LOCK_DELAY_MS,
    nodeChecks: [],
    monitorRetries: 3,
    monitorRetryIntervalMs: 500,
  });
  const hold = await lock.acquire("v", new AbortController().signal);
  await consul.pause();
  await delay(1_500);
  consul.resume();
  await delay(1_500);
  assert.equal(hold.lost.aborted, false, String(hold.lost.reason));
  assert.equal((await readKey(client, KEY)).entry?.session, hold.session);
  assert.ok(Date.now() - hold.lastConfirmedAt() < 1_500, "renewals resumed");
  await hold.release();
});

Deno.test("a holder whose Consul goes away is told it lost the lock after the configured monitor retries", async () => {
  await using consul = await ConsulServer.start();
  using client = clientFor(consul);
  const hold = await lockFor(client, "h").acquire("v", new AbortController().signal);
  const stoppedAt = performance.now();
  await consul.stop();
  await waitFor(() => hold.lost.aborted, { timeoutMs: 5_000, message: "the loss to be reported" });
  const elapsed = performance.now() - stoppedAt;
  const reason = hold.lost.reason as LockLostError;
  console.log(`Consul gone: loss reported after ${elapsed.toFixed(0)} ms (3 retries × 200 ms)`);
  assert.equal(reason.lossCause, "monitor-failed");
  assert.match(reason.message, /cannot confirm the lock with Consul after 4 attempt\(s\)/);
  assert.ok(elapsed >= 3 * 200, `not before the retries ran out (${elapsed} ms)`);
  await hold.release(); // Consul is down: logged, not thrown
});

Deno.test("a held lock is reported lost when Consul restarts and forgets the session, and can be taken again", async () => {
  await using consul = await ConsulServer.start();
  using client = clientFor(consul);
  const hold = await lockFor(client, "h").acquire("v", new AbortController().signal);
  await consul.restart();
  await waitFor(() => hold.lost.aborted, { timeoutMs: 5_000, message: "the loss to be reported" });
  const again = await lockFor(client, "h").acquire("v", AbortSignal.timeout(10_000));
  assert.equal((await readKey(client, KEY)).entry?.session, again.session);
  await again.release();
  await hold.release();
});

Deno.test("a released lock keeps its flags, so the Go resec's lock helper can take it next", async () => {
  await using consul = await ConsulServer.start();
  using client = clientFor(consul);
  // The flags of hashicorp/consul's Lock (LockFlagValue): it refuses a key that carries others.
  const flags = 3304740253564472344n;
  const lock = new ConsulLock({
    client,
    key: KEY,
    sessionName: "flagged",
    ttlMs: 10_000,
    lockDelayMs: 0,
    nodeChecks: [],
    monitorRetries: 3,
    monitorRetryIntervalMs: 200,
    flags,
  });
  const hold = await lock.acquire(`{"address":"10.0.0.1:6379"}`, new AbortController().signal);
  await hold.release();
  // Read as text: a JSON number this large loses its last digits.
  const raw = await (await fetch(`${consul.url}/v1/kv/${KEY}`)).text();
  assert.match(raw, new RegExp(`"Flags":\\s*${flags}\\b`), raw);
  assert.equal((await readKey(client, KEY)).entry?.session, undefined);
});
