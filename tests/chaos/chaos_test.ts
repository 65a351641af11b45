/**
 * The chaos suite, short form: one round of every fault on a fresh three-node cluster with the fast
 * test timings (TTL 2 s, checks every 500 ms), under a continuous writer. A test fails on two writable
 * masters, two passing masters in Consul, a promotion that lacks replicated data, a master change
 * count other than the fault's (no ping-pong), no convergence, or a lost acknowledged write the
 * design promises to keep. The long form (tests/chaos/run.ts) runs the same rounds many times.
 */
import assert from "node:assert/strict";
import { formatRound } from "./report.ts";
import {
  agentKill,
  consulPartition,
  consulPause,
  consulRestart,
  emptyRestart,
  type Fault,
  redisFreeze,
  redisKill,
  switchover,
} from "./faults.ts";
import { runRound } from "./round.ts";

async function provesPromises(fault: Fault): Promise<void> {
  const outcome = await runRound(fault);
  console.log(formatRound(outcome.result));
  if (outcome.violations.length > 0) {
    console.error(outcome.logs);
    assert.fail(`${fault.name} broke its promises:\n- ${outcome.violations.join("\n- ")}`);
  }
}

Deno.test("kill -9 of the master's Redis: one failover to a replica with all replicated data, at most the unreplicated tail lost, the restarted Redis rejoins", async () => {
  await provesPromises(redisKill);
});

Deno.test("kill -9 of the master's agent: one failover after the session TTL, no acknowledged write lost, never two writable masters", async () => {
  await provesPromises(agentKill);
});

Deno.test("a master Redis frozen longer than the TTL: one failover, at most the write in flight lost, it thaws into a replica", async () => {
  await provesPromises(redisFreeze);
});

Deno.test("a Consul agent that restarts empty: agents re-register and re-elect at most once, nothing acknowledged lost", async () => {
  await provesPromises(consulRestart);
});

Deno.test("Consul frozen for one TTL: the master fences and recovers, no master change, nothing lost", async () => {
  await provesPromises(consulPause);
});

Deno.test("the master cut off from Consul: it fences before a new master is elected, nothing lost, it rejoins as a replica", async () => {
  await provesPromises(consulPartition);
});

Deno.test("the master's Redis restarted empty at once: it never leads empty, the replicas keep their data", async () => {
  await provesPromises(emptyRestart);
});

Deno.test("a planned switchover under load: exactly one role change, no acknowledged write lost, never two writable masters", async () => {
  await provesPromises(switchover);
});
