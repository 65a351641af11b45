/**
 * The agent's safety memory: pure updates from one observation to the next, no clock, no I/O.
 */
import assert from "node:assert/strict";
import {
  dataEpoch,
  demotedUnderLock,
  EMPTY_MEMORY,
  hasSynced,
  type Memory,
  neverSynced,
  PEER_FENCE_TTLS,
  peerFenceAttemptEnded,
  peerFenced,
  remember,
  rememberSynced,
  restartedSinceLed,
} from "../../lib/reconciler/memory.ts";
import type { LeaderView, LockView, RedisView } from "../../lib/reconciler/model.ts";
import { MASTER_REDIS, OTHER, SELF } from "./fixtures/views.ts";
import type { ReleaseNote } from "../../lib/cluster/lock_value.ts";

const TTL_MS = 15_000;

const MASTER: RedisView = { ...MASTER_REDIS, connectedReplicas: 1, runId: "run-master" };
const LINKED_REPLICA: RedisView = {
  ...MASTER,
  role: "replica",
  master: OTHER,
  linkUp: true,
  runId: "run-linked",
};
const NEVER_LINKED_REPLICA: RedisView = {
  ...LINKED_REPLICA,
  linkUp: false,
  linkDownMs: "never",
  runId: "run-never",
};
const IDLE: LockView = { phase: "idle" };
const HELD: LockView = { phase: "held", lockIndex: 4, confirmedAt: 0 };
const OTHER_LEADS: LeaderView = { address: OTHER, session: "s-other", lockIndex: 3 };
const SELF_LEADS: LeaderView = { address: SELF, session: "s-self", lockIndex: 4 };

function step(
  memory: Memory,
  observation: {
    now?: number;
    redis?: RedisView;
    leader?: LeaderView | null;
    lock?: LockView;
    leaderOffset?: number;
    releaseNote?: ReleaseNote;
  },
): Memory {
  return remember(memory, {
    now: observation.now ?? 1_000,
    self: SELF,
    redis: observation.redis ?? MASTER,
    leader: "leader" in observation ? observation.leader : undefined,
    lock: observation.lock ?? IDLE,
    lockTtlMs: TTL_MS,
    ...(observation.leaderOffset !== undefined ? { leaderOffset: observation.leaderOffset } : {}),
    ...(observation.releaseNote ? { releaseNote: observation.releaseNote } : {}),
  });
}

Deno.test("a replica whose link came up is remembered as synced, a never-linked one as never synced", () => {
  let memory = step(EMPTY_MEMORY, { redis: NEVER_LINKED_REPLICA });
  assert.equal(neverSynced(memory, "run-never"), true);
  assert.equal(hasSynced(memory, "run-never"), false);
  memory = step(memory, { redis: { ...NEVER_LINKED_REPLICA, linkUp: true } });
  assert.equal(hasSynced(memory, "run-never"), true);
  assert.equal(neverSynced(memory, "run-never"), false);
  assert.equal(hasSynced(step(EMPTY_MEMORY, { redis: LINKED_REPLICA }), "run-linked"), true);
});

Deno.test("a master counts as synced only while it holds the lock", () => {
  assert.equal(hasSynced(step(EMPTY_MEMORY, { redis: MASTER }), "run-master"), false);
  assert.equal(hasSynced(step(EMPTY_MEMORY, { redis: MASTER, lock: HELD }), "run-master"), true);
});

Deno.test("a completed sync Redis reported before detaching is remembered, once", () => {
  const memory = rememberSynced(EMPTY_MEMORY, "run-1");
  assert.equal(hasSynced(memory, "run-1"), true);
  assert.equal(rememberSynced(memory, "run-1"), memory);
  assert.equal(hasSynced(EMPTY_MEMORY, "run-1"), false, "the empty memory is never changed");
});

Deno.test("the lock is free since the first observation that found it free, until someone holds it", () => {
  let memory = step(EMPTY_MEMORY, { now: 5_000, leader: null });
  assert.equal(memory.freeSince, 5_000);
  memory = step(memory, { now: 6_000, leader: null });
  assert.equal(memory.freeSince, 5_000);
  memory = step(memory, { now: 7_000 });
  assert.equal(memory.freeSince, 5_000, "an unknown leader changes nothing");
  memory = step(memory, { now: 8_000, leader: OTHER_LEADS });
  assert.equal(memory.freeSince, undefined);
});

Deno.test("once this node leads after another, the former leader becomes the peer to fence for two TTLs", () => {
  let memory = step(EMPTY_MEMORY, { leader: OTHER_LEADS, redis: LINKED_REPLICA });
  assert.deepEqual(memory.lastLeader, OTHER_LEADS);
  assert.equal(memory.peerToFence, undefined);
  memory = step(memory, { now: 2_000, leader: SELF_LEADS, lock: HELD });
  assert.deepEqual(memory.peerToFence, {
    address: OTHER,
    since: 2_000,
    until: 2_000 + PEER_FENCE_TTLS * TTL_MS,
    tried: false,
  });
  assert.equal(memory.lastLeader, undefined);
  const peer = memory.peerToFence;
  memory = step(memory, { now: 3_000, leader: SELF_LEADS, lock: HELD });
  assert.equal(memory.peerToFence, peer, "a later observation keeps the same peer");
  memory = step(memory, { now: 4_000, leader: OTHER_LEADS });
  assert.equal(memory.peerToFence, undefined, "another leader ends the term");
});

Deno.test("a former leader that gave the lock back with its writes stopped is a peer to point at us, not one to wait for", () => {
  const leadAfter = (note: ReleaseNote | undefined) => {
    let memory = step(EMPTY_MEMORY, { leader: OTHER_LEADS, redis: LINKED_REPLICA });
    memory = step(memory, { now: 1_500, leader: null, ...(note ? { releaseNote: note } : {}) });
    return step(memory, { now: 2_000, leader: SELF_LEADS, lock: HELD }).peerToFence;
  };
  assert.equal(leadAfter({ released: OTHER, writesStopped: true })?.writesStopped, true);
  assert.equal(leadAfter({ released: OTHER, writesStopped: false })?.writesStopped, undefined);
  assert.equal(leadAfter(undefined)?.writesStopped, undefined, "an expired session leaves no note");
  const stranger = { host: "10.0.0.9", port: 6379 };
  assert.equal(
    leadAfter({ released: stranger, writesStopped: true })?.writesStopped,
    undefined,
    "only the last leader's own note counts",
  );
});

Deno.test("a Redis that restarted since this node led counts as restarted until another leader is seen", () => {
  let memory = step(EMPTY_MEMORY, { leader: SELF_LEADS, lock: { ...HELD, runId: "run-master" } });
  assert.equal(memory.ledRunId, "run-master");
  const restarted: RedisView = { ...MASTER, runId: "run-restarted", datasetEmpty: true, offset: 0 };
  memory = step(memory, { redis: restarted, leader: undefined });
  assert.equal(restartedSinceLed(memory, restarted), true);
  assert.equal(restartedSinceLed(memory, MASTER), false, "the same process is no restart");
  memory = step(memory, { redis: restarted, leader: OTHER_LEADS });
  assert.equal(restartedSinceLed(memory, restarted), false, "replicas follow the other leader now");
});

Deno.test("the first fence attempt that ends marks the peer tried; a fenced or expired peer is forgotten", () => {
  const leading = step(step(EMPTY_MEMORY, { leader: OTHER_LEADS }), {
    now: 2_000,
    leader: SELF_LEADS,
    lock: HELD,
  });
  const attempt = leading.peerToFence;
  const tried = peerFenceAttemptEnded(leading, attempt, 3_000);
  assert.equal(tried.peerToFence?.tried, true);
  assert.equal(peerFenceAttemptEnded(tried, tried.peerToFence, 3_500), tried);
  assert.equal(peerFenced(leading).peerToFence, undefined);
  const late = 2_000 + PEER_FENCE_TTLS * TTL_MS + 1;
  assert.equal(peerFenceAttemptEnded(leading, attempt, late).peerToFence, undefined);
});

Deno.test("an attempt on an earlier term's peer does not mark the current one tried", () => {
  const first = step(step(EMPTY_MEMORY, { leader: OTHER_LEADS }), {
    now: 2_000,
    leader: SELF_LEADS,
    lock: HELD,
  });
  const attempt = first.peerToFence;
  const second = step(step(first, { now: 3_000, leader: OTHER_LEADS }), {
    now: 4_000,
    leader: SELF_LEADS,
    lock: HELD,
  });
  assert.equal(peerFenceAttemptEnded(second, attempt, 5_000).peerToFence?.tried, false);
});

Deno.test("a Redis made a replica under our lock in the term it led counts as demoted under lock", () => {
  const led = step(EMPTY_MEMORY, { redis: MASTER, lock: HELD });
  assert.equal(led.masterEpoch, 4);
  assert.equal(demotedUnderLock(led, MASTER, HELD), false);
  const replicaNow = step(led, { redis: LINKED_REPLICA, lock: HELD });
  assert.equal(demotedUnderLock(replicaNow, LINKED_REPLICA, HELD), true);
  const nextTerm: LockView = { ...HELD, lockIndex: 5 };
  assert.equal(demotedUnderLock(replicaNow, LINKED_REPLICA, nextTerm), false);
  const released = step(replicaNow, { redis: LINKED_REPLICA, lock: IDLE });
  assert.equal(released.masterEpoch, undefined);
});

Deno.test("a replica that never led under our lock is being promoted, not demoted", () => {
  const memory = step(EMPTY_MEMORY, { redis: LINKED_REPLICA, lock: HELD });
  assert.equal(demotedUnderLock(memory, LINKED_REPLICA, HELD), false);
});

Deno.test("the leader's offset read while replicating from it is kept after the leader is gone, until we lead", () => {
  const history = (LINKED_REPLICA as { replicationId: string }).replicationId;
  let memory = step(EMPTY_MEMORY, {
    redis: LINKED_REPLICA,
    leader: OTHER_LEADS,
    leaderOffset: 5_000,
  });
  assert.deepEqual(memory.leaderPosition, { replicationId: history, offset: 5_000 });
  memory = step(memory, {
    redis: { ...LINKED_REPLICA, linkUp: false },
    leader: OTHER_LEADS,
    leaderOffset: 6_000,
  });
  assert.equal(
    memory.leaderPosition?.offset,
    5_000,
    "a read with the link down is not of our history",
  );
  memory = step(memory, { redis: MASTER, leader: null });
  assert.deepEqual(memory.leaderPosition, { replicationId: history, offset: 5_000 }, "kept after");
  memory = step(memory, { redis: MASTER, leader: SELF_LEADS, lock: HELD });
  assert.equal(memory.leaderPosition, undefined, "forgotten while we lead");
});

Deno.test("the data epoch follows the term whose writes the current history carries: the leader's while linked to it, ours while we lead", () => {
  assert.equal(dataEpoch(EMPTY_MEMORY, LINKED_REPLICA), undefined, "nothing seen yet");
  let memory = step(EMPTY_MEMORY, { redis: LINKED_REPLICA, leader: OTHER_LEADS });
  assert.equal(dataEpoch(memory, LINKED_REPLICA), 3);
  // Detached (a replica of itself) it keeps its replication ID, and so the epoch.
  const detached: RedisView = {
    ...LINKED_REPLICA,
    master: { host: "127.0.0.1", port: SELF.port },
    detached: true,
    linkUp: false,
    linkDownMs: 1_000,
  };
  memory = step(memory, { redis: detached, leader: null });
  assert.equal(dataEpoch(memory, detached), 3);
  // Linked to an address that does not lead, or never linked: no term learnt.
  const elsewhere = step(EMPTY_MEMORY, {
    redis: { ...LINKED_REPLICA, master: SELF },
    leader: OTHER_LEADS,
  });
  assert.equal(dataEpoch(elsewhere, LINKED_REPLICA), undefined);
  assert.equal(
    dataEpoch(
      step(EMPTY_MEMORY, { redis: NEVER_LINKED_REPLICA, leader: OTHER_LEADS }),
      NEVER_LINKED_REPLICA,
    ),
    undefined,
  );
  // Promoted under our lock of epoch 4: its new history carries term 4.
  const promoted: RedisView = { ...MASTER, replicationId: "p".repeat(40) };
  memory = step(memory, { redis: promoted, lock: HELD, leader: SELF_LEADS });
  assert.equal(dataEpoch(memory, promoted), 4);
  assert.equal(dataEpoch(memory, detached), 3, "the older history keeps its own term");
});
