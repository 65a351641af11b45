/**
 * The clocks of lib/clock.ts: what safety measures runs on a monotonic clock, so a step of the wall
 * clock (NTP, an operator, a VM resumed) can neither lift a fence nor make a stale lock look fresh.
 * The simulator's seed 100 found the fence bound measured on `Date.now()`.
 */
import assert from "node:assert/strict";
import { ManualClock, systemClock } from "../../lib/clock.ts";

/** Runs `body` while `Date.now()` answers `offsetMs` off the real wall clock. */
function withWallClockStepped(offsetMs: number, body: () => void): void {
  const realNow = Date.now;
  Date.now = () => realNow() + offsetMs;
  try {
    body();
  } finally {
    Date.now = realNow;
  }
}

Deno.test("the system clock's now() does not follow a backward step of the wall clock", () => {
  const before = systemClock.now();
  withWallClockStepped(-60_000, () => {
    const after = systemClock.now();
    assert.ok(after >= before, `now() went back by ${before - after} ms`);
    assert.ok(systemClock.wallNow() < before - 30_000, "wallNow() follows the wall clock");
  });
});

Deno.test("the system clock's now() reads like epoch milliseconds (its origin is the process start)", () => {
  assert.ok(Math.abs(systemClock.now() - Date.now()) < 60_000);
  // Durations computed from it go into commands that take integers (Redis FAILOVER TIMEOUT).
  assert.ok(Number.isInteger(systemClock.now()));
});

Deno.test("a manual clock steps its wall clock alone: durations and sleeps are unmoved", async () => {
  const clock = new ManualClock(1_000);
  const woke: number[] = [];
  const sleeping = clock.sleep(500).then(() => woke.push(clock.now()));
  clock.stepWall(-30_000);
  assert.equal(clock.now(), 1_000);
  assert.equal(clock.wallNow(), -29_000);
  await clock.advance(500);
  await sleeping;
  assert.deepEqual(woke, [1_500]);
  assert.equal(clock.wallNow(), -28_500);
});
