/**
 * The faults of the multi-host chaos suite: real hosts (network namespaces with their own Consul
 * client agent) broken the way production breaks, and repaired the way an operator or a supervisor
 * would. resec runs with its defaults (15 s TTL, 1 s lock delay); what each fault may cost by the
 * design is stated beside it, and docs/chaos.md explains the reasoning.
 */
import type { Expectation } from "../chaos/analysis.ts";
import type { Bed } from "../support/bed/mod.ts";
import { delay, waitFor } from "../support/wait.ts";

/** What a fault works on. */
export interface BedFaultContext {
  readonly bed: Bed;
  /** The master's host before the fault. */
  readonly master: number;
  /** Waits until Consul names one passing master other than the old one; returns its host. */
  newMaster(timeoutMs?: number): Promise<number>;
  /** Records that the host's Redis came back (restarted or reconnected) outside its agent's hands. */
  cameBack(host: number): void;
  note(message: string): void;
}

export interface BedFault {
  readonly name: string;
  readonly title: string;
  readonly expect: Expectation;
  inject(context: BedFaultContext): Promise<void>;
}

/**
 * With default settings a host death or a pulled cable fails over in ~4 s (the replicas end the term)
 * and a cut from Consul only in ~16–22 s (gossip, then the session); allow for slow gossip.
 */
const FAILOVER_TIMEOUT_MS = 60_000;
/** How long a cut or pulled cable stays after the new master is up, so the old one sees it too. */
const HOLD_AFTER_FAILOVER_MS = 3_000;

const ONE_FAILOVER = { min: 1, max: 1 };

/** kill -9 of the master's Redis; a supervisor restarts it (empty) once a new master is up. */
export const redisKill: BedFault = {
  name: "redis-kill",
  title: "kill -9 of the master's Redis",
  expect: { roleChanges: ONE_FAILOVER, loss: { kind: "tail" } },
  async inject({ bed, master, newMaster, cameBack, note }) {
    const redis = bed.host(master).redis;
    redis.process?.signal("SIGKILL");
    await redis.reap();
    note(`new master on host ${await newMaster()}; restarting the killed Redis (empty)`);
    redis.wipe();
    redis.start();
    cameBack(master);
    await redis.waitUntilReady();
  },
};

/** Everything on the master's host killed at once, its Consul client included; then it boots again. */
export const hostDeath: BedFault = {
  name: "host-death",
  title: "the master's host dies (Redis, resec and its Consul agent killed at once)",
  expect: { roleChanges: ONE_FAILOVER, loss: { kind: "tail" } },
  async inject({ bed, master, newMaster, cameBack, note }) {
    await bed.killHost(master);
    note(`new master on host ${await newMaster(FAILOVER_TIMEOUT_MS)}; booting the dead host`);
    cameBack(master);
    await bed.rebootHost(master);
  },
};

/**
 * The master's cable pulled while everything on it runs on: clients and replicas lose it, and it loses
 * Consul. It must hold writes before a new master takes any; after the repair it rejoins as a replica.
 */
export const cablePull: BedFault = {
  name: "cable-pull",
  title: "the master's cable pulled, then plugged back in",
  expect: { roleChanges: ONE_FAILOVER, loss: { kind: "tail" } },
  async inject({ bed, master, newMaster, cameBack, note }) {
    await bed.linkDown(master);
    note(`new master on host ${await newMaster(FAILOVER_TIMEOUT_MS)}; plugging the cable back in`);
    await delay(HOLD_AFTER_FAILOVER_MS);
    // Noted before the link is up: the rejoin echo may show in the very next catalog poll.
    cameBack(master);
    await bed.linkUp(master);
  },
};

/**
 * The master's host loses Consul only (its agent's RPC and gossip ports dropped by nftables) while its
 * Redis stays reachable by replicas and clients: an asymmetric partition. The old master holds writes
 * before the lock can pass, and the replicas still replicate from it, so nothing acknowledged is lost.
 */
export const consulCut: BedFault = {
  name: "consul-cut",
  title: "the master's host cut from Consul only (nftables), then healed",
  expect: { roleChanges: ONE_FAILOVER, loss: { kind: "none" } },
  async inject({ bed, master, newMaster, cameBack, note }) {
    await bed.cutFromConsul(master);
    note(`new master on host ${await newMaster(FAILOVER_TIMEOUT_MS)}; healing the cut`);
    await delay(HOLD_AFTER_FAILOVER_MS);
    // Its node rejoins Consul's gossip before its agent syncs the critical check it set meanwhile.
    // Noted before the heal: that echo may show in the very next catalog poll.
    cameBack(master);
    await bed.healConsulCut(master);
  },
};

/** The Consul leader server killed; Raft elects another; the server comes back. No failover needed. */
export const consulLeaderKill: BedFault = {
  name: "consul-leader-kill",
  title: "the Consul leader server killed, then restarted",
  expect: { roleChanges: { min: 0, max: 1 }, loss: { kind: "none" } },
  async inject({ bed, note }) {
    const leader = await bed.consulLeader();
    if (leader === undefined) throw new Error("No Consul leader to kill");
    await bed.killServer(leader);
    await waitFor(async () => {
      const next = await bed.consulLeader().catch(() => undefined);
      return next !== undefined && next !== leader;
    }, { timeoutMs: 60_000, intervalMs: 200, message: "Consul to elect another leader" });
    note(`server ${leader} killed; Consul has a new leader; restarting it`);
    await delay(5_000);
    await bed.startServer(leader);
  },
};

/** Quorum lost: two of three servers killed for longer than the session TTL, then restored. */
export const quorumLoss: BedFault = {
  name: "quorum-loss",
  title: "Consul quorum lost (2 of 3 servers killed for 20 s), then restored",
  expect: { roleChanges: { min: 0, max: 1 }, loss: { kind: "none" } },
  async inject({ bed, note }) {
    const leader = (await bed.consulLeader()) ?? 0;
    const victims = [leader, (leader + 1) % 3];
    for (const server of victims) await bed.killServer(server);
    note(`servers ${victims.join(", ")} killed; no quorum for 20 s`);
    await delay(20_000);
    await Promise.all(victims.map((server) => bed.startServer(server)));
    note("quorum restored");
  },
};

/**
 * How long a rebooting host is away. A real reboot takes longer than the role check's TTL (6 s), so
 * its Consul agent brings the old registration back critical, not passing.
 */
const REBOOT_DOWNTIME_MS = 20_000;

/** The master's host reboots: down for 20 s, then Redis back empty, Consul agent and resec restarted. */
export const hostReboot: BedFault = {
  name: "host-reboot",
  title: "the master's host reboots (down 20 s, Redis back empty, agent restarted)",
  expect: { roleChanges: ONE_FAILOVER, loss: { kind: "tail" } },
  async inject({ bed, master, newMaster, cameBack, note }) {
    await bed.killHost(master);
    await delay(REBOOT_DOWNTIME_MS);
    note(`host ${master} boots again`);
    cameBack(master);
    await bed.rebootHost(master);
    await newMaster(FAILOVER_TIMEOUT_MS);
  },
};

export const BED_FAULTS: readonly BedFault[] = [
  redisKill,
  hostDeath,
  cablePull,
  consulCut,
  consulLeaderKill,
  quorumLoss,
  hostReboot,
];
