/**
 * A replica's lag is measured against its leader's offset, read from the leader's Redis on a timer:
 * only while following a leader, only for that leader, and unknown once the last read is too old.
 */
import assert from "node:assert/strict";
import { LeaderOffsetProbe } from "../../lib/agent/watch/leader_offset.ts";
import { replicationLag } from "../../lib/agent/node_status.ts";
import type { HostPort } from "../../lib/address.ts";
import { ManualClock } from "../../lib/clock.ts";
import { silentLogger } from "../../lib/log.ts";
import type { RedisView } from "../../lib/reconciler/model.ts";

const LEADER: HostPort = { host: "10.0.0.1", port: 6379 };
const OTHER: HostPort = { host: "10.0.0.2", port: 6379 };

function probe(leader: () => HostPort | undefined, offsets: number[]) {
  const clock = new ManualClock(1_000);
  const reads: string[] = [];
  const probe = new LeaderOffsetProbe({
    leader,
    read: (address) => {
      reads.push(`${address.host}:${address.port}`);
      const next = offsets.shift();
      return next === undefined
        ? Promise.reject(new Error("down"))
        : Promise.resolve({ offset: next, replicas: [] });
    },
    intervalMs: 5_000,
    clock,
    logger: silentLogger,
  });
  return { probe, clock, reads };
}

Deno.test("the leader's offset is read on every interval while following it, and answered only for it", async () => {
  let leader: HostPort | undefined = LEADER;
  const { probe: p, clock, reads } = probe(() => leader, [100, 250]);
  p.start();
  await clock.advance(0);
  assert.equal(p.offset(LEADER, clock.now()), 100);
  assert.equal(p.offset(OTHER, clock.now()), undefined, "another leader's offset is not known");
  await clock.advance(5_000);
  assert.equal(p.offset(LEADER, clock.now()), 250);
  leader = undefined; // this node leads now, or nobody does: nothing to read
  await clock.advance(10_000);
  assert.deepEqual(reads, ["10.0.0.1:6379", "10.0.0.1:6379"]);
  await p.stop();
});

Deno.test("an offset read more than three intervals ago is unknown: an unknown lag never passes a bound", async () => {
  const { probe: p, clock } = probe(() => LEADER, [100]);
  p.start();
  await clock.advance(0);
  assert.equal(p.offset(LEADER, clock.now()), 100);
  // Every later read fails (the leader's Redis is down).
  await clock.advance(15_000);
  assert.equal(p.offset(LEADER, clock.now()), 100, "three intervals old: still used");
  await clock.advance(5_000);
  assert.equal(p.offset(LEADER, clock.now()), undefined);
  await p.stop();
});

Deno.test("a replica's lag is the leader's offset less its own, never negative, unknown without either", () => {
  const replica = {
    kind: "up",
    role: "replica",
    offset: 900,
  } as RedisView;
  const leader = { address: LEADER, session: "s", lockIndex: 1 };
  assert.equal(replicationLag({ redis: replica, leader }, 1_000), 100);
  assert.equal(replicationLag({ redis: replica, leader }, 800), 0);
  assert.equal(replicationLag({ redis: replica, leader }, undefined), undefined);
  assert.equal(replicationLag({ redis: replica, leader: null }, 1_000), undefined);
  assert.equal(
    replicationLag({ redis: { ...replica, role: "master" } as RedisView, leader }, 1_000),
    undefined,
  );
});
