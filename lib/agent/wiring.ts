/** Builds and connects an agent's parts from a Config: clients, watches, lock, actuators, loop. */
import { formatHostPort, sameHostPort } from "../address.ts";
import { type Clock, systemClock } from "../clock.ts";
import { masterServiceQuery, presenceDefinition, serviceDefinition } from "../cluster/services.ts";
import type { Config } from "../config.ts";
import type { ConsulRequestEvent } from "../consul/client.ts";
import type { StatusSource } from "../http/status.ts";
import type { Logger } from "../log.ts";
import { ResecMetrics } from "../metrics/resec.ts";
import { RedisCommander } from "../redis/commander.ts";
import { RedisObserver } from "../redis/observer.ts";
import { CandidacyBoard } from "./apply/candidacy_board.ts";
import * as consulPorts from "./consul_ports.ts";
import { ControlSource } from "./watch/control_source.ts";
import { EvaluationRecorder } from "./evaluation_recorder.ts";
import { GroupKeysWatch } from "./watch/group_keys.ts";
import { HolderHostWatch } from "./watch/holder_watch.ts";
import { LeaderOffsetProbe, redisOffsetReader } from "./watch/leader_offset.ts";
import { HolderReachWatch, tcpConnectProbe } from "./watch/holder_reach.ts";
import { REPLICA_ACK_POLL_MS, ReplicaAckWatch } from "./watch/replica_acks.ts";
import { FormerMasterWatch } from "./watch/former_master.ts";
import type { HostPort } from "../address.ts";
import { LeaderSource } from "./watch/leader_source.ts";
import { Agent, type TakeoverPort, withAgentCheck } from "./loop.ts";
import { wireFailsafe } from "./failsafe_wiring.ts";
import { agentStatusSource } from "./node_status.ts";
import { AgentPresence } from "./apply/presence.ts";
import { ConsulAnomalies } from "./watch/consul_anomalies.ts";
import { RedisActuator } from "./apply/redis_actuator.ts";
import * as redisPorts from "./redis_ports.ts";
import { ServiceRegistrar } from "./apply/registrar.ts";
import * as timing from "./timings.ts";

export interface WiringOptions {
  logger: Logger;
  /** The Consul node the agent runs on (lib/agent/placement.ts); `config.announce` is already settled. */
  node: string;
  clock?: Clock;
}

/** The connected parts of one agent; lib/agent/lifecycle.ts starts and stops them. */
export type AgentParts = ReturnType<typeof wireAgent>;

/** Builds every part of an agent for `config` and connects them; nothing is started. */
export function wireAgent(config: Config, options: WiringOptions) {
  const { logger, node, clock = systemClock } = options;
  const log = (name: string) => logger.child(name);
  const timings = timing.agentTimings(config);
  const { tickMs, fenceAfterMs, peerFenceWaitMs, replicaLinkGraceMs } = timings;
  const metrics = new ResecMetrics({ clock });
  const anomalies = new ConsulAnomalies();
  const onRequest = (event: ConsulRequestEvent) => {
    metrics.recordConsulRequest(event);
    anomalies.requestDone(event);
  };
  const consul = consulPorts.agentConsulClient(config, { clock, logger: log("consul"), onRequest });
  const intervalMs = timing.redisPollIntervalMs(config);
  const redis = { connection: config.redis, timeoutMs: config.healthcheckTimeoutMs, clock };
  const observer = new RedisObserver({ ...redis, intervalMs, logger: log("redis") });
  const commander = new RedisCommander({ ...redis, logger: log("redis") });
  const evaluate = () => agent.requestEvaluation();
  const onInvalidRecord = (key: string) => {
    metrics.invalidRecord(key);
    anomalies.invalidRecord(key);
  };
  const [lockKey, waitMs, consulLog] = [config.lock.key, timings.leaderWaitMs, log("consul")];
  // One blocking watch on the lock key's prefix feeds the lock, the candidacies and the controls.
  const keys = new GroupKeysWatch({ client: consul, lockKey, waitMs, logger: consulLog });
  const shared = { client: consul, keys, onInvalidRecord, lockKey };
  const masterService = masterServiceQuery(config);
  const leaderSource = new LeaderSource({ ...shared, masterService, waitMs, logger: consulLog });
  const presenceService = presenceDefinition(config, timings);
  const presence = new AgentPresence({
    port: consulPorts.presencePort(consul),
    definition: presenceService,
    output: () => anomalies.checkOutput(presenceService.check.output ?? ""),
    heartbeatMs: timing.presenceHeartbeatMs(timings),
    clock,
    logger: log("presence"),
  });
  const serviceChecks = () => presence.tiedChecks();
  const board = new CandidacyBoard({
    ...shared,
    self: formatHostPort(config.announce),
    session: {
      name: config.lock.sessionName,
      serviceChecks,
      ttlMs: config.lock.ttlMs,
      beforeCreate: () => presence.beatNow(),
    },
    staleAfterMs: timings.election.staleAfterMs,
    clock,
    logger: log("election"),
    onChange: evaluate,
  });
  const control = new ControlSource({ ...shared, logger: log("control"), onChange: evaluate });
  const offsetReader = redisOffsetReader(config.redis, config.healthcheckTimeoutMs);
  const leaderOffset = new LeaderOffsetProbe({
    leader: redisPorts.followedLeader(observer, leaderSource, config.announce),
    read: offsetReader.read,
    self: config.announce,
    intervalMs: timing.LEADER_READ_INTERVAL_MS,
    clock,
    logger: log("redis"),
  });
  const leaderOffsetNow = () => leaderOffset.leaderOffset(leaderSource.leader(), clock.now());
  // The fast takeover (lib/reconciler/takeover.ts): the leader's reach from here, and on the leader,
  // which replicas acknowledge it.
  const holderReach = new HolderReachWatch({
    leader: () => {
      const leader = leaderSource.leader();
      return leader && !sameHostPort(leader.address, config.announce) &&
          leader.session !== lock.session
        ? leader.address
        : undefined;
    },
    connect: tcpConnectProbe(),
    clock,
    logger: log("election"),
    onChange: evaluate,
  });
  let formerMaster: HostPort | undefined;
  const formerMasterWatch = new FormerMasterWatch({
    client: consul,
    masterService,
    former: () => formerMaster,
    waitMs,
    clock,
    logger: log("consul"),
    onChange: evaluate,
  });
  const ackReader = redisOffsetReader(config.redis, REPLICA_ACK_POLL_MS);
  const replicaAcks = new ReplicaAckWatch({
    holding: () => lock.view().phase === "held",
    address: { host: config.redis.host, port: config.redis.port },
    read: ackReader.read,
    clock,
    logger: log("redis"),
    onChange: evaluate,
  });
  const runId = () => redisPorts.observedRunId(observer);
  const onBackoff = () => metrics.lockAcquireBackoff();
  const lockOptions = { serviceChecks, runId, onChange: evaluate, onBackoff, clock };
  const lock = consulPorts.agentLockDriver(config, consul, { ...lockOptions, logger: log("lock") });
  const registrar = new ServiceRegistrar({
    catalog: consulPorts.catalogPort(consul),
    definitionFor: (...intent) => serviceDefinition(config, timings, ...intent),
    heartbeatMs: tickMs,
    logger: log("service"),
    onCheckUpdated: (status) => metrics.checkUpdated(status),
  });
  const commands = redisPorts.commandPort(commander);
  const actuator = new RedisActuator({ commands, fenceMs: timings.fenceMs, logger: log("redis") });
  const holderPort = consulPorts.holderPort(consul);
  const holderWatch = new HolderHostWatch({
    port: holderPort,
    leader: () => leaderSource.leader(),
    ownSession: () => lock.session,
    paused: () => control.paused(),
    graceMs: timings.holderGoneAfterMs,
    waitMs: timing.HOLDER_WAIT_MS,
    clock,
    logger: log("election"),
  });
  const failsafe = wireFailsafe({
    config,
    fenceAfterMs,
    lock: () => withAgentCheck(lock.view(), presence.confirmedAt()),
    leader: () => leaderSource.leader(),
    peers: () => board.peers(),
    clock,
    logger: log("failsafe"),
    onChange: evaluate,
  });
  const takeoverPort: TakeoverPort = {
    unreachableForMs: (leader, now) => holderReach.unreachableForMs(leader, now),
    acknowledgedAt: (leader) => leaderOffset.acknowledgedAt(leader),
    replicaAcks: (now) => replicaAcks.current(now),
    endSession: (session) => holderPort.endSession(session),
    formerMasterListed: (former) => {
      formerMaster = former;
      return former ? formerMasterWatch.listed(former) : undefined;
    },
  };
  const hook = config.roleChangeHook;
  const recorder = new EvaluationRecorder({ metrics, hook, presence, leaderOffsetNow, logger });
  const { priorityOverride, forceFailover: forced } = config.election;
  const agent: Agent = new Agent({
    config,
    clock,
    logger,
    onEvaluationFailed: () => metrics.evaluationFailed(),
    redis: redisPorts.observerPort(observer, config.redis.port),
    leaderSource,
    lock,
    actuator,
    registrar,
    agentCheckConfirmedAt: () => presence.confirmedAt(),
    leaderOffset: leaderOffsetNow,
    settings: {
      fenceAfterMs,
      peerFenceWaitMs,
      replicaLinkGraceMs,
      ...(config.fastTakeover ? { takeover: timings.takeover } : {}),
    },
    tickMs,
    election: {
      board,
      settings: timings.election,
      priorityOverride,
      forced,
      heartbeatMs: tickMs,
      ...(failsafe ? { failsafeApi: () => failsafe.api.current } : {}),
    },
    ...(failsafe ? { failsafe: failsafe.port } : {}),
    ...(config.fastTakeover ? { takeover: takeoverPort } : {}),
    fencePeer: (peer, self) => redisPorts.fencePeer(config, logger, peer, self),
    control,
    failover: redisPorts.failoverPort(commander),
    onEvaluated: (observed, decision, previous) => recorder.record(observed, decision, previous),
  });
  const status: StatusSource = agentStatusSource(agent, timings, leaderOffsetNow, clock);
  const watches = {
    keys,
    leaderSource,
    board,
    control,
    holderWatch,
    leaderOffset,
    offsetReader,
    holderReach,
    replicaAcks,
    ackReader,
    formerMasterWatch,
  };
  const clients = { consul, observer, commander, actuator, presence, failsafe };
  const parts = { config, timings, clock, logger, node, metrics, recorder, agent, status };
  return { ...parts, watches, clients };
}
