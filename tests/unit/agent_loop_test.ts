/**
 * The control loop survives an error in one evaluation: it logs it (once per distinct message),
 * counts it, and keeps evaluating, so fences, releases and check updates go on. Issue 14: an error
 * thrown inside an evaluation escaped as an unhandled rejection and the loop never decided anything
 * again. Real Agent, LockDriver, RedisActuator and ServiceRegistrar; Redis and Consul are fakes.
 */
import assert from "node:assert/strict";
import {
  Agent,
  type CandidacyBoardPort,
  type LeaderSourcePort,
  type RedisObserverPort,
} from "../../lib/agent/loop.ts";
import { type HeldLock, LockDriver } from "../../lib/agent/apply/lock_driver.ts";
import { RedisActuator } from "../../lib/agent/apply/redis_actuator.ts";
import { ServiceRegistrar } from "../../lib/agent/apply/registrar.ts";
import type { ControlPort } from "../../lib/agent/apply/switchover.ts";
import type { Candidacy } from "../../lib/reconciler/election.ts";
import { systemClock } from "../../lib/clock.ts";
import type { Config } from "../../lib/config.ts";
import { CapturingLogger } from "../../lib/log.ts";
import type { LeaderView, RedisView } from "../../lib/reconciler/model.ts";
import type { HostPort } from "../../lib/address.ts";

const SELF = { host: "10.0.0.1", port: 6379 };

const MASTER_UP: RedisView = {
  kind: "up",
  role: "master",
  loading: false,
  detached: false,
  linkUp: false,
  syncInProgress: false,
  offset: 100,
  replicationId: "a".repeat(40),
  replicationId2: "0".repeat(40),
  connectedReplicas: 0,
  datasetEmpty: false,
  priority: 100,
  runId: "b".repeat(40),
};

/** Polls `condition` until it holds. */
async function waitFor(condition: () => boolean, what: string, timeoutMs = 3_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`Gave up waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** An agent whose Redis, leader and controls the test sets; everything it does is recorded. */
function agentWith(
  options: {
    control?: ControlPort;
    board?: CandidacyBoardPort;
    fencePeer?: (peer: HostPort, self: HostPort) => Promise<void>;
    fenceMs?: number;
  } = {},
) {
  const logger = new CapturingLogger();
  const state = {
    redis: MASTER_UP as RedisView,
    leader: null as LeaderView | null,
    leaderError: undefined as Error | undefined,
    vacancy: 0,
    observedAt: () => systemClock.now(),
  };
  const done = {
    released: 0,
    registered: [] as string[],
    checkUpdates: [] as string[],
    redisCommands: [] as string[],
  };
  const listeners = new Set<() => void>();
  const redis: RedisObserverPort = {
    current: () => state.redis,
    onChange: (listener) => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    refresh: () => Promise.resolve(),
    observedAt: () => state.observedAt(),
  };
  const leaderSource: LeaderSourcePort = {
    leader: () => {
      if (state.leaderError) throw state.leaderError;
      return state.leader;
    },
    vacancy: () => state.vacancy,
    reachable: () => true,
    onChange: () => () => {},
  };
  const held: HeldLock = {
    session: "s-1",
    lockIndex: 1,
    lost: new AbortController().signal,
    lastConfirmedAt: () => systemClock.now(),
    updateValue: () => Promise.resolve(),
    release: () => {
      done.released++;
      return Promise.resolve();
    },
  };
  // The lock driver reports to the agent built after it.
  const wiring: { agent?: Agent } = {};
  const lock = new LockDriver({
    lock: { acquire: () => Promise.resolve(held) },
    value: () => "{}",
    onChange: () => wiring.agent?.requestEvaluation(),
    onError: () => {},
    logger,
  });
  const noop = () => Promise.resolve();
  const actuator = new RedisActuator({
    commands: {
      promote: noop,
      detach: () => {
        // REPLICAOF NO ONE: the next observation shows a master.
        if (state.redis.kind === "up") state.redis = { ...state.redis, role: "master" };
        return Promise.resolve({ synced: true });
      },
      replicateFrom: noop,
      pauseWrites: () => {
        done.redisCommands.push("pause");
        return Promise.resolve();
      },
      unpauseWrites: () => {
        done.redisCommands.push("unpause");
        return Promise.resolve();
      },
    },
    fenceMs: options.fenceMs ?? 1_000,
    logger,
  });
  const registrar = new ServiceRegistrar({
    catalog: {
      register: (service) => {
        done.registered.push(`${service.name} ${service.check.initialStatus}`);
        return Promise.resolve();
      },
      updateCheck: (_id, status) => {
        done.checkUpdates.push(status);
        return Promise.resolve();
      },
      deregister: noop,
      isUnknownCheck: () => false,
    },
    definitionFor: (role, status, output) => ({
      id: "redis@10.0.0.1:6379",
      name: `redis-${role}`,
      tags: [],
      port: 6379,
      check: {
        id: "check",
        name: "check",
        ttlMs: 1_000,
        deregisterCriticalAfterMs: 60_000,
        initialStatus: status,
        output,
      },
    }),
    heartbeatMs: 20,
    logger,
  });
  const agent = new Agent({
    config: { announce: SELF, lock: { ttlMs: 2_000 } } as unknown as Config,
    clock: systemClock,
    logger,
    redis,
    leaderSource,
    lock,
    actuator,
    registrar,
    settings: { fenceAfterMs: 1_200, peerFenceWaitMs: 1_200, replicaLinkGraceMs: 1_000 },
    tickMs: 20,
    ...(options.control ? { control: options.control } : {}),
    ...(options.fencePeer ? { fencePeer: options.fencePeer } : {}),
    ...(options.board
      ? {
        election: {
          board: options.board,
          settings: { maxLagBytes: 1_000, staleAfterMs: 1_000, collectMs: 50, stepAsideMaxMs: 500 },
          forced: false,
          heartbeatMs: 20,
        },
      }
      : {}),
  });
  wiring.agent = agent;
  const redisChanged = () => {
    for (const listener of listeners) listener();
  };
  return { agent, state, done, logger, lock, redisChanged };
}

const errorLines = (logger: CapturingLogger, message: RegExp) =>
  logger.lines.filter((line) => line.level === "error" && message.test(line.message));

Deno.test("an evaluation that throws is logged once and counted, and the loop goes on to lead", async () => {
  const { agent, state, logger, lock } = agentWith();
  await using _agent = agent;
  state.leaderError = new Error("the leader view broke");
  agent.start();
  await waitFor(() => agent.snapshot().evaluationErrors >= 3, "three failed evaluations (ticks)");
  assert.equal(agent.snapshot().decision, undefined, "nothing was decided from a failed one");
  assert.equal(errorLines(logger, /evaluation failed/).length, 1, "logged once, not every tick");

  state.leaderError = undefined;
  await waitFor(() => lock.view().phase === "held", "the lock to be taken");
  await waitFor(() => agent.snapshot().decision?.name === "master", "the master decision");
  assert.ok(logger.lines.some((line) => /evaluations work again/.test(line.message)));
});

Deno.test("a switchover port that throws is no switchover: a master whose Redis died still lets the lock go", async () => {
  let broken = false;
  const control: ControlPort = {
    paused: () => false,
    switchover: () => {
      if (broken) throw new Error('Cannot parse address "no-port"');
      return undefined;
    },
    updateSwitchover: () => Promise.resolve(true),
  };
  const { agent, state, done, logger, lock, redisChanged } = agentWith({ control });
  await using _agent = agent;
  agent.start();
  await waitFor(() => agent.snapshot().decision?.name === "master", "the master decision");
  await waitFor(() => done.registered.includes("redis-master passing"), "a passing master");

  broken = true;
  await waitFor(() => errorLines(logger, /switchover bookkeeping failed/).length > 0, "the error");
  state.redis = { kind: "down", reason: "connection refused" };
  redisChanged();
  await waitFor(() => done.released === 1, "the lock to be released");
  assert.equal(lock.view().phase, "idle");
  await waitFor(() => done.checkUpdates.includes("critical"), "the check to turn critical");
  assert.equal(agent.snapshot().decision?.name, "redis_unhealthy");
  assert.equal(errorLines(logger, /switchover bookkeeping failed/).length, 1, "logged once");
});

Deno.test("a decision listener that throws does not keep the decision from being applied", async () => {
  const { agent, done, logger } = agentWith();
  await using _agent = agent;
  agent.onDecision(() => {
    throw new Error("listener bug");
  });
  agent.start();
  await waitFor(() => done.registered.includes("redis-master passing"), "a passing master");
  assert.ok(errorLines(logger, /decision listener failed/).length >= 1);
  assert.equal(agent.snapshot().evaluationErrors, 0);
});

/** A candidacy board that records what is published; `legacy` says an earlier version's peer is about. */
function recordingBoard() {
  const published: Candidacy[] = [];
  const board = {
    legacy: false,
    published,
    peers: () => [],
    publish: (candidacy: Candidacy) => {
      published.push(candidacy);
      return Promise.resolve();
    },
    legacyPeers: () => board.legacy,
  };
  return board;
}

Deno.test("a steady agent publishes its candidacy once, not on every tick, and again when its position changes", async () => {
  const board = recordingBoard();
  const { agent, state, redisChanged } = agentWith({ board });
  state.leader = { address: SELF, session: "s-1", lockIndex: 1 };
  agent.start();
  try {
    // Once it holds the lock with Redis as master, its candidacy names the term of its data.
    await waitFor(() => board.published.at(-1)?.dataEpoch === 1, "the term to be published");
    const settled = board.published.length;
    // Ten ticks and a moving offset (writes) change nothing anyone elects on outside an election.
    for (let offset = 200; offset <= 1_000; offset += 200) {
      state.redis = { ...MASTER_UP, offset };
      redisChanged();
      await new Promise((resolve) => setTimeout(resolve, 40));
    }
    assert.equal(board.published.length, settled);
    state.redis = { ...MASTER_UP, offset: 1_000, priority: 50 };
    redisChanged();
    await waitFor(
      () => board.published.length === settled + 1,
      "the changed priority to be published",
    );
    assert.equal(board.published.at(-1)!.priority, 50);
  } finally {
    await agent.stop();
  }
});

Deno.test("while a peer of an earlier version is about, the candidacy is republished every heartbeat", async () => {
  const board = recordingBoard();
  board.legacy = true;
  const { agent, state } = agentWith({ board });
  state.leader = { address: SELF, session: "s-1", lockIndex: 1 };
  agent.start();
  try {
    await waitFor(() => board.published.length >= 4, "heartbeat publications");
    board.legacy = false;
    await new Promise((resolve) => setTimeout(resolve, 60));
    const settled = board.published.length;
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.ok(
      board.published.length <= settled + 1,
      "no heartbeat once every peer holds a session",
    );
  } finally {
    await agent.stop();
  }
});

Deno.test("a Redis that goes down is published with the last offset observed, not the last published", async () => {
  const board = recordingBoard();
  const { agent, state, redisChanged } = agentWith({ board });
  state.leader = { address: SELF, session: "s-1", lockIndex: 1 };
  agent.start();
  try {
    await waitFor(() => board.published.length >= 1, "the first publication");
    assert.equal(board.published[0]!.offset, 100);
    state.redis = { ...MASTER_UP, offset: 5_000 };
    redisChanged();
    await new Promise((resolve) => setTimeout(resolve, 40));
    state.redis = { kind: "down", reason: "connection refused" };
    redisChanged();
    await waitFor(() => board.published.some((c) => !c.healthy), "the unhealthy candidacy");
    const last = board.published.at(-1)!;
    assert.equal(last.healthy, false);
    assert.equal(last.offset, 5_000);
  } finally {
    await agent.stop();
  }
});

Deno.test("when the lock frees, only a position observed after the vacancy is published: it is the one peers wait for", async () => {
  const board = recordingBoard();
  const { agent, state, redisChanged } = agentWith({ board });
  const replica: RedisView = { ...MASTER_UP, role: "replica", linkUp: true };
  state.redis = replica;
  state.leader = { address: { host: "10.0.0.9", port: 6379 }, session: "s-9", lockIndex: 1 };
  agent.start();
  try {
    await waitFor(() => board.published.length >= 1, "the first publication");
    const before = board.published.length;
    // The lock frees; our last observation of Redis is older than the vacancy.
    const observedBefore = systemClock.now() - 1_000;
    state.observedAt = () => observedBefore;
    state.leader = null;
    state.vacancy = 77;
    redisChanged();
    await new Promise((resolve) => setTimeout(resolve, 60));
    assert.equal(board.published.length, before, "nothing written for a stale position");
    // The observation started with the vacancy arrives.
    state.observedAt = () => systemClock.now();
    redisChanged();
    await waitFor(() => board.published.length > before, "the position answering the vacancy");
    assert.ok(board.published.slice(before).every((candidacy) => candidacy.vacancy === 77));
  } finally {
    await agent.stop();
  }
});

Deno.test("a new master whose attempt to fence the former master failed keeps refusing writes until the fence bound", async () => {
  const OTHER = { host: "10.0.0.2", port: 6379 };
  let attempts = 0;
  const { agent, state, done, redisChanged } = agentWith({
    fenceMs: 5_000,
    fencePeer: () => {
      attempts++;
      return Promise.reject(new Error("connection refused"));
    },
  });
  state.redis = { ...MASTER_UP, role: "replica", master: OTHER, linkUp: true };
  state.leader = { address: OTHER, session: "s-other", lockIndex: 1 };
  agent.start();
  try {
    await waitFor(() => agent.snapshot().decision?.name === "replica", "a replica of the leader");
    state.leader = null;
    redisChanged();
    await waitFor(() => agent.snapshot().decision?.name === "master", "leading");
    const ledAt = Date.now();
    await waitFor(() => attempts > 0, "an attempt to fence the former master");
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.ok(
      !done.redisCommands.includes("unpause"),
      "writes stay refused after a failed attempt",
    );
    await waitFor(() => done.redisCommands.includes("unpause"), "the fence lifted at the bound");
    assert.ok(Date.now() - ledAt >= 1_000, "not before the fence bound (1.2 s) since the lock");
  } finally {
    await agent.stop();
  }
});

Deno.test("a fenced Redis that restarts (another run_id) is fenced again at once", async () => {
  const { agent, state, done, redisChanged } = agentWith({ fenceMs: 60_000 });
  // Who leads is not known: a master-role Redis without the lock is fenced.
  state.leader = undefined as unknown as null;
  agent.start();
  try {
    await waitFor(() => done.redisCommands.length === 1, "the first fence");
    assert.equal(agent.snapshot().decision?.name, "waiting_for_consul");
    state.redis = { ...MASTER_UP, runId: "c".repeat(40) };
    redisChanged();
    await waitFor(() => done.redisCommands.length === 2, "a fence on the restarted Redis");
    assert.deepEqual(done.redisCommands, ["pause", "pause"]);
  } finally {
    await agent.stop();
  }
});
