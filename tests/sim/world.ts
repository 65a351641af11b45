/**
 * The simulated cluster: N hosts (Redis + agent), one Consul, a client that writes to whatever the
 * lock value names, and faults drawn from the seed. `runSeed` runs one seed to its end or to the first
 * broken invariant, and returns the trace tail. See README.md for what is modelled and promised.
 */
import { FAILSAFE_MONITOR_RETRIES } from "../../lib/agent/consul_ports.ts";
import { formatHostPort, type HostPort } from "../../lib/address.ts";
import { agentTimings, redisPollIntervalMs } from "../../lib/agent/timings.ts";
import type { ElectionSettings } from "../../lib/reconciler/election.ts";
import type { Config } from "../../lib/config.ts";
import { parseLeaderAnnouncement } from "../../lib/cluster/lock_value.ts";
import { SimConsul } from "./consul.ts";
import { CANDIDATES_PREFIX, LOCK_KEY, PAUSE_KEY, serfCheck, SimNode } from "./node.ts";
import { SimRedis } from "./redis.ts";
import { Random, Scheduler } from "./scheduler.ts";

export interface SimOptions {
  readonly seed: number;
  readonly nodes?: number;
  /** How many faults, one after another (some overlap). */
  readonly faults?: number;
  /**
   * Step node wall clocks backwards too (up to 30 s; forwards only by default). Only the wall clock
   * steps: what safety measures runs on the monotonic clock (lib/clock.ts), so neither direction may
   * matter.
   */
  readonly backwardClockSteps?: boolean;
  /**
   * Count a master-role Redis left alone in maintenance mode as taking writes (a paused agent changes
   * nothing, by design: off by default, see README.md).
   */
  readonly strictMaintenance?: boolean;
  /**
   * Overrides the fence bound (fenceAfterMs): the simulator's own test breaks it on purpose to show
   * the invariants catch a master that fences too late.
   */
  readonly fenceAfterMs?: number;
  /** Overrides election settings (the simulator's own test breaks them on purpose). */
  readonly election?: Partial<ElectionSettings>;
  /** Longest fault (30 s by default). */
  readonly maxFaultMs?: number;
  /**
   * Every agent publishes its candidacy the way agents of earlier versions do (a plain write on every
   * heartbeat, peers judged by how recently the entry changed) instead of an entry held by a session
   * tied to the agent's checks.
   */
  readonly legacyBoard?: boolean;
  /**
   * FAILSAFE_MODE on every agent (docs/failsafe.md): a master that Consul cannot confirm keeps taking
   * writes while every peer's agent grants its calls.
   */
  readonly failsafe?: boolean;
  /**
   * The fast takeover (lib/reconciler/takeover.ts), on by default as in production: replicas probe the
   * leader's Redis, read whether it lists them as acknowledging, and end its term once all lost it.
   */
  readonly fastTakeover?: boolean;
  /**
   * Breaks the fast takeover on purpose (the simulator's own test): the holder never reads its
   * replicas' acknowledgements, so it is never guarded while a replica ends its term.
   */
  readonly unguardedHolders?: boolean;
  /**
   * Breaks failsafe mode on purpose (the simulator's own test): every peer grants every call without
   * asking its agent, and promises nothing.
   */
  readonly blindFailsafeGrants?: boolean;
  /** Only these faults (all by default). */
  readonly faultKinds?: readonly FaultKind[];
  /** Lines of trace kept for the failure message. */
  readonly traceLines?: number;
}

export interface SimResult {
  readonly seed: number;
  readonly violation: string | undefined;
  readonly trace: readonly string[];
  readonly events: number;
  readonly simulatedMs: number;
  readonly acknowledged: number;
  readonly failovers: number;
  /** How often a master began taking writes on its peers' failsafe grants. */
  readonly failsafeMasters: number;
  /** How often a follower ended a leader's session in a fast takeover. */
  readonly fastTakeovers: number;
  /** New terms whose master lacked acknowledged writes that only disturbed nodes held. */
  readonly allowedLosses: number;
}

/** Settings of the simulated deployment (the defaults, with a shorter health-check interval). */
const LOCK_TTL_MS = 15_000;
const LOCK_DELAY_MS = 1_000;
const HEALTHCHECK_INTERVAL_MS = 2_000;
const HEALTHCHECK_TIMEOUT_MS = 2_000;
const MONITOR_RETRIES = 3;
const MONITOR_RETRY_INTERVAL_MS = 1_000;
/** MAX_LAG_ON_FAILOVER 0: the winner must hold every write its peers hold (the strict promise). */
const MAX_LAG_BYTES = 0;
/** The client writes this often, to the node the lock value names. */
const WRITE_EVERY_MS = 400;
/** The client re-reads the lock value this often. */
const CLIENT_REFRESH_MS = 1_000;
/** A Redis is supervised once its agent has observed it and had this long to act. */
const SUPERVISION_GRACE_MS = 100;
/**
 * After the last fault heals, one writable master again within this bound: Consul may keep a dead
 * holder's session for 2 × TTL, then lock-delay, the collection of positions and one step-aside.
 */
export const HEAL_BOUND_MS = 2 * LOCK_TTL_MS + LOCK_DELAY_MS + 2 * HEALTHCHECK_TIMEOUT_MS +
  LOCK_TTL_MS + 10_000;

export type FaultKind =
  | "node-crash"
  | "redis-crash"
  | "redis-empty-restart"
  | "agent-crash"
  | "consul-cut"
  | "host-isolated"
  | "slow-consul"
  | "clock-step"
  | "garbage-candidacy"
  | "garbage-pause"
  | "consul-outage";

const FAULTS: readonly FaultKind[] = [
  "node-crash",
  "redis-crash",
  "redis-empty-restart",
  "agent-crash",
  "consul-cut",
  "host-isolated",
  "slow-consul",
  "clock-step",
  "garbage-candidacy",
  "garbage-pause",
  "consul-outage",
];

interface Ack {
  readonly id: number;
  readonly node: string;
  readonly at: number;
}

/** Per-node history the data-loss judgement needs (true times). */
interface Disturbance {
  /** Last time anything happened to this node that may excuse it from an election. */
  lastAt: number;
  /** Faults on it not healed yet. */
  active: number;
  /** Write ids that entered its Redis since it was last disturbed (kept if a sync wipes them). */
  received: Set<number>;
  /**
   * Its Redis restarted empty and has neither led under the lock nor synced since: writes a client
   * lands there belong to a history of its own, which no election can keep without dropping the
   * group's. They are the unavoidable tail of an empty restart, and do not count.
   */
  fresh: boolean;
}

export class World {
  readonly sched = new Scheduler();
  readonly rng: Random;
  readonly consul: SimConsul;
  readonly nodes: SimNode[] = [];
  readonly #trace: string[] = [];
  readonly #traceLines: number;
  readonly #acks: Ack[] = [];
  readonly #disturbed = new Map<string, Disturbance>();
  #violation: string | undefined;
  #writeSeq = 0;
  #clientTarget: HostPort | undefined;
  /** Which terms were checked for lost writes. */
  #holder: string | undefined;
  #formerHolder: string | undefined;
  readonly #checkedTerms = new Set<number>();
  #failovers = 0;
  #failsafeMasters = 0;
  #fastTakeovers = 0;
  #allowedLosses = 0;
  #converged = false;
  readonly #exemptAt = new Map<SimNode, number>();
  events = 0;

  constructor(readonly options: SimOptions) {
    this.rng = new Random(options.seed);
    this.#traceLines = options.traceLines ?? 60;
    this.consul = new SimConsul(
      this.sched,
      this.rng,
      LOCK_DELAY_MS,
      () => this.#consulChanged(),
      (line) => this.trace(line),
    );
    const config = {
      lock: { ttlMs: LOCK_TTL_MS, delayMs: LOCK_DELAY_MS },
      healthcheckIntervalMs: HEALTHCHECK_INTERVAL_MS,
      healthcheckTimeoutMs: HEALTHCHECK_TIMEOUT_MS,
      election: { maxLagBytes: MAX_LAG_BYTES },
    } as unknown as Config;
    const base = agentTimings(config);
    const timings = {
      ...base,
      ...(options.fenceAfterMs !== undefined ? { fenceAfterMs: options.fenceAfterMs } : {}),
      election: { ...base.election, ...options.election },
    };
    const env = {
      sched: this.sched,
      rng: this.rng,
      consul: this.consul,
      timings,
      lockTtlMs: LOCK_TTL_MS,
      // As lib/agent/consul_ports.ts: in failsafe mode the monitor outlasts any outage.
      monitorRetries: options.failsafe ? FAILSAFE_MONITOR_RETRIES : MONITOR_RETRIES,
      monitorRetryIntervalMs: MONITOR_RETRY_INTERVAL_MS,
      requestTimeoutMs: Math.max(500, Math.min(10_000, Math.floor(LOCK_TTL_MS / 3))),
      pollMs: redisPollIntervalMs(config),
      legacyBoard: options.legacyBoard ?? false,
      failsafe: options.failsafe ?? false,
      fastTakeover: options.fastTakeover ?? true,
      unguardedHolders: options.unguardedHolders ?? false,
      blindFailsafeGrants: options.blindFailsafeGrants ?? false,
      onFailsafeMaster: () => this.#failsafeMasters++,
      onFastTakeover: () => this.#fastTakeovers++,
      trace: (line: string) => this.trace(line),
      nodeAt: (address: HostPort) => this.nodes.find((node) => node.is(address)),
      connectedReplicas: (redis: SimRedis) =>
        this.nodes.filter((node) =>
          node.redis.up && node.redis.role === "replica" && node.redis.linkUp &&
          node.redis.master !== undefined && formatHostPort(node.redis.master) === redis.name
        ).length,
    };
    const count = options.nodes ?? 3;
    for (let i = 0; i < count; i++) {
      const address = { host: `10.0.0.${i + 1}`, port: 6379 };
      const redis = new SimRedis(address, this.rng, 0);
      this.nodes.push(new SimNode(`n${i}`, address, redis, env, i));
      this.consul.setCheck(serfCheck(`n${i}`), true);
      const disturbance: Disturbance = {
        lastAt: 0,
        active: 0,
        received: new Set(),
        fresh: false,
      };
      this.#disturbed.set(`n${i}`, disturbance);
      const node = this.nodes[i]!;
      redis.onReceive = (ids) => {
        if (disturbance.fresh && redis.role === "master") return;
        // Taken by a restarted Redis before its agent saw the process (invariant 1's unsupervised
        // window) while another node holds the lock: no agent could have stopped it (seed 1369).
        if (redis.role === "master" && !node.supervises() && !this.#holds(node)) return;
        disturbance.fresh = false;
        for (const id of ids) disturbance.received.add(id);
      };
    }
  }

  trace(line: string): void {
    this.#trace.push(`${(this.sched.now / 1000).toFixed(3).padStart(9)}s ${line}`);
    if (this.#trace.length > this.#traceLines * 4) {
      this.#trace.splice(0, this.#trace.length - this.#traceLines);
    }
  }

  /** Runs the seed to its end; stops at the first broken invariant. */
  async run(): Promise<SimResult> {
    const { sched, rng } = this;
    for (const node of this.nodes) {
      sched.after(rng.int(0, 500), `start ${node.name}`, () => node.startAgent());
      this.#replicate(node);
    }
    sched.after(CLIENT_REFRESH_MS, "client refresh", () => this.#clientRefresh());
    sched.after(WRITE_EVERY_MS, "client write", () => this.#clientWrite());
    const faultsEnd = this.#scheduleFaults();
    const endAt = faultsEnd + HEAL_BOUND_MS;
    sched.at(endAt, "final check", () => {
      const problem = this.#convergence();
      if (problem) {
        this.#fail(`${HEAL_BOUND_MS}ms after the last fault healed: ${problem}`);
      }
    });
    // Once every fault healed, the run ends as soon as the cluster converged.
    const poll = () => {
      if (this.#convergence() === undefined) this.#converged = true;
      else sched.after(1_000, "convergence", poll);
    };
    sched.at(faultsEnd, "convergence", poll);

    for (;;) {
      const event = sched.pop();
      if (!event || event.at > endAt) break;
      this.events++;
      event.action();
      await flushMicrotasks();
      this.#checkInvariants();
      if (this.#violation) break;
      if (event.label === "final check" || this.#converged) break;
    }
    for (const node of this.nodes) node.killAgent();
    return {
      seed: this.options.seed,
      violation: this.#violation,
      trace: this.#trace.slice(-this.#traceLines),
      events: this.events,
      simulatedMs: sched.now,
      acknowledged: this.#acks.length,
      failovers: this.#failovers,
      failsafeMasters: this.#failsafeMasters,
      fastTakeovers: this.#fastTakeovers,
      allowedLosses: this.#allowedLosses,
    };
  }

  #fail(message: string): void {
    if (this.#violation) return;
    this.#violation = message;
    this.trace(`VIOLATION: ${message}`);
  }

  #disturb(node: SimNode): void {
    const disturbance = this.#disturbed.get(node.name)!;
    disturbance.lastAt = this.sched.now;
    disturbance.received.clear();
  }

  #consulChanged(): void {
    const holder = this.consul.kv.get(LOCK_KEY)?.session;
    if (holder !== undefined && this.#holder === undefined) {
      if (this.#formerHolder !== undefined) this.#failovers++;
      this.#formerHolder = holder;
    }
    this.#holder = holder;
    for (const node of this.nodes) node.inc?.deliver();
  }

  /** Replicas pull from their master every few hundred milliseconds. */
  #replicate(node: SimNode): void {
    this.sched.after(this.rng.int(200, 600), "replication", () => {
      const redis = node.redis;
      if (redis.up && redis.role === "replica" && redis.master) {
        const from = this.nodes.find((other) => other.is(redis.master!));
        if (from && from !== node && !from.isolated && !node.isolated) {
          redis.pullFrom(from.redis, this.sched.now);
          // An up link acknowledges (REPLCONF ACK): the master's INFO lists it with its lag.
          if (redis.linkUp && redis.role === "replica") {
            from.redis.acknowledgedAt.set(formatHostPort(node.address), this.sched.now);
          }
        } else redis.linkBroken(this.sched.now);
      }
      this.#replicate(node);
    });
  }

  /** The client reads the lock value (never cut off from Consul). */
  #clientRefresh(): void {
    const entry = this.consul.kv.get(LOCK_KEY);
    let address: HostPort | undefined;
    try {
      address = entry?.session ? parseLeaderAnnouncement(entry.value)?.address : undefined;
    } catch {
      address = undefined;
    }
    this.sched.after(this.rng.int(1, 8), "client view", () => {
      this.#clientTarget = address;
    });
    this.sched.after(CLIENT_REFRESH_MS, "client refresh", () => this.#clientRefresh());
  }

  #clientWrite(): void {
    const target = this.#clientTarget;
    const node = target ? this.nodes.find((candidate) => candidate.is(target)) : undefined;
    if (node) {
      const id = ++this.#writeSeq;
      node.redis.write(id, this.sched.now, (acknowledged) => {
        if (acknowledged) this.#acks.push({ id, node: node.name, at: this.sched.now });
      });
    }
    this.sched.after(WRITE_EVERY_MS, "client write", () => this.#clientWrite());
  }

  /** Faults one after another (sometimes overlapping); returns when the last one heals. */
  #scheduleFaults(): number {
    const { rng } = this;
    let at = 10_000;
    let lastHeal = at;
    const count = this.options.faults ?? rng.int(1, 3);
    for (let i = 0; i < count; i++) {
      const kind = rng.pick(this.options.faultKinds ?? FAULTS);
      const node = rng.pick(this.nodes);
      const durationMs = rng.int(500, this.options.maxFaultMs ?? 30_000);
      const start = at;
      const heal = start + durationMs;
      this.sched.at(start, `fault ${kind}`, () => this.#inject(kind, node, durationMs));
      lastHeal = Math.max(lastHeal, heal);
      // Mostly the next fault comes after this one healed and the cluster settled; sometimes not.
      at = rng.chance(0.2) ? start + rng.int(0, durationMs) : heal + rng.int(0, 40_000);
    }
    return lastHeal + 1_000;
  }

  #inject(kind: FaultKind, node: SimNode, durationMs: number): void {
    const { sched, rng } = this;
    const heal = (label: string, action: () => void, nodes = [node]) => {
      for (const each of nodes) this.#disturbed.get(each.name)!.active++;
      sched.after(durationMs, label, () => {
        this.trace(`heal: ${label} ${node.name}`);
        for (const each of nodes) {
          this.#disturb(each);
          this.#disturbed.get(each.name)!.active--;
        }
        action();
      });
    };
    if (kind === "consul-outage") return this.#outage(durationMs);
    this.trace(`fault: ${kind} ${node.name} for ${durationMs}ms`);
    this.#disturb(node);
    switch (kind) {
      case "node-crash": {
        if (!node.redis.up && !node.inc) return;
        node.killAgent();
        node.redis.crash();
        node.down = true;
        // Consul's gossip declares the node dead after a few seconds: its sessions end.
        sched.after(rng.int(1_000, 5_000), "serf failure detected", () => {
          // During an outage the servers apply the verdict once they have a leader again.
          this.consul.whenUp(() => {
            if (node.down) this.consul.setCheck(serfCheck(node.name), false);
          });
        });
        const empty = rng.chance(0.5);
        heal(empty ? "restart empty" : "restart", () => {
          node.down = false;
          this.consul.whenUp(() => this.consul.setCheck(serfCheck(node.name), true));
          node.redis.restart(sched.now, empty);
          if (empty) this.#disturbed.get(node.name)!.fresh = true;
          node.startAgent();
        });
        return;
      }
      case "redis-crash":
      case "redis-empty-restart": {
        if (!node.redis.up) return;
        node.redis.crash();
        node.inc?.onRedisCrash();
        heal(kind === "redis-crash" ? "redis restart" : "redis restart empty", () => {
          node.redis.restart(sched.now, kind === "redis-empty-restart");
          if (kind === "redis-empty-restart") this.#disturbed.get(node.name)!.fresh = true;
        });
        return;
      }
      case "agent-crash":
        if (!node.inc) return;
        node.killAgent();
        heal("agent restart", () => {
          if (!node.inc) node.startAgent();
        });
        return;
      case "consul-cut":
        if (node.linkCut) return;
        this.#consulLinks([node], () => node.linkCut = true);
        heal("consul link", () => this.#consulLinks([node], () => node.linkCut = false));
        return;
      case "host-isolated":
        if (node.linkCut) return;
        node.isolated = true;
        this.#consulLinks([node], () => node.linkCut = true);
        heal("isolation", () => {
          node.isolated = false;
          this.#consulLinks([node], () => node.linkCut = false);
        });
        return;
      case "slow-consul":
        node.slowUntil = sched.now + durationMs;
        heal("consul latency", () => {});
        return;
      case "clock-step": {
        const backwards = this.options.backwardClockSteps ?? false;
        const step = rng.int(backwards ? -30_000 : 1_000, 10_000);
        node.wallOffsetMs += step;
        this.trace(`wall clock of ${node.name} stepped by ${step}ms`);
        return;
      }
      case "garbage-candidacy": {
        const key = CANDIDATES_PREFIX + formatHostPort(node.address);
        this.consul.whenUp(() => this.consul.put(key, '{"address":7}'));
        return;
      }
      case "garbage-pause":
        this.consul.whenUp(() => this.consul.put(PAUSE_KEY, "\u0000not a pause note"));
        for (const each of this.nodes) this.#disturb(each);
        heal(
          "pause key deleted",
          () => this.consul.whenUp(() => this.consul.delete(PAUSE_KEY)),
          this.nodes,
        );
        return;
    }
  }

  /**
   * Consul out for every node at once (quorum lost, a leader election): no request gets through and
   * Consul's timers stand still; back, every session and TTL check has a full TTL again. No node is
   * disturbed: the agents' links and Redis are untouched, so invariant 2 holds every node to it.
   */
  #outage(durationMs: number): void {
    if (this.consul.down) return;
    this.trace(`fault: consul-outage for ${durationMs}ms`);
    this.#consulLinks(this.nodes, () => this.consul.outage());
    this.sched.after(durationMs, "consul back", () => {
      this.trace("heal: consul back (every session and TTL check gets a full TTL)");
      this.#consulLinks(this.nodes, () => this.consul.recover());
    });
  }

  /** Applies a change to Consul links; the agents of nodes whose reach changed notice it. */
  #consulLinks(nodes: readonly SimNode[], change: () => void): void {
    const before = nodes.map((node) => node.cut);
    change();
    nodes.forEach((node, i) => {
      if (node.cut === before[i]) return;
      node.cutEpoch++;
      if (node.cut) node.inc?.onCut();
      else node.inc?.onHeal();
    });
  }

  #checkInvariants(): void {
    const now = this.sched.now;
    // 1. Never two Redis taking writes at once (among those an agent supervises).
    // A Redis nobody supervises (its agent is down, has not seen this process yet, or is in
    // maintenance mode) is left out, and counts again once its agent had a moment to act on it.
    for (const node of this.nodes) {
      const exempt = !node.supervises() ||
        (!this.options.strictMaintenance && node.inc?.kv?.has(PAUSE_KEY) === true);
      if (exempt) this.#exemptAt.set(node, now);
      else {
        const since = node.inc!.supervised!.since;
        if (since > (this.#exemptAt.get(node) ?? -Infinity)) this.#exemptAt.set(node, since);
      }
    }
    const writable = this.nodes.filter((node) =>
      node.redis.writable(now) &&
      now >= (this.#exemptAt.get(node) ?? -Infinity) + SUPERVISION_GRACE_MS
    );
    if (writable.length > 1) {
      this.#fail(
        `two Redis take writes at once: ${writable.map((node) => node.name).join(", ")}`,
      );
      return;
    }
    for (const node of this.nodes) {
      const error = node.inc?.evaluationError;
      if (error !== undefined) return this.#fail(`${node.name}: an evaluation failed: ${error}`);
    }
    // 2. A new term's master holds every acknowledged write that a stable peer held.
    const entry = this.consul.kv.get(LOCK_KEY);
    if (!entry?.session) return;
    const holder = this.nodes.find((node) => entry.session!.endsWith(`-${node.name}`));
    if (!holder || !holder.redis.writable(now) || this.#checkedTerms.has(entry.lockIndex)) return;
    this.#checkedTerms.add(entry.lockIndex);
    this.#disturbed.get(holder.name)!.fresh = false;
    this.#checkLostWrites(holder, entry.lockIndex);
  }

  #checkLostWrites(master: SimNode, term: number): void {
    const held = new Set(master.redis.log);
    const lost = this.#acks.filter((ack) => !held.has(ack.id));
    if (lost.length === 0) return;
    for (const witness of this.nodes) {
      if (witness === master || !this.#undisturbed(witness)) continue;
      const received = this.#disturbed.get(witness.name)!.received;
      const missing = lost.filter((ack) => received.has(ack.id));
      if (missing.length > 0) {
        const ids = missing.slice(0, 5).map((ack) => ack.id).join(", ");
        const still = missing.every((ack) => witness.redis.log.includes(ack.id));
        this.#fail(
          `term ${term}: ${master.name} leads without ${missing.length} acknowledged write(s) ` +
            `(ids ${ids}) that ${witness.name} received while undisturbed (since ${
              (this.#disturbed.get(witness.name)!.lastAt / 1000).toFixed(3)
            }s)${still ? "" : "; a sync has wiped them from it since"}`,
        );
        return;
      }
    }
    this.#allowedLosses++;
    this.trace(
      `term ${term}: ${master.name} leads without ${lost.length} acknowledged write(s) that only ` +
        `disturbed nodes held (allowed)`,
    );
  }

  /** True when `node`'s session holds the lock. */
  #holds(node: SimNode): boolean {
    return this.consul.kv.get(LOCK_KEY)?.session?.endsWith(`-${node.name}`) === true;
  }

  /** Up, its agent running and reaching Consul, and no fault on it in force. */
  #undisturbed(node: SimNode): boolean {
    return node.redis.up && node.inc !== undefined && !node.cut &&
      this.#disturbed.get(node.name)!.active === 0;
  }

  /**
   * 3. After every fault healed: one writable master, held by the lock holder, the others its
   * replicas with their link up. Returns what is still wrong, or undefined.
   */
  #convergence(): string | undefined {
    const now = this.sched.now;
    const writable = this.nodes.filter((node) => node.redis.writable(now));
    const entry = this.consul.kv.get(LOCK_KEY);
    const holder = entry?.session
      ? this.nodes.find((node) => entry.session!.endsWith(`-${node.name}`))
      : undefined;
    const describe = this.nodes.map((node) =>
      `${node.name}=${node.redis.up ? node.redis.role : "down"}${
        node.redis.pausedUntil > now ? "(paused)" : ""
      }${node.redis.master ? `->${node.redis.master.host}` : ""}${
        node.redis.linkUp ? "" : "(link down)"
      }`
    ).join(" ");
    if (writable.length !== 1 || !holder || writable[0] !== holder) {
      return `no single writable master held by the lock holder (${
        holder?.name ?? "none"
      }): ${describe}`;
    }
    for (const node of this.nodes) {
      if (node === holder) continue;
      const redis = node.redis;
      if (
        !redis.up || redis.role !== "replica" || !redis.linkUp || !redis.master ||
        !holder.is(redis.master)
      ) {
        return `${node.name} does not replicate from the master ${holder.name}: ${describe}`;
      }
    }
    return undefined;
  }
}

const FLUSH = Number(Deno.env.get("FLUSH") ?? 24);
/** Lets every promise continuation that the last event made runnable run (no real timer). */
async function flushMicrotasks(): Promise<void> {
  for (let i = 0; i < FLUSH; i++) await undefined;
}

/** Runs one seed. */
export function runSeed(options: SimOptions): Promise<SimResult> {
  return new World(options).run();
}
