/**
 * The fast takeover's rules (lib/reconciler/takeover.ts and their place in decide()): a follower that
 * cannot reach the leader's Redis stops following it, a replica the leader counted ends its term only
 * when every peer lost it too, a holder whose replica went missing takes writes only on fresh
 * renewals, and a new master that ended the old term waits the guard bound, not the fence bound.
 */
import assert from "node:assert/strict";
import { parseCandidacy } from "../../lib/cluster/candidacy.ts";
import { decide } from "../../lib/reconciler/decide.ts";
import {
  acknowledgedInTerm,
  EMPTY_MEMORY,
  holderEnded,
  holderEndStarted,
  remember,
} from "../../lib/reconciler/memory.ts";
import type { DecisionSettings, Observed, RedisView } from "../../lib/reconciler/model.ts";
import {
  endedTermFenceEnds,
  peersLostHolder,
  TAKEOVER_SETTINGS,
  termAcksAfter,
} from "../../lib/reconciler/takeover.ts";
import { acknowledging } from "../../lib/agent/watch/leader_offset.ts";
import { MASTER_REDIS, OTHER, SELF } from "./fixtures/views.ts";
import { candidacy } from "./fixtures/candidacy.ts";

const SETTINGS: DecisionSettings = {
  fenceAfterMs: 9_000,
  peerFenceWaitMs: 9_000,
  replicaLinkGraceMs: 31_000,
  takeover: TAKEOVER_SETTINGS,
};

const NOW = 100_000;
const LEADER = { address: OTHER, session: "s-leader", lockIndex: 7 };
const REPLICA: RedisView = {
  ...MASTER_REDIS,
  role: "replica",
  master: OTHER,
  linkUp: true,
  connectedReplicas: 0,
};
const DETACHED: RedisView = {
  ...REPLICA,
  master: SELF,
  detached: true,
  linkUp: false,
  linkDownMs: 1_000,
};
const HELD = {
  phase: "held" as const,
  lockIndex: 3,
  confirmedAt: NOW - 4_000,
  sessionConfirmedAt: NOW - 4_000,
};

function observed(overrides: Partial<Observed>): Observed {
  return {
    now: NOW,
    self: SELF,
    redis: REPLICA,
    consulReachable: true,
    leader: LEADER,
    lock: { phase: "idle" },
    registration: { role: "slave", status: "passing" },
    fenced: false,
    paused: false,
    ...overrides,
  };
}

const LOST = { unreachableForMs: TAKEOVER_SETTINGS.holderLostAfterMs, acknowledged: true };

Deno.test("a replica that reached the leader's Redis a moment ago keeps following it", () => {
  const decision = decide(
    observed({ holderReach: { unreachableForMs: 500, acknowledged: true } }),
    SETTINGS,
  );
  assert.equal(decision.name, "replica");
  assert.equal(decision.unreachableHolder, undefined);
  assert.equal(decision.endHolderSession, undefined);
});

Deno.test("a replica that cannot reach the leader's Redis points its own at itself before it says so", () => {
  const detaching = decide(observed({ holderReach: LOST }), SETTINGS);
  assert.equal(detaching.name, "holder_unreachable");
  assert.deepEqual(detaching.redis, { kind: "detach" });
  // Not yet: its Redis may still acknowledge the leader until the detach is seen.
  assert.equal(detaching.unreachableHolder, undefined);
  assert.equal(detaching.endHolderSession, undefined);
  assert.equal(detaching.lock, "idle");

  const detached = decide(observed({ redis: DETACHED, holderReach: LOST }), SETTINGS);
  assert.equal(detached.name, "holder_unreachable");
  assert.deepEqual(detached.redis, { kind: "none" });
  assert.equal(detached.unreachableHolder, "s-leader");
  assert.equal(detached.service.kind, "registered");
  if (detached.service.kind === "registered") assert.equal(detached.service.status, "warning");
});

Deno.test("a detached replica ends the leader's session only when every peer lost it and the leader counted it", () => {
  const base = { redis: DETACHED, holderReach: LOST };
  const peersStillReach = decide(observed({ ...base, peersLostHolder: false }), SETTINGS);
  assert.equal(peersStillReach.name, "holder_unreachable");
  assert.equal(peersStillReach.endHolderSession, undefined);

  const neverAcknowledged = decide(
    observed({ ...base, holderReach: { ...LOST, acknowledged: false }, peersLostHolder: true }),
    SETTINGS,
  );
  assert.equal(neverAcknowledged.endHolderSession, undefined);

  const promised = decide(
    observed({ ...base, peersLostHolder: true, promisedUntil: NOW + 1_000 }),
    SETTINGS,
  );
  assert.equal(promised.endHolderSession, undefined);

  const ends = decide(observed({ ...base, peersLostHolder: true }), SETTINGS);
  assert.equal(ends.name, "ending_holder_term");
  assert.equal(ends.endHolderSession, "s-leader");
  assert.equal(ends.lock, "idle");
});

Deno.test("a replica that set out to end the leader's term never follows that leader again", () => {
  const reachedAgain = decide(
    observed({
      redis: DETACHED,
      holderReach: { unreachableForMs: 0, acknowledged: true },
      endedHolder: "s-leader",
    }),
    SETTINGS,
  );
  assert.equal(reachedAgain.name, "ending_holder_term");
  assert.deepEqual(reachedAgain.redis, { kind: "none" });

  // A replica that only said it lost the leader follows it again once it is reached.
  const follows = decide(
    observed({ redis: DETACHED, holderReach: { unreachableForMs: 0, acknowledged: true } }),
    SETTINGS,
  );
  assert.equal(follows.name, "following_leader");
  assert.deepEqual(follows.redis, { kind: "replicate", master: OTHER });

  // A newer leader is followed as usual.
  const newer = decide(
    observed({
      redis: DETACHED,
      leader: { ...LEADER, session: "s-newer", lockIndex: 9 },
      endedHolder: "s-leader",
    }),
    SETTINGS,
  );
  assert.equal(newer.name, "following_leader");
});

Deno.test("without the takeover settings a lost leader changes nothing (agents of the slow path only)", () => {
  const { takeover: _takeover, ...slow } = SETTINGS;
  const decision = decide(
    observed({ redis: DETACHED, holderReach: LOST, peersLostHolder: true }),
    slow,
  );
  assert.equal(decision.name, "following_leader");
});

Deno.test("a holder whose counted replica stopped acknowledging renews often and fences without a fresh renewal", () => {
  const guard = { since: NOW - 100, missing: ["10.0.0.2:6379"] };
  const master = { redis: MASTER_REDIS, leader: { ...LEADER, address: SELF }, lock: HELD };

  const plain = decide(
    observed({ ...master, lock: { ...HELD, sessionConfirmedAt: NOW - 100 } }),
    SETTINGS,
  );
  assert.equal(plain.name, "master");
  assert.equal(plain.confirmLockAfterMs, undefined);

  const fresh = decide(
    observed({ ...master, lock: { ...HELD, sessionConfirmedAt: NOW - 100 }, replicaGuard: guard }),
    SETTINGS,
  );
  assert.equal(fresh.name, "guarded_master");
  assert.equal(fresh.confirmLockAfterMs, TAKEOVER_SETTINGS.guardConfirmEveryMs);
  assert.deepEqual(fresh.redis, { kind: "none" });
  // It wakes for the next renewal.
  assert.equal(fresh.wakeAt, NOW - 100 + TAKEOVER_SETTINGS.guardConfirmEveryMs);

  // The same holder with a renewal 4 s old (well inside the 9 s fence bound) refuses writes.
  const stale = decide(observed({ ...master, replicaGuard: guard }), SETTINGS);
  assert.equal(stale.name, "fencing_unconfirmed_lock");
  assert.deepEqual(stale.redis, { kind: "fence" });
  assert.equal(stale.confirmLockAfterMs, 0);
  assert.match(stale.reason, /10\.0\.0\.2:6379 stopped acknowledging/);
});

Deno.test("a new master that ended its predecessor's term takes writes after the guard bound, not the fence bound", () => {
  const endedAt = NOW - 3_000;
  const common = {
    redis: MASTER_REDIS,
    leader: { ...LEADER, address: SELF },
    lock: { ...HELD, confirmedAt: NOW - 100, sessionConfirmedAt: NOW - 100 },
    fenced: true,
    previousLeader: OTHER,
    previousLeaderSince: NOW - 1_000,
  };
  const waitsFenceBound = decide(observed(common), SETTINGS);
  assert.equal(waitsFenceBound.name, "master");
  assert.deepEqual(waitsFenceBound.redis, { kind: "none" }, "keeps its fence for the fence bound");

  const ends = endedTermFenceEnds(endedAt, TAKEOVER_SETTINGS);
  assert.ok(ends <= NOW, "the guard bound has passed 3 s after the session ended");
  const fast = decide(observed({ ...common, previousLeaderEndedAt: endedAt }), SETTINGS);
  assert.deepEqual(fast.redis, { kind: "unfence" });

  const early = decide(
    observed({ ...common, previousLeaderEndedAt: NOW - 1_000 }),
    SETTINGS,
  );
  assert.deepEqual(early.redis, { kind: "none" });
  assert.equal(early.wakeAt, NOW - 1_000 + 2_400 + 400);
});

Deno.test("the holder counts the replicas that acknowledged in its term and is guarded while one is missing", () => {
  const two = new Set(["10.0.0.2:6379", "10.0.0.3:6379"]);
  let acks = termAcksAfter(undefined, HELD, new Set(), 0);
  assert.equal(acks?.guard, undefined, "a holder no replica acknowledged yet is not guarded");
  acks = termAcksAfter(acks, HELD, two, 250);
  assert.equal(acks?.guard, undefined);
  acks = termAcksAfter(acks, HELD, new Set(["10.0.0.3:6379"]), 500);
  assert.deepEqual(acks?.guard, { since: 500, missing: ["10.0.0.2:6379"] });
  acks = termAcksAfter(acks, HELD, new Set(), 750);
  assert.deepEqual(acks?.guard, { since: 500, missing: ["10.0.0.2:6379", "10.0.0.3:6379"] });
  acks = termAcksAfter(acks, HELD, two, 1_000);
  assert.equal(acks?.guard, undefined, "back: no longer guarded");

  // A new term starts counting afresh; without the lock or without the watch nothing is counted.
  const next = termAcksAfter(acks, { ...HELD, lockIndex: 4 }, new Set(), 1_250);
  assert.equal(next?.guard, undefined);
  assert.equal(termAcksAfter(acks, { phase: "idle" }, two, 1_500), undefined);
  assert.equal(termAcksAfter(acks, HELD, undefined, 1_500), undefined);
});

Deno.test("only replicas online with a lag of at most a second acknowledge", () => {
  const line = { ip: "10.0.0.2", port: 6379, state: "online", offset: 9, lagSeconds: 1 };
  assert.deepEqual(
    acknowledging([
      line,
      { ...line, ip: "10.0.0.3", lagSeconds: 2 },
      { ...line, ip: "10.0.0.4", state: "send_bulk" },
      { ...line, ip: "10.0.0.5", lagSeconds: undefined },
    ]),
    new Set(["10.0.0.2:6379"]),
  );
});

Deno.test("every other live peer must have lost the leader; the leader's own entry and dead peers do not count", () => {
  const seen = (address: string, overrides = {}, extra = {}) => ({
    candidacy: candidacy(address, overrides),
    seenChangedAt: NOW - 60_000,
    held: true,
    ...extra,
  });
  const settings = { staleAfterMs: 12_000 };
  const peers = [
    seen("10.0.0.2:6379"), // the leader itself
    seen("10.0.0.1:6379"), // ourselves
    seen("10.0.0.3:6379", { unreachableHolder: "s-leader" }),
    seen("10.0.0.4:6379", { endsHolder: "s-leader" }),
    seen("10.0.0.5:6379", {}, { released: true }),
  ];
  assert.equal(peersLostHolder(peers, LEADER, SELF, NOW, settings), true);
  assert.equal(
    peersLostHolder(
      [...peers, seen("10.0.0.6:6379", { unreachableHolder: "s-older" })],
      LEADER,
      SELF,
      NOW,
      settings,
    ),
    false,
    "a peer that lost an older leader has not lost this one",
  );
  assert.equal(peersLostHolder([], LEADER, SELF, NOW, settings), true, "a two-node group");
});

Deno.test("a replica counts as acknowledged only by a read made in the current leader's term", () => {
  let memory = remember(EMPTY_MEMORY, {
    now: 1_000,
    self: SELF,
    redis: REPLICA,
    leader: LEADER,
    lock: { phase: "idle" },
    lockTtlMs: 15_000,
  });
  assert.equal(acknowledgedInTerm(memory, LEADER, 999), false, "read before this term was seen");
  assert.equal(acknowledgedInTerm(memory, LEADER, 1_200), true);
  memory = remember(memory, {
    now: 5_000,
    self: SELF,
    redis: REPLICA,
    leader: { ...LEADER, session: "s-next", lockIndex: 8 },
    lock: { phase: "idle" },
    lockTtlMs: 15_000,
  });
  assert.equal(
    acknowledgedInTerm(memory, { ...LEADER, session: "s-next", lockIndex: 8 }, 1_200),
    false,
    "the same address in a new term must acknowledge again",
  );
});

Deno.test("the session a replica ended is remembered with Consul's answer, and handed to its term as the peer's end", () => {
  let memory = remember(EMPTY_MEMORY, {
    now: 1_000,
    self: SELF,
    redis: DETACHED,
    leader: LEADER,
    lock: { phase: "idle" },
    lockTtlMs: 15_000,
  });
  memory = holderEndStarted(memory, "s-leader");
  assert.deepEqual(memory.endedHolder, { session: "s-leader" });
  memory = holderEnded(memory, "s-leader", 1_500);
  memory = remember(memory, {
    now: 2_000,
    self: SELF,
    redis: DETACHED,
    leader: null,
    lock: { phase: "idle" },
    lockTtlMs: 15_000,
  });
  memory = remember(memory, {
    now: 3_000,
    self: SELF,
    redis: DETACHED,
    leader: null,
    lock: { phase: "held", lockIndex: 9, confirmedAt: 3_000 },
    lockTtlMs: 15_000,
  });
  assert.equal(memory.peerToFence?.endedAt, 1_500);
  memory = remember(memory, {
    now: 3_100,
    self: SELF,
    redis: DETACHED,
    leader: { address: SELF, session: "s-mine", lockIndex: 9 },
    lock: { phase: "held", lockIndex: 9, confirmedAt: 3_000 },
    lockTtlMs: 15_000,
  });
  assert.equal(memory.endedHolder, undefined, "forgotten once another session holds the lock");
});

Deno.test("a candidacy carries the lost and the ended leader sessions, checked like every field", () => {
  const stamp = { updatedAt: "2026-11-26T03:40:00.000Z" };
  const record = candidacy("10.0.0.3:6379", {
    ...stamp,
    unreachableHolder: "s-1",
    endsHolder: "s-1",
  });
  const parsed = parseCandidacy(JSON.stringify(record), "10.0.0.3:6379");
  assert.equal(parsed.unreachableHolder, "s-1");
  assert.equal(parsed.endsHolder, "s-1");
  assert.throws(
    () =>
      parseCandidacy(
        JSON.stringify({ ...record, unreachableHolder: 7 }),
        "10.0.0.3:6379",
      ),
    /unreachableHolder/,
  );
  const plain = parseCandidacy(
    JSON.stringify(candidacy("10.0.0.3:6379", stamp)),
    "10.0.0.3:6379",
  );
  assert.equal("unreachableHolder" in plain, false);
});

Deno.test("a new master that saw a peer end the last term before the vacancy counts the guard bound from the vacancy", () => {
  const base = { self: SELF, redis: DETACHED, lock: { phase: "idle" as const }, lockTtlMs: 15_000 };
  let memory = remember(EMPTY_MEMORY, { ...base, now: 1_000, leader: LEADER });
  memory = remember(memory, { ...base, now: 2_000, leader: null });
  assert.equal(memory.lastLeaderEndedAt, undefined, "no peer said it ended the term");
  memory = remember(memory, { ...base, now: 2_100, leader: null, lastLeaderEndedByPeer: true });
  assert.equal(memory.lastLeaderEndedAt, 2_000, "from when this node saw the lock free");
  memory = remember(memory, {
    ...base,
    now: 3_000,
    leader: null,
    lock: { phase: "held", lockIndex: 9, confirmedAt: 3_000 },
  });
  assert.equal(memory.peerToFence?.endedAt, 2_000);

  // Another node leading in between forgets it.
  let other = remember(EMPTY_MEMORY, { ...base, now: 1_000, leader: LEADER });
  other = remember(other, { ...base, now: 2_000, leader: null, lastLeaderEndedByPeer: true });
  other = remember(other, {
    ...base,
    now: 2_500,
    leader: { address: { host: "10.0.0.3", port: 6379 }, session: "s-3", lockIndex: 9 },
  });
  assert.equal(other.lastLeaderEndedAt, undefined);
});
