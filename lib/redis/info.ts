/**
 * INFO text → a typed snapshot of the fields resec decides on. Pure and total: unknown, missing or
 * malformed fields become `undefined` (or a safe default), never an exception.
 */

/** The role Redis plays. INFO says `slave` in every version; we say `replica`. */
export type Role = "master" | "replica";

/** A byte position in the replication stream (`master_repl_offset`, `slave_repl_offset`). */
export type ReplicationOffset = number;

/**
 * Seconds since the replica's link to its master went down, or `"never"` when it never came up
 * (Redis ≥ 6.2 prints `-1`; older versions print the seconds since the Unix epoch).
 */
export type LinkDownSince = number | "never";

/**
 * `master_failover_state` (Redis ≥ 6.2). Other values are kept as they are, should a later version add
 * some.
 */
export type FailoverState =
  | "no-failover"
  | "waiting-for-sync"
  | "failover-in-progress"
  | (string & Record<never, never>);

/** One `slaveN:` line of a master: a replica connected to it. */
export interface ConnectedReplica {
  readonly ip: string;
  readonly port: number | undefined;
  /** `online`, `wait_bgsave`, `send_bulk` … */
  readonly state: string;
  readonly offset: ReplicationOffset | undefined;
  readonly lagSeconds: number | undefined;
}

/** One `dbN:` line of the keyspace section. */
export interface KeyspaceDb {
  readonly db: number;
  readonly keys: number;
  readonly expires: number | undefined;
}

/** What INFO tells resec. Fields that only replicas report are `undefined` on a master. */
export interface RedisInfo {
  // Server
  readonly redisVersion: string | undefined;
  readonly runId: string | undefined;
  readonly uptimeSeconds: number | undefined;
  readonly tcpPort: number | undefined;

  // Persistence
  /** Loading a dataset (RDB/AOF at startup, or a full sync's RDB on a replica): not serving data. */
  readonly loading: boolean;
  /** A replica loading a full sync while still serving its old data (`repl-diskless-load swapdb`). */
  readonly asyncLoading: boolean;

  // Replication
  /** `undefined` when INFO has no recognisable role (not a Redis we understand). */
  readonly role: Role | undefined;
  readonly masterHost: string | undefined;
  readonly masterPort: number | undefined;
  /** `master_link_status:up`; false on a master. */
  readonly masterLinkUp: boolean;
  /** Only present while the link is down. */
  readonly masterLinkDownSinceSeconds: LinkDownSince | undefined;
  readonly masterLastIoSecondsAgo: number | undefined;
  readonly masterSyncInProgress: boolean;
  readonly slaveReplOffset: ReplicationOffset | undefined;
  /** `slave_priority`, reported by replicas only (masters: read `CONFIG GET replica-priority`). */
  readonly replicaPriority: number | undefined;
  readonly replicaReadOnly: boolean | undefined;
  readonly connectedReplicas: number;
  readonly replicas: readonly ConnectedReplica[];
  readonly masterFailoverState: FailoverState | undefined;
  readonly masterReplId: string | undefined;
  /** The previous replication ID, kept after a promotion so former peers can partially resync. */
  readonly masterReplId2: string | undefined;
  readonly masterReplOffset: ReplicationOffset | undefined;
  /** Offset up to which `masterReplId2` is valid. */
  readonly secondReplOffset: ReplicationOffset | undefined;

  // Keyspace
  readonly keyspace: readonly KeyspaceDb[];
  /** Keys in all databases. */
  readonly totalKeys: number;

  /** Every `name:value` line, verbatim, for fields not modelled above. */
  readonly fields: ReadonlyMap<string, string>;
}

const NO_REPLID = "0000000000000000000000000000000000000000";

/**
 * Parses the text of `INFO` (any sections; `\r\n` or `\n` line ends).
 *
 * @example
 * ```ts
 * const info = parseInfo("# Replication\r\nrole:slave\r\nmaster_link_status:up\r\n");
 * info.role; // "replica"
 * info.masterLinkUp; // true
 * ```
 */
export function parseInfo(text: string): RedisInfo {
  const fields = parseInfoFields(text);
  const get = (name: string) => fields.get(name);
  const int = (name: string) => parseInteger(fields.get(name));
  const count = (name: string) => parseCount(fields.get(name));
  const port = (name: string) => parsePort(fields.get(name));
  const flag = (name: string) => fields.get(name) === "1";

  const uptimeSeconds = count("uptime_in_seconds");
  const replicas: ConnectedReplica[] = [];
  const keyspace: KeyspaceDb[] = [];
  for (const [name, value] of fields) {
    if (/^slave\d+$/.test(name)) {
      const replica = parseReplicaLine(value);
      if (replica) replicas.push(replica);
    } else if (/^db\d+$/.test(name)) {
      const db = parseKeyspaceLine(parseCount(name.slice(2)), value);
      if (db) keyspace.push(db);
    }
  }
  const replId2 = get("master_replid2");
  const secondOffset = int("second_repl_offset");
  const readOnly = get("slave_read_only");

  return {
    redisVersion: get("redis_version"),
    runId: get("run_id"),
    uptimeSeconds,
    tcpPort: port("tcp_port"),

    loading: flag("loading"),
    asyncLoading: flag("async_loading"),

    role: parseRole(get("role")),
    masterHost: get("master_host"),
    masterPort: port("master_port"),
    masterLinkUp: get("master_link_status") === "up",
    masterLinkDownSinceSeconds: parseLinkDownSince(
      int("master_link_down_since_seconds"),
      uptimeSeconds,
    ),
    masterLastIoSecondsAgo: int("master_last_io_seconds_ago"),
    masterSyncInProgress: flag("master_sync_in_progress"),
    slaveReplOffset: count("slave_repl_offset"),
    replicaPriority: count("slave_priority") ?? count("replica_priority"),
    replicaReadOnly: readOnly === undefined ? undefined : readOnly === "1",
    connectedReplicas: count("connected_slaves") ?? replicas.length,
    replicas,
    masterFailoverState: get("master_failover_state"),
    masterReplId: get("master_replid"),
    masterReplId2: replId2 === undefined || replId2 === NO_REPLID ? undefined : replId2,
    masterReplOffset: count("master_repl_offset"),
    secondReplOffset: secondOffset === undefined || secondOffset < 0 ? undefined : secondOffset,

    keyspace,
    // Capped so that a sum of huge counts stays a safe integer.
    totalKeys: Math.min(keyspace.reduce((sum, db) => sum + db.keys, 0), Number.MAX_SAFE_INTEGER),
    fields,
  };
}

/**
 * Splits INFO text into `name → value`, on the first `:` of each line only (values such as IPv6
 * addresses and `executable:/path` hold colons). Headers (`# Server`), blank lines and lines without a
 * name are skipped.
 *
 * @example
 * ```ts
 * parseInfoFields("# Replication\r\nrole:slave\r\nmaster_host:::1\r\n");
 * // Map { "role" => "slave", "master_host" => "::1" }
 * ```
 */
export function parseInfoFields(text: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const rawLine of text.split("\n")) {
    const line = rawLine.endsWith("\r") ? rawLine.slice(0, -1) : rawLine;
    if (line === "" || line.startsWith("#")) continue;
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    fields.set(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
  }
  return fields;
}

/**
 * The oldest Redis resec manages: its fence is `CLIENT PAUSE … WRITE` and `CLIENT UNPAUSE`, its
 * switchover `FAILOVER`, all new in 6.2. On 6.0 the fence fails, and a replica that must detach or be
 * promoted with writes refused never gets there.
 */
export const MIN_REDIS_VERSION = { major: 6, minor: 2 } as const;

/**
 * Whether resec can manage a Redis reporting `redis_version` (INFO's Server section). A version it
 * cannot read (none at all, or no `major.minor` at its start) is refused too: resec cannot tell
 * whether such a server has `CLIENT PAUSE … WRITE` and `FAILOVER`.
 *
 * @example
 * ```ts
 * isSupportedRedisVersion("7.0.15"); // true
 * isSupportedRedisVersion("6.0.16"); // false
 * isSupportedRedisVersion(undefined); // false
 * ```
 */
export function isSupportedRedisVersion(version: string | undefined): boolean {
  const match = readableRedisVersion(version);
  if (!match) return false;
  return match.major > MIN_REDIS_VERSION.major ||
    (match.major === MIN_REDIS_VERSION.major && match.minor >= MIN_REDIS_VERSION.minor);
}

/**
 * The major and minor of a `redis_version`, or undefined when it does not start with them.
 *
 * @example
 * ```ts
 * readableRedisVersion("7.0.15"); // { major: 7, minor: 0 }
 * readableRedisVersion("unstable"); // undefined
 * ```
 */
export function readableRedisVersion(
  version: string | undefined,
): { major: number; minor: number } | undefined {
  const match = /^(\d+)\.(\d+)/.exec(version ?? "");
  return match ? { major: Number(match[1]), minor: Number(match[2]) } : undefined;
}

/**
 * True when INFO's keyspace section lists no keys at all.
 *
 * @example
 * ```ts
 * isDatasetEmpty(parseInfo("# Keyspace\r\n")); // true
 * ```
 */
export function isDatasetEmpty(info: RedisInfo): boolean {
  return info.totalKeys === 0;
}

function parseRole(value: string | undefined): Role | undefined {
  switch (value) {
    case "master":
      return "master";
    case "slave":
    case "replica":
      return "replica";
    default:
      return undefined;
  }
}

function parseLinkDownSince(
  seconds: number | undefined,
  uptimeSeconds: number | undefined,
): LinkDownSince | undefined {
  if (seconds === undefined) return undefined;
  if (seconds < 0) return "never";
  // Before 6.2 a link that never came up reported "now − 0", the Unix time: longer than the process
  // has existed, which no real outage can be.
  if (uptimeSeconds !== undefined && seconds > uptimeSeconds) return "never";
  return seconds;
}

/** `ip=127.0.0.1,port=6380,state=online,offset=42,lag=0` (IPv6 ips hold colons, never commas). */
function parseReplicaLine(value: string): ConnectedReplica | undefined {
  const parts = parseKeyValueList(value);
  const ip = parts.get("ip");
  if (ip === undefined) return undefined;
  return {
    ip,
    port: parsePort(parts.get("port")),
    state: parts.get("state") ?? "unknown",
    offset: parseCount(parts.get("offset")),
    lagSeconds: parseCount(parts.get("lag")),
  };
}

/** `keys=12,expires=0,avg_ttl=0` */
function parseKeyspaceLine(db: number | undefined, value: string): KeyspaceDb | undefined {
  const parts = parseKeyValueList(value);
  const keys = parseCount(parts.get("keys"));
  if (keys === undefined || db === undefined) return undefined;
  return { db, keys, expires: parseCount(parts.get("expires")) };
}

function parseKeyValueList(value: string): Map<string, string> {
  const parts = new Map<string, string>();
  for (const item of value.split(",")) {
    const equals = item.indexOf("=");
    if (equals > 0) parts.set(item.slice(0, equals), item.slice(equals + 1));
  }
  return parts;
}

/**
 * A count, offset, priority or duration Redis prints as a non-negative number; anything else (a sign,
 * a value past 2^53) reads as unknown rather than as a number no Redis reports.
 */
function parseCount(value: string | undefined): number | undefined {
  if (value === undefined || !/^\d+$/.test(value)) return undefined;
  const number = Number(value);
  return Number.isSafeInteger(number) ? number : undefined;
}

function parsePort(value: string | undefined): number | undefined {
  const port = parseCount(value);
  return port !== undefined && port <= 65_535 ? port : undefined;
}

/** A number Redis may print negative: -1 for "never" (link down since, last I/O, second offset). */
function parseInteger(value: string | undefined): number | undefined {
  if (value === undefined || !/^-?\d+$/.test(value)) return undefined;
  const number = Number(value);
  return Number.isSafeInteger(number) ? number : undefined;
}
