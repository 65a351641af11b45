/**
 * LockDriver against a fake lock and a manual clock: an acquire that fails for good (a 403) is tried
 * again only after a backoff of 1 s doubling to 30 s, not on the evaluation it triggers.
 */
import assert from "node:assert/strict";
import {
  type HeldLock,
  LOCK_ACQUIRE_BACKOFF,
  LockDriver,
  type LockPort,
} from "../../lib/agent/apply/lock_driver.ts";
import { ManualClock } from "../../lib/clock.ts";
import { ConsulPermissionDeniedError } from "../../lib/consul/errors.ts";
import { silentLogger } from "../../lib/log.ts";

/** Where a hot loop is cut short, so that the test fails instead of spinning forever. */
const ATTEMPT_LIMIT = 200;

/** A lock whose acquire fails with a 403 until `grant` is set; counts the attempts. */
class DenyingLock implements LockPort {
  attempts = 0;
  grant: HeldLock | undefined;

  acquire(_value: string, _signal: AbortSignal): Promise<HeldLock> {
    this.attempts += 1;
    if (this.grant) return Promise.resolve(this.grant);
    if (this.attempts > ATTEMPT_LIMIT) return new Promise(() => {});
    return Promise.reject(
      new ConsulPermissionDeniedError(
        "Permission denied",
        "PUT",
        "/v1/kv/resec/.lock",
        'writing key "resec/.lock"',
      ),
    );
  }
}

function heldLock(): HeldLock {
  return {
    session: "s1",
    lockIndex: 1,
    lost: new AbortController().signal,
    lastConfirmedAt: () => 0,
    updateValue: () => Promise.resolve(),
    release: () => Promise.resolve(),
  };
}

/** A driver whose every change asks to compete again, as the agent loop does while the lock is free. */
function competingDriver(lock: LockPort, clock: ManualClock, errors: number[] = []): LockDriver {
  const driver: LockDriver = new LockDriver({
    lock,
    value: () => "{}",
    onChange: () => void driver.apply("compete"),
    onError: (_error, retryInMs) => errors.push(retryInMs),
    logger: silentLogger,
    clock,
    backoff: { ...LOCK_ACQUIRE_BACKOFF, jitter: 0 },
  });
  return driver;
}

Deno.test("an acquire denied by Consul is tried again after 1 s doubling to 30 s, not at once", async () => {
  const clock = new ManualClock(0);
  const lock = new DenyingLock();
  const delays: number[] = [];
  const driver = competingDriver(lock, clock, delays);
  await driver.apply("compete");
  await clock.advance(60_000);
  // Attempts at 0, 1, 3, 7, 15 and 31 s; the next is due at 61 s.
  assert.equal(lock.attempts, 6);
  assert.equal(driver.view().phase, "idle");
  await clock.advance(540_000);
  // From 31 s on every 30 s: 61, 91, … 601 s; up to 600 s that is 18 more.
  assert.equal(lock.attempts, 24);
  assert.deepEqual(delays.slice(0, 7), [1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000]);
  await driver.close();
  assert.equal(clock.pending, 0);
});

Deno.test("a won acquire resets the lock backoff", async () => {
  const clock = new ManualClock(0);
  const lock = new DenyingLock();
  const delays: number[] = [];
  const driver = competingDriver(lock, clock, delays);
  await driver.apply("compete");
  await clock.advance(7_000);
  assert.equal(lock.attempts, 4);
  lock.grant = heldLock();
  await clock.advance(8_000);
  assert.equal(driver.view().phase, "held");
  lock.grant = undefined;
  await driver.apply("release");
  await clock.advance(0);
  assert.deepEqual(delays, [1_000, 2_000, 4_000, 8_000, 1_000]);
  await driver.close();
});
