/**
 * The chaos suite's judgement, without servers: how timelines, probes and lost writes are read, and
 * which results break a fault's promises.
 */
import assert from "node:assert/strict";
import {
  checkpointPrefixKept,
  type Expectation,
  type MasterSample,
  type RoundResult,
  summarizeLoss,
  summarizeProbes,
  summarizeTimeline,
  violations,
} from "./analysis.ts";
import { replaceResults, RESULTS_BEGIN, RESULTS_END } from "./report.ts";

const sample = (at: number, masters: number[] | null): MasterSample => ({ at, masters });

Deno.test("a timeline counts one role change per new master and ignores gaps and repeats", () => {
  const summary = summarizeTimeline([
    sample(0, [1]),
    sample(50, [1]),
    sample(100, []),
    sample(150, null),
    sample(400, [2]),
    sample(450, [2]),
  ]);
  assert.deepEqual(summary.sequence, [1, 2]);
  assert.equal(summary.roleChanges, 1);
  assert.equal(summary.maxNoMasterMs, 300, "from the first empty answer to the next master");
  assert.equal(summary.unansweredMs, 250);
  assert.equal(summary.multiMasterSamples, 0);
});

Deno.test("a timeline shows ping-pong as two role changes and counts polls with two masters", () => {
  const summary = summarizeTimeline([
    sample(0, [1]),
    sample(50, [1, 2]),
    sample(100, [2]),
    sample(150, [1]),
  ]);
  assert.deepEqual(summary.sequence, [1, 2, 1]);
  assert.equal(summary.roleChanges, 2);
  assert.equal(summary.multiMasterSamples, 1);
});

Deno.test("a timeline that ends without a master reports the open window", () => {
  const summary = summarizeTimeline([sample(0, [1]), sample(100, []), sample(900, [])]);
  assert.equal(summary.maxNoMasterMs, 800);
  assert.equal(summary.roleChanges, 0);
});

Deno.test("lost writes from replication lag form one run; a hole in the middle is a second run", () => {
  const acknowledged = ["w1", "w2", "w3", "w4", "w5", "w6"];
  const tail = summarizeLoss({
    acknowledged,
    lost: ["w4", "w3"],
    replicatedBeforeFault: new Set(["w1", "w2"]),
  });
  assert.deepEqual(tail.lost, ["w3", "w4"], "in acknowledgement order");
  assert.equal(tail.lostRuns, 1);
  assert.deepEqual(tail.lostAfterReplication, []);

  const holes = summarizeLoss({
    acknowledged,
    lost: ["w2", "w5"],
    replicatedBeforeFault: new Set(["w1", "w2"]),
  });
  assert.equal(holes.lostRuns, 2);
  assert.deepEqual(holes.lostAfterReplication, ["w2"]);
});

Deno.test("a promoted Redis keeps the checkpoint only as an exact prefix of its list", () => {
  const checkpoint = ["w1", "w2", "w3"];
  assert.equal(checkpointPrefixKept(checkpoint, ["w1", "w2", "w3"]), 3);
  assert.equal(checkpointPrefixKept(checkpoint, ["w1", "w2"]), 2, "a lagging replica");
  assert.equal(checkpointPrefixKept(checkpoint, []), 0, "an empty Redis");
  assert.equal(checkpointPrefixKept(checkpoint, ["w1", "w9", "w3"]), 1);
});

Deno.test("two managed Redis taking writes together are split brain; a comeback Redis is measured apart", () => {
  const rounds = [
    { at: 1_000, writable: [10] },
    { at: 1_900, writable: [20] },
    // In flight when Redis 10 thawed at 2 000: answered after the thaw.
    { at: 1_950, writable: [20, 10] },
    { at: 2_100, writable: [20, 10] },
    { at: 2_200, writable: [20] },
    // Later, two managed Redis take writes together: split brain.
    { at: 6_000, writable: [20, 30] },
  ];
  const summary = summarizeProbes(rounds, [{ port: 10, at: 2_000 }], {
    inFlightMs: 300,
    faultAt: 1_500,
  });
  assert.equal(summary.rounds, 6);
  assert.deepEqual(summary.comebackRounds.map((round) => round.at), [1_950, 2_100]);
  assert.deepEqual(summary.splitBrain.map((round) => round.at), [6_000]);
  assert.equal(summary.comebackWritableMs, 100);
});

Deno.test("writes a Redis took as the legitimate master before the fault are no comeback", () => {
  const summary = summarizeProbes(
    [{ at: 900, writable: [10] }, { at: 1_100, writable: [20] }],
    [{ port: 10, at: 1_050 }],
    { inFlightMs: 300, faultAt: 1_000 },
  );
  assert.equal(summary.comebackWritableMs, undefined);
});

function result(overrides: Partial<RoundResult> = {}): RoundResult {
  return {
    fault: "redis-kill",
    round: 1,
    startedAt: "2026-01-01T00:00:00.000Z",
    acknowledged: 100,
    failedAttempts: 3,
    lost: 0,
    lostRuns: 0,
    lostAfterReplication: 0,
    lostByNode: {},
    divergentNodes: [],
    writerProbeRounds: 50,
    writerSplitBrainRounds: 0,
    probeRounds: 50,
    splitBrain: [],
    comebacks: [],
    comebackRounds: 0,
    comebackWritableMs: undefined,
    comebackGraceMs: 2_000,
    multiMasterSamples: 0,
    maxNoMasterMs: 100,
    unansweredMs: 0,
    roleChanges: 1,
    masterSequence: [1, 2],
    checkpoint: 40,
    promotions: [{ port: 2, at: 0, kept: 40, checkpoint: 40 }],
    wrongPromotions: 0,
    newMasterAfterMs: 50,
    converged: true,
    convergedAfterMs: 300,
    ...overrides,
  };
}

const failover: Expectation = { roleChanges: { min: 1, max: 1 }, loss: { kind: "tail" } };
const noLoss: Expectation = { roleChanges: { min: 1, max: 1 }, loss: { kind: "none" } };

Deno.test("a round that kept its promises has no violations", () => {
  assert.deepEqual(violations(result(), failover), []);
  assert.deepEqual(violations(result({ lost: 2, lostRuns: 1 }), failover), []);
});

Deno.test("each broken promise is reported", () => {
  const cases: [Partial<RoundResult>, Expectation, RegExp][] = [
    [{ splitBrain: [{ afterMs: 5, writable: [1, 2] }] }, failover, /split brain: 1 of 50/],
    [{ writerSplitBrainRounds: 2 }, failover, /2 of 50 writer probe rounds/],
    [{ multiMasterSamples: 1 }, failover, /two passing masters in 1 polls/],
    [
      {
        wrongPromotions: 1,
        promotions: [{ port: 2, at: 0, kept: 0, checkpoint: 40 }],
      },
      failover,
      /without the replicated data was named: 2 \(held 0 of 40\)/,
    ],
    [{ converged: false }, failover, /did not converge/],
    [
      { roleChanges: 2, masterSequence: [1, 2, 1] },
      failover,
      /2 master changes \(expected 1\): 1 → 2 → 1/,
    ],
    [{ lost: 1, lostRuns: 1 }, noLoss, /1 acknowledged writes lost where the design promises none/],
    [{ lost: 4, lostRuns: 2 }, failover, /2 separate runs/],
    [
      { lost: 3, lostRuns: 1 },
      { ...failover, loss: { kind: "tail", max: 1 } },
      /at most 1 allowed/,
    ],
    [{ lost: 1, lostRuns: 1, lostAfterReplication: 1 }, failover, /had reached every node/],
    [{ divergentNodes: ["127.0.0.1:1 (3 writes, master 9)"] }, failover, /replicas differ/],
    [
      { comebacks: [1], comebackWritableMs: 2_500 },
      failover,
      /took writes for 2500 ms \(its agent must demote it within 2000 ms\)/,
    ],
    [{ error: "no master" }, failover, /^the round did not complete: no master$/],
  ];
  for (const [overrides, expectation, pattern] of cases) {
    const found = violations(result(overrides), expectation);
    assert.ok(found.some((line) => pattern.test(line)), `${pattern} in ${JSON.stringify(found)}`);
  }
});

Deno.test("the writer's unclassified split-brain count is trusted only in rounds without a comeback", () => {
  const found = violations(
    result({ writerSplitBrainRounds: 1, comebacks: [1], comebackWritableMs: 0, comebackRounds: 1 }),
    failover,
  );
  assert.deepEqual(found, []);
});

Deno.test("the results section replaces the one between the markers and keeps the rest", () => {
  const document = `# Chaos\n\nintro\n\n${RESULTS_BEGIN}\nold table\n${RESULTS_END}\n\nafter\n`;
  const updated = replaceResults(document, "new table");
  assert.equal(
    updated,
    `# Chaos\n\nintro\n\n${RESULTS_BEGIN}\nnew table\n${RESULTS_END}\n\nafter\n`,
  );
  const appended = replaceResults("# Chaos\n", "first table");
  assert.match(appended, /## Results\n\n<!-- chaos-results:begin.*-->\nfirst table\n<!-- chaos/);
});
