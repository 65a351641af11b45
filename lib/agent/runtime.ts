/**
 * Builds a working agent from a Config: the Consul client, the lock, the leader watch, the Redis
 * observer and commander, and the loop that ties them together. One object owns them all and closes
 * them in order.
 */
import { type Clock, systemClock } from "../clock.ts";
import { announcedServiceAddress, type Config, serviceId, serviceIdAddress } from "../config.ts";
import { ConsulClient, type ConsulRequestEvent } from "../consul/client.ts";
import { ConsulError, ConsulPermissionDeniedError } from "../consul/errors.ts";
import { ConsulLock } from "../consul/lock.ts";
import { RequestGate } from "../consul/request_gate.ts";
import { healthService, nodeGossipHealth } from "../consul/health.ts";
import { destroySession, sessionInfo } from "../consul/session.ts";
import {
  deregisterService,
  isUnknownToAgent,
  registerService,
  updateCheck,
} from "../consul/service.ts";
import type { Milliseconds } from "../duration.ts";
import { encodeLeaderAnnouncement } from "../leader.ts";
import type { Logger } from "../log.ts";
import type { CheckStatus, Role } from "../model.ts";
import type { DecisionSettings } from "../reconciler.ts";
import { RedisCommander } from "../redis/commander.ts";
import { RedisError, RedisVersionError } from "../redis/errors.ts";
import { isSupportedRedisVersion } from "../redis/info.ts";
import { RedisObserver } from "../redis/observer.ts";
import { Agent, type RedisObserverPort } from "./loop.ts";
import { CandidacyBoard } from "./candidacy.ts";
import { ControlSource } from "./control_source.ts";
import { GroupKeysWatch } from "./group_keys.ts";
import { LeaderOffsetProbe, redisOffsetReader } from "./leader_offset.ts";
import { type HookRole, RoleChangeHook } from "../hooks.ts";
import type { ElectionSettings } from "../candidates.ts";
import { formatHostPort, type HostPort, sameHostPort } from "../address.ts";
import { ResecMetrics } from "../metrics/resec.ts";
import { VERSION } from "../version.ts";
import { type HttpServer, startHttpServer } from "../http/server.ts";
import type { NodeStatus, StatusSource } from "../http/status.ts";
import type { Decision, Observed } from "../reconciler.ts";
import { endEarlierRunSessions } from "./earlier_run.ts";
import { AgentPresence, type PresenceDefinition } from "./presence.ts";
import { HolderHostWatch } from "./holder_watch.ts";
import { LeaderSource } from "./leader_source.ts";
import { LockDriver } from "./lock_driver.ts";
import { RedisActuator } from "./redis_actuator.ts";
import { RESEC_META_KEY, type ServiceDefinition, ServiceRegistrar } from "./registrar.ts";
import { toRedisView } from "./redis_view.ts";

/** The flags the Go resec (hashicorp/consul api's Lock) puts on its lock key. */
export const GO_RESEC_LOCK_FLAGS = 3304740253564472344n;

/** The least time a role-check refresh leaves before the check's TTL runs out (if a third allows). */
const CHECK_REFRESH_SPARE_MS = 2_000;

/**
 * The longest blocking read of the lock holder's watch and of the leader's node: a change answers at
 * once whatever the wait, so a long one only saves requests.
 */
const HOLDER_WAIT_MS = 60_000;

/** How long startup keeps trying to end an earlier run's sessions while Consul is unreachable. */
const EARLIER_RUN_DEADLINE_MS = 3_000;

/**
 * How long a graceful stop of the master waits for another node to lead, to make its Redis that
 * node's replica (a Go resec or a Redis with no agent never lifts the fence). Well inside the hard
 * exit (HARD_EXIT_AFTER_MS); a Go resec takes a released lock within a second, ours within
 * HEALTHCHECK_TIMEOUT plus a moment.
 */
const HAND_OVER_WAIT_MS = 10_000;

/** Timings derived from the configuration; documented in docs/failure-behaviour.md. */
export interface AgentTimings extends DecisionSettings {
  /** TTL of the service check: twice HEALTHCHECK_INTERVAL, as the seed README documents. */
  readonly checkTtlMs: Milliseconds;
  /** TTL of the agent check the lock sessions are tied to (see presence.ts). */
  readonly agentCheckTtlMs: Milliseconds;
  /** How often the loop runs without a change, which is also the check heartbeat (checkRefreshMs). */
  readonly tickMs: Milliseconds;
  /** How long one write fence lasts before it must be renewed. */
  readonly fenceMs: Milliseconds;
  /** Longest blocking wait on the lock key. */
  readonly leaderWaitMs: Milliseconds;
  readonly election: ElectionSettings;
}

/**
 * Derives the timings. The fence bound is 60 % of the session TTL, counted from the older of the last
 * accepted session renewal and agent-check heartbeat. Consul cannot expire the session earlier than
 * TTL after the renewal, nor the agent check earlier than its TTL (at least TTL − lock delay) after
 * the heartbeat, and the lock delay follows either: a master that fences at 0.6 × TTL has stopped
 * taking writes before anyone else can hold the lock.
 */
export function agentTimings(config: Config): AgentTimings {
  const checkTtlMs = 2 * config.healthcheckIntervalMs;
  // A dead agent's check expires after this and a peer may take the lock one lock delay later:
  // within CONSUL_LOCK_TTL in all. Never under half the TTL, so a busy agent has beats to spare.
  const agentCheckTtlMs = Math.max(
    config.lock.ttlMs - config.lock.delayMs,
    Math.ceil(config.lock.ttlMs / 2),
  );
  const tickMs = checkRefreshMs(checkTtlMs);
  return {
    checkTtlMs,
    agentCheckTtlMs,
    tickMs,
    fenceAfterMs: Math.floor(config.lock.ttlMs * 0.6),
    replicaLinkGraceMs: Math.max(10_000, 2 * config.lock.ttlMs + config.lock.delayMs),
    fenceMs: Math.max(60_000, 4 * config.lock.ttlMs),
    leaderWaitMs: Math.max(1_000, config.lock.ttlMs),
    election: {
      maxLagBytes: config.election.maxLagBytes,
      // An entry no session holds (an earlier version's agent republishes every third of the check
      // TTL): three missed publications mean its agent is gone.
      staleAfterMs: checkTtlMs + config.healthcheckTimeoutMs,
      collectMs: Math.max(200, config.healthcheckTimeoutMs),
      stepAsideMaxMs: config.lock.ttlMs,
    },
  };
}

/**
 * How often the role check is refreshed (and the loop ticks): half its TTL, so each refresh is a
 * Consul request that changes nothing on the servers and the check costs 12 requests a minute by
 * default; but never closer than 2 s to the TTL, and at least every third of it (short test timings).
 */
export function checkRefreshMs(checkTtlMs: Milliseconds): Milliseconds {
  const half = Math.min(checkTtlMs / 2, checkTtlMs - CHECK_REFRESH_SPARE_MS);
  return Math.max(10, Math.floor(Math.max(checkTtlMs / 3, half)));
}

/** How often the observer polls INFO: HEALTHCHECK_INTERVAL, but at least twice per timeout. */
export function redisPollIntervalMs(
  config: Pick<Config, "healthcheckIntervalMs" | "healthcheckTimeoutMs">,
): Milliseconds {
  return Math.max(
    10,
    Math.min(config.healthcheckIntervalMs, Math.floor(config.healthcheckTimeoutMs / 2)),
  );
}

/** The Consul service definition for this node in a role. */
export function serviceDefinition(
  config: Config,
  timings: Pick<AgentTimings, "checkTtlMs">,
  role: Role,
  status: CheckStatus,
  output: string,
): ServiceDefinition {
  const id = serviceId(config);
  const naming = config.service;
  const address = announcedServiceAddress(config);
  return {
    id,
    name: naming.mode === "tags" ? naming.name : `${naming.prefix}-${role}`,
    tags: [...(role === "master" ? naming.masterTags : naming.slaveTags)],
    meta: { [RESEC_META_KEY]: VERSION },
    ...(address !== undefined ? { address } : {}),
    port: config.announce.port,
    check: {
      id: `${id}:replication-status-check`,
      name: `Resec: ${role} replication status`,
      ttlMs: timings.checkTtlMs,
      deregisterCriticalAfterMs: config.deregisterServiceAfterMs,
      status,
      output,
    },
  };
}

/**
 * The agent's presence service (`<name>-agent`, inside the ACL prefix the role services need) and the
 * check its lock sessions are tied to.
 */
export function presenceDefinition(
  config: Config,
  timings: Pick<AgentTimings, "agentCheckTtlMs">,
): PresenceDefinition {
  const naming = config.service;
  const name = `${naming.mode === "tags" ? naming.name : naming.prefix}-agent`;
  const id = `${name}@${serviceIdAddress(config)}`;
  const address = announcedServiceAddress(config);
  return {
    serviceId: id,
    name,
    ...(address !== undefined ? { address } : {}),
    port: config.announce.port,
    checkId: `${id}:alive`,
    checkName: "Resec: agent alive",
    ttlMs: timings.agentCheckTtlMs,
    deregisterCriticalAfterMs: config.deregisterServiceAfterMs,
    output: `resec ${VERSION} manages the Redis at ${formatHostPort(config.announce)}`,
  };
}

/** Where the slave services live in the catalog: by name, or by the first slave tag if any. */
export function slaveServiceQuery(config: Config): { name: string; tag?: string } {
  const naming = config.service;
  if (naming.mode === "prefix") return { name: `${naming.prefix}-slave` };
  const tag = naming.slaveTags[0];
  return tag === undefined ? { name: naming.name } : { name: naming.name, tag };
}

/** Where the master service lives in the catalog (the leader fallback reads it). */
export function masterServiceQuery(config: Config): { name: string; tag?: string } {
  return config.service.mode === "tags"
    ? { name: config.service.name, tag: config.service.masterTags[0] }
    : { name: `${config.service.prefix}-master` };
}

export interface AgentRuntimeOptions {
  logger: Logger;
  /** The Consul node the agent runs on (lib/agent/placement.ts); `config.announce` is already settled. */
  node: string;
  clock?: Clock;
  /** Every Consul request, for extra observers (the metrics count them already). */
  onConsulRequest?: (event: ConsulRequestEvent) => void;
}

/** A running agent and everything it owns. */
export class AgentRuntime implements AsyncDisposable {
  readonly agent: Agent;
  readonly timings: AgentTimings;
  readonly consul: ConsulClient;
  readonly observer: RedisObserver;
  readonly metrics: ResecMetrics;
  readonly #commander: RedisCommander;
  readonly #actuator: RedisActuator;
  readonly #keys: GroupKeysWatch;
  readonly #leaderSource: LeaderSource;
  readonly #board: CandidacyBoard;
  readonly #leaderOffset: LeaderOffsetProbe;
  readonly #offsetReader: ReturnType<typeof redisOffsetReader>;
  readonly #presence: AgentPresence;
  readonly #holderWatch: HolderHostWatch;
  readonly #control: ControlSource;
  readonly #logger: Logger;
  readonly #clock: Clock;
  readonly #node: string;
  #http: HttpServer | undefined;
  #freeSinceSeen: number | undefined;
  readonly #hook: RoleChangeHook | undefined;
  #hookRole: HookRole = "none";
  #stopped: Promise<void> | undefined;

  constructor(readonly config: Config, options: AgentRuntimeOptions) {
    const clock = options.clock ?? systemClock;
    const logger = options.logger;
    const timings = agentTimings(config);
    this.timings = timings;
    this.#logger = logger;
    this.#clock = clock;
    this.#node = options.node;
    const metrics = new ResecMetrics({ clock });
    this.metrics = metrics;
    this.#hook = config.roleChangeHook
      ? new RoleChangeHook({ ...config.roleChangeHook, logger: logger.child("hook") })
      : undefined;

    this.consul = new ConsulClient({
      connection: config.consul,
      // One short request at a time beside the blocking queries: three connections to Consul.
      fetch: new RequestGate((input, init) => fetch(input, init)).fetch,
      clock,
      logger: logger.child("consul"),
      // A request that hangs longer than a third of the TTL would hold a renewal past its use.
      requestTimeoutMs: Math.max(500, Math.min(10_000, Math.floor(config.lock.ttlMs / 3))),
      onRequest: (event) => {
        metrics.recordConsulRequest(event);
        options.onConsulRequest?.(event);
      },
    });
    this.observer = new RedisObserver({
      connection: config.redis,
      // Poll at least twice per HEALTHCHECK_TIMEOUT, so a Redis that freezes (no connection drop to
      // tell us) is noticed within 1.5 × HEALTHCHECK_TIMEOUT, as the Go resec's 1 s poll would.
      intervalMs: redisPollIntervalMs(config),
      timeoutMs: config.healthcheckTimeoutMs,
      clock,
      logger: logger.child("redis"),
    });
    this.#commander = new RedisCommander({
      connection: config.redis,
      timeoutMs: config.healthcheckTimeoutMs,
      clock,
      logger: logger.child("redis"),
    });
    // One blocking watch on the lock key's prefix feeds the lock, the candidacies and the controls.
    this.#keys = new GroupKeysWatch({
      client: this.consul,
      lockKey: config.lock.key,
      waitMs: timings.leaderWaitMs,
      logger: logger.child("consul"),
    });
    this.#leaderSource = new LeaderSource({
      client: this.consul,
      keys: this.#keys,
      onInvalidRecord: (key) => metrics.invalidRecord(key),
      lockKey: config.lock.key,
      masterService: masterServiceQuery(config),
      waitMs: timings.leaderWaitMs,
      logger: logger.child("consul"),
    });

    this.#board = new CandidacyBoard({
      client: this.consul,
      keys: this.#keys,
      onInvalidRecord: (key) => metrics.invalidRecord(key),
      lockKey: config.lock.key,
      self: formatHostPort(config.announce),
      session: {
        name: config.lock.sessionName,
        serviceChecks: () => this.#presence.tiedChecks(),
        ttlMs: config.lock.ttlMs,
      },
      staleAfterMs: timings.election.staleAfterMs,
      clock,
      logger: logger.child("election"),
      onChange: () => this.agent.requestEvaluation(),
    });

    this.#control = new ControlSource({
      client: this.consul,
      keys: this.#keys,
      onInvalidRecord: (key) => metrics.invalidRecord(key),
      lockKey: config.lock.key,
      logger: logger.child("control"),
      onChange: () => this.agent.requestEvaluation(),
    });

    const observer = this.observer;
    this.#offsetReader = redisOffsetReader(config.redis, config.healthcheckTimeoutMs);
    this.#leaderOffset = new LeaderOffsetProbe({
      leader: () => {
        const leader = this.#leaderSource.leader();
        const current = observer.current();
        const replica = current.kind === "up" && current.info.role === "replica";
        return replica && leader && !sameHostPort(leader.address, config.announce)
          ? leader.address
          : undefined;
      },
      read: this.#offsetReader.read,
      // The loop's tick: as fresh as the published offsets it replaces, at a fifth of the polls.
      intervalMs: timings.tickMs,
      clock,
      logger: logger.child("redis"),
    });
    const redisPort: RedisObserverPort = {
      current: () => toRedisView(observer.current()),
      onChange: (listener) => observer.onChange(() => listener()),
      refresh: () => observer.refresh(),
      observedAt: () => {
        const current = observer.current();
        return current.kind === "up" ? current.observedAt : undefined;
      },
    };
    const consul = this.consul;
    const presence = new AgentPresence({
      port: {
        register: (definition) =>
          registerService(consul, {
            id: definition.serviceId,
            name: definition.name,
            tags: [],
            ...(definition.address !== undefined ? { address: definition.address } : {}),
            port: definition.port,
            meta: { [RESEC_META_KEY]: VERSION },
            check: {
              id: definition.checkId,
              name: definition.checkName,
              ttlMs: definition.ttlMs,
              deregisterCriticalAfterMs: definition.deregisterCriticalAfterMs,
              initialStatus: "passing",
              output: definition.output,
            },
          }),
        beat: (checkId, output) => updateCheck(consul, checkId, "passing", output),
        deregister: (id) => deregisterService(consul, id),
        isUnknownCheck: isUnknownToAgent,
        isPermissionDenied: (error) => error instanceof ConsulPermissionDeniedError,
      },
      definition: presenceDefinition(config, timings),
      heartbeatMs: Math.max(10, Math.floor(timings.agentCheckTtlMs / 3)),
      clock,
      logger: logger.child("presence"),
    });
    this.#presence = presence;
    const lock = new LockDriver({
      lock: new ConsulLock({
        client: consul,
        key: config.lock.key,
        sessionName: config.lock.sessionName,
        ttlMs: config.lock.ttlMs,
        lockDelayMs: config.lock.delayMs,
        nodeChecks: [...config.lock.nodeChecks],
        serviceChecks: () => presence.tiedChecks(),
        monitorRetries: config.lock.monitorRetries,
        monitorRetryIntervalMs: config.lock.monitorRetryIntervalMs,
        waitMs: HOLDER_WAIT_MS,
        // The Go resec's lock helper refuses a key carrying other flags: writing its value keeps a
        // mixed cluster (mid-migration) contending on one lock.
        flags: GO_RESEC_LOCK_FLAGS,
        clock,
        logger: logger.child("lock"),
      }),
      value: (epoch) => {
        const current = observer.current();
        return encodeLeaderAnnouncement({
          address: config.announce,
          agent: config.lock.sessionName,
          runId: current.kind === "up" ? current.info.runId : undefined,
          now: clock.now(),
          epoch,
        });
      },
      runId: () => {
        const current = observer.current();
        return current.kind === "up" ? current.info.runId : undefined;
      },
      onChange: () => this.agent.requestEvaluation(),
      onError: (error) =>
        logger.child("lock").warn("competing for the lock failed; trying again", { error }),
      logger: logger.child("lock"),
    });
    const registrar = new ServiceRegistrar({
      catalog: {
        register: (definition) =>
          registerService(consul, {
            id: definition.id,
            name: definition.name,
            tags: [...definition.tags],
            ...(definition.meta !== undefined ? { meta: { ...definition.meta } } : {}),
            ...(definition.address !== undefined ? { address: definition.address } : {}),
            port: definition.port,
            check: {
              id: definition.check.id,
              name: definition.check.name,
              ttlMs: definition.check.ttlMs,
              deregisterCriticalAfterMs: definition.check.deregisterCriticalAfterMs,
              initialStatus: definition.check.status,
              // A host back from a reboot must not be listed as the master it was: its Consul
              // agent restores this status, and resec sets the live one at once.
              persistedStatus: "critical",
              output: definition.check.output,
            },
          }),
        updateCheck: (checkId, status, output) => updateCheck(consul, checkId, status, output),
        deregister: (id) => deregisterService(consul, id),
        isUnknownCheck: isUnknownToAgent,
      },
      definitionFor: (role, status, output) =>
        serviceDefinition(config, timings, role, status, output),
      heartbeatMs: timings.tickMs,
      logger: logger.child("service"),
      onCheckUpdated: (status) => metrics.checkUpdated(status),
    });
    this.#actuator = new RedisActuator({
      commands: {
        promote: () => this.#commander.promote(),
        detach: (pauseMs) => this.#commander.detach(pauseMs),
        replicateFrom: async (master) => {
          await this.#commander.replicateFrom(master);
        },
        pauseWrites: (ms) => this.#commander.pauseWrites(ms),
        unpauseWrites: () => this.#commander.unpauseWrites(),
      },
      fenceMs: timings.fenceMs,
      logger: logger.child("redis"),
    });
    this.#holderWatch = new HolderHostWatch({
      port: {
        sessionNode: async (session, signal) =>
          (await sessionInfo(consul, session, { signal }))?.node,
        gossipHealth: (node, options) => nodeGossipHealth(consul, node, options),
        endSession: (session) => destroySession(consul, session),
      },
      leader: () => this.#leaderSource.leader(),
      ownSession: () => lock.session,
      paused: () => this.#control.paused(),
      graceMs: timings.fenceAfterMs,
      waitMs: HOLDER_WAIT_MS,
      clock,
      logger: logger.child("election"),
    });
    this.agent = new Agent({
      config,
      clock,
      logger,
      onEvaluationFailed: () => metrics.evaluationFailed(),
      redis: redisPort,
      leaderSource: this.#leaderSource,
      lock,
      actuator: this.#actuator,
      registrar,
      agentCheckConfirmedAt: () => presence.confirmedAt(),
      settings: {
        fenceAfterMs: timings.fenceAfterMs,
        replicaLinkGraceMs: timings.replicaLinkGraceMs,
      },
      tickMs: timings.tickMs,
      election: {
        board: this.#board,
        settings: timings.election,
        priorityOverride: config.election.priorityOverride,
        forced: config.election.forceFailover,
        heartbeatMs: timings.tickMs,
      },
      fencePeer: (peer, self) => this.#fencePeer(peer, self),
      control: this.#control,
      failover: async (target, timeoutMs) => {
        const result = await this.#commander.failoverTo(target, timeoutMs);
        if (result.outcome !== "completed") return { ok: false, reason: result.reason };
        // Already a replica of the target: this only disconnects clients so they look it up again.
        await this.#commander.replicateFrom(target);
        return { ok: true, durationMs: result.durationMs };
      },
      onEvaluated: (observed, decision, previous) => this.#record(observed, decision, previous),
    });
  }

  /** What the HTTP endpoints answer from. */
  readonly status: StatusSource = {
    status: () =>
      nodeStatus(this.agent.snapshot(), this.timings.tickMs, Date.now(), this.#leaderOffsetNow()),
    state: () => ({ ...this.agent.snapshot(), timings: this.timings }),
  };

  /** The offset of the leader this node follows, as last read from its Redis. */
  #leaderOffsetNow(): number | undefined {
    const leader = this.#leaderSource.leader();
    return leader ? this.#leaderOffset.offset(leader.address, this.#clock.now()) : undefined;
  }

  /** Points a former master at `self` through a short-lived connection of its own. */
  async #fencePeer(peer: HostPort, self: HostPort): Promise<void> {
    const commander = new RedisCommander({
      connection: { ...this.config.redis, host: peer.host, port: peer.port },
      timeoutMs: this.config.healthcheckTimeoutMs,
      logger: this.#logger.child("redis"),
    });
    try {
      await commander.replicateFrom(self);
      // Its agent may have fenced it on a graceful stop: a replica now, it must not stay paused (it
      // would hold writes for the rest of that minute if it were promoted again).
      await commander.unpauseWrites();
    } finally {
      await commander.close();
    }
  }

  #record(observed: Observed, decision: Decision, previous: Decision | undefined): void {
    const metrics = this.metrics;
    metrics.redisObserved(observed.redis);
    metrics.setLockHeld(observed.lock.phase === "held");
    metrics.setConsulReachable(observed.consulReachable);
    metrics.setPaused(observed.paused);
    metrics.setAgentCheckRegistered(this.#presence.tiedChecks().length > 0);
    metrics.decisionChanged(decision.name);
    metrics.setReplicationLag(replicationLag(observed, this.#leaderOffsetNow()));
    this.#runHook(observed, decision);
    const freeSince = observed.election?.freeSince;
    if (freeSince !== undefined) this.#freeSinceSeen = freeSince;
    if (decision.name === "master" && previous?.name !== "master") {
      metrics.electionWon();
      if (this.#freeSinceSeen !== undefined) {
        metrics.failoverCompleted(observed.now - this.#freeSinceSeen);
        this.#logger.child("agent").info("this node leads now", {
          msSinceLockFree: observed.now - this.#freeSinceSeen,
        });
      }
      this.#freeSinceSeen = undefined;
    }
  }

  /** Calls ON_ROLE_CHANGE when this node becomes master, or a replica following a leader. */
  #runHook(observed: Observed, decision: Decision): void {
    const role: HookRole | undefined = decision.name === "master"
      ? "master"
      : decision.name === "replica"
      ? "slave"
      : undefined;
    if (!role || role === this.#hookRole) return;
    const master = role === "master" ? observed.self : observed.leader?.address;
    const previous = this.#hookRole;
    this.#hookRole = role;
    void this.#hook?.run({ role, previous, master: master ? formatHostPort(master) : "" });
  }

  /**
   * Starts observing and deciding, and the HTTP endpoints when HTTP_ADDR is set.
   *
   * @throws {RedisVersionError} when Redis answers and is older than 6.2; nothing was started.
   */
  async start(): Promise<void> {
    await this.#inspectRedis();
    if (this.config.httpAddress) {
      this.#http = await startHttpServer({
        address: this.config.httpAddress,
        status: this.status,
        metrics: this.metrics,
        logger: this.#logger.child("http"),
      });
      this.#logger.info("HTTP endpoints listening", { url: this.#http.url });
    }
    // Before this run makes any session of its own, so none of them can be mistaken for old ones.
    await endEarlierRunSessions({
      client: this.consul,
      node: this.#node,
      sessionName: this.config.lock.sessionName,
      agentCheckId: this.#presence.checkId,
      logger: this.#logger.child("lock"),
      deadlineMs: EARLIER_RUN_DEADLINE_MS,
      clock: this.#clock,
    });
    await this.#presence.start();
    this.#holderWatch.start();
    this.#leaderOffset.start();
    this.observer.start();
    this.agent.start();
  }

  /**
   * One look at Redis before anything else: refuse a version resec cannot manage, and lift a write
   * pause an earlier run left on a Redis that is a replica now. A Redis that does not answer yet is
   * left to the observer, which reports a too old one as down.
   */
  async #inspectRedis(): Promise<void> {
    let info;
    try {
      info = await this.#commander.info();
    } catch (error) {
      if (!(error instanceof RedisError)) throw error;
      this.#logger.child("redis").debug("Redis does not answer yet at start", { error });
      return;
    }
    if (!isSupportedRedisVersion(info.redisVersion)) {
      throw new RedisVersionError(
        this.#commander.address,
        info.redisVersion ?? "an unknown version",
      );
    }
    if (info.role !== "replica") return;
    try {
      await this.#actuator.liftLeftoverPause();
    } catch (error) {
      if (!(error instanceof RedisError)) throw error;
      this.#logger.child("redis").warn("cannot lift a write pause left on the replica", { error });
    }
  }

  /**
   * After a graceful stop fenced our master Redis and gave the lock up: once another node leads (a
   * bounded wait), make our Redis its replica and lift the fence, as its agent would. Without this,
   * the Redis keeps the fence for its whole minute when a Go resec (or nobody) takes over. It gives
   * up at once when no peer is left that could lead (every agent stopping together), and a Redis
   * with no replica hands over to nobody: no peer holds its data.
   */
  async #handOver(): Promise<void> {
    const clock = this.#clock;
    if (!this.#actuator.isFenced(clock.now())) return;
    const logger = this.#logger.child("agent");
    try {
      const info = await this.#commander.info();
      if (info.role !== "master" || info.connectedReplicas === 0) return;
      const self = this.config.announce;
      const source = this.#leaderSource;
      const other = () => {
        const leader = source.leader();
        return leader && !sameHostPort(leader.address, self) ? leader : undefined;
      };
      const wake = new AbortController();
      const unsubscribe = source.onChange(() => other() && wake.abort());
      const deadline = clock.now() + HAND_OVER_WAIT_MS;
      try {
        while (!other()) {
          if (clock.now() >= deadline) {
            logger.warn("no other node leads yet; Redis stays fenced until its pause lapses", {
              waitedMs: HAND_OVER_WAIT_MS,
            });
            return;
          }
          if (!(await this.#peerMayLead())) {
            logger.info(
              "no other agent is left to lead; Redis stays fenced until its pause lapses",
            );
            return;
          }
          await clock.sleep(Math.min(250, deadline - clock.now()), wake.signal).catch(() => {});
        }
      } finally {
        unsubscribe();
      }
      const leader = other()!;
      await this.#actuator.apply({ kind: "replicate", master: leader.address }, clock.now());
      logger.info("handed over: Redis replicates from the new leader", {
        leader: formatHostPort(leader.address),
      });
    } catch (error) {
      if (!(error instanceof RedisError) && !(error instanceof ConsulError)) throw error;
      logger.warn("cannot hand Redis over to the new leader", { error });
    }
  }

  /**
   * Whether another agent could still take the lock: a passing agent service of ours other than
   * this one, or a passing slave (a Go resec registers nothing else).
   */
  async #peerMayLead(): Promise<boolean> {
    const presence = presenceDefinition(this.config, this.timings);
    const slaves = slaveServiceQuery(this.config);
    const [agents, replicas] = await Promise.all([
      healthService(this.consul, presence.name, { passing: true }),
      healthService(this.consul, slaves.name, {
        passing: true,
        ...(slaves.tag !== undefined ? { tag: slaves.tag } : {}),
      }),
    ]);
    const otherAgent = agents.entries.some((entry) =>
      entry.serviceId !== presence.serviceId || entry.node !== this.#node
    );
    const masterTag = masterServiceQuery(this.config).tag;
    const replica = replicas.entries.some((entry) =>
      masterTag === undefined || !entry.tags.includes(masterTag)
    );
    return otherAgent || replica;
  }

  /** Stops gracefully (releases the lock, deregisters) and closes every connection. */
  stop(): Promise<void> {
    this.#stopped ??= (async () => {
      await this.#holderWatch.stop();
      await this.#leaderOffset.stop();
      this.#offsetReader.close();
      await this.agent.stop();
      // No longer a candidate: its entry goes at once (its session ends), or peers would wait for a
      // live, well-placed candidate that never competes, while the hand-over waits for them.
      await this.#board.close();
      await this.#handOver();
      // After the lock is released: deregistering the check would end the session anyway.
      await this.#presence.stop();
      await this.#hook?.settled();
      await this.#http?.close();
      await this.#control.close();
      await this.#leaderSource.close();
      await this.#keys.close();
      await this.observer.close();
      await this.#commander.close();
      this.consul.close();
    })();
    return this.#stopped;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}

/**
 * A replica's lag behind its leader: the leader's offset as read from its Redis, less our own;
 * undefined when either is unknown.
 */
export function replicationLag(
  observed: Pick<Observed, "redis" | "leader">,
  leaderOffset: number | undefined,
): number | undefined {
  const redis = observed.redis;
  if (redis.kind !== "up" || redis.role !== "replica" || !observed.leader) return undefined;
  if (leaderOffset === undefined) return undefined;
  return Math.max(0, leaderOffset - redis.offset);
}

/** The load-balancer view of an agent snapshot. */
export function nodeStatus(
  snapshot: ReturnType<Agent["snapshot"]>,
  tickMs: Milliseconds,
  now: number,
  leaderOffset?: number,
): NodeStatus {
  const observed = snapshot.observed;
  const redis = observed?.redis;
  const up = redis?.kind === "up" ? redis : undefined;
  const loopAlive = snapshot.lastEvaluatedAt !== undefined &&
    now - snapshot.lastEvaluatedAt <= 3 * tickMs + 1_000;
  return {
    role: up ? up.role : "unknown",
    // A holder that is holding writes (unconfirmed or contested lock, a switchover's FAILOVER) is
    // not a master a load balancer should send writes to.
    holdsLock: observed?.lock.phase === "held" && snapshot.decision?.name === "master",
    redisHealthy: up !== undefined && !up.loading,
    agentHealthy: loopAlive && observed?.consulReachable !== false,
    linkUp: up?.role === "replica" && up.linkUp,
    lagBytes: observed ? replicationLag(observed, leaderOffset) : undefined,
    paused: observed?.paused ?? false,
  };
}
