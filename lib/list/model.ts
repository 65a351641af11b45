/**
 * `resec list`: what Consul holds for one replication group (the lock key's records and the role and
 * agent services) turned into one row per member and a verdict with an exit code. Pure: no I/O, no
 * clock; `read.ts` gathers the records and `render.ts` prints the result.
 *
 * Every record is validated as the agents validate it (lib/record.ts): a bad one someone else wrote
 * becomes a row or a note that says why, never an exception.
 */
import { formatDuration, type Milliseconds } from "../duration.ts";
import { formatHostPort, parseHostPort } from "../address.ts";
import { type Candidacy, disqualification, sameHistory } from "../reconciler/election.ts";
import { candidatesPrefix, parseCandidacy } from "../cluster/candidacy.ts";
import { parseLeaderAnnouncement } from "../cluster/lock_value.ts";
import {
  isFinished,
  parsePauseNote,
  parseSwitchoverRecord,
  pauseKey,
  switchoverKey,
  type SwitchoverState,
} from "../cluster/controls.ts";
import { InvalidRecordError } from "../record.ts";
import type { KvEntry } from "../consul/kv.ts";
import type { CheckStatus, HealthEntry } from "../consul/health.ts";

/** Everything `resec list` reads from Consul for one group (one lock key). */
export interface GroupRecords {
  readonly lockKey: string;
  /** KV entries under the lock key; keys that are not the group's own are ignored. */
  readonly entries: readonly KvEntry[];
  /** Instances of the master role service (tag mode: those carrying the master tag). */
  readonly masters: readonly HealthEntry[];
  /** Instances of the slave role service. */
  readonly slaves: readonly HealthEntry[];
  /** Instances of the agents' own `<name>-agent` service. */
  readonly agents: readonly HealthEntry[];
  /** When the records were read (local clock, ms since the epoch). */
  readonly readAt: number;
}

/** The agents' settings the verdict follows. */
export interface ListSettings {
  /** MAX_LAG_ON_FAILOVER: a replica further behind may not be promoted. */
  readonly maxLagBytes: number;
  /** A candidacy older than this is ignored by the agents (its agent is gone). */
  readonly staleAfterMs: Milliseconds;
}

/** How the group is doing, worst first. */
export type Verdict = "conflicting-masters" | "no-master" | "degraded" | "healthy";

/**
 * The exit code of `resec list` for each verdict, and for a listing that failed (Consul unreachable
 * or refusing the token). 2 is taken by usage and configuration errors (lib/cli.ts).
 */
export const LIST_EXIT_CODES: Readonly<Record<Verdict | "failed", number>> = {
  healthy: 0,
  degraded: 1,
  "no-master": 3,
  "conflicting-masters": 4,
  failed: 5,
};

/** The lock key, as the listing shows it. */
export type LockView =
  | { readonly state: "free" }
  | {
    readonly state: "held";
    readonly session: string;
    /** The announced epoch, else the key's LockIndex (the same number once announced). */
    readonly epoch: number;
    /** The holder's Redis: announced, or (a holder that announced nothing) the one passing master. */
    readonly holder?: string;
    readonly holderFrom?: "announcement" | "catalog";
    /** The holder's session name. */
    readonly agent?: string;
    readonly since?: string;
    /** Why the value is not an announcement resec could have written. */
    readonly invalid?: string;
  };

/** Maintenance mode. */
export type PauseView =
  | { readonly paused: false }
  | {
    readonly paused: true;
    readonly reason?: string;
    readonly since?: string;
    /** The key pauses whatever it holds; this says why the note could not be read. */
    readonly invalid?: string;
  };

/** The switchover record, when there is one. */
export type SwitchoverView =
  | {
    readonly valid: true;
    readonly id: string;
    readonly state: SwitchoverState;
    /** Requested or in progress: the master is about to change. */
    readonly active: boolean;
    readonly from?: string;
    readonly to?: string;
    readonly requestedAt: string;
    readonly detail?: string;
  }
  | { readonly valid: false; readonly invalid: string };

/** What a member's agent last published about its Redis (its candidacy). */
export interface RedisReport {
  readonly role: "master" | "replica";
  /** False while Redis is down or loading (the role is then the last one seen). */
  readonly healthy: boolean;
  readonly offset: number;
  readonly priority: number;
  readonly datasetEmpty: boolean;
  readonly synced: boolean;
  readonly forced: boolean;
  readonly updatedAt: string;
  /** How old the candidacy was at the read, by this host's clock against the publisher's. */
  readonly ageMs: number;
  /** No session holds it and it is older than the agents' staleness bound: they ignore it. */
  readonly stale: boolean;
}

/** One row: a Redis server of the group. */
export interface MemberRow {
  /** The announce address, `host:port`, as the candidacy's key or the service names it. */
  readonly address: string;
  /** The Consul node of its services. */
  readonly node?: string;
  /** Holds the lock (its Redis is the one the agents follow). */
  readonly lockHolder: boolean;
  /** The candidacy, when a valid one is published. */
  readonly redis?: RedisReport;
  /** Why the published candidacy is not one resec could have written. */
  readonly invalidCandidacy?: string;
  /** The role service it is registered under, if any. */
  readonly consulRole?: "master" | "slave";
  /** The worst status of its role service's checks (node checks included). */
  readonly check?: CheckStatus;
  /**
   * The role check's output, the agent's summary (`role=slave master=… link=up`), as the
   * catalog has it: a change of output alone reaches it only every `check_update_interval` (5 min).
   */
  readonly checkOutput?: string;
  /** Its agent's own service: alive (passing), down (not passing), absent (not registered). */
  readonly agent: "alive" | "down" | "absent";
  /** Bytes behind the lock holder (or the best offset of its history); unknown without positions. */
  readonly lagBytes?: number;
  /** Whether the election rules would let it take a free lock now. */
  readonly eligible: boolean;
  readonly ineligibleReason?: string;
  /** What makes this member a reason for a degraded verdict. */
  readonly problems: readonly string[];
}

/** The whole listing of one group. */
export interface GroupListing {
  readonly lockKey: string;
  /** ISO time of the read. */
  readonly readAt: string;
  readonly lock: LockView;
  readonly pause: PauseView;
  readonly switchover?: SwitchoverView;
  /** Sorted by host, then port. */
  readonly members: readonly MemberRow[];
  /** The passing master services' addresses. */
  readonly passingMasters: readonly string[];
  readonly verdict: Verdict;
  readonly exitCode: number;
  /** Every reason the verdict is not healthy, one sentence each. */
  readonly problems: readonly string[];
}

/** Builds the listing of one group from what Consul holds. */
export function listGroup(records: GroupRecords, settings: ListSettings): GroupListing {
  const { lockKey, readAt } = records;
  const prefix = candidatesPrefix(lockKey);
  const candidacies = new Map<
    string,
    { candidacy?: Candidacy; invalid?: string; held?: boolean }
  >();
  let lockEntry: KvEntry | undefined;
  let pauseEntry: KvEntry | undefined;
  let switchoverEntry: KvEntry | undefined;
  for (const entry of records.entries) {
    if (entry.key === lockKey) lockEntry = entry;
    else if (entry.key === pauseKey(lockKey)) pauseEntry = entry;
    else if (entry.key === switchoverKey(lockKey)) switchoverEntry = entry;
    else if (entry.key.startsWith(prefix)) {
      const address = entry.key.slice(prefix.length);
      candidacies.set(address, {
        ...readCandidacy(entry.value, address),
        held: entry.session !== undefined,
      });
    }
  }

  const masters = byAddress(records.masters);
  const slaves = byAddress(records.slaves);
  const agents = byAddress(records.agents);
  const passingMasters = [...masters].filter(([, entry]) => entry.status === "passing").map((
    [address],
  ) => address).sort(compareAddresses);
  const lock = lockView(lockEntry, passingMasters);
  const holder = lock.state === "held" ? lock.holder : undefined;

  const reports = new Map<string, RedisReport>();
  for (const [address, read] of candidacies) {
    if (!read.candidacy) continue;
    const c = read.candidacy;
    const ageMs = Math.max(0, readAt - Date.parse(c.updatedAt));
    reports.set(address, {
      role: c.role,
      healthy: c.healthy,
      offset: c.offset,
      priority: c.priority,
      datasetEmpty: c.datasetEmpty,
      synced: c.synced,
      forced: c.forced,
      updatedAt: c.updatedAt,
      ageMs,
      // Agents write their candidacy only when it changes, held by a session that ends with them: an
      // old entry is stale only when no session holds it (an earlier version republished instead).
      stale: !read.held && ageMs > settings.staleAfterMs,
    });
  }
  // The agents weigh only fresh candidacies against each other.
  const fresh = [...candidacies].flatMap(([address, read]) =>
    read.candidacy && !reports.get(address)?.stale ? [read.candidacy] : []
  );
  const reference = holder !== undefined ? candidacies.get(holder)?.candidacy : undefined;

  const addresses = new Set([...candidacies.keys(), ...masters.keys(), ...slaves.keys()]);
  for (const address of agents.keys()) addresses.add(address);
  const members = [...addresses].sort(compareAddresses).map((address): MemberRow => {
    const read = candidacies.get(address);
    const candidacy = read?.candidacy;
    const report = reports.get(address);
    const service = masters.get(address) ?? slaves.get(address);
    const consulRole = masters.has(address) ? "master" : slaves.has(address) ? "slave" : undefined;
    const agentEntry = agents.get(address);
    const agent = agentEntry === undefined
      ? "absent"
      : agentEntry.status === "passing"
      ? "alive"
      : "down";
    const ineligibleReason = candidacy === undefined
      ? read?.invalid !== undefined
        ? `its candidacy is invalid: ${read.invalid}`
        : "it publishes no candidacy (no resec agent of this version runs beside it)"
      : report?.stale
      ? `its candidacy is stale (published ${formatAge(report.ageMs)} ago)`
      : disqualification(candidacy, fresh, settings);
    const lagBytes = candidacy ? lagOf(candidacy, reference, fresh) : undefined;
    const lockHolder = address === holder;
    const problems: string[] = [];
    if (service === undefined) {
      problems.push("it is not registered as master or slave in Consul");
    } else if (service.status !== "passing") {
      problems.push(`its ${consulRole} check is ${service.status}`);
    }
    if (agent === "down") problems.push("its agent's check is not passing");
    // Priority 0 is the operator's choice, not a fault; the lock holder is not up for election.
    if (!lockHolder && ineligibleReason !== undefined && candidacy?.priority !== 0) {
      problems.push(`it may not be promoted: ${ineligibleReason}`);
    }
    const checkOutput = service?.checks.find((check) =>
      check.serviceId === service.serviceId && check.output !== undefined
    )?.output;
    return {
      address,
      ...(service?.node !== undefined ? { node: service.node } : {}),
      lockHolder,
      ...(report ? { redis: report } : {}),
      ...(read?.invalid !== undefined ? { invalidCandidacy: read.invalid } : {}),
      ...(consulRole ? { consulRole } : {}),
      ...(service ? { check: service.status } : {}),
      ...(checkOutput !== undefined ? { checkOutput } : {}),
      agent,
      ...(lagBytes !== undefined ? { lagBytes } : {}),
      eligible: ineligibleReason === undefined,
      ...(ineligibleReason !== undefined ? { ineligibleReason } : {}),
      problems,
    };
  });

  const pause = pauseView(pauseEntry);
  const switchover = switchoverEntry ? switchoverView(switchoverEntry.value) : undefined;
  const problems: string[] = [];
  let verdict: Verdict;
  if (passingMasters.length > 1) {
    verdict = "conflicting-masters";
    problems.push(`${passingMasters.length} passing masters: ${passingMasters.join(", ")}`);
  } else if (passingMasters.length === 0) {
    verdict = "no-master";
    problems.push(
      lock.state === "free"
        ? "no passing master, and the lock is free"
        : `no passing master${holder ? `; the lock holder is ${holder}` : ""}`,
    );
  } else if (
    lock.state === "held" && lock.holderFrom === "announcement" && holder !== passingMasters[0]
  ) {
    verdict = "conflicting-masters";
    problems.push(`the passing master ${passingMasters[0]} does not hold the lock; ${holder} does`);
  } else {
    verdict = "degraded";
  }
  if (lock.state === "free" && verdict === "degraded") {
    problems.push("the lock is free: the master is about to change");
  }
  if (lock.state === "held" && lock.invalid !== undefined) {
    problems.push(`the lock value is invalid: ${lock.invalid}`);
  }
  if (pause.paused) problems.push("maintenance mode is on: no agent fails over");
  if (switchover?.valid === false) {
    problems.push(`the switchover record is invalid: ${switchover.invalid}`);
  } else if (switchover?.active) {
    problems.push(`a switchover is ${switchover.state}`);
  }
  for (const member of members) {
    for (const problem of member.problems) problems.push(`${member.address}: ${problem}`);
  }
  if (verdict === "degraded" && problems.length === 0) verdict = "healthy";
  return {
    lockKey,
    readAt: new Date(readAt).toISOString(),
    lock,
    pause,
    ...(switchover ? { switchover } : {}),
    members,
    passingMasters,
    verdict,
    exitCode: LIST_EXIT_CODES[verdict],
    problems,
  };
}

/** An age to the second, as Go prints a duration: `3s`, `2m5s`. */
export function formatAge(ms: Milliseconds): string {
  return formatDuration(Math.round(ms / 1_000) * 1_000);
}

/** Orders addresses by host, then by port as a number; anything unparsable after, as text. */
function compareAddresses(a: string, b: string): number {
  const parse = (text: string) => {
    try {
      return parseHostPort(text);
    } catch {
      return undefined;
    }
  };
  const [x, y] = [parse(a), parse(b)];
  if (x && y) return x.host < y.host ? -1 : x.host > y.host ? 1 : x.port - y.port;
  if (x || y) return x ? -1 : 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

function readCandidacy(
  value: string,
  address: string,
): { candidacy?: Candidacy; invalid?: string } {
  try {
    return { candidacy: parseCandidacy(value, address) };
  } catch (error) {
    if (error instanceof InvalidRecordError) return { invalid: error.reason };
    throw error;
  }
}

/**
 * The member address a service instance stands for: the `host:port` its ID ends with (`redis@host:port`,
 * the announce address), else its address and port (IDs such as `redis@:6379` name no host).
 */
export function memberAddressOf(entry: HealthEntry): string {
  const at = entry.serviceId.lastIndexOf("@");
  if (at >= 0) {
    try {
      return formatHostPort(parseHostPort(entry.serviceId.slice(at + 1)));
    } catch {
      // Not an address: fall back to where Consul says the service is.
    }
  }
  return formatHostPort({ host: entry.address, port: entry.port });
}

/** Instances by member address; a passing one wins over another at the same address. */
function byAddress(entries: readonly HealthEntry[]): Map<string, HealthEntry> {
  const map = new Map<string, HealthEntry>();
  for (const entry of entries) {
    const address = memberAddressOf(entry);
    const known = map.get(address);
    if (!known || (known.status !== "passing" && entry.status === "passing")) {
      map.set(address, entry);
    }
  }
  return map;
}

function lockView(entry: KvEntry | undefined, passingMasters: readonly string[]): LockView {
  if (!entry?.session) return { state: "free" };
  const base = { state: "held" as const, session: entry.session, epoch: entry.lockIndex };
  // A holder that announced nothing (a Go resec) leads the one passing master, as agents read it.
  const fromCatalog = passingMasters.length === 1
    ? { holder: passingMasters[0]!, holderFrom: "catalog" as const }
    : {};
  try {
    const announcement = parseLeaderAnnouncement(entry.value);
    if (!announcement) return { ...base, ...fromCatalog };
    return {
      ...base,
      epoch: announcement.epoch ?? entry.lockIndex,
      holder: formatHostPort(announcement.address),
      holderFrom: "announcement",
      agent: announcement.agent,
      since: announcement.since,
    };
  } catch (error) {
    if (!(error instanceof InvalidRecordError)) throw error;
    return { ...base, ...fromCatalog, invalid: error.reason };
  }
}

function pauseView(entry: KvEntry | undefined): PauseView {
  if (!entry) return { paused: false };
  try {
    const note = parsePauseNote(entry.value);
    return { paused: true, reason: note.reason, since: note.since };
  } catch (error) {
    if (!(error instanceof InvalidRecordError)) throw error;
    return { paused: true, invalid: error.reason };
  }
}

function switchoverView(value: string): SwitchoverView {
  try {
    const record = parseSwitchoverRecord(value);
    return {
      valid: true,
      id: record.id,
      state: record.state,
      active: !isFinished(record),
      ...(record.from ? { from: formatHostPort(record.from) } : {}),
      ...(record.to ? { to: formatHostPort(record.to) } : {}),
      requestedAt: record.requestedAt,
      ...(record.detail !== undefined ? { detail: record.detail } : {}),
    };
  } catch (error) {
    if (!(error instanceof InvalidRecordError)) throw error;
    return { valid: false, invalid: error.reason };
  }
}

/**
 * Bytes behind the lock holder's published offset, or, without a holder's candidacy, behind the best
 * offset of its replication history; undefined when the offsets do not compare.
 */
function lagOf(
  candidacy: Candidacy,
  reference: Candidacy | undefined,
  fresh: readonly Candidacy[],
): number | undefined {
  if (reference) {
    if (reference.address === candidacy.address) return 0;
    return sameHistory(reference, candidacy)
      ? Math.max(0, reference.offset - candidacy.offset)
      : undefined;
  }
  const related = fresh.filter((other) => sameHistory(other, candidacy));
  return Math.max(candidacy.offset, ...related.map((other) => other.offset)) - candidacy.offset;
}
