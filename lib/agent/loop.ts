/**
 * The agent: watches Redis and Consul, asks the reconciler what to do on every change and on a ticker,
 * and applies its answer through the lock driver, the Redis actuator and the service registrar.
 * Everything it talks to comes in through small ports, so the loop itself has no I/O of its own.
 */
import { encodeReleaseNote, type ReleaseNote } from "../cluster/lock_value.ts";
import { writesStopped } from "../reconciler/intents.ts";
import { formatHostPort, type HostPort } from "../address.ts";
import type { Clock } from "../clock.ts";
import type { Config } from "../config.ts";
import type { Milliseconds } from "../duration.ts";
import type { Logger } from "../log.ts";
import { decide } from "../reconciler/decide.ts";
import {
  type Candidacy,
  type ElectionSettings,
  epochOfHistory,
  type SeenCandidacy,
} from "../reconciler/election.ts";
import {
  dataEpoch,
  demotedUnderLock,
  EMPTY_MEMORY,
  hasSynced,
  type Memory,
  neverSynced,
  peerFenceAttemptEnded,
  peerFenced,
  remember,
  rememberSynced,
  restartedSinceLed,
} from "../reconciler/memory.ts";
import type {
  Decision,
  DecisionSettings,
  ElectionView,
  LeaderView,
  LockView,
  Observed,
  RedisView,
} from "../reconciler/model.ts";
import type { LockDriver } from "./apply/lock_driver.ts";
import type { RedisActuator } from "./apply/redis_actuator.ts";
import type { ServiceRegistrar } from "./apply/registrar.ts";
import { TakeoverCoordinator, type TakeoverPort } from "./apply/takeover.ts";
import { diffState } from "./state_diff.ts";
import {
  type ControlPort,
  type FailoverOutcome,
  SwitchoverCoordinator,
} from "./apply/switchover.ts";

export type { ControlPort, FailoverOutcome, TakeoverPort };

/** The key of a failing evaluation in the agent's map of failing steps. */
const EVALUATION = "evaluation";

/** The local Redis as the agent observes it. */
export interface RedisObserverPort {
  current(): RedisView;
  /** Calls `listener` on every change; returns an unsubscribe function. */
  onChange(listener: () => void): () => void;
  /** Observes again now (after a command changed Redis). */
  refresh(): Promise<void>;
  /** When the current observation was made (undefined before the first). */
  observedAt(): number | undefined;
}

/** Who leads, as read from the lock key (and the catalog as a fallback). */
export interface LeaderSourcePort {
  /** null: nobody holds the lock; undefined: not known yet. */
  leader(): LeaderView | null | undefined;
  /** The lock key's ModifyIndex while it is free (0 when the key does not exist). */
  vacancy(): number;
  /** false while Consul cannot be reached; undefined before the first answer. */
  reachable(): boolean | undefined;
  onChange(listener: () => void): () => void;
  /** While the lock is free: the note its last holder left as it gave it back, if any. */
  releaseNote?(): ReleaseNote | undefined;
}

/** Where candidacies are published and read (Consul KV in production). */
export interface CandidacyBoardPort {
  peers(): SeenCandidacy[];
  /** Publishes when the candidacy changed; the board keeps retrying a write Consul refused. */
  publish(candidacy: Candidacy): Promise<void>;
  /**
   * True while a peer of an earlier version, which judges liveness by how recently an entry changed,
   * is about: the candidacy is then republished every heartbeat.
   */
  legacyPeers?(): boolean;
  /** Peers whose entry a live session holds but that cannot be read (overwritten by someone). */
  unreadable?(): string[];
}

/** Data-safe elections (lib/reconciler/election.ts); without them any healthy node competes. */
export interface ElectionOptions {
  board: CandidacyBoardPort;
  settings: ElectionSettings;
  /** REPLICA_PRIORITY: overrides Redis's replica-priority for elections. */
  priorityOverride?: number;
  /** FORCE_FAILOVER: may lead even when empty or lagging. */
  forced: boolean;
  /** While a peer of an earlier version is about, republish this often (it needs changes to see us). */
  heartbeatMs: Milliseconds;
  /** FAILSAFE_MODE: where this agent answers failsafe calls, published in its candidacy. */
  failsafeApi?: () => string | undefined;
}

/** FAILSAFE_MODE's two sides, as the loop reads them (lib/failsafe/). */
export interface FailsafePort {
  /** On the holder: until when every peer's grant lets it take writes without Consul. */
  until(): number | undefined;
  /** On a peer: until when it promised the master not to compete. */
  promisedUntil(): number | undefined;
}

export interface AgentOptions {
  config: Config;
  clock: Clock;
  logger: Logger;
  redis: RedisObserverPort;
  leaderSource: LeaderSourcePort;
  lock: LockDriver;
  actuator: RedisActuator;
  registrar: ServiceRegistrar;
  /**
   * When Consul last accepted the agent check's heartbeat; lock sessions die with that check (see
   * presence.ts). Undefined when the check is not registered.
   */
  agentCheckConfirmedAt?: () => number | undefined;
  /**
   * The leader's replication offset as last read from its Redis (LeaderOffsetProbe); remembered so
   * MAX_LAG_ON_FAILOVER still holds once the leader's candidacy is gone.
   */
  leaderOffset?: () => number | undefined;
  /** Maintenance mode flag (Consul KV); false when not wired. */
  paused?: () => boolean;
  settings: DecisionSettings;
  /** Evaluate at least this often: the check heartbeat rides on it. */
  tickMs: Milliseconds;
  election?: ElectionOptions;
  /** Points a former master at this node (REPLICAOF us); best effort. */
  fencePeer?: (peer: HostPort, self: HostPort) => Promise<void>;
  control?: ControlPort;
  /** Runs Redis FAILOVER TO `target` on the local Redis and disconnects its clients afterwards. */
  failover?: (target: HostPort, timeoutMs: Milliseconds) => Promise<FailoverOutcome>;
  /** Called after every evaluation (metrics). An error it throws is logged, never fatal. */
  onEvaluated?: (observed: Observed, decision: Decision, previous: Decision | undefined) => void;
  /** Called when an evaluation fails (metrics); the loop goes on. */
  onEvaluationFailed?: (error: unknown) => void;
  /** The ticker and wake-up timers; the global ones by default (the simulator passes its own). */
  timers?: AgentTimers;
  failsafe?: FailsafePort;
  /** The fast takeover; without it this agent neither ends a lost leader's term nor guards its own. */
  takeover?: TakeoverPort;
}

/** The timer functions the loop uses, injectable so a simulated scheduler can drive it. */
export interface AgentTimers {
  setInterval(callback: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

type TimerHandle = ReturnType<typeof setTimeout>;

const GLOBAL_TIMERS: AgentTimers = {
  setInterval: (callback, ms) => setInterval(callback, ms),
  clearInterval: (handle) => clearInterval(handle as TimerHandle | undefined),
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as TimerHandle | undefined),
};

/** A snapshot of the agent for SIGUSR2 and /state. Never holds a secret. */
export interface AgentSnapshot {
  readonly decision: Decision | undefined;
  readonly observed: Observed | undefined;
  readonly evaluations: number;
  readonly startedAt: string;
  /** When the loop last evaluated, on the agent's monotonic clock (lib/clock.ts); a stuck loop shows here. */
  readonly lastEvaluatedAt: number | undefined;
  /** Evaluations that failed with an error (the loop went on). */
  readonly evaluationErrors: number;
}

/** The control loop. Create, `start()`, and `stop()` (or dispose) to shut down gracefully. */
export class Agent implements AsyncDisposable {
  readonly #options: AgentOptions;
  readonly #log: Logger;
  readonly #startedAt: number;
  readonly #unsubscribe: (() => void)[] = [];
  #decision: Decision | undefined;
  #observed: Observed | undefined;
  #evaluations = 0;
  #evaluationErrors = 0;
  #running: Promise<void> | undefined;
  #dirty = false;
  #stopping = false;
  readonly #timers: AgentTimers;
  #ticker: unknown;
  #wakeTimer: unknown;
  /** Last error message per step, so a failure repeating every tick is logged once. */
  readonly #failing = new Map<string, string>();
  readonly #listeners = new Set<(decision: Decision) => void>();
  readonly #inFlight = new Map<
    string,
    { next: (() => Promise<unknown>) | undefined; done: Promise<void> }
  >();
  /** What safety needs remembered between evaluations (lib/reconciler/memory.ts). */
  #memory: Memory = EMPTY_MEMORY;
  #published:
    | { key: string; at: number; freeSince: number | undefined; candidacy: Candidacy }
    | undefined;
  /** This node's candidacy as of the last observation of a running Redis. */
  #lastUp: Candidacy | undefined;
  /** The last publication of our candidacy, until written (the board retries a refused one). */
  #publication: Promise<void> = Promise.resolve();
  /** The fast takeover, when it is on. */
  readonly #takeover: TakeoverCoordinator | undefined;
  readonly #switchover: SwitchoverCoordinator;

  constructor(options: AgentOptions) {
    this.#options = options;
    this.#timers = options.timers ?? GLOBAL_TIMERS;
    this.#log = options.logger.child("agent");
    this.#startedAt = options.clock.wallNow();
    this.#switchover = new SwitchoverCoordinator({
      ...(options.control ? { control: options.control } : {}),
      ...(options.failover ? { failover: options.failover } : {}),
      self: options.config.announce,
      lockTtlMs: options.config.lock.ttlMs,
      redis: options.redis,
      clock: options.clock,
      logger: this.#log,
      background: (step, action) => this.#background(step, action),
      requestEvaluation: () => this.requestEvaluation(),
    });
    const election = options.election;
    this.#takeover = options.takeover
      ? new TakeoverCoordinator({
        port: options.takeover,
        settings: options.settings.takeover,
        self: options.config.announce,
        clock: options.clock,
        logger: this.#log,
        lock: options.lock,
        ...(election ? { peers: () => election.board.peers(), election: election.settings } : {}),
        vacancy: () => options.leaderSource.vacancy(),
        memory: { get: () => this.#memory, set: (memory) => this.#memory = memory },
        publication: () => this.#publication,
        background: (step, action) => this.#background(step, action),
        requestEvaluation: () => this.requestEvaluation(),
      })
      : undefined;
  }

  /** Starts the loop. */
  start(): void {
    const wake = () => this.requestEvaluation();
    this.#unsubscribe.push(this.#options.redis.onChange(wake));
    this.#unsubscribe.push(this.#options.leaderSource.onChange(wake));
    this.#ticker = this.#timers.setInterval(wake, this.#options.tickMs);
    this.requestEvaluation();
  }

  /** The latest decision and what it was made from. */
  snapshot(): AgentSnapshot {
    const observed = this.#observed;
    return {
      decision: this.#decision,
      observed,
      evaluations: this.#evaluations,
      startedAt: new Date(this.#startedAt).toISOString(),
      lastEvaluatedAt: observed?.now,
      evaluationErrors: this.#evaluationErrors,
    };
  }

  /** Calls `listener` after each evaluation that changed the decision. */
  onDecision(listener: (decision: Decision) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Asks for an evaluation soon; evaluations never overlap. */
  requestEvaluation(): void {
    if (this.#stopping) return;
    this.#dirty = true;
    if (!this.#running) this.#running = this.#drain();
  }

  /** Waits for the evaluation in progress, if any (tests). */
  async settled(): Promise<void> {
    while (this.#running) await this.#running;
  }

  /**
   * Shuts down: stops evaluating, fences a Redis that was master so late clients cannot write to a
   * node that is about to be replaced, releases the lock (no lock-delay on a release) and deregisters.
   */
  async stop(): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    this.#timers.clearInterval(this.#ticker);
    this.#timers.clearTimeout(this.#wakeTimer);
    this.#switchover.close();
    for (const unsubscribe of this.#unsubscribe.splice(0)) unsubscribe();
    await this.settled();
    await this.#backgroundSettled();
    const { lock, actuator, registrar, clock } = this.#options;
    const redis = this.#options.redis.current();
    if (lock.view().phase === "held" && redis.kind === "up" && redis.role === "master") {
      await this.#attempt(
        "fence",
        () => actuator.apply({ kind: "fence" }, clock.now(), redis.runId),
      );
    }
    await this.#attempt("lock", () => lock.close());
    await this.#attempt("service", () => registrar.deregister());
    this.#log.info("agent stopped");
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  /**
   * Evaluates until nothing asked for another evaluation. Never rejects: an error in one evaluation
   * is logged and counted, and the next tick or change evaluates again. An error let out of here
   * would end the drain for good, and with it every fence, demotion and release.
   */
  async #drain(): Promise<void> {
    try {
      while (this.#dirty && !this.#stopping) {
        this.#dirty = false;
        try {
          await this.#evaluate();
          if (this.#failing.delete(EVALUATION)) this.#log.info("evaluations work again");
        } catch (error) {
          this.#evaluationFailed(error);
        }
      }
    } finally {
      this.#running = undefined;
    }
  }

  #evaluationFailed(error: unknown): void {
    this.#evaluationErrors++;
    const message = error instanceof Error ? error.message : String(error);
    if (this.#failing.get(EVALUATION) !== message) {
      this.#failing.set(EVALUATION, message);
      this.#log.error("evaluation failed; evaluating again on the next tick", { error });
    }
    try {
      this.#options.onEvaluationFailed?.(error);
    } catch {
      // Metrics only.
    }
  }

  /**
   * Runs a part of the evaluation that the decision can do without (bookkeeping, listeners, metrics):
   * an error is logged once per distinct message, and the evaluation goes on.
   */
  #besides(step: string, action: () => void): boolean {
    try {
      action();
      if (this.#failing.delete(step)) this.#log.info(`${step} works again`);
      return true;
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      if (this.#failing.get(step) !== message) {
        this.#failing.set(step, message);
        this.#log.error(`${step} failed; carrying on without it`, { error });
      }
      return false;
    }
  }

  async #evaluate(): Promise<void> {
    const { clock, lock, actuator, registrar, redis, leaderSource, config } = this.#options;
    const now = clock.now();
    const redisView = redis.current();
    const leader = leaderSource.leader();
    const lockView = withAgentCheck(lock.view(), this.#options.agentCheckConfirmedAt?.());
    // Our fence holds on the Redis process it was set on; a restarted one comes back without it.
    const runId = redisView.kind === "up" ? redisView.runId : undefined;
    this.#remember(redisView, leader, lockView, now);
    const election = this.#election(redisView, lockView, now);
    const takeover = this.#takeover?.observe(leader, lockView, now) ?? {};
    // A switchover the agent cannot follow is no switchover: the usual rules, failover included.
    const followed = this.#besides(
      "switchover bookkeeping",
      () => this.#switchover.follow(election, lockView, leader, now),
    );
    const handover = followed ? this.#switchover.handover() : undefined;
    const observed: Observed = {
      now,
      self: config.announce,
      redis: redisView,
      consulReachable: leaderSource.reachable(),
      leader,
      lock: lockView,
      registration: registrar.registration(),
      fenced: actuator.isFenced(now, runId),
      paused: this.#options.paused?.() ?? this.#options.control?.paused() ?? false,
      ...(election ? { election } : {}),
      ...(this.#memory.peerToFence
        ? {
          previousLeader: this.#memory.peerToFence.address,
          previousLeaderSince: this.#memory.peerToFence.since,
          ...(this.#memory.peerToFence.writesStopped ? { previousLeaderStopped: true } : {}),
          ...(this.#memory.peerToFence.endedAt !== undefined
            ? { previousLeaderEndedAt: this.#memory.peerToFence.endedAt }
            : {}),
        }
        : {}),
      ...takeover,
      ...(demotedUnderLock(this.#memory, redisView, lockView) ? { demotedUnderLock: true } : {}),
      ...(restartedSinceLed(this.#memory, redisView) ? { restartedSinceLed: true } : {}),
      ...this.#failsafe(),
      ...(leader === null && leaderSource.vacancy() === -1 ? { lockKeyMissing: true } : {}),
      ...(leader === null && this.#memory.lastLeader && this.#memory.freeSince !== undefined
        ? {
          vanishedLeader: {
            address: this.#memory.lastLeader.address,
            freeSince: this.#memory.freeSince,
          },
        }
        : {}),
      ...(handover ? { handover } : {}),
    };
    this.#logStateChanges(observed);
    const decision = decide(observed, this.#options.settings);
    this.#evaluations++;
    this.#observed = observed;
    const previous = this.#decision;
    this.#decision = decision;
    if (previous?.name !== decision.name) {
      // A cluster that cannot elect anyone needs a person: say it loudly.
      const level = decision.name === "no_eligible_candidate" ? "error" : "info";
      this.#log[level](
        `decision changed from '${previous?.name ?? "none"}' to '${decision.name}'`,
        {
          reason: decision.reason,
        },
      );
      for (const listener of this.#listeners) {
        this.#besides("decision listener", () => listener(decision));
      }
    }
    const onEvaluated = this.#options.onEvaluated;
    if (onEvaluated) {
      this.#besides("evaluation report", () => onEvaluated(observed, decision, previous));
    }

    // Redis first: a fence must be in force before anything else happens, and a promotion must be
    // done before we tell Consul we are master.
    if (decision.redis.kind === "failover") {
      this.#switchover.startFailover(decision.redis.target);
    } else if (decision.redis.kind !== "none") {
      const applied = await this.#attempt("redis", async () => {
        const outcome = await actuator.apply(decision.redis, now, runId);
        // Redis said, just before detaching, that this replica had completed a sync.
        if (outcome?.synced && redisView.kind === "up") {
          this.#memory = rememberSynced(this.#memory, redisView.runId);
        }
      });
      if (applied) {
        await this.#attempt("observe", () => redis.refresh());
        this.#dirty = true;
      }
    }
    // Consul and remote peers can hang for a request timeout: they run beside the loop, so a fence
    // or a promotion is never stuck behind them.
    const releaseValue = decision.lock === "release"
      ? encodeReleaseNote({
        released: this.#options.config.announce,
        // After the Redis step above: a fence it just set counts.
        writesStopped: writesStopped({ redis: redisView, fenced: actuator.isFenced(now, runId) }),
        now: this.#options.clock.wallNow(),
      })
      : undefined;
    this.#background("lock", () => lock.apply(decision.lock, releaseValue));
    this.#background("service", () => registrar.apply(decision.service, clock.now()));
    if (decision.fencePeer && this.#options.fencePeer) {
      const peer = decision.fencePeer;
      this.#background("fence-peer", async () => {
        const target = this.#memory.peerToFence;
        try {
          await this.#options.fencePeer!(peer, config.announce);
          this.#log.info("pointed the former master at this node", { peer: formatHostPort(peer) });
          this.#memory = peerFenced(this.#memory);
          // A fenced peer lets our own fence come off: decide again now.
          this.requestEvaluation();
        } finally {
          this.#memory = peerFenceAttemptEnded(this.#memory, target, clock.now());
          if (target && !target.tried) this.requestEvaluation();
        }
      });
    }

    if (this.#takeover?.apply(decision, lockView, now)) this.#dirty = true;

    this.#timers.clearTimeout(this.#wakeTimer);
    if (decision.wakeAt !== undefined && !this.#stopping) {
      this.#wakeTimer = this.#timers.setTimeout(
        () => this.requestEvaluation(),
        Math.max(0, decision.wakeAt - clock.now()) + 1,
      );
    }
  }

  /** Remembers what later decisions need (lib/reconciler/memory.ts). */
  #remember(
    redis: RedisView,
    leader: LeaderView | null | undefined,
    lock: LockView,
    now: number,
  ): void {
    const before = this.#memory;
    this.#memory = remember(before, {
      now,
      self: this.#options.config.announce,
      redis,
      leader,
      lock,
      lockTtlMs: this.#options.config.lock.ttlMs,
      ...this.#leaderOffset(),
      ...(this.#takeover ? { replicaAcks: this.#takeover.replicaAcks(now) } : {}),
      ...(leader === null && this.#takeover?.endedByPeerBeforeVacancy(now)
        ? { lastLeaderEndedByPeer: true }
        : {}),
      ...this.#releaseNote(leader),
    });
    if (before.freeSince === undefined && this.#memory.freeSince !== undefined) {
      // Our candidacy answers this vacancy only with an observation made after it (see #vacancy).
      this.#background("observe-vacancy", () => this.#options.redis.refresh());
    }
  }

  /** Failsafe mode's grants and promises, when it is on. */
  #failsafe(): Pick<Observed, "failsafeUntil" | "promisedUntil"> {
    const failsafe = this.#options.failsafe;
    if (!failsafe) return {};
    const until = failsafe.until();
    const promised = failsafe.promisedUntil();
    return {
      ...(until !== undefined ? { failsafeUntil: until } : {}),
      ...(promised !== undefined ? { promisedUntil: promised } : {}),
    };
  }

  /** The free lock's release note, if its last holder left one. */
  #releaseNote(leader: LeaderView | null | undefined): { releaseNote?: ReleaseNote } {
    if (leader !== null) return {};
    const note = this.#options.leaderSource.releaseNote?.();
    return note ? { releaseNote: note } : {};
  }

  /** The leader's offset read now, if the agent reads it (an error there only loses the reading). */
  #leaderOffset(): { leaderOffset?: number } {
    let offset: number | undefined;
    this.#besides("leader offset", () => {
      offset = this.#options.leaderOffset?.();
    });
    return offset === undefined ? {} : { leaderOffset: offset };
  }

  /**
   * This node's candidacy and the peers', published when it changed (and on the heartbeat only while a
   * peer of an earlier version needs it). A steady agent writes nothing: every write is a Raft apply.
   */
  #election(
    redis: RedisView,
    lock: ReturnType<LockDriver["view"]>,
    now: number,
  ): ElectionView | undefined {
    const options = this.#options.election;
    if (!options) return undefined;
    const api = options.failsafeApi?.();
    const self = { ...this.#candidacy(redis, lock, options), ...(api ? { failsafeApi: api } : {}) };
    // The offset moves with every write: outside an election it rides on the heartbeat only, so a
    // busy master does not turn each poll into a Consul write.
    const { updatedAt: _updatedAt, offset, ...rest } = self;
    const key = JSON.stringify({
      ...rest,
      offset: this.#memory.freeSince === undefined ? 0 : offset,
    });
    const published = this.#published;
    const heartbeatDue = now - (published?.at ?? 0) >= options.heartbeatMs &&
      options.board.legacyPeers?.() === true;
    // While the lock is free, a position observed before the vacancy answers nothing (#vacancy): the
    // observation started with the vacancy brings the one peers wait for, and writing this one first
    // would only put a write ahead of it.
    const predatesVacancy = this.#memory.freeSince !== undefined && redis.kind === "up" &&
      self.vacancy === 0;
    if (
      !predatesVacancy &&
      (!published || published.key !== key || published.freeSince !== this.#memory.freeSince ||
        heartbeatDue)
    ) {
      this.#published = { key, at: now, freeSince: this.#memory.freeSince, candidacy: self };
      // A refused write is retried by the board; waiting for it never fails.
      this.#publication = options.board.publish(self).catch(() => {});
    }
    return {
      self,
      peers: options.board.peers(),
      freeSince: this.#memory.freeSince,
      vacancy: this.#options.leaderSource.vacancy(),
      settings: options.settings,
      ...(this.#memory.leaderPosition ? { leaderPosition: this.#memory.leaderPosition } : {}),
      ...(this.#memory.lastLeader
        ? { lastHolder: formatHostPort(this.#memory.lastLeader.address) }
        : {}),
      ...(this.#takeover?.lastLeaderLost(now) ? { lastHolderLost: true } : {}),
      ...this.#unreadablePeers(options),
    };
  }

  /**
   * The vacancy our candidacy answers: the free lock's index, once Redis was observed after the lock
   * went free (peers must not rank us on a position from before it); else 0, "not answered yet".
   */
  #vacancy(): number {
    const observedAt = this.#options.redis.observedAt();
    if (
      this.#memory.freeSince === undefined || observedAt === undefined ||
      observedAt < this.#memory.freeSince
    ) {
      return 0;
    }
    return this.#options.leaderSource.vacancy();
  }

  #candidacy(
    redis: RedisView,
    lock: ReturnType<LockDriver["view"]>,
    options: ElectionOptions,
  ): Candidacy {
    const address = formatHostPort(this.#options.config.announce);
    const updatedAt = new Date(this.#options.clock.wallNow()).toISOString();
    if (redis.kind !== "up") {
      // The last position observed, not the last published: outside an election the offset is not
      // published as it moves, and a failed master's last offset is what peers' lag is measured from.
      const last: Partial<Candidacy> = this.#lastUp ?? this.#published?.candidacy ?? {};
      return {
        address,
        runId: last.runId ?? "",
        replicationId: last.replicationId ?? "",
        replicationId2: last.replicationId2 ?? "",
        offset: last.offset ?? 0,
        role: last.role ?? "replica",
        healthy: false,
        datasetEmpty: last.datasetEmpty ?? true,
        synced: false,
        priority: options.priorityOverride ?? last.priority ?? 100,
        forced: options.forced,
        vacancy: this.#vacancy(),
        updatedAt,
        ...(last.dataEpoch !== undefined ? { dataEpoch: last.dataEpoch } : {}),
        ...this.#takeover?.candidacyFields(),
      };
    }
    const epoch = epochOfHistory(
      redis.replicationId,
      dataEpoch(this.#memory, redis),
      options.board.peers(),
    );
    const candidacy: Candidacy = {
      address,
      runId: redis.runId,
      replicationId: redis.replicationId,
      replicationId2: redis.replicationId2,
      offset: redis.offset,
      role: redis.role,
      healthy: !redis.loading,
      datasetEmpty: redis.datasetEmpty,
      // A replica that never completed a sync still has offset 0 in a history of its own.
      synced: hasSynced(this.#memory, redis.runId) || lock.phase === "held" ||
        (redis.offset > 0 && !neverSynced(this.#memory, redis.runId)),
      priority: options.priorityOverride ?? redis.priority,
      forced: options.forced,
      vacancy: this.#vacancy(),
      updatedAt,
      ...(epoch !== undefined ? { dataEpoch: epoch } : {}),
      ...this.#takeover?.candidacyFields(),
    };
    this.#lastUp = candidacy;
    return candidacy;
  }

  /** Peers whose held entry cannot be read, if any. */
  #unreadablePeers(options: ElectionOptions): Pick<ElectionView, "unreadablePeers"> {
    const unreadable = options.board.unreadable?.() ?? [];
    return unreadable.length > 0 ? { unreadablePeers: unreadable } : {};
  }

  /**
   * Runs a step beside the loop, one at a time per step: a request made while one runs replaces any
   * earlier waiting one, so only the latest intent is applied. What a step changes reaches the loop
   * through its own notifications (the lock driver) or the next tick, never by re-triggering it here:
   * that would spin.
   */
  #background(step: string, action: () => Promise<unknown>): void {
    const running = this.#inFlight.get(step);
    if (running) {
      running.next = action;
      return;
    }
    const slot: { next: (() => Promise<unknown>) | undefined; done: Promise<void> } = {
      next: action,
      done: Promise.resolve(),
    };
    this.#inFlight.set(step, slot);
    slot.done = (async () => {
      while (slot.next) {
        const current = slot.next;
        slot.next = undefined;
        await this.#attempt(step, current);
      }
      this.#inFlight.delete(step);
    })();
  }

  /** Waits for every background step (shutdown). */
  async #backgroundSettled(): Promise<void> {
    while (this.#inFlight.size > 0) {
      await Promise.all([...this.#inFlight.values()].map((slot) => slot.done));
    }
  }

  /** Runs one step; logs a failure once per distinct message and a recovery once. */
  async #attempt(step: string, action: () => Promise<unknown>): Promise<boolean> {
    try {
      await action();
      if (this.#failing.delete(step)) this.#log.info(`${step} step recovered`);
      return true;
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      if (this.#failing.get(step) !== message) {
        this.#failing.set(step, message);
        this.#log.warn(`${step} step failed; retrying on the next evaluation`, { error: message });
      }
      return false;
    }
  }

  #logStateChanges(observed: Observed): void {
    // The diff walks the whole observed state on every evaluation: only worth it when it is logged.
    if (this.#log.isDebugEnabled?.() === false) return;
    const previous = this.#observed;
    const changes = diffState(
      previous ? stateForDiff(previous) : {},
      stateForDiff(observed),
    );
    for (const change of changes) this.#log.debug(`modified: ${change.path} = ${change.value}`);
  }
}

/** The observed state without the parts that change on every evaluation. */
function stateForDiff(observed: Observed): Record<string, unknown> {
  const { now: _now, ...rest } = observed;
  if (rest.lock.phase === "held") {
    const { confirmedAt: _confirmedAt, ...lock } = rest.lock;
    return { ...rest, lock };
  }
  return rest;
}

/**
 * The lock session dies with the agent check, so a held lock counts as confirmed only as recently
 * as both the session renewal and the agent-check heartbeat.
 */
export function withAgentCheck(
  view: LockView,
  agentCheckConfirmedAt: number | undefined,
): LockView {
  if (view.phase !== "held" || agentCheckConfirmedAt === undefined) return view;
  return { ...view, confirmedAt: Math.min(view.confirmedAt, agentCheckConfirmedAt) };
}
