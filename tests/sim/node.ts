/**
 * One simulated host: a Redis, a wall clock that may be stepped, a link to Consul that may be cut or slow,
 * and the resec agent running on it. The agent is the real `Agent` with the real `LockDriver`,
 * `RedisActuator` and `ServiceRegistrar`; only the ports that do I/O are simulated here: the Consul
 * lock (session, renewals, monitor), the lock-key watch, the candidacy board, the Redis observer and
 * commands, and the catalog. A crash of the agent drops the whole incarnation; a restart builds a new
 * one with an empty memory, as a new process would have.
 */
import { formatHostPort, type HostPort, sameHostPort } from "../../lib/address.ts";
import {
  Agent,
  type CandidacyBoardPort,
  type LeaderSourcePort,
  type RedisObserverPort,
  type TakeoverPort,
  withAgentCheck,
} from "../../lib/agent/loop.ts";
import { parseCandidacy } from "../../lib/cluster/candidacy.ts";
import { type EntryState, entryState } from "../../lib/agent/apply/candidacy_board.ts";
import type { HeldLock, LockPort } from "../../lib/agent/apply/lock_driver.ts";
import { LockDriver } from "../../lib/agent/apply/lock_driver.ts";
import { RedisActuator } from "../../lib/agent/apply/redis_actuator.ts";
import { ServiceRegistrar } from "../../lib/agent/apply/registrar.ts";
import { type AgentTimings, LEADER_READ_INTERVAL_MS } from "../../lib/agent/timings.ts";
import { REACH_PROBE_INTERVAL_MS } from "../../lib/agent/watch/holder_reach.ts";
import { ACK_READING_STALE_MS, REPLICA_ACK_POLL_MS } from "../../lib/agent/watch/replica_acks.ts";
import type { Candidacy, SeenCandidacy } from "../../lib/reconciler/election.ts";
import type { Clock } from "../../lib/clock.ts";
import type { Config } from "../../lib/config.ts";
import {
  encodeLeaderAnnouncement,
  parseLeaderAnnouncement,
  parseReleaseNote,
} from "../../lib/cluster/lock_value.ts";
import { silentLogger } from "../../lib/log.ts";
import { type FailsafeParts, wireFailsafe } from "../../lib/agent/failsafe_wiring.ts";
import { FAILSAFE_API_PORT, SIM_SIGNER, simCallSender } from "./failsafe.ts";
import type { LeaderView, RedisView } from "../../lib/reconciler/model.ts";
import type { KvEntry, SimConsul } from "./consul.ts";
import type { SimRedis } from "./redis.ts";
import type { Random, Scheduler } from "./scheduler.ts";

export const LOCK_KEY = "resec/.lock";
export const PAUSE_KEY = `${LOCK_KEY}.paused`;
export const CANDIDATES_PREFIX = `${LOCK_KEY}.candidates/`;
/** As lib/agent/apply/candidacy_board.ts: a vanished entry is kept this long. */
const FORGET_AFTER_MS = 600_000;

/** Consul's node check (gossip): lock sessions are tied to it by default. */
export function serfCheck(node: string): string {
  return `serfHealth:${node}`;
}

/** The agent's own TTL check (presence.ts): lock sessions are tied to it. */
export function agentCheck(node: string): string {
  return `agent:${node}`;
}

/** What a node needs from the simulated world. */
export interface NodeEnv {
  readonly sched: Scheduler;
  readonly rng: Random;
  readonly consul: SimConsul;
  readonly timings: AgentTimings;
  readonly lockTtlMs: number;
  readonly monitorRetries: number;
  readonly monitorRetryIntervalMs: number;
  /** ConsulClient's request deadline for this TTL. */
  readonly requestTimeoutMs: number;
  readonly pollMs: number;
  /** Candidacies as agents before 22a9392 wrote them (see SimOptions.legacyBoard). */
  readonly legacyBoard: boolean;
  /** FAILSAFE_MODE on every agent (see SimOptions.failsafe). */
  readonly failsafe: boolean;
  /** The fast takeover on every agent (see SimOptions.fastTakeover). */
  readonly fastTakeover: boolean;
  /** Holders never guarded (see SimOptions.unguardedHolders). */
  readonly unguardedHolders: boolean;
  /** Peers grant every call without asking their agent (see SimOptions.blindFailsafeGrants). */
  readonly blindFailsafeGrants: boolean;
  /** A master took writes on its peers' grants (a `failsafe_master` decision began). */
  onFailsafeMaster(): void;
  /** A follower ended a leader's session in a fast takeover. */
  onFastTakeover(): void;
  readonly trace: (line: string) => void;
  nodeAt(address: HostPort): SimNode | undefined;
  connectedReplicas(redis: SimRedis): number;
}

/** The lock session as `ConsulLock` would hold it. */
class SimHeldLock implements HeldLock {
  readonly #lost = new AbortController();
  #confirmedAt: number;
  #stopped = false;

  constructor(
    readonly inc: Incarnation,
    readonly session: string,
    readonly lockIndex: number,
    readonly acquiredIndex: number,
    confirmedAt: number,
  ) {
    this.#confirmedAt = confirmedAt;
    this.#keep();
  }

  get lost(): AbortSignal {
    return this.#lost.signal;
  }

  get active(): boolean {
    return !this.#stopped && !this.#lost.signal.aborted;
  }

  lastConfirmedAt(): number {
    return this.#confirmedAt;
  }

  /** As `SessionKeeper#renewNow`: one renewal beside the schedule. */
  confirmNow(): Promise<void> {
    const env = this.inc.env;
    if (!this.active) return Promise.reject(new Error("lock lost"));
    const sentAt = this.inc.node.clock.now();
    return this.inc.request("renew now", () => env.consul.renew(this.session)).then((ok) => {
      if (!ok) {
        this.lose("session-gone");
        throw new Error("session gone");
      }
      this.#confirmedAt = Math.max(this.#confirmedAt, sentAt);
    });
  }

  updateValue(value: string): Promise<void> {
    const { consul } = this.inc.env;
    return this.inc.request("lock value", () => {
      if (consul.kv.get(LOCK_KEY)?.session === this.session) consul.put(LOCK_KEY, value);
    });
  }

  /** As `ConsulLock`'s release: a destroy that Consul did not confirm is retried in the background. */
  release(value?: string): Promise<void> {
    this.#stopped = true;
    const { consul } = this.inc.env;
    return this.inc.request("release", () => {
      consul.release(LOCK_KEY, this.session, value ?? "");
      consul.destroy(this.session);
    }).catch(() => this.inc.destroyUntilGone(this.session));
  }

  /**
   * The lock watch answered: the key is gone or another session holds it. The monitor's blocking
   * reads start at the acquire's index, so an answer from before it is never seen.
   */
  checkKey(entry: KvEntry | undefined, index: number): void {
    if (!this.active || index < this.acquiredIndex) return;
    if (entry?.session !== this.session) this.lose(entry ? "released-by-consul" : "key-deleted");
  }

  /** As `Hold#lose`: the holder hears of it, and the session is ended once Consul answers. */
  lose(cause: string): void {
    if (!this.active) return;
    this.inc.node.env.trace(`${this.inc.node.name}: lock lost (${cause})`);
    this.#lost.abort(new Error(`lock lost: ${cause}`));
    this.inc.destroyUntilGone(this.session);
  }

  /** SessionKeeper: renew every TTL/3; what counts is when an accepted renewal was sent. */
  #keep(): void {
    const env = this.inc.env;
    env.sched.after(Math.floor(env.lockTtlMs / 3), "session renewal", () => {
      if (!this.active || !this.inc.alive) return;
      const sentAt = this.inc.node.clock.now();
      this.inc.request("renew", () => env.consul.renew(this.session)).then(
        (ok) => {
          if (ok) this.#confirmedAt = sentAt;
          else this.lose("session-gone");
        },
        () => {},
      );
      this.#keep();
    });
  }
}

/** One run of the agent process on a node: its memory dies with it. */
export class Incarnation {
  alive = true;
  readonly startedAt: number;
  /** The Consul KV as this agent's watches last saw it; undefined before the first answer. */
  kv: Map<string, KvEntry> | undefined;
  reachable: boolean | undefined;
  /** The first error an evaluation threw (the loop survives it, but it is a bug). */
  evaluationError: string | undefined;
  observed: RedisView = { kind: "unknown" };
  observedAtLocal: number | undefined;
  /** The Redis run id this agent observed first, and when (for the supervision grace). */
  supervised: { runId: string; since: number } | undefined;
  readonly agent: Agent;
  /** Failsafe mode's master and peer, when it is on. */
  readonly failsafe: FailsafeParts | undefined;
  readonly #held: SimHeldLock[] = [];
  readonly #leaderListeners = new Set<() => void>();
  readonly #redisListeners = new Set<() => void>();
  readonly #seen = new Map<
    string,
    { modifyIndex: number; state: EntryState; seen: SeenCandidacy }
  >();
  #lastDeliveryAt = 0;
  /** Cuts short the wait for the candidacy write in flight (a newer position to publish). */
  #cutShortWrite: (() => void) | undefined;
  /** Peers whose held entry cannot be read (as CandidacyBoard#unreadable). */
  readonly #unreadable = new Set<string>();
  #presenceConfirmedAt: number | undefined;
  #pending: Candidacy | undefined;
  #publishing: Promise<void> | undefined;
  #boardSession: string | undefined;
  #written: { candidacy: Candidacy; value: string } | undefined;

  constructor(readonly node: SimNode, readonly env: NodeEnv) {
    this.startedAt = env.sched.now;
    const timings = env.timings;
    const clock = node.clock;
    const config = { announce: node.address, lock: { ttlMs: env.lockTtlMs } } as unknown as Config;
    const lock = new LockDriver({
      lock: this.#lockPort(),
      value: (epoch) =>
        encodeLeaderAnnouncement({
          address: node.address,
          agent: "resec",
          runId: this.observed.kind === "up" ? this.observed.runId : undefined,
          now: clock.now(),
          ...(epoch !== undefined ? { epoch } : {}),
        }),
      runId: () => this.observed.kind === "up" ? this.observed.runId : undefined,
      onChange: () => this.agent.requestEvaluation(),
      onError: () => {},
      logger: silentLogger,
    });
    const registrar = new ServiceRegistrar({
      catalog: {
        register: () => this.request("register", () => {}),
        updateCheck: () => this.request("check", () => {}),
        deregister: () => this.request("deregister", () => {}),
        isUnknownCheck: () => false,
      },
      definitionFor: (role, status, output) => ({
        id: `redis-${node.name}`,
        name: "redis",
        tags: [role],
        port: node.address.port,
        check: {
          id: `check-${node.name}`,
          name: "redis",
          ttlMs: timings.checkTtlMs,
          deregisterCriticalAfterMs: 0,
          initialStatus: status,
          output,
        },
      }),
      heartbeatMs: timings.tickMs,
      logger: silentLogger,
    });
    const actuator = new RedisActuator({
      commands: {
        promote: () => this.#redisCommand(() => node.redis.promote()),
        detach: () =>
          this.#redisCommand(() => {
            const redis = node.redis;
            // As RedisCommander#detach: a link up, or down since a known time, was up once.
            const synced = redis.role === "replica" &&
              (redis.linkUp || redis.linkDownSince !== "never");
            // A replica of itself (lib/redis/self_loop.ts).
            redis.replicaOf(redis.address, env.sched.now);
            return { synced };
          }),
        replicateFrom: (master) =>
          this.#redisCommand(() => node.redis.replicaOf(master, env.sched.now)),
        pauseWrites: (ms) => this.#redisCommand(() => node.pause(ms)),
        unpauseWrites: () => this.#redisCommand(() => node.redis.unpause(env.sched.now)),
      },
      fenceMs: timings.fenceMs,
      logger: silentLogger,
    });
    const leaderSource = this.#leaderPort();
    const board = this.#boardPort();
    this.failsafe = env.failsafe ? this.#wireFailsafe(lock, leaderSource, board) : undefined;
    const failsafe = this.failsafe;
    this.agent = new Agent({
      config,
      clock,
      logger: silentLogger,
      redis: this.#observerPort(),
      leaderSource,
      lock,
      actuator,
      registrar,
      settings: {
        fenceAfterMs: timings.fenceAfterMs,
        peerFenceWaitMs: timings.peerFenceWaitMs,
        replicaLinkGraceMs: timings.replicaLinkGraceMs,
        ...(env.fastTakeover ? { takeover: timings.takeover } : {}),
      },
      tickMs: timings.tickMs,
      election: {
        board,
        settings: timings.election,
        forced: false,
        heartbeatMs: timings.tickMs,
        ...(failsafe ? { failsafeApi: () => failsafe.api.current } : {}),
      },
      ...(failsafe ? { failsafe: failsafe.port } : {}),
      ...(env.fastTakeover ? { takeover: this.#takeoverPort(lock, leaderSource) } : {}),
      paused: () => this.kv?.has(PAUSE_KEY) ?? false,
      agentCheckConfirmedAt: () => this.#presenceConfirmedAt,
      fencePeer: (peer, self) => this.#fencePeer(peer, self),
      timers: env.sched.timers(() => this.alive),
      onEvaluationFailed: (error) => {
        this.evaluationError ??= error instanceof Error ? error.message : String(error);
      },
    });
    this.agent.onDecision((decision) => {
      env.trace(`${node.name}: decision ${decision.name}: ${decision.reason}`);
      if (decision.name === "failsafe_master") env.onFailsafeMaster();
    });
    if (node.cut) this.#scheduleUnreachable();
    else this.deliver();
    // As AgentLifecycle.start: one INFO (an empty master is detached at once, inspectRedis; any other
    // master fenced at once), then the earlier run's sessions are listed and ended (given up when
    // Consul does not answer), then the loop starts.
    const start = () => {
      if (!this.alive) return;
      this.#beat();
      env.sched.after(node.redisLatency(), "redis first poll", () => this.#observe());
      this.#poll();
      this.agent.start();
      this.failsafe?.master.start();
    };
    const endEarlierSessions = async () => {
      let role = await this.#redisCommand(() => node.redis.role).catch(() => undefined);
      if (!this.alive) return;
      if (role === "master" && node.redis.log.length === 0) {
        await actuator.apply({ kind: "detach" }, clock.now()).then(
          () => role = "replica",
          () => {},
        );
      }
      if (role === "master") await actuator.apply({ kind: "fence" }, clock.now()).catch(() => {});
      await this.request("list sessions", () => env.consul.nodeSessionCount(node.name));
      await this.request("end earlier sessions", () => env.consul.destroyNodeSessions(node.name));
    };
    endEarlierSessions().then(start, start);
  }

  /**
   * As `destroyUntilGone` (lib/consul/lock.ts): the session is destroyed, retried every 250 ms to 1 s
   * while Consul does not answer, given up after 2 × TTL (Consul has expired it by then).
   */
  destroyUntilGone(session: string): void {
    const { sched, consul, lockTtlMs } = this.env;
    const giveUpAt = sched.now + 2 * lockTtlMs;
    const attempt = (n: number) => {
      this.request("destroy", () => consul.destroy(session)).catch(() => {
        const waitMs = Math.min(1_000, 250 * 2 ** (n - 1));
        if (sched.now + waitMs > giveUpAt) return;
        sched.after(waitMs, "destroy retry", () => {
          if (this.alive) attempt(n + 1);
        });
      });
    };
    attempt(1);
  }

  /** The process dies: nothing it scheduled runs any more. */
  kill(): void {
    this.alive = false;
    void this.failsafe?.master.stop();
  }

  /**
   * As wiring.ts does with FAILSAFE_MODE on: the real master and peer, their calls carried by the
   * simulated network and signed by a stand-in for the key (tests/sim/failsafe.ts).
   */
  #wireFailsafe(
    lock: LockDriver,
    leaderSource: LeaderSourcePort,
    board: CandidacyBoardPort,
  ): FailsafeParts | undefined {
    const { node, env } = this;
    const config = {
      announce: node.address,
      failsafe: { key: "unused: the simulator signs with SIM_SIGNER" },
    } as unknown as Config;
    const parts = wireFailsafe({
      config,
      fenceAfterMs: env.timings.fenceAfterMs,
      lock: () => withAgentCheck(lock.view(), this.#presenceConfirmedAt),
      leader: () => leaderSource.leader(),
      peers: () => board.peers(),
      clock: node.clock,
      logger: silentLogger,
      onChange: () => this.agent.requestEvaluation(),
      signer: SIM_SIGNER,
      send: simCallSender(env.sched, env.rng, {
        alive: () => this.alive,
        unreachable: () => node.unreachableByPeers(),
      }, (api) => {
        const peer = env.nodeAt({ host: api.host, port: node.address.port });
        return peer && {
          unreachable: () => peer.unreachableByPeers(),
          peer: () => peer.inc?.failsafe?.peer,
        };
      }, env.blindFailsafeGrants),
    });
    if (parts) {
      parts.api.current = formatHostPort({ host: node.address.host, port: FAILSAFE_API_PORT });
    }
    return parts;
  }

  /** A Consul request: applied after the network delay, answered after another; a cut times out. */
  request<T>(label: string, op: () => T): Promise<T> {
    const { sched } = this.env;
    const timeout = () => new Error(`Consul request ${label} timed out`);
    const sentAt = sched.now;
    return new Promise<T>((resolve, reject) => {
      const failLater = () =>
        sched.at(sentAt + this.env.requestTimeoutMs, "consul timeout", () => {
          if (this.alive) reject(timeout());
        });
      if (this.node.cut) return void failLater();
      sched.after(this.node.latency(), `consul ${label}`, () => {
        if (!this.alive) return;
        if (this.node.cut) return void failLater();
        let result: T;
        try {
          result = op();
        } catch (error) {
          return reject(error);
        }
        sched.after(this.node.latency(), `consul ${label} answer`, () => {
          if (!this.alive) return;
          if (this.node.cut) return void failLater();
          resolve(result);
        });
      });
    });
  }

  /**
   * The presence heartbeat (presence.ts): the agent check's TTL refreshed every third of it; what
   * counts for the fence bound is when an accepted heartbeat was sent.
   */
  #beat(): void {
    const { sched, timings } = this.env;
    if (!this.alive) return;
    this.#beatOnce().catch(() => {});
    sched.after(
      Math.max(10, Math.floor(timings.agentCheckTtlMs / 3)),
      "presence",
      () => this.#beat(),
    );
  }

  /** One heartbeat of the agent check (`AgentPresence#beatNow`). */
  #beatOnce(): Promise<void> {
    const { consul, timings } = this.env;
    const sentAt = this.node.clock.now();
    return this.request(
      "agent check",
      () => consul.passTtlCheck(agentCheck(this.node.name), timings.agentCheckTtlMs),
    ).then(() => {
      this.#presenceConfirmedAt = sentAt;
    });
  }

  /** The watches answer with Consul's state as of now, in order, after the network delay. */
  deliver(): void {
    if (!this.alive || this.node.cut) return;
    const { sched, consul } = this.env;
    const snapshot = new Map(consul.kv);
    const index = consul.index;
    const at = Math.max(this.#lastDeliveryAt, sched.now + this.node.latency());
    this.#lastDeliveryAt = at;
    sched.at(at, "consul watch", () => {
      if (!this.alive || this.node.cut) return;
      this.#apply(snapshot, index);
    });
  }

  /** The node was cut off from Consul: the watches notice when their request times out. */
  #scheduleUnreachable(): void {
    const { sched, rng, requestTimeoutMs, timings } = this.env;
    const cutEpoch = this.node.cutEpoch;
    const noticeAfter = rng.int(requestTimeoutMs, timings.leaderWaitMs + requestTimeoutMs);
    sched.after(noticeAfter, "consul unreachable", () => {
      if (!this.alive || this.node.cutEpoch !== cutEpoch || !this.node.cut) return;
      this.reachable = false;
      this.#fireLeader();
      // The lock monitor tolerates CONSUL_LOCK_MONITOR_RETRIES failed reads, then gives up (never
      // in failsafe mode, lib/agent/consul_ports.ts).
      if (this.env.monitorRetries >= Number.MAX_SAFE_INTEGER) return;
      const giveUpAfter = this.env.monitorRetries *
        (this.env.monitorRetryIntervalMs + requestTimeoutMs);
      sched.after(giveUpAfter, "lock monitor", () => {
        if (!this.alive || this.node.cutEpoch !== cutEpoch || !this.node.cut) return;
        for (const held of this.#held) held.lose("monitor-failed");
      });
    });
  }

  onCut(): void {
    this.#scheduleUnreachable();
  }

  onHeal(): void {
    const { sched, rng } = this.env;
    sched.after(rng.int(0, 1_000), "consul reconnect", () => this.deliver());
  }

  /** Redis dropped the connection: the observer notices within milliseconds. */
  onRedisCrash(): void {
    this.env.sched.after(1, "observe crash", () => this.#observe());
  }

  #apply(snapshot: Map<string, KvEntry>, index: number): void {
    const before = this.kv;
    this.kv = snapshot;
    const lockBefore = before?.get(LOCK_KEY);
    const lockNow = snapshot.get(LOCK_KEY);
    for (const held of this.#held) held.checkKey(lockNow, index);
    const reachableChanged = this.reachable !== true;
    this.reachable = true;
    const pausedChanged = (before?.has(PAUSE_KEY) ?? false) !== snapshot.has(PAUSE_KEY);
    if (
      !before || reachableChanged || pausedChanged ||
      lockBefore?.modifyIndex !== lockNow?.modifyIndex
    ) this.#fireLeader();
    if (this.#applyCandidacies(snapshot)) this.agent.requestEvaluation();
  }

  /** As CandidacyBoard#apply: invalid entries make the peer invisible, vanished ones linger. */
  #applyCandidacies(snapshot: Map<string, KvEntry>): boolean {
    const now = this.node.clock.now();
    const self = formatHostPort(this.node.address);
    // As CandidacyBoard#followOwn: republish when Consul released our entry or it was deleted (an
    // entry overwritten while our session still holds it is left as it is).
    const own = snapshot.get(CANDIDATES_PREFIX + self);
    const written = this.#written;
    if (written && !this.#publishing) {
      const released = own !== undefined && own.value === written.value &&
        own.session !== this.#boardSession;
      if (released || own === undefined) {
        this.#pending = written.candidacy;
        this.#publishing = this.#flush().finally(() => this.#publishing = undefined);
      }
    }
    const present = new Set<string>();
    let changed = false;
    for (const entry of snapshot.values()) {
      if (!entry.key.startsWith(CANDIDATES_PREFIX)) continue;
      const address = entry.key.slice(CANDIDATES_PREFIX.length);
      if (address === self) continue;
      // An entry already read at this index reads the same (the board parses it again; the
      // simulator saves the time).
      if (this.#seen.get(address)?.modifyIndex === entry.modifyIndex) {
        present.add(address);
        continue;
      }
      let candidacy;
      try {
        candidacy = parseCandidacy(entry.value, address);
      } catch {
        if (this.#seen.delete(address)) changed = true;
        // As CandidacyBoard#apply: a held entry that cannot be read is waited for in elections.
        const held = entry.session !== undefined;
        if (held !== this.#unreadable.has(address)) changed = true;
        if (held) this.#unreadable.add(address);
        else this.#unreadable.delete(address);
        continue;
      }
      if (this.#unreadable.delete(address)) changed = true;
      present.add(address);
      const state = entryState(entry, this.#seen.get(address));
      this.#seen.set(address, {
        modifyIndex: entry.modifyIndex,
        state,
        seen: {
          candidacy,
          seenChangedAt: now,
          ...(this.env.legacyBoard
            ? {}
            : { held: state === "held", ...(state === "released" ? { released: true } : {}) }),
        },
      });
      changed = true;
    }
    for (const address of this.#unreadable) {
      if (snapshot.has(CANDIDATES_PREFIX + address)) continue;
      this.#unreadable.delete(address);
      changed = true;
    }
    for (const [address, entry] of this.#seen) {
      if (
        !present.has(address) &&
        (entry.state === "released" || now - entry.seen.seenChangedAt > FORGET_AFTER_MS)
      ) {
        this.#seen.delete(address);
        changed = true;
      }
    }
    return changed;
  }

  #fireLeader(): void {
    for (const listener of this.#leaderListeners) listener();
  }

  #poll(): void {
    this.env.sched.after(this.env.pollMs, "redis poll", () => {
      if (!this.alive) return;
      this.#observe();
      this.#poll();
    });
  }

  /** INFO: the view as of now; listeners hear of a change. */
  #observe(): void {
    if (!this.alive) return;
    const redis = this.node.redis;
    const view = redis.view(this.env.sched.now, this.env.connectedReplicas(redis));
    const before = this.observed;
    this.observed = view;
    this.observedAtLocal = view.kind === "up" ? this.node.clock.now() : this.observedAtLocal;
    if (view.kind === "up" && this.supervised?.runId !== view.runId) {
      this.supervised = { runId: view.runId, since: this.env.sched.now };
    }
    if (changeKey(before) !== changeKey(view)) {
      for (const listener of this.#redisListeners) listener();
    }
  }

  #observerPort(): RedisObserverPort {
    return {
      current: () => this.observed,
      onChange: (listener) => {
        this.#redisListeners.add(listener);
        return () => this.#redisListeners.delete(listener);
      },
      refresh: () =>
        new Promise<void>((resolve) => {
          this.env.sched.after(this.node.redisLatency(), "redis refresh", () => {
            if (!this.alive) return;
            this.#observe();
            resolve();
          });
        }),
      observedAt: () => this.observed.kind === "up" ? this.observedAtLocal : undefined,
    };
  }

  #leaderPort(): LeaderSourcePort {
    return {
      leader: (): LeaderView | null | undefined => {
        const kv = this.kv;
        if (!kv) return undefined;
        const entry = kv.get(LOCK_KEY);
        if (!entry || entry.session === undefined) return null;
        let address: HostPort | undefined;
        try {
          address = parseLeaderAnnouncement(entry.value)?.address;
        } catch {
          address = undefined;
        }
        // A holder whose announcement is missing or invalid: unknown until the catalog tells
        // (not simulated; the agent keeps waiting).
        if (!address) return undefined;
        return { address, session: entry.session, lockIndex: entry.lockIndex };
      },
      vacancy: () => {
        const entry = this.kv?.get(LOCK_KEY);
        if (!this.kv) return 0;
        if (!entry) return -1;
        return entry.session === undefined ? entry.modifyIndex : 0;
      },
      reachable: () => this.reachable,
      releaseNote: () => {
        const entry = this.kv?.get(LOCK_KEY);
        return entry && entry.session === undefined ? parseReleaseNote(entry.value) : undefined;
      },
      onChange: (listener) => {
        this.#leaderListeners.add(listener);
        return () => this.#leaderListeners.delete(listener);
      },
    };
  }

  #boardPort(): CandidacyBoardPort {
    if (this.env.legacyBoard) {
      // An agent of an earlier version: a plain write every heartbeat; peers judge it by how
      // recently its entry changed. Its writes went one at a time, the latest waiting one next
      // (candidacy.ts before 22a9392), so they land in order.
      const legacy = {
        legacyPeers: () => true,
        peers: () => [...this.#seen.values()].map((entry) => entry.seen),
        publish: (candidacy: Candidacy) => {
          this.#pending = candidacy;
          this.#publishing ??= this.#flushLegacy().finally(() => this.#publishing = undefined);
          return this.#publishing;
        },
      };
      return legacy;
    }
    return {
      // As CandidacyBoard#peers: a released entry is marked, and forgotten after a while.
      peers: () => {
        const now = this.node.clock.now();
        return [...this.#seen.values()]
          .filter((entry) =>
            entry.state !== "released" || now - entry.seen.seenChangedAt <= FORGET_AFTER_MS
          )
          .map((entry) => entry.seen);
      },
      unreadable: () => [...this.#unreadable],
      publish: (candidacy) => {
        this.#pending = candidacy;
        this.#cutShortWrite?.();
        this.#publishing ??= this.#flush().finally(() => this.#publishing = undefined);
        return this.#publishing;
      },
    };
  }

  /**
   * As CandidacyBoard#flush: the entry is written with `?acquire=` under a session without TTL tied to
   * the node's gossip check and the agent check, only when it changed; calls that come while one is
   * in flight coalesce, and a refused write is retried (every second here) until one succeeds.
   */
  async #flush(): Promise<void> {
    const { consul, sched } = this.env;
    const name = this.node.name;
    while (this.#pending && this.alive) {
      const candidacy = this.#pending;
      this.#pending = undefined;
      const key = CANDIDATES_PREFIX + candidacy.address;
      const value = JSON.stringify(candidacy);
      try {
        if (!this.#boardSession || !consul.hasSession(this.#boardSession)) {
          // As the board's `beforeCreate`: a heartbeat of the agent check first.
          await this.#beatOnce().catch(() => {});
        }
        // As CandidacyBoard#publish: a newer position cuts short the wait for this write's answer
        // (the request itself, once sent, may still reach Consul).
        const cutShort = new Promise<never>((_, reject) => {
          this.#cutShortWrite = () => reject(new Error("a newer position was published"));
        });
        await Promise.race([
          this.request("publish", () => {
            if (!this.#boardSession || !consul.hasSession(this.#boardSession)) {
              this.#boardSession = consul.createSession(name, 0, [
                serfCheck(name),
                agentCheck(name),
              ]);
            }
            if (!consul.acquire(key, this.#boardSession, value)) {
              throw new Error(`another session holds the key "${key}"`);
            }
          }),
          cutShort,
        ]);
        this.#written = { candidacy, value };
      } catch {
        if (this.#pending) continue;
        this.#pending = candidacy;
        await sched.sleep(1_000);
      } finally {
        this.#cutShortWrite = undefined;
      }
    }
  }

  /** As the board before 22a9392: plain writes, one in flight; a failed one is not retried. */
  async #flushLegacy(): Promise<void> {
    while (this.#pending && this.alive) {
      const candidacy = this.#pending;
      this.#pending = undefined;
      await this.request(
        "publish",
        () => this.env.consul.put(CANDIDATES_PREFIX + candidacy.address, JSON.stringify(candidacy)),
      ).catch(() => {});
    }
  }

  #lockPort(): LockPort {
    const { consul, sched, lockTtlMs } = this.env;
    return {
      acquire: async (value, signal) => {
        for (;;) {
          signal.throwIfAborted();
          try {
            let confirmedAt = this.node.clock.now();
            const session = await this.request(
              "session",
              () =>
                consul.createSession(this.node.name, lockTtlMs, [
                  serfCheck(this.node.name),
                  agentCheck(this.node.name),
                ]),
            );
            for (;;) {
              if (signal.aborted) {
                this.destroyUntilGone(session);
                signal.throwIfAborted();
              }
              const acquired = await this.request("acquire", () => {
                const ok = consul.acquire(LOCK_KEY, session, value);
                return ok ? consul.kv.get(LOCK_KEY)! : undefined;
              });
              if (acquired !== undefined) {
                const held = new SimHeldLock(
                  this,
                  session,
                  acquired.lockIndex,
                  acquired.modifyIndex,
                  confirmedAt,
                );
                this.#held.push(held);
                this.env.trace(
                  `${this.node.name}: acquired the lock (epoch ${acquired.lockIndex})`,
                );
                return held;
              }
              await sched.sleep(250, signal);
              const sentAt = this.node.clock.now();
              if (!await this.request("renew", () => consul.renew(session))) break;
              confirmedAt = sentAt;
            }
          } catch (error) {
            signal.throwIfAborted();
            void error;
            await sched.sleep(1_000, signal);
          }
        }
      },
    };
  }

  /**
   * The fast takeover's watches, as wiring.ts builds them: the leader's Redis tried every 200 ms
   * (HolderReachWatch: refused while it is down, unanswered while either host is isolated or the
   * leader's host is down), the leader's INFO read every second (LeaderOffsetProbe: does it list us
   * as acknowledging?), and, on the holder, its own INFO every 250 ms (ReplicaAckWatch, a reading
   * older than 500 ms counting as none). Consul's catalog is not modelled: the former master never
   * counts as listed.
   */
  #takeoverPort(lock: LockDriver, leaderSource: LeaderSourcePort): TakeoverPort {
    const { node, env } = this;
    const clock = node.clock;
    const other = () => {
      const leader = leaderSource.leader();
      return leader && !node.is(leader.address) ? leader : undefined;
    };
    let reach: { address: HostPort; failingSince: number | undefined } | undefined;
    let acknowledged: { address: HostPort; at: number } | undefined;
    let acks: { at: number; keys: ReadonlySet<string> } | undefined;
    const reachable = (address: HostPort) => {
      const target = env.nodeAt(address);
      return target !== undefined && target.redis.up && !target.down && !target.isolated &&
        !node.isolated;
    };
    const probe = () => {
      if (!this.alive) return;
      const leader = other();
      if (!leader) reach = undefined;
      else {
        const startedAt = clock.now();
        if (!reach || !sameHostPort(reach.address, leader.address)) {
          reach = { address: leader.address, failingSince: undefined };
        }
        const state = reach;
        if (reachable(leader.address)) {
          if (state.failingSince !== undefined) {
            state.failingSince = undefined;
            this.agent.requestEvaluation();
          }
        } else {
          // A refused connection fails at once, an unanswered one after REACH_PROBE_TIMEOUT_MS.
          state.failingSince ??= startedAt;
          this.agent.requestEvaluation();
        }
      }
      env.sched.after(REACH_PROBE_INTERVAL_MS, "reach probe", probe);
    };
    const readLeader = () => {
      if (!this.alive) return;
      const leader = other();
      const redis = node.redis;
      if (
        leader && redis.up && redis.role === "replica" && redis.master !== undefined &&
        sameHostPort(redis.master, leader.address) && reachable(leader.address)
      ) {
        const target = env.nodeAt(leader.address)!;
        if (target.redis.acknowledging(env.sched.now).has(formatHostPort(node.address))) {
          acknowledged = { address: leader.address, at: clock.now() };
        }
      }
      env.sched.after(LEADER_READ_INTERVAL_MS, "leader read", readLeader);
    };
    const readAcks = () => {
      if (!this.alive) return;
      if (lock.view().phase !== "held") acks = undefined;
      else if (node.redis.up) {
        const keys = node.redis.acknowledging(env.sched.now);
        const before = acks?.keys;
        acks = { at: clock.now(), keys };
        if (!before || before.size !== keys.size || [...keys].some((key) => !before.has(key))) {
          this.agent.requestEvaluation();
        }
      } else if (acks !== undefined) {
        acks = undefined;
        this.agent.requestEvaluation();
      }
      env.sched.after(REPLICA_ACK_POLL_MS, "replica acks", readAcks);
    };
    env.sched.after(env.rng.int(0, REACH_PROBE_INTERVAL_MS), "reach probe", probe);
    env.sched.after(env.rng.int(0, LEADER_READ_INTERVAL_MS), "leader read", readLeader);
    env.sched.after(env.rng.int(0, REPLICA_ACK_POLL_MS), "replica acks", readAcks);
    return {
      unreachableForMs: (leader, now) =>
        reach && sameHostPort(reach.address, leader) && reach.failingSince !== undefined
          ? Math.max(0, now - reach.failingSince)
          : 0,
      acknowledgedAt: (leader) =>
        acknowledged && sameHostPort(acknowledged.address, leader) ? acknowledged.at : undefined,
      replicaAcks: (now) => {
        if (lock.view().phase !== "held" || env.unguardedHolders) return undefined;
        return acks && now - acks.at <= ACK_READING_STALE_MS ? acks.keys : new Set();
      },
      endSession: (session) =>
        this.request("end holder session", () => {
          env.trace(`${node.name}: ends the session of a leader no peer reaches`);
          env.onFastTakeover();
          env.consul.destroy(session);
        }),
      formerMasterListed: () => false,
    };
  }

  /** A command to the local Redis: fails when it is down. */
  #redisCommand<T>(op: () => T): Promise<T> {
    return this.node.redisCommand(this, op);
  }

  /** Points a former master at us, through a connection of its own. */
  #fencePeer(peer: HostPort, self: HostPort): Promise<void> {
    const peerNode = this.env.nodeAt(peer);
    const target = peerNode?.redis;
    const { sched } = this.env;
    return new Promise<void>((resolve, reject) => {
      if (this.node.isolated || peerNode?.isolated) {
        // Packets dropped: the command times out (HEALTHCHECK_TIMEOUT).
        sched.after(this.env.timings.election.collectMs, "fence peer timeout", () => {
          if (this.alive) reject(new Error("peer Redis timed out"));
        });
        return;
      }
      sched.after(this.node.redisLatency(), "fence peer", () => {
        if (!this.alive) return;
        if (!target || !target.up) return reject(new Error("peer Redis unreachable"));
        this.env.trace(`${this.node.name}: pointed former master ${target.name} at us`);
        target.replicaOf(self, this.env.sched.now);
        target.unpause(this.env.sched.now);
        resolve();
      });
    });
  }
}

/** What counts as a change of the Redis view (not the link's down time, which moves every poll). */
function changeKey(view: RedisView): string {
  if (view.kind !== "up") return view.kind;
  const { linkDownMs: _linkDownMs, ...rest } = view;
  return JSON.stringify(rest);
}

/**
 * Where each host's monotonic clock starts, apart from the others' and from the wall clock (as
 * `performance.now()` does on real hosts): a reading taken on one clock and compared on another, or
 * with the wall clock, is off by at least this much.
 */
const MONOTONIC_ORIGIN_SPACING_MS = 1_000_000_000;

/** A host. */
export class SimNode {
  /** The agent's clocks: monotonic from this host's own origin, and the wall clock (may be stepped). */
  readonly clock: Clock;
  /** How far this host's wall clock is off the true time (the clock-step fault moves it). */
  wallOffsetMs = 0;
  /** This host's own link to Consul is cut (consul-cut, host-isolated). */
  linkCut = false;
  /** Bumped whenever `cut` changes: a watch's timeout belongs to one cut. */
  cutEpoch = 0;
  /** Cut off from the other hosts too (replication and fencePeer), not from its client. */
  isolated = false;
  /** The whole host is down (crashed). */
  down = false;
  /** Consul round trips are slow until then (a fault). */
  slowUntil = 0;
  inc: Incarnation | undefined;

  constructor(
    readonly name: string,
    readonly address: HostPort,
    readonly redis: SimRedis,
    readonly env: NodeEnv,
    index: number,
  ) {
    const sched = env.sched;
    const origin = (index + 1) * MONOTONIC_ORIGIN_SPACING_MS;
    this.clock = {
      now: () => origin + sched.now,
      wallNow: () => sched.now + this.wallOffsetMs,
      sleep: (ms, signal) => sched.sleep(ms, signal),
    };
  }

  /** No Consul request of this host gets through: its link is cut, or Consul is out for everyone. */
  get cut(): boolean {
    return this.linkCut || this.env.consul.down;
  }

  /** Other hosts' agents cannot reach this one (crashed or isolated): failsafe calls are dropped. */
  unreachableByPeers(): boolean {
    return this.down || this.isolated;
  }

  latency(): number {
    const { rng, sched } = this.env;
    const base = rng.int(1, 8);
    return sched.now < this.slowUntil ? base + rng.int(100, 2_500) : base;
  }

  redisLatency(): number {
    return this.env.rng.int(0, 2);
  }

  /** CLIENT PAUSE WRITE; held writes run at the deadline. */
  pause(ms: number): void {
    const { sched } = this.env;
    this.redis.pause(ms, sched.now);
    const redis = this.redis;
    const runId = redis.runId;
    sched.at(redis.pausedUntil, "pause deadline", () => {
      if (redis.runId === runId) redis.settleHeld(sched.now);
    });
  }

  redisCommand<T>(inc: Incarnation, op: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.env.sched.after(this.redisLatency(), "redis command", () => {
        if (!inc.alive) return;
        if (!this.redis.up) return reject(new Error("Redis is down"));
        try {
          resolve(op());
        } catch (error) {
          reject(error);
        }
      });
    });
  }

  startAgent(): void {
    this.inc = new Incarnation(this, this.env);
  }

  killAgent(): void {
    this.inc?.kill();
    this.inc = undefined;
  }

  /** The agent watches this Redis process (it observed it since it started). */
  supervises(): boolean {
    const seen = this.inc?.supervised;
    return seen !== undefined && seen.runId === this.redis.runId;
  }

  is(address: HostPort): boolean {
    return sameHostPort(this.address, address);
  }
}
