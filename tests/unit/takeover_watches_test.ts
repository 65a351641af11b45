/**
 * The fast takeover's watches: the leader's reach from a follower (a TCP connection per attempt), the
 * holder's acknowledging replicas, and whether the leader's INFO lists our Redis as acknowledging.
 */
import assert from "node:assert/strict";
import type { HostPort } from "../../lib/address.ts";
import { ManualClock } from "../../lib/clock.ts";
import { silentLogger } from "../../lib/log.ts";
import { HolderReachWatch, tcpConnectProbe } from "../../lib/agent/watch/holder_reach.ts";
import { LeaderOffsetProbe, type ReplicationReading } from "../../lib/agent/watch/leader_offset.ts";
import { ReplicaAckWatch } from "../../lib/agent/watch/replica_acks.ts";

const LEADER: HostPort = { host: "10.0.0.1", port: 6379 };
const SELF: HostPort = { host: "10.0.0.2", port: 6379 };

Deno.test("the leader counts as unreachable from the start of the first failed attempt until one succeeds", async () => {
  const clock = new ManualClock(1_000);
  const outcomes: boolean[] = [true, false, false, false, false, false, true];
  let changes = 0;
  const watch = new HolderReachWatch({
    leader: () => LEADER,
    connect: () =>
      outcomes.shift() === false ? Promise.reject(new Error("refused")) : Promise.resolve(),
    clock,
    logger: silentLogger,
    onChange: () => changes++,
  });
  watch.start();
  await clock.advance(0);
  assert.equal(watch.unreachableForMs(LEADER, clock.now()), 0);
  await clock.advance(200); // first failure, started at 1_200
  assert.equal(watch.unreachableForMs(LEADER, clock.now()), 0);
  await clock.advance(800); // three more failures
  assert.equal(watch.unreachableForMs(LEADER, clock.now()), 800);
  assert.equal(watch.unreachableForMs(SELF, clock.now()), 0, "only for the leader it tried");
  assert.ok(changes >= 4, "each failure asks for an evaluation");
  await clock.advance(400); // one more failure, then a success
  assert.equal(watch.unreachableForMs(LEADER, clock.now()), 0);
  await watch.stop();
});

function reading(lag: number | undefined, state = "online"): ReplicationReading {
  return {
    offset: 10,
    replicas: lag === undefined
      ? []
      : [{ ip: SELF.host, port: SELF.port, state, offset: 10, lagSeconds: lag }],
  };
}

Deno.test("the holder reads its acknowledging replicas only while it holds the lock, and a stale reading counts as none", async () => {
  const clock = new ManualClock(0);
  let holding = false;
  const readings: (ReplicationReading | Error)[] = [reading(0), reading(1), new Error("timeout")];
  const watch = new ReplicaAckWatch({
    holding: () => holding,
    address: LEADER,
    read: () => {
      const next = readings.shift() ?? new Error("timeout");
      return next instanceof Error ? Promise.reject(next) : Promise.resolve(next);
    },
    clock,
    logger: silentLogger,
    onChange: () => {},
  });
  watch.start();
  await clock.advance(0);
  assert.equal(watch.current(clock.now()), undefined, "not holding: not watched");
  holding = true;
  await clock.advance(250);
  assert.deepEqual(watch.current(clock.now()), new Set(["10.0.0.2:6379"]));
  await clock.advance(250);
  assert.deepEqual(watch.current(clock.now()), new Set(["10.0.0.2:6379"]));
  await clock.advance(250); // the read fails
  assert.deepEqual(watch.current(clock.now()), new Set());
  await watch.stop();
});

Deno.test("a follower learns when the leader's INFO listed its Redis as acknowledging", async () => {
  const clock = new ManualClock(1_000);
  const readings = [reading(3), reading(1), reading(0, "send_bulk")];
  const probe = new LeaderOffsetProbe({
    leader: () => LEADER,
    read: () => Promise.resolve(readings.shift() ?? reading(undefined)),
    self: SELF,
    intervalMs: 1_000,
    clock,
    logger: silentLogger,
  });
  probe.start();
  await clock.advance(0);
  assert.equal(probe.acknowledgedAt(LEADER), undefined, "lag 3: not acknowledging");
  await clock.advance(1_000);
  assert.equal(probe.acknowledgedAt(LEADER), 2_000);
  await clock.advance(1_000);
  assert.equal(probe.acknowledgedAt(LEADER), 2_000, "the last time it did");
  assert.equal(probe.acknowledgedAt(SELF), undefined);
  await probe.stop();
});

Deno.test("an unanswered TCP try fails at its timeout, and later tries fail without a new socket while it is pending", async () => {
  let calls = 0;
  let answer: (connection: { close(): void }) => void = () => {};
  const probe = tcpConnectProbe(() => {
    calls++;
    return new Promise((resolve) => answer = resolve);
  });
  await assert.rejects(() => probe(LEADER, 20), /within 20ms/);
  await assert.rejects(() => probe(LEADER, 20), /still pending/);
  assert.equal(calls, 1, "one socket for the unanswered address");
  let closed = false;
  answer({ close: () => closed = true });
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.ok(closed, "a connection made late is closed");
  await assert.rejects(() => probe(LEADER, 20), /within 20ms/);
  assert.equal(calls, 2, "a new try once the last one settled");
  answer({ close: () => {} });
});
