/**
 * HolderHostWatch: when the other agents end the leader's session because its host is gone. Consul
 * is replaced by a scripted port whose blocking reads wait on a manual clock; no I/O.
 */
import assert from "node:assert/strict";
import { parseHostPort } from "../../lib/address.ts";
import { HolderHostWatch } from "../../lib/agent/watch/holder_watch.ts";
import type { CheckStatus } from "../../lib/consul/health.ts";
import { ManualClock } from "../../lib/clock.ts";
import { silentLogger } from "../../lib/log.ts";
import type { LeaderView } from "../../lib/reconciler/model.ts";

const GRACE_MS = 9_000;

function scenario(options: { own?: string } = {}) {
  const clock = new ManualClock(0);
  const state = {
    leader: { address: parseHostPort("10.0.0.1:6379"), session: "s-1", lockIndex: 4 } as
      | LeaderView
      | null,
    paused: false,
    gossip: "passing" as CheckStatus | undefined,
    index: 1,
    ended: [] as { session: string; at: number }[],
  };
  const setGossip = (status: CheckStatus) => {
    state.gossip = status;
    state.index++;
  };
  const watch = new HolderHostWatch({
    port: {
      sessionNode: (session) =>
        Promise.resolve(session === "gone" ? undefined : `node-of-${session}`),
      gossipHealth: async (_node, { index, waitMs, signal }) => {
        // A blocking read: returns once the index moved or the wait is over.
        const until = clock.now() + waitMs;
        while (index > 0 && state.index === index && clock.now() < until) {
          await clock.sleep(Math.min(100, until - clock.now()), signal);
        }
        return { status: state.gossip, index: state.index };
      },
      endSession: (session) => {
        state.ended.push({ session, at: clock.now() });
        return Promise.resolve();
      },
    },
    leader: () => state.leader,
    ownSession: () => options.own,
    paused: () => state.paused,
    graceMs: GRACE_MS,
    clock,
    logger: silentLogger,
  });
  return { clock, state, setGossip, watch };
}

Deno.test("a leader whose host stays unreachable by gossip for the fence bound loses its session", async () => {
  const { clock, state, setGossip, watch } = scenario();
  watch.start();
  await clock.advance(5_000);
  setGossip("critical");
  await clock.advance(GRACE_MS - 500);
  assert.equal(state.ended.length, 0, "not before the fence bound");
  await clock.advance(1_000);
  assert.equal(state.ended.length, 1);
  assert.equal(state.ended[0]!.session, "s-1");
  assert.ok(state.ended[0]!.at - 5_000 >= GRACE_MS, `ended at ${state.ended[0]!.at}`);
  await clock.advance(30_000);
  assert.equal(state.ended.length, 1, "once");
  await watch.stop();
});

Deno.test("a Consul agent that comes back within the fence bound costs nothing", async () => {
  const { clock, state, setGossip, watch } = scenario();
  watch.start();
  await clock.advance(1_000);
  setGossip("critical");
  await clock.advance(GRACE_MS - 2_000);
  setGossip("passing");
  await clock.advance(1_000);
  setGossip("critical"); // a second blip starts the count again
  await clock.advance(GRACE_MS - 1_000);
  assert.deepEqual(state.ended, []);
  await watch.stop();
});

Deno.test("nothing is ended for our own session, while paused, or once the leader changed", async () => {
  const own = scenario({ own: "s-1" });
  own.watch.start();
  own.setGossip("critical");
  await own.clock.advance(3 * GRACE_MS);
  assert.deepEqual(own.state.ended, [], "our own session");
  await own.watch.stop();

  const paused = scenario();
  paused.state.paused = true;
  paused.watch.start();
  paused.setGossip("critical");
  await paused.clock.advance(3 * GRACE_MS);
  assert.deepEqual(paused.state.ended, [], "maintenance mode: a host may be rebooting on purpose");
  await paused.watch.stop();

  const moved = scenario();
  moved.watch.start();
  await moved.clock.advance(1_000);
  moved.setGossip("critical");
  await moved.clock.advance(GRACE_MS / 2);
  moved.state.leader = { address: parseHostPort("10.0.0.2:6379"), session: "s-2", lockIndex: 5 };
  moved.setGossip("passing");
  await moved.clock.advance(3 * GRACE_MS);
  assert.deepEqual(moved.state.ended, [], "the new leader's node is healthy");
  await moved.watch.stop();
});
