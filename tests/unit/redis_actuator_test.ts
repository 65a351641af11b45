/**
 * RedisActuator: which commands each action sends, and that a write pause an earlier run of the agent
 * left (INFO cannot show one) never outlives the moment Redis turns replica or is promoted.
 */
import assert from "node:assert/strict";
import { RedisActuator, type RedisCommandPort } from "../../lib/agent/apply/redis_actuator.ts";
import { silentLogger } from "../../lib/log.ts";

function recordingActuator(): { actuator: RedisActuator; calls: string[] } {
  const calls: string[] = [];
  const commands: RedisCommandPort = {
    promote: () => Promise.resolve(void calls.push("promote")),
    detach: () => {
      calls.push("detach");
      return Promise.resolve({ synced: true });
    },
    replicateFrom: (master) => Promise.resolve(void calls.push(`replicaof ${master.port}`)),
    pauseWrites: (ms) => Promise.resolve(void calls.push(`pause ${ms}`)),
    unpauseWrites: () => Promise.resolve(void calls.push("unpause")),
  };
  return {
    actuator: new RedisActuator({ commands, fenceMs: 60_000, logger: silentLogger }),
    calls,
  };
}

const MASTER = { host: "10.0.0.2", port: 6380 };

Deno.test("a fresh actuator lifts a pause an earlier run may have left when it points Redis at a master", async () => {
  const { actuator, calls } = recordingActuator();
  await actuator.apply({ kind: "replicate", master: MASTER }, 0);
  assert.deepEqual(calls, ["replicaof 6380", "unpause"]);
  // Known now: the next repointing sends no needless UNPAUSE.
  await actuator.apply({ kind: "replicate", master: MASTER }, 1);
  assert.deepEqual(calls, ["replicaof 6380", "unpause", "replicaof 6380"]);
});

Deno.test("a fresh actuator lifts a leftover pause when it promotes Redis to take writes", async () => {
  const { actuator, calls } = recordingActuator();
  await actuator.apply({ kind: "promote" }, 0);
  assert.deepEqual(calls, ["promote", "unpause"]);
});

Deno.test("a promotion keeps a fence this run set: only the reconciler lifts it", async () => {
  const { actuator, calls } = recordingActuator();
  await actuator.apply({ kind: "fence" }, 0);
  await actuator.apply({ kind: "promote" }, 1);
  assert.deepEqual(calls, ["pause 60000", "promote"]);
  assert.equal(actuator.isFenced(1), true);
  await actuator.apply({ kind: "unfence" }, 2);
  assert.deepEqual(calls, ["pause 60000", "promote", "unpause"]);
  assert.equal(actuator.isFenced(2), false);
});

Deno.test("a fence of this run comes off once Redis replicates from the master", async () => {
  const { actuator, calls } = recordingActuator();
  await actuator.apply({ kind: "fence" }, 0);
  await actuator.apply({ kind: "replicate", master: MASTER }, 1);
  assert.deepEqual(calls, ["pause 60000", "replicaof 6380", "unpause"]);
  assert.equal(actuator.isFenced(1), false);
});

Deno.test("liftLeftoverPause unpauses once, and not after this run paused Redis itself", async () => {
  const fresh = recordingActuator();
  await fresh.actuator.liftLeftoverPause();
  await fresh.actuator.liftLeftoverPause();
  assert.deepEqual(fresh.calls, ["unpause"]);

  const fenced = recordingActuator();
  await fenced.actuator.apply({ kind: "fence" }, 0);
  await fenced.actuator.liftLeftoverPause();
  assert.deepEqual(fenced.calls, ["pause 60000"]);
});

Deno.test("a Redis that restarted since the fence counts as unfenced, and is fenced again", async () => {
  const { actuator, calls } = recordingActuator();
  await actuator.apply({ kind: "fence" }, 0, "run-1");
  assert.equal(actuator.isFenced(1_000, "run-1"), true);
  assert.equal(actuator.isFenced(1_000), true, "an unknown process: by time alone");
  assert.equal(actuator.isFenced(1_000, "run-2"), false, "the restarted process has no pause");
  await actuator.apply({ kind: "fence" }, 1_000, "run-2");
  assert.equal(actuator.isFenced(2_000, "run-2"), true);
  assert.deepEqual(calls, ["pause 60000", "pause 60000"]);
});

Deno.test("a detach sends no write pause: the Redis stays a replica throughout", async () => {
  const { actuator, calls } = recordingActuator();
  const result = await actuator.apply({ kind: "detach" }, 0);
  assert.deepEqual(calls, ["detach"]);
  assert.deepEqual(result, { synced: true });
  assert.equal(actuator.isFenced(1), false);
});
