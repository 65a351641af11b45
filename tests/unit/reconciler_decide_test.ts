/**
 * decide(): every rule of the reconciler as plain data in, plain data out.
 */
import assert from "node:assert/strict";
import { decide as decideWith } from "../../lib/reconciler/decide.ts";
import { writesStopped } from "../../lib/reconciler/intents.ts";
import type { DecisionSettings, Observed, RedisView } from "../../lib/reconciler/model.ts";
import { MASTER_REDIS, OTHER, SELF } from "./fixtures/views.ts";
import { candidacy } from "./fixtures/candidacy.ts";

const REPLICA_OF_OTHER: RedisView = {
  ...MASTER_REDIS,
  role: "replica",
  master: OTHER,
  linkUp: true,
  connectedReplicas: 0,
};

function observed(overrides: Partial<Observed>): Observed {
  return {
    now: 100_000,
    self: SELF,
    redis: MASTER_REDIS,
    consulReachable: true,
    leader: null,
    lock: { phase: "idle" },
    registration: undefined,
    fenced: false,
    paused: false,
    ...overrides,
  };
}

const SETTINGS: DecisionSettings = {
  fenceAfterMs: 7_500,
  peerFenceWaitMs: 7_500,
  replicaLinkGraceMs: 30_000,
};

/** decide() with this file's settings. */
function decide(observation: Observed) {
  return decideWith(observation, SETTINGS);
}

const OTHER_LEADS = { address: OTHER, session: "s-other", lockIndex: 7 };
const HELD = { phase: "held" as const, lockIndex: 3, confirmedAt: 99_000 };

Deno.test("an agent whose Redis never answered waits and neither competes nor registers", () => {
  const decision = decide(observed({ redis: { kind: "unknown" } }));
  assert.equal(decision.name, "waiting_for_redis");
  assert.equal(decision.lock, "idle");
  assert.deepEqual(decision.redis, { kind: "none" });
  assert.deepEqual(decision.service, { kind: "unchanged" });
});

Deno.test("a lock holder whose Redis goes down releases the lock and marks its master service critical", () => {
  const decision = decide(observed({
    redis: { kind: "down", reason: "connection closed" },
    lock: HELD,
    registration: { role: "master", status: "passing" },
  }));
  assert.equal(decision.name, "redis_unhealthy");
  assert.equal(decision.lock, "release");
  assert.deepEqual(decision.redis, { kind: "none" });
  assert.equal(decision.service.kind, "registered");
  if (decision.service.kind === "registered") {
    assert.equal(decision.service.role, "master");
    assert.equal(decision.service.status, "critical");
    assert.match(decision.service.output, /connection closed/);
  }
});

Deno.test("a lock holder whose Redis fails but may still serve clients fences it before it lets the lock go", () => {
  const down = {
    kind: "down" as const,
    reason: "Redis did not answer INFO within 3000 ms",
    mayServe: true,
    since: 99_000,
  };
  const registration = { role: "master" as const, status: "passing" as const };
  const fencing = decide(observed({ redis: down, lock: HELD, registration }));
  assert.equal(fencing.name, "fencing_unresponsive_redis");
  assert.equal(fencing.lock, "hold", "no replica leads while this Redis may take writes");
  assert.deepEqual(fencing.redis, { kind: "fence" });
  assert.equal(fencing.service.kind === "registered" && fencing.service.status, "critical");
  assert.equal(fencing.wakeAt, 99_000 + 7_500);
  const fenced = decide(observed({ redis: down, lock: HELD, fenced: true }));
  assert.equal(fenced.name, "redis_unhealthy", "fenced: the lock goes");
  assert.equal(fenced.lock, "release");
  const late = decide(observed({ redis: down, lock: HELD, now: 99_000 + 7_500 }));
  assert.equal(late.name, "redis_unhealthy", "the fence bound passed: the lock goes anyway");
  assert.equal(late.lock, "release");
  const refused = decide(observed({
    redis: { kind: "down", reason: "connection refused", since: 99_000 },
    lock: HELD,
  }));
  assert.equal(refused.name, "redis_unhealthy", "a refused connection: the lock goes at once");
  const follower = decide(observed({ redis: down }));
  assert.equal(follower.name, "redis_unhealthy", "without the lock there is nothing to hold");
});

Deno.test("a Redis that is loading its dataset counts as unhealthy and stops competing", () => {
  const decision = decide(
    observed({ redis: { ...MASTER_REDIS, loading: true }, lock: { phase: "competing" } }),
  );
  assert.equal(decision.name, "redis_unhealthy");
  assert.equal(decision.lock, "release");
});

Deno.test("the lock holder promotes a replica Redis and registers nothing until it is master", () => {
  const decision = decide(observed({ redis: REPLICA_OF_OTHER, lock: HELD }));
  assert.equal(decision.name, "promoting");
  assert.deepEqual(decision.redis, { kind: "promote" });
  assert.equal(decision.lock, "hold");
  assert.deepEqual(decision.service, { kind: "unchanged" });
});

Deno.test("the lock holder with a master Redis registers a passing master check carrying its epoch", () => {
  const decision = decide(observed({ lock: HELD }));
  assert.equal(decision.name, "master");
  assert.deepEqual(decision.redis, { kind: "none" });
  assert.equal(decision.service.kind, "registered");
  if (decision.service.kind === "registered") {
    assert.equal(decision.service.role, "master");
    assert.equal(decision.service.status, "passing");
    assert.match(decision.service.output, /epoch=3/);
    assert.ok(decision.service.output.length < 200, "check output stays short");
  }
  assert.equal(decision.wakeAt, 99_000 + 7_500, "wakes at the fence deadline");
});

Deno.test("the lock holder lifts its own write fence once it is master with a confirmed lock", () => {
  const decision = decide(observed({ lock: HELD, fenced: true }));
  assert.deepEqual(decision.redis, { kind: "unfence" });
});

Deno.test("a master whose lock was not confirmed within the fence bound refuses writes", () => {
  const decision = decide(observed({
    lock: HELD,
    now: HELD.confirmedAt + 7_500,
    consulReachable: false,
  }));
  assert.equal(decision.name, "fencing_unconfirmed_lock");
  assert.deepEqual(decision.redis, { kind: "fence" });
  assert.equal(decision.lock, "hold", "keeps the lock in case Consul comes back in time");
});

Deno.test("failsafe mode: past the fence bound a master keeps taking writes while its peers' grants last, then fences", () => {
  const unconfirmed = { lock: HELD, consulReachable: false, fenced: true };
  const covered = decide(observed({
    ...unconfirmed,
    now: HELD.confirmedAt + 8_000,
    failsafeUntil: HELD.confirmedAt + 12_000,
  }));
  assert.equal(covered.name, "failsafe_master");
  assert.deepEqual(covered.redis, { kind: "unfence" }, "writes open again once peers confirm");
  assert.equal(covered.wakeAt, HELD.confirmedAt + 12_000, "re-decided when the grants run out");
  assert.match(covered.service.kind === "registered" ? covered.service.output : "", /failsafe/);
  const ranOut = decide(observed({
    ...unconfirmed,
    fenced: false,
    now: HELD.confirmedAt + 12_000,
    failsafeUntil: HELD.confirmedAt + 12_000,
  }));
  assert.equal(ranOut.name, "fencing_unconfirmed_lock");
  assert.deepEqual(ranOut.redis, { kind: "fence" });
  const contested = decide(observed({
    lock: { ...HELD, session: "mine" },
    leader: OTHER_LEADS,
    now: HELD.confirmedAt + 8_000,
    failsafeUntil: HELD.confirmedAt + 12_000,
  }));
  assert.equal(
    contested.name,
    "lock_contested",
    "grants never outrank Consul naming another holder",
  );
});

Deno.test("failsafe mode: a node that promised the master not to compete waits out its promise", () => {
  const promised = decide(observed({ fenced: true, promisedUntil: 104_000 }));
  assert.equal(promised.name, "stepping_aside");
  assert.equal(promised.lock, "idle");
  assert.equal(promised.wakeAt, 104_000);
  const kept = decide(observed({ fenced: true, promisedUntil: 100_000 }));
  assert.equal(kept.lock, "compete");
});

Deno.test("a master just inside the fence bound keeps taking writes", () => {
  const decision = decide(observed({ lock: HELD, now: HELD.confirmedAt + 7_499 }));
  assert.equal(decision.name, "master");
});

Deno.test("with Consul unreachable a replica is left alone: no REPLICAOF flapping", () => {
  const decision = decide(
    observed({ redis: REPLICA_OF_OTHER, consulReachable: false, leader: OTHER_LEADS }),
  );
  assert.equal(decision.name, "consul_unreachable");
  assert.deepEqual(decision.redis, { kind: "none" });
  assert.deepEqual(decision.service, { kind: "unchanged" });
});

Deno.test("a master that lost its lock reports its master check critical while Consul is unreachable", () => {
  // Seen on real hosts after a quorum loss: the old master stayed a passing master in the catalog
  // until its watches recovered, beside the newly elected one.
  const decision = decide(observed({
    consulReachable: false,
    fenced: true,
    registration: { role: "master", status: "passing" },
  }));
  assert.equal(decision.name, "consul_unreachable");
  assert.deepEqual(decision.service, {
    kind: "registered",
    role: "master",
    status: "critical",
    output: "Consul unreachable: not the lock holder",
  });
});

Deno.test("a replica following the leader registers as a passing slave", () => {
  const decision = decide(observed({ redis: REPLICA_OF_OTHER, leader: OTHER_LEADS }));
  assert.equal(decision.name, "replica");
  assert.equal(decision.lock, "idle");
  assert.deepEqual(decision.redis, { kind: "none" });
  assert.equal(decision.service.kind === "registered" && decision.service.status, "passing");
  assert.equal(decision.service.kind === "registered" && decision.service.role, "slave");
});

Deno.test("a replica pointed elsewhere is re-pointed at the leader's announced address", () => {
  const decision = decide(observed({
    redis: { ...REPLICA_OF_OTHER, master: { host: "10.0.0.9", port: 6379 } },
    leader: OTHER_LEADS,
  }));
  assert.equal(decision.name, "following_leader");
  assert.deepEqual(decision.redis, { kind: "replicate", master: OTHER });
});

Deno.test("a master-role Redis that lost the election is demoted and never registered as master", () => {
  const decision = decide(
    observed({ leader: OTHER_LEADS, registration: { role: "master", status: "passing" } }),
  );
  assert.equal(decision.name, "demoting");
  assert.deepEqual(decision.redis, { kind: "replicate", master: OTHER });
  assert.equal(decision.service.kind === "registered" && decision.service.role, "slave");
  assert.equal(decision.service.kind === "registered" && decision.service.status, "warning");
});

Deno.test("a master-role Redis with nobody holding the lock competes with its writes fenced and leaves the catalog", () => {
  const decision = decide(observed({ registration: { role: "master", status: "passing" } }));
  assert.equal(decision.name, "no_leader_fenced_master");
  assert.equal(decision.lock, "compete");
  assert.deepEqual(decision.redis, { kind: "fence" });
  assert.deepEqual(decision.service, { kind: "absent" });
  const again = decide(observed({ fenced: true }));
  assert.deepEqual(again.redis, { kind: "none" }, "an existing fence is not re-applied");
});

Deno.test("a replica whose leader is gone detaches (a replica of itself) and leaves the catalog", () => {
  const decision = decide(observed({
    redis: { ...REPLICA_OF_OTHER, linkUp: false, linkDownMs: 2_000 },
    registration: { role: "slave", status: "passing" },
  }));
  assert.equal(decision.name, "detaching");
  assert.deepEqual(decision.redis, { kind: "detach" });
  assert.equal(decision.lock, "idle", "it competes only once detached and ranked");
  assert.deepEqual(decision.service, { kind: "absent" });
});

Deno.test("a detached replica with nobody leading competes as it is: no fence, no promotion before the lock", () => {
  const detached: RedisView = {
    ...REPLICA_OF_OTHER,
    master: { host: "127.0.0.1", port: SELF.port },
    detached: true,
    linkUp: false,
    linkDownMs: 2_000,
  };
  const decision = decide(observed({ redis: detached }));
  assert.equal(decision.name, "no_leader_detached_replica");
  assert.equal(decision.lock, "compete");
  assert.deepEqual(decision.redis, { kind: "none" });
  assert.deepEqual(decision.service, { kind: "absent" });
  // Our own new session seen before the lock driver reports it: still no slave registration.
  const ownSession = decide(observed({
    redis: detached,
    leader: { address: SELF, session: "s-new", lockIndex: 8 },
  }));
  assert.equal(ownSession.name, "stale_own_lock");
  assert.deepEqual(ownSession.service, { kind: "absent" });
  // Once another node leads, it follows that node like any replica.
  const following = decide(observed({ redis: detached, leader: OTHER_LEADS }));
  assert.equal(following.name, "following_leader");
  assert.deepEqual(following.redis, { kind: "replicate", master: OTHER });
});

Deno.test("a replica whose link has been down longer than the grace turns its check to warning", () => {
  const decision = decide(observed({
    redis: { ...REPLICA_OF_OTHER, linkUp: false, linkDownMs: 31_000 },
    leader: OTHER_LEADS,
  }));
  assert.equal(decision.service.kind === "registered" && decision.service.status, "warning");
});

Deno.test("a replica whose link never came up is not a passing slave", () => {
  const decision = decide(observed({
    redis: { ...REPLICA_OF_OTHER, linkUp: false, linkDownMs: "never" },
    leader: OTHER_LEADS,
  }));
  assert.equal(decision.service.kind === "registered" && decision.service.status, "warning");
});

Deno.test("a replica in a full sync registers with a warning check", () => {
  const decision = decide(
    observed({ redis: { ...REPLICA_OF_OTHER, syncInProgress: true }, leader: OTHER_LEADS }),
  );
  assert.equal(decision.service.kind === "registered" && decision.service.status, "warning");
});

Deno.test("a lock held under our own address by an earlier session is waited out, not replicated from", () => {
  const decision = decide(observed({ leader: { address: SELF, session: "old", lockIndex: 2 } }));
  assert.equal(decision.name, "stale_own_lock");
  assert.notEqual(decision.redis.kind, "replicate");
  assert.deepEqual(decision.service, { kind: "absent" });
});

Deno.test("while the leader is unknown a master-role Redis is fenced and nothing competes", () => {
  const decision = decide(observed({ leader: undefined }));
  assert.equal(decision.name, "waiting_for_consul");
  assert.equal(decision.lock, "idle");
  assert.deepEqual(decision.redis, { kind: "fence" });
});

Deno.test("in maintenance mode a master-role Redis without the lock is fenced, neither demoted nor promoted", () => {
  const decision = decide(
    observed({
      paused: true,
      leader: OTHER_LEADS,
      registration: { role: "slave", status: "passing" },
    }),
  );
  assert.equal(decision.name, "paused");
  assert.deepEqual(decision.redis, { kind: "fence" });
  assert.equal(decision.lock, "idle");
  const fenced = decide(observed({ paused: true, leader: OTHER_LEADS, fenced: true }));
  assert.deepEqual(fenced.redis, { kind: "none" }, "a fence in force is left as it is");
  const replica = decide(observed({ paused: true, leader: OTHER_LEADS, redis: REPLICA_OF_OTHER }));
  assert.deepEqual(replica.redis, { kind: "none" }, "a replica is left alone");
});

Deno.test("during a switchover to another node a master-role Redis without the lock is fenced; the target is not", () => {
  const handover = { target: OTHER, failover: "running" as const };
  const bystander = decide(observed({ leader: OTHER_LEADS, handover }));
  assert.equal(bystander.name, "switchover_in_progress");
  assert.deepEqual(bystander.redis, { kind: "fence" });
  assert.equal(bystander.lock, "idle");
  const target = decide(observed({ leader: OTHER_LEADS, handover: { ...handover, target: SELF } }));
  assert.equal(target.name, "taking_over");
  assert.deepEqual(target.redis, { kind: "none" }, "FAILOVER made it master to take the lock");
});

const ELECTION_SETTINGS = {
  maxLagBytes: 1_048_576,
  staleAfterMs: 5_000,
  collectMs: 500,
  stepAsideMaxMs: 10_000,
};

Deno.test("a fenced master-role Redis steps aside while a peer with a larger offset is there", () => {
  const decision = decide(observed({
    fenced: true,
    election: {
      self: candidacy("10.0.0.1:6379", { offset: 1_000 }),
      peers: [{ candidacy: candidacy("10.0.0.3:6379", { offset: 2_000 }), seenChangedAt: 99_990 }],
      freeSince: 99_950,
      vacancy: 5,
      settings: ELECTION_SETTINGS,
    },
  }));
  assert.equal(decision.name, "stepping_aside");
  assert.equal(decision.lock, "idle");
  assert.equal(decision.wakeAt, 99_950 + 10_000);
  assert.deepEqual(decision.redis, { kind: "none" });
});

Deno.test("the best candidate competes for the free lock", () => {
  const decision = decide(observed({
    fenced: true,
    election: {
      self: candidacy("10.0.0.1:6379", { offset: 3_000 }),
      peers: [{ candidacy: candidacy("10.0.0.3:6379", { offset: 2_000 }), seenChangedAt: 99_990 }],
      freeSince: 99_950,
      vacancy: 5,
      settings: ELECTION_SETTINGS,
    },
  }));
  assert.equal(decision.name, "no_leader_fenced_master");
  assert.equal(decision.lock, "compete");
});

Deno.test("a node nobody may promote says so and stays fenced", () => {
  const decision = decide(observed({
    election: {
      self: candidacy("10.0.0.1:6379", { priority: 0 }),
      peers: [],
      freeSince: 99_000,
      vacancy: 5,
      settings: ELECTION_SETTINGS,
    },
  }));
  assert.equal(decision.name, "no_eligible_candidate");
  assert.match(decision.reason, /priority 0/);
  assert.equal(decision.lock, "idle");
  assert.deepEqual(decision.redis, { kind: "fence" });
});

Deno.test("a leader whose Redis restarted empty gives up the lock instead of leading with no data", () => {
  const decision = decide(observed({
    redis: { ...MASTER_REDIS, runId: "new-run", datasetEmpty: true, offset: 0 },
    lock: { ...HELD, runId: "old-run" },
  }));
  assert.equal(decision.name, "redis_restarted");
  assert.match(decision.reason, /empty/);
  assert.equal(decision.lock, "release");
  assert.deepEqual(decision.redis, { kind: "fence" });
  assert.deepEqual(decision.service, { kind: "absent" });
});

Deno.test("a leader whose Redis restarted with data (a snapshot, or a client's first writes) gives up the lock too: the election compares positions", () => {
  const decision = decide(observed({
    redis: { ...MASTER_REDIS, runId: "new-run", datasetEmpty: false },
    lock: { ...HELD, runId: "old-run" },
  }));
  assert.equal(decision.name, "redis_restarted");
  assert.equal(decision.lock, "release");
  assert.deepEqual(decision.redis, { kind: "fence" });
});

/** An election in which 10.0.0.3:6379 is the best peer (live, with data) and SELF is empty. */
const AFTER_RESTART = {
  self: candidacy("10.0.0.1:6379", { offset: 0, datasetEmpty: true, runId: "new-run" }),
  peers: [
    { candidacy: candidacy("10.0.0.3:6379", { role: "replica" }), seenChangedAt: 0, held: true },
    {
      candidacy: candidacy("10.0.0.4:6379", { role: "replica", offset: 900 }),
      seenChangedAt: 0,
      held: true,
    },
  ],
  freeSince: undefined,
  vacancy: 0,
  settings: ELECTION_SETTINGS,
};
const BEST_PEER = { host: "10.0.0.3", port: 6379 };

Deno.test("a leader whose Redis restarted points it at the best peer, so replicas that still follow this node cannot sync from it", () => {
  const decision = decide(observed({
    redis: { ...MASTER_REDIS, runId: "new-run", datasetEmpty: true, offset: 0 },
    lock: { ...HELD, runId: "old-run" },
    election: AFTER_RESTART,
  }));
  assert.equal(decision.name, "redis_restarted");
  assert.equal(decision.lock, "release");
  assert.deepEqual(decision.redis, { kind: "replicate", master: BEST_PEER });
});

Deno.test("a master-role Redis restarted since this node led is pointed at the best peer while Consul is out of reach, or an earlier session still holds the lock", () => {
  const restarted = { ...MASTER_REDIS, runId: "new-run", datasetEmpty: true, offset: 0 };
  const unreachable = decide(observed({
    redis: restarted,
    consulReachable: false,
    restartedSinceLed: true,
    election: AFTER_RESTART,
  }));
  assert.equal(unreachable.name, "consul_unreachable");
  assert.deepEqual(unreachable.redis, { kind: "replicate", master: BEST_PEER });
  const stale = decide(observed({
    redis: restarted,
    leader: { address: SELF, session: "s-earlier", lockIndex: 2 },
    restartedSinceLed: true,
    election: AFTER_RESTART,
  }));
  assert.equal(stale.name, "stale_own_lock");
  assert.deepEqual(stale.redis, { kind: "replicate", master: BEST_PEER });
  const notRestarted = decide(observed({
    redis: { ...restarted, datasetEmpty: false, offset: 500 },
    consulReachable: false,
    election: AFTER_RESTART,
  }));
  assert.deepEqual(notRestarted.redis, { kind: "fence" }, "the same Redis process is only fenced");
  const alone = decide(observed({
    redis: restarted,
    consulReachable: false,
    restartedSinceLed: true,
    election: { ...AFTER_RESTART, peers: [] },
  }));
  assert.deepEqual(alone.redis, { kind: "detach" }, "with no peer to follow, a replica of itself");
});

Deno.test("an empty master-role Redis this node does not hold the lock for is pointed away even with no memory of leading (a host rebooted empty)", () => {
  // Simulator seed 5720: the master's host restarted with an empty Redis during a Consul outage; its
  // new agent did not know it led, and the replicas, still following that address, synced from it.
  const empty = { ...MASTER_REDIS, runId: "new-run", datasetEmpty: true, offset: 0 };
  const waiting = decide(observed({ redis: empty, leader: undefined, election: AFTER_RESTART }));
  assert.equal(waiting.name, "waiting_for_consul");
  assert.deepEqual(waiting.redis, { kind: "replicate", master: BEST_PEER });
  const unreachable = decide(observed({
    redis: empty,
    consulReachable: false,
    election: { ...AFTER_RESTART, peers: [] },
  }));
  assert.deepEqual(unreachable.redis, { kind: "detach" });
  const stale = decide(observed({
    redis: empty,
    leader: { address: SELF, session: "s-earlier", lockIndex: 2 },
    election: { ...AFTER_RESTART, peers: [] },
  }));
  assert.deepEqual(stale.redis, { kind: "detach" });
  // With data it is left to the usual fence.
  const withData = decide(observed({
    redis: { ...empty, datasetEmpty: false, offset: 10 },
    leader: undefined,
    election: AFTER_RESTART,
  }));
  assert.deepEqual(withData.redis, { kind: "fence" });
});

Deno.test("a leader whose Redis keeps its run_id keeps leading", () => {
  const decision = decide(observed({
    redis: { ...MASTER_REDIS, runId: "old-run" },
    lock: { ...HELD, runId: "old-run" },
  }));
  assert.equal(decision.name, "master");
});

Deno.test("a new master points the previous master at itself", () => {
  const decision = decide(observed({ lock: HELD, previousLeader: OTHER }));
  assert.deepEqual(decision.fencePeer, OTHER);
  const self = decide(observed({ lock: HELD, previousLeader: SELF }));
  assert.equal(self.fencePeer, undefined, "never fences itself");
});

Deno.test("in maintenance mode a node registered as master without the lock turns critical", () => {
  const decision = decide(
    observed({ paused: true, leader: null, registration: { role: "master", status: "passing" } }),
  );
  assert.equal(decision.name, "paused");
  assert.equal(decision.service.kind === "registered" && decision.service.status, "critical");
});

Deno.test("a replica of the leader lifts a write fence it kept from its time as master", () => {
  const decision = decide(observed({ redis: REPLICA_OF_OTHER, leader: OTHER_LEADS, fenced: true }));
  assert.equal(decision.name, "replica");
  assert.deepEqual(decision.redis, { kind: "unfence" });
});

Deno.test("a master with an unconfirmed lock reports its check critical, never passing", () => {
  const decision = decide(observed({ lock: HELD, now: HELD.confirmedAt + 8_000, fenced: true }));
  assert.equal(decision.name, "fencing_unconfirmed_lock");
  assert.equal(decision.service.kind === "registered" && decision.service.status, "critical");
});

Deno.test("a new master keeps its own fence until the former master is fenced or the fence bound passed", () => {
  const since = 99_000;
  const pending = decide(
    observed({ lock: HELD, fenced: true, previousLeader: OTHER, previousLeaderSince: since }),
  );
  assert.deepEqual(pending.redis, { kind: "none" }, "still fenced");
  assert.deepEqual(pending.fencePeer, OTHER);
  assert.equal(pending.wakeAt, since + 7_500, "decides again when the bound passes");
  // A failed attempt proves nothing: the former master may still take writes.
  const bound = decide(
    observed({
      lock: { ...HELD, confirmedAt: 106_000 },
      now: since + 7_500,
      fenced: true,
      previousLeader: OTHER,
      previousLeaderSince: since,
    }),
  );
  assert.deepEqual(bound.redis, { kind: "unfence" });
  assert.deepEqual(bound.fencePeer, OTHER, "keeps trying a former master it could not reach");
  const fencedPeer = decide(observed({ lock: HELD, fenced: true }));
  assert.deepEqual(fencedPeer.redis, { kind: "unfence" }, "the former master was pointed at us");
});

Deno.test("a lock holder whose Redis was pointed elsewhere in its term gives the lock up instead of promoting again", () => {
  const decision = decide(
    observed({ redis: REPLICA_OF_OTHER, lock: HELD, demotedUnderLock: true }),
  );
  assert.equal(decision.name, "demoted_under_lock");
  assert.equal(decision.lock, "release");
  assert.deepEqual(decision.redis, { kind: "none" }, "no REPLICAOF NO ONE");
});

Deno.test("without Consul a node does not compete: nobody takes the lock the moment Consul returns", () => {
  const decision = decide(observed({ consulReachable: false, fenced: true }));
  assert.equal(decision.name, "consul_unreachable");
  assert.equal(decision.lock, "idle");
});

Deno.test("a replica that wins the lock while a former master may still take writes stays a replica of itself and points that master at it", () => {
  const decision = decide(observed({ redis: REPLICA_OF_OTHER, lock: HELD, previousLeader: OTHER }));
  assert.equal(decision.name, "promoting");
  assert.deepEqual(decision.redis, { kind: "detach" });
  assert.deepEqual(decision.fencePeer, OTHER);
  const detached = decide(observed({
    redis: { ...REPLICA_OF_OTHER, master: { host: "127.0.0.1", port: 6379 }, detached: true },
    lock: HELD,
    previousLeader: OTHER,
  }));
  assert.deepEqual(detached.redis, { kind: "none" }, "already detached: nothing to send");
  assert.deepEqual(detached.fencePeer, OTHER);
  const plain = decide(observed({ redis: REPLICA_OF_OTHER, lock: HELD }));
  assert.deepEqual(plain.redis, { kind: "promote" });
  assert.equal(plain.fencePeer, undefined);
});

Deno.test("a new master after a former master that gave the lock back with its writes stopped promotes and takes writes at once", () => {
  const promoting = decide(observed({
    redis: REPLICA_OF_OTHER,
    lock: HELD,
    previousLeader: OTHER,
    previousLeaderStopped: true,
  }));
  assert.deepEqual(promoting.redis, { kind: "promote" });
  const master = decide(observed({
    lock: HELD,
    fenced: true,
    previousLeader: OTHER,
    previousLeaderSince: 99_900,
    previousLeaderStopped: true,
  }));
  assert.deepEqual(master.redis, { kind: "unfence" });
  assert.deepEqual(master.fencePeer, OTHER, "it is still pointed at us");
});

Deno.test("a holder gives the lock back saying its writes stopped only when its Redis is down without serving, a replica, or fenced", () => {
  const down = { kind: "down" as const, reason: "connection refused" };
  assert.equal(writesStopped({ redis: down, fenced: false }), true);
  assert.equal(writesStopped({ redis: { ...down, mayServe: true }, fenced: false }), false);
  assert.equal(writesStopped({ redis: MASTER_REDIS, fenced: false }), false);
  assert.equal(writesStopped({ redis: MASTER_REDIS, fenced: true }), true);
  assert.equal(writesStopped({ redis: REPLICA_OF_OTHER, fenced: false }), true);
  assert.equal(writesStopped({ redis: { kind: "unknown" }, fenced: false }), false);
});

Deno.test("a holder whose lock key vanished from Consul refuses writes and is no passing master", () => {
  const decision = decide(
    observed({ lock: { ...HELD, session: "mine" }, leader: null, lockKeyMissing: true }),
  );
  assert.equal(decision.name, "lock_contested");
  assert.deepEqual(decision.redis, { kind: "fence" });
  assert.equal(decision.service.kind === "registered" && decision.service.status, "critical");
  assert.equal(decision.lock, "hold", "the lock monitor settles it");
});

Deno.test("after the lock key vanished under another leader, a master-role Redis waits out that leader's fence bound before competing", () => {
  const vanished = { lockKeyMissing: true, vanishedLeader: { address: OTHER, freeSince: 99_000 } };
  const early = decide(observed({ ...vanished, fenced: true }));
  assert.equal(early.name, "stepping_aside");
  assert.equal(early.lock, "idle");
  assert.equal(early.wakeAt, 99_000 + SETTINGS.peerFenceWaitMs);
  assert.match(early.reason, /vanished/);
  const later = decide(
    observed({ ...vanished, fenced: true, now: 99_000 + SETTINGS.peerFenceWaitMs }),
  );
  assert.equal(later.lock, "compete");
  const ownTerm = decide(
    observed({ lockKeyMissing: true, vanishedLeader: { address: SELF, freeSince: 99_000 } }),
  );
  assert.equal(ownTerm.lock, "compete", "the former leader itself has nothing to wait for");
  const released = decide(observed({ vanishedLeader: { address: OTHER, freeSince: 99_000 } }));
  assert.equal(released.lock, "compete", "a released key kept the lock delay: no extra wait");
});

Deno.test("a holder that sees another session on the lock refuses writes; its own session is fine", () => {
  const other = decide(observed({ lock: { ...HELD, session: "mine" }, leader: OTHER_LEADS }));
  assert.equal(other.name, "lock_contested");
  const own = decide(
    observed({
      lock: { ...HELD, session: "mine" },
      leader: { address: SELF, session: "mine", lockIndex: 3 },
    }),
  );
  assert.equal(own.name, "master");
});
