/**
 * Election rules: who may take a free lock, who steps aside, and for how long.
 */
import assert from "node:assert/strict";
import {
  type Candidacy,
  disqualification,
  type ElectionSettings,
  electionStanding,
  epochOfHistory,
  isLive,
  ranksBefore,
  type SeenCandidacy,
} from "../../lib/reconciler/election.ts";

const HISTORY = "a".repeat(40);

function candidate(address: string, overrides: Partial<Candidacy> = {}): Candidacy {
  return {
    address,
    runId: `run-${address}`,
    replicationId: HISTORY,
    replicationId2: "0".repeat(40),
    offset: 1_000_000,
    role: "replica",
    healthy: true,
    datasetEmpty: false,
    synced: true,
    priority: 100,
    forced: false,
    vacancy: 42,
    updatedAt: "2026-11-21T00:00:00.000Z",
    ...overrides,
  };
}

const SETTINGS: ElectionSettings = {
  maxLagBytes: 1_048_576,
  staleAfterMs: 5_000,
  collectMs: 500,
  stepAsideMaxMs: 10_000,
};

function seen(c: Candidacy, seenChangedAt = 1_000): SeenCandidacy {
  return { candidacy: c, seenChangedAt };
}

function standing(
  self: Candidacy,
  peers: SeenCandidacy[],
  now = 2_000,
  freeSince = 900,
  settings = SETTINGS,
) {
  return electionStanding({ self, peers, now, freeSince, vacancy: 42, settings });
}

Deno.test("a node with priority 0 is never promoted, even alone", () => {
  const result = standing(candidate("a:1", { priority: 0 }), []);
  assert.equal(result.kind, "ineligible");
  assert.match(result.reason, /priority 0/);
});

Deno.test("FORCE_FAILOVER does not override priority 0", () => {
  assert.match(
    disqualification(candidate("a:1", { priority: 0, forced: true }), [], SETTINGS)!,
    /priority 0/,
  );
});

Deno.test("an empty Redis steps aside for a healthy peer with data", () => {
  const empty = candidate("a:1", { datasetEmpty: true, offset: 0 });
  const result = standing(empty, [seen(candidate("b:1"))]);
  assert.equal(result.kind, "ineligible");
  assert.match(result.reason, /empty.*b:1 has data/);
});

Deno.test("a Redis that never completed a sync steps aside for a synced peer", () => {
  const fresh = candidate("a:1", { synced: false, replicationId: "f".repeat(40) });
  assert.match(disqualification(fresh, [candidate("b:1")], SETTINGS)!, /never completed a sync/);
});

Deno.test("when every node is empty (a new cluster) one of them may lead", () => {
  const a = candidate("a:1", {
    datasetEmpty: true,
    synced: false,
    offset: 0,
    role: "master",
    replicationId: "x".repeat(40),
  });
  const b = candidate("b:1", {
    datasetEmpty: true,
    synced: false,
    offset: 0,
    role: "master",
    replicationId: "y".repeat(40),
  });
  assert.equal(standing(a, [seen(b)]).kind, "compete", "a:1 wins the tie-break");
  assert.equal(standing(b, [seen(a)]).kind, "wait");
});

Deno.test("a replica lagging more than MAX_LAG_ON_FAILOVER behind the failed master's last offset may not lead", () => {
  const master = candidate("m:1", { healthy: false, role: "master", offset: 5_000_000 });
  const result = standing(candidate("a:1", { offset: 3_000_000 }), [seen(master)]);
  assert.equal(result.kind, "ineligible");
  assert.match(result.reason, /lags 2000000 bytes/);
});

Deno.test("FORCE_FAILOVER lets a lagging or empty node lead", () => {
  const master = candidate("m:1", { healthy: false, role: "master", offset: 5_000_000 });
  assert.equal(
    standing(candidate("a:1", { offset: 3_000_000, forced: true }), [seen(master)]).kind,
    "compete",
  );
});

Deno.test("offsets of unrelated replication histories are not compared for lag", () => {
  const other = candidate("b:1", { replicationId: "b".repeat(40), offset: 9_000_000 });
  assert.equal(disqualification(candidate("a:1"), [other], SETTINGS), undefined);
});

Deno.test("a detached replica still compares with peers through its previous replication ID", () => {
  const detached = candidate("a:1", {
    replicationId: "n".repeat(40),
    replicationId2: HISTORY,
    offset: 100,
  });
  const ahead = candidate("b:1", { offset: 2_000_000 });
  assert.match(disqualification(detached, [ahead], SETTINGS)!, /lags/);
});

Deno.test("a Redis that restarted empty and took a write ranks below a replica with the group's longer history, even with the smaller address", () => {
  // Simulator seed 35 (node-crash): the restarted node won the address tie-break over the data.
  const restarted = candidate("10.0.0.1:6379", {
    role: "master",
    replicationId: "f".repeat(40),
    offset: 1,
  });
  const keeper = candidate("10.0.0.3:6379", { offset: 22 });
  assert.ok(ranksBefore(keeper, restarted));
  assert.ok(!ranksBefore(restarted, keeper));
  const peers = [seen(keeper)];
  assert.equal(standing(restarted, peers).kind, "wait");
  assert.equal(standing(keeper, [seen(restarted)]).kind, "compete");
});

Deno.test("data of a newer term ranks first, and an older term's longer offset in the shared history makes nobody lag", () => {
  // Simulator seed 2032: n0 led term 1 and took writes cut off from everyone until its fence, past
  // offset 113; n1 replicated term 2 (offset 122, the history continuing as replicationId2). n0,
  // back as a replica, never completed its sync. Both carry history "a…".
  const oldBranch = candidate("n0:1", { offset: 125, dataEpoch: 1 });
  const newTerm = candidate("n1:1", {
    replicationId: "b".repeat(40),
    replicationId2: HISTORY,
    offset: 122,
    dataEpoch: 2,
  });
  const strict = { ...SETTINGS, maxLagBytes: 0 };
  assert.equal(disqualification(newTerm, [oldBranch], strict), undefined);
  assert.equal(ranksBefore(newTerm, oldBranch), true);
  assert.equal(ranksBefore(oldBranch, newTerm), false);
  assert.equal(standing(newTerm, [seen(oldBranch)], 2_000, 900, strict).kind, "compete");
  assert.equal(standing(oldBranch, [seen(newTerm)], 2_000, 900, strict).kind, "wait");
  // Without epochs (agents of earlier versions), offsets decide as before.
  const { dataEpoch: _a, ...oldWithout } = oldBranch;
  const { dataEpoch: _b, ...newWithout } = newTerm;
  assert.match(disqualification(newWithout, [oldWithout], strict)!, /lags 3 bytes/);
  assert.equal(ranksBefore(oldWithout, newWithout), true);
  // One epoch unknown (that agent restarted since): offsets decide too.
  assert.equal(ranksBefore(oldWithout, newTerm), true);
});

Deno.test("the larger offset ranks first, then the lower priority number, then the smaller address", () => {
  assert.ok(ranksBefore(candidate("z:1", { offset: 2 }), candidate("a:1", { offset: 1 })));
  assert.ok(ranksBefore(candidate("z:1", { priority: 10 }), candidate("a:1", { priority: 100 })));
  assert.ok(ranksBefore(candidate("a:1"), candidate("b:1")));
  assert.ok(!ranksBefore(candidate("b:1"), candidate("a:1")));
});

Deno.test("a candidate waits for peers that have not answered this vacancy yet", () => {
  const earlier = candidate("b:1", { offset: 10, vacancy: 7 });
  const result = standing(candidate("a:1"), [seen(earlier, 950)], 1_000, 900);
  assert.equal(result.kind, "wait");
  assert.equal(result.kind === "wait" && result.until, 1_400);
  assert.match(result.reason, /b:1/);
});

Deno.test("a publication that crossed the vacancy in flight still counts as silent", () => {
  // Seen after the lock went free by our clock, but written before its agent saw the vacancy.
  const inFlight = candidate("b:1", { offset: 10, vacancy: 0 });
  assert.equal(standing(candidate("a:1"), [seen(inFlight, 905)], 910, 900).kind, "wait");
});

Deno.test("after the collection window a candidate goes ahead without the silent peer", () => {
  const result = standing(
    candidate("a:1"),
    [seen(candidate("b:1", { offset: 10, vacancy: 7 }), 800)],
    1_400,
    900,
  );
  assert.equal(result.kind, "compete");
});

Deno.test("a candidate steps aside for a fresher peer, but only for a bounded time", () => {
  const better = seen(candidate("b:1", { offset: 2_000_000 }), 1_000);
  const waiting = standing(candidate("a:1", { offset: 1_500_000 }), [better], 2_000, 900);
  assert.equal(waiting.kind, "wait");
  assert.match(waiting.reason, /stepping aside for b:1/);
  const later = standing(
    candidate("a:1", { offset: 1_500_000 }),
    [seen(better.candidacy, 10_000)],
    10_900,
    900,
  );
  assert.equal(
    later.kind,
    "compete",
    "a better peer that never takes the lock does not block forever",
  );
});

Deno.test("a stale peer entry that no session holds (its agent is gone) holds nobody back", () => {
  const gone = seen(candidate("b:1", { offset: 9_000_000 }), 0);
  assert.equal(standing(candidate("a:1"), [gone], 6_000, 5_900).kind, "compete");
});

Deno.test("a peer whose entry its session holds is live however long ago it last changed", () => {
  // Agents write their candidacy only when it changes: an hour-old entry of a live agent still counts.
  const better = { ...seen(candidate("b:1", { offset: 1_500_000 }), 0), held: true };
  const result = standing(candidate("a:1"), [better], 3_600_000, 3_599_900);
  assert.equal(result.kind, "wait");
  assert.match(result.reason, /stepping aside for b:1/);
  assert.equal(isLive(better, 3_600_000, SETTINGS), true);
  assert.equal(isLive({ ...better, held: false }, 3_600_000, SETTINGS), false);
  assert.equal(isLive({ ...better, held: false }, 4_000, SETTINGS), true);
});

Deno.test("an unhealthy peer never ranks above a healthy candidate", () => {
  const sick = seen(candidate("b:1", { healthy: false }));
  assert.equal(standing(candidate("c:1"), [sick]).kind, "compete");
});

Deno.test("an empty node waits, for a bounded time, while a peer with data is briefly down", () => {
  const empty = candidate("a:1", { datasetEmpty: true, synced: false, offset: 0 });
  const blip = seen(candidate("b:1", { healthy: false }), 1_000);
  const early = standing(empty, [blip], 2_000, 900);
  assert.equal(early.kind, "wait");
  assert.match(early.reason, /b:1, which may hold data, to recover/);
  const late = standing(empty, [seen(blip.candidacy, 10_950)], 10_950, 900);
  assert.equal(late.kind, "compete", "a peer that stays down does not block forever");
});

Deno.test("a replica whose sync the agent never saw still counts as having data when it shares the master's history", () => {
  // Synced between two polls, then detached: the agent never saw its link up, but Redis kept the
  // master's replication ID as its previous one.
  const detached = candidate("b:1", {
    synced: false,
    replicationId: "n".repeat(40),
    replicationId2: HISTORY,
    role: "master",
  });
  const deadMaster = candidate("m:1", { healthy: false, role: "master" });
  const empty = candidate("a:1", {
    datasetEmpty: true,
    synced: false,
    offset: 0,
    replicationId: "e".repeat(40),
  });
  const result = disqualification(empty, [detached, deadMaster], SETTINGS);
  assert.match(result!, /empty while b:1 has data/);
});

Deno.test("an empty node never outwaits a live better peer, however long that peer takes", () => {
  const empty = candidate("a:1", {
    datasetEmpty: true,
    synced: false,
    offset: 0,
    replicationId: "e".repeat(40),
  });
  const better = seen(
    candidate("b:1", {
      datasetEmpty: true,
      synced: false,
      offset: 0,
      replicationId: "f".repeat(40),
      priority: 10,
    }),
    20_000,
  );
  const result = standing(empty, [better], 20_000, 900);
  assert.equal(result.kind, "wait", "b:1 ranks higher (priority 10) and its agent is alive");
});

Deno.test("the leader's last offset this node read holds a lagging node back once the leader's candidacy is gone", () => {
  // The dead master's candidacy was released: no peer shows its offset any more.
  const lagging = candidate("a:1", { offset: 1_000_000 });
  const leaderPosition = { replicationId: HISTORY, offset: 3_000_000 };
  const result = electionStanding({
    self: lagging,
    peers: [],
    now: 2_000,
    freeSince: 900,
    vacancy: 42,
    settings: SETTINGS,
    leaderPosition,
  });
  assert.equal(result.kind, "ineligible");
  assert.match(result.reason, /lags 2000000 bytes behind the best offset 3000000/);
  // A detached replica keeps the history as its second replication ID.
  const detached = candidate("a:1", {
    offset: 1_000_000,
    replicationId: "c".repeat(40),
    replicationId2: HISTORY,
  });
  assert.match(disqualification(detached, [], SETTINGS, leaderPosition)!, /lags/);
  const otherHistory = { replicationId: "d".repeat(40), offset: 3_000_000 };
  assert.equal(disqualification(lagging, [], SETTINGS, otherHistory), undefined);
  assert.equal(disqualification(lagging, [], SETTINGS), undefined, "without it, alone it leads");
});

Deno.test("a peer whose entry Consul released before the vacancy (a host back from a Consul cut) is waited for during the collection window", () => {
  // Seed 982 of the simulator: n2's agent check lapsed while it was cut off, so Consul released its
  // candidacy; it is back, holds the latest write, and cannot publish until a heartbeat passed.
  const back: SeenCandidacy = {
    candidacy: candidate("c:1", { offset: 1_000_001, vacancy: 0 }),
    seenChangedAt: 500,
    released: true,
  };
  const waiting = standing(candidate("a:1"), [back], 1_000, 900);
  assert.equal(waiting.kind, "wait");
  assert.match(waiting.reason, /waiting for c:1 to publish/);
  assert.equal(waiting.kind === "wait" && waiting.until, 1_400);
  // Bounded: a node that is really gone costs the collection window, no more.
  assert.equal(standing(candidate("a:1"), [back], 1_400, 900).kind, "compete");
  // Never live: its old position neither ranks nor disqualifies anyone.
  assert.equal(isLive(back, 600, SETTINGS), false);
});

Deno.test("the entry of the last holder released with the vacancy holds nobody back, but one it released later (its agent restarted) is waited for", () => {
  const holder: SeenCandidacy = {
    candidacy: candidate("c:1", { vacancy: 0 }),
    seenChangedAt: 899,
    released: true,
  };
  const withHolder = electionStanding({
    self: candidate("a:1"),
    peers: [holder],
    now: 1_000,
    freeSince: 900,
    vacancy: 42,
    settings: SETTINGS,
    lastHolder: "c:1",
  });
  assert.equal(withHolder.kind, "compete");
  // Seed 807 of the agent-crash run: the master's agent restarted after its lock session expired,
  // and ended its earlier run's sessions, which released its entry.
  const restarted = electionStanding({
    self: candidate("a:1"),
    peers: [{ ...holder, seenChangedAt: 950 }],
    now: 1_000,
    freeSince: 900,
    vacancy: 42,
    settings: SETTINGS,
    lastHolder: "c:1",
  });
  assert.equal(restarted.kind, "wait");
});

Deno.test("a history's epoch is the newest this agent saw or any peer published for the same replication ID", () => {
  const leader = seen(candidate("n1:1", { replicationId: "b".repeat(40), dataEpoch: 2 }));
  const older = seen(candidate("n0:1", { dataEpoch: 1 }));
  // Synced from n1 between two polls: its agent saw no link up, but it carries n1's history.
  assert.equal(epochOfHistory("b".repeat(40), undefined, [leader, older]), 2);
  assert.equal(epochOfHistory("b".repeat(40), 3, [leader]), 3, "its own, newer, stands");
  assert.equal(epochOfHistory("c".repeat(40), undefined, [leader, older]), undefined);
  assert.equal(
    epochOfHistory("0".repeat(40), undefined, [seen(candidate("n2:1", {
      replicationId: "0".repeat(40),
      dataEpoch: 5,
    }))]),
    undefined,
    "no history yet: nothing to share",
  );
});

Deno.test("a peer whose held entry someone overwrote is waited for while positions are collected (simulator seeds 94, 1499)", () => {
  // It may hold the latest writes, and it publishes a readable position for the vacancy.
  const self = candidate("a:1", { vacancy: 42 });
  const waiting = electionStanding({
    self,
    peers: [],
    now: 1_000,
    freeSince: 900,
    vacancy: 42,
    settings: SETTINGS,
    unreadable: ["b:1"],
  });
  assert.equal(waiting.kind, "wait");
  assert.match(waiting.kind === "wait" ? waiting.reason : "", /waiting for b:1 to publish/);
  const after = electionStanding({
    self,
    peers: [],
    now: 900 + SETTINGS.collectMs,
    freeSince: 900,
    vacancy: 42,
    settings: SETTINGS,
    unreadable: ["b:1"],
  });
  assert.equal(after.kind, "compete", "not past the collection window");
});
