/**
 * The switchover coordinator as the target sees the handover end: the old master records "done" as
 * soon as Consul names the target, which can arrive before the target's own acquisition returns. The
 * control port is an in-memory record; no Consul, no Redis.
 */
import assert from "node:assert/strict";
import { parseHostPort } from "../../lib/address.ts";
import { SwitchoverCoordinator } from "../../lib/agent/apply/switchover.ts";
import type { SwitchoverRecord } from "../../lib/cluster/controls.ts";
import { ManualClock } from "../../lib/clock.ts";
import { silentLogger } from "../../lib/log.ts";
import type { LeaderView, LockView } from "../../lib/reconciler/model.ts";

const TARGET = "10.0.0.2:6379";
const OLD_MASTER = "10.0.0.1:6379";

function coordinatorOn(self: string) {
  let record: SwitchoverRecord | undefined;
  const clock = new ManualClock(1_000);
  const coordinator = new SwitchoverCoordinator({
    control: {
      paused: () => false,
      switchover: () => record ? { record, modifyIndex: 1 } : undefined,
      updateSwitchover: () => Promise.resolve(true),
    },
    self: parseHostPort(self),
    lockTtlMs: 2_000,
    redis: { refresh: () => Promise.resolve(), observedAt: () => clock.now() },
    clock,
    logger: silentLogger,
    background: () => {},
    requestEvaluation: () => {},
  });
  const base: SwitchoverRecord = {
    id: "sw-1",
    state: "in-progress",
    to: parseHostPort(TARGET),
    from: parseHostPort(OLD_MASTER),
    timeoutMs: 10_000,
    requestedAt: "2026-11-22T00:00:00Z",
  };
  const follow = (
    state: SwitchoverRecord["state"],
    lock: LockView,
    leader: LeaderView | null | undefined,
  ) => {
    record = { ...base, state };
    coordinator.follow(undefined, lock as never, leader, clock.now());
    return coordinator.handover();
  };
  return { follow, clock };
}

const leaderAt = (address: string, session: string): LeaderView => ({
  address: parseHostPort(address),
  session,
  lockIndex: 5,
});

Deno.test("the target keeps taking over after 'done' until its own acquisition returns", () => {
  const { follow } = coordinatorOn(TARGET);
  assert.ok(follow("in-progress", { phase: "competing" }, null), "taking part");
  // Consul already names the target (its session won), but the lock driver has not heard yet.
  const handover = follow("done", { phase: "competing" }, leaderAt(TARGET, "new-session"));
  assert.deepEqual(handover?.target, parseHostPort(TARGET), "still taking over: no step aside");
  assert.equal(
    follow("done", { phase: "held", lockIndex: 5, session: "new-session", confirmedAt: 1_000 }, {
      ...leaderAt(TARGET, "new-session"),
    }),
    undefined,
    "over once the lock is held",
  );
});

Deno.test("the target stops taking over when another node leads after all", () => {
  const { follow } = coordinatorOn(TARGET);
  follow("in-progress", { phase: "competing" }, null);
  assert.equal(
    follow("done", { phase: "competing" }, leaderAt("10.0.0.3:6379", "other")),
    undefined,
  );
});

Deno.test("a node that is not the target leaves the handover as soon as it is done", () => {
  const { follow } = coordinatorOn("10.0.0.3:6379");
  assert.ok(follow("in-progress", { phase: "idle" }, leaderAt(OLD_MASTER, "old")));
  assert.equal(follow("done", { phase: "idle" }, leaderAt(TARGET, "new-session")), undefined);
});

Deno.test("a failed switchover ends the handover for the target too", () => {
  const { follow } = coordinatorOn(TARGET);
  follow("in-progress", { phase: "competing" }, null);
  assert.equal(follow("failed", { phase: "competing" }, null), undefined);
});

Deno.test("a handover that ran out of time is not followed again, even while its record stays in progress", async () => {
  // The old master is gone, so nobody marks the record failed: following it anew each time would
  // keep every other node from competing for good.
  const { follow, clock } = coordinatorOn("10.0.0.3:6379");
  assert.ok(follow("in-progress", { phase: "idle" }, null), "following the handover");
  await clock.advance(10_000 + 2 * 2_000 + 1);
  assert.equal(follow("in-progress", { phase: "idle" }, null), undefined, "timed out");
  await clock.advance(1_000);
  assert.equal(follow("in-progress", { phase: "idle" }, null), undefined, "and stays over");
});
