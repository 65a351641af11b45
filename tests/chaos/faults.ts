/**
 * The faults of the chaos suite, each a function that breaks a running cluster and, where a real
 * system would, repairs it again (a supervisor restarts what died, a partition heals). What each one
 * may cost, by the design, is stated beside it; docs/chaos.md explains the reasoning.
 */
import type { Expectation } from "./analysis.ts";
import type { MasterMonitor } from "./monitor.ts";
import {
  type Cluster,
  type ClusterNode,
  type ClusterOptions,
  FAST_AGENT_ENV,
} from "../support/cluster.ts";
import { AgentProcess } from "../support/agent.ts";
import { DEFAULT_FULL_SYNC_DELAY } from "../support/redis.ts";
import { delay } from "../support/wait.ts";

/** What a fault works on. */
export interface FaultContext {
  readonly cluster: Cluster;
  /** The master before the fault. */
  readonly master: ClusterNode;
  readonly monitor: MasterMonitor;
  /** The agents' session TTL. */
  readonly lockTtlMs: number;
  /**
   * Records that the node's Redis came back (thawed or restarted) and is not under its agent's
   * control until the agent sees it.
   */
  cameBack(node: ClusterNode): void;
  /** Keeps a log that would otherwise be lost (an agent about to be replaced). */
  keepLog(label: string, text: string): void;
  /** A progress line for the person running the suite. */
  note(message: string): void;
}

export interface Fault {
  /** Short name for `--faults` and the report. */
  readonly name: string;
  /** What is done, for test names and the report. */
  readonly title: string;
  /** Cluster options this fault needs (e.g. agents behind proxies). */
  readonly cluster?: ClusterOptions;
  readonly expect: Expectation;
  inject(context: FaultContext): Promise<void>;
}

/** A duration setting of the cluster's agents (FAST_AGENT_ENV unless `env` overrides it), in ms. */
export function agentDurationMs(name: string, env: Record<string, string> = {}): number {
  const text = env[name] ?? FAST_AGENT_ENV[name];
  const match = text === undefined ? null : /^(\d+)(ms|s)$/.exec(text);
  if (!match) throw new Error(`Cannot read ${name} "${text}": expected a duration such as "2s"`);
  return Number(match[1]) * (match[2] === "s" ? 1_000 : 1);
}

/** The session TTL the cluster's agents run with, in ms. */
export function lockTtlMs(env: Record<string, string> = {}): number {
  return agentDurationMs("CONSUL_LOCK_TTL", env);
}

/**
 * How long an agent may take to demote a Redis that came back as a master: one failed poll and one
 * reconnection (each at most HEALTHCHECK_INTERVAL + HEALTHCHECK_TIMEOUT), twice over for a busy host.
 */
export function comebackGraceMs(env: Record<string, string> = {}): number {
  return 2 *
    (agentDurationMs("HEALTHCHECK_INTERVAL", env) + agentDurationMs("HEALTHCHECK_TIMEOUT", env));
}

const ONE_FAILOVER = { min: 1, max: 1 };

/** kill -9 of the master's Redis; a supervisor restarts it (empty) once a new master is up. */
export const redisKill: Fault = {
  name: "redis-kill",
  title: "kill -9 of the master's Redis",
  expect: { roleChanges: ONE_FAILOVER, loss: { kind: "tail" } },
  async inject({ master, monitor, cameBack, note }) {
    await master.redis.kill();
    const next = await monitor.waitForMasterOtherThan(master);
    note(`new master ${next.redis.address}; restarting the killed Redis (empty)`);
    await master.redis.restart();
    cameBack(master);
  },
};

/** kill -9 of the master's agent (its Redis keeps running); restarted once a new master is up. */
export const agentKill: Fault = {
  name: "agent-kill",
  title: "kill -9 of the master's agent",
  expect: { roleChanges: ONE_FAILOVER, loss: { kind: "none" } },
  async inject({ cluster, master, monitor, keepLog, note }) {
    await master.agent.kill();
    const next = await monitor.waitForMasterOtherThan(master);
    note(`new master ${next.redis.address}; restarting the killed agent`);
    keepLog(`agent ${master.index} before kill -9`, master.agent.log());
    cluster.startAgent(master);
  },
};

/** SIGSTOP of the master's Redis until a new master is up and longer than the TTL, then SIGCONT. */
export const redisFreeze: Fault = {
  name: "redis-freeze",
  title: "SIGSTOP of the master's Redis for longer than the TTL",
  // Replies and the replication stream leave in the same event-loop pass, and a stopped process
  // keeps its sockets: at most the one write in flight can miss the replicas.
  expect: { roleChanges: ONE_FAILOVER, loss: { kind: "tail", max: 1 } },
  async inject({ master, monitor, lockTtlMs, cameBack, note }) {
    const frozenAt = Date.now();
    await master.redis.pause();
    try {
      const next = await monitor.waitForMasterOtherThan(master);
      await delay(Math.max(0, frozenAt + lockTtlMs + 1_000 - Date.now()));
      note(`new master ${next.redis.address}; thawing after ${Date.now() - frozenAt} ms`);
    } finally {
      master.redis.resume();
      cameBack(master);
    }
  },
};

/** The Consul agent restarts: a dev agent comes back empty (no sessions, keys or services). */
export const consulRestart: Fault = {
  name: "consul-restart",
  title: "restart of the Consul agent (it comes back empty)",
  // The lock is gone for everyone; the best candidate (often the old master) takes it again.
  expect: { roleChanges: { min: 0, max: 1 }, loss: { kind: "none" } },
  async inject({ cluster }) {
    await cluster.consul.restart();
  },
};

/**
 * SIGSTOP of Consul for one TTL: longer than the fence bound and than the agent check's TTL. When
 * Consul wakes, the master's agent check may lapse before its next heartbeat lands (its session ends
 * with it, as a multi-node cluster's serfHealth would end it), so at most one failover, never a loss.
 */
export const consulPause: Fault = {
  name: "consul-pause",
  title: "Consul frozen (SIGSTOP) for one session TTL",
  expect: { roleChanges: { min: 0, max: 1 }, loss: { kind: "none" } },
  async inject({ cluster, lockTtlMs }) {
    await cluster.consul.pause();
    try {
      await delay(lockTtlMs);
    } finally {
      cluster.consul.resume();
    }
  },
};

/** The master's agent cut off from Consul (clients still reach its Redis), healed after failover. */
export const consulPartition: Fault = {
  name: "consul-partition",
  title: "the master's agent cut off from Consul",
  cluster: { consulThroughProxy: true },
  expect: { roleChanges: ONE_FAILOVER, loss: { kind: "none" } },
  async inject({ master, monitor, note }) {
    const proxy = master.proxy;
    if (!proxy) throw new Error("consul-partition needs agents behind proxies");
    proxy.cut();
    try {
      const next = await monitor.waitForMasterOtherThan(master);
      note(`new master ${next.redis.address}; healing the partition in 1 s`);
      await delay(1_000);
    } finally {
      proxy.heal();
    }
  },
};

/** kill -9 of the master's Redis and an immediate restart, empty: faster than any poll. */
export const emptyRestart: Fault = {
  name: "empty-restart",
  title: "the master's Redis restarted empty at once",
  // The empty node must not keep the lead, and must not wipe the replicas: one failover.
  expect: { roleChanges: ONE_FAILOVER, loss: { kind: "tail" } },
  // Redis's default full-sync delay, as users run it (the bed's 0 would race the agents' 1 s).
  cluster: { redis: () => DEFAULT_FULL_SYNC_DELAY },
  async inject({ master, cameBack }) {
    await master.redis.kill();
    await master.redis.restart();
    cameBack(master);
  },
};

/** A planned `resec switchover` to the best replica, under the writer. */
export const switchover: Fault = {
  name: "switchover",
  title: "planned switchover (`resec switchover`)",
  // Redis FAILOVER pauses writes until the target caught up, then swaps roles: nothing is lost.
  expect: { roleChanges: ONE_FAILOVER, loss: { kind: "none" } },
  async inject({ master, monitor, note }) {
    const { code, output } = await AgentProcess.run({
      env: master.env,
      args: ["switchover", "--timeout", "10s"],
    });
    if (code !== 0) throw new Error(`resec switchover exited ${code}: ${output.trim()}`);
    const target = /switchover done from \S+ to (\S+)/.exec(output)?.[1];
    const next = await monitor.waitForMasterOtherThan(master);
    note(`switched over to ${next.redis.address}`);
    // The chosen target must be the one that leads, not whoever won a re-election after it.
    if (next.redis.address !== target) {
      throw new Error(
        `the switchover named ${target} but ${next.redis.address} became master: ${output.trim()}`,
      );
    }
  },
};

/** Every fault, in the order the suite runs them. */
export const FAULTS: readonly Fault[] = [
  redisKill,
  agentKill,
  redisFreeze,
  consulRestart,
  consulPause,
  consulPartition,
  emptyRestart,
  switchover,
];

/** The faults named in a comma-separated list; throws on an unknown name. */
export function selectFaults(names: string | undefined): Fault[] {
  if (!names) return [...FAULTS];
  return names.split(",").map((name) => name.trim()).filter((name) => name !== "").map((name) => {
    const fault = FAULTS.find((candidate) => candidate.name === name);
    if (!fault) {
      throw new Error(
        `Unknown fault "${name}": expected one of ${FAULTS.map((f) => f.name).join(", ")}`,
      );
    }
    return fault;
  });
}
