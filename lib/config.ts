/**
 * The agent's configuration: the Go resec's environment variables with the same defaults, plus the
 * Consul CLI's own variables and the knobs our extra behaviour needs. Parsed and validated once, before
 * anything touches Consul or Redis; every problem is reported at once.
 */
import {
  formatHostPort,
  type HostPort,
  isLoopbackHost,
  isUnspecifiedHost,
  parseHostPort,
} from "./address.ts";
import type { Milliseconds } from "./duration.ts";
import { type ConfigProblem, type Environment, EnvReader } from "./env.ts";
import {
  LOG_FORMATS,
  LOG_LEVEL_ALIASES,
  LOG_LEVELS,
  type LogFormat,
  type LogLevel,
} from "./log.ts";
import { type ConsulConnectionConfig, parseConsulEnv } from "./consul/connection.ts";
import {
  parseRedisEnv,
  REDIS_ENV_VARIABLES,
  type RedisConnectionConfig,
} from "./redis/connection.ts";
import { parseHttpAddr } from "./http/addr.ts";
import { MIN_KEY_BYTES } from "./failsafe/call.ts";
import { MAX_ADDRESS_CHARS, MAX_TEXT_CHARS } from "./record.ts";

/**
 * How services are named in Consul (the seeds' two modes). Both carry the role's tags, as the Go resec
 * registers them in either mode; only tag mode needs them to tell the roles apart.
 */
export type ServiceNaming =
  | {
    readonly mode: "prefix";
    readonly prefix: string;
    readonly masterTags: readonly string[];
    readonly slaveTags: readonly string[];
  }
  | {
    readonly mode: "tags";
    readonly name: string;
    readonly masterTags: readonly string[];
    readonly slaveTags: readonly string[];
  };

export interface LockSettings {
  readonly key: string;
  readonly sessionName: string;
  readonly ttlMs: Milliseconds;
  /** Consul's lock-delay after an invalidated (not released) session. */
  readonly delayMs: Milliseconds;
  readonly monitorRetries: number;
  readonly monitorRetryIntervalMs: Milliseconds;
  /** Node checks tied to the session; empty means the TTL alone decides. */
  readonly nodeChecks: readonly string[];
}

export interface Config {
  readonly consul: ConsulConnectionConfig;
  readonly redis: RedisConnectionConfig;
  /** The address other nodes and clients reach this Redis at. */
  readonly announce: HostPort;
  /** Whether the announce address came from ANNOUNCE_ADDR or was derived from REDIS_ADDR. */
  readonly announceFromEnv: boolean;
  readonly service: ServiceNaming;
  readonly lock: LockSettings;
  readonly deregisterServiceAfterMs: Milliseconds;
  readonly healthcheckIntervalMs: Milliseconds;
  readonly healthcheckTimeoutMs: Milliseconds;
  readonly logLevel: LogLevel;
  readonly logFormat: LogFormat;
  /** Data-safe elections: the lag gate, the priority override and the operator's escape hatch. */
  readonly election: {
    readonly maxLagBytes: number;
    readonly priorityOverride: number | undefined;
    readonly forceFailover: boolean;
  };
  /** Where the health and metrics endpoints listen; off when undefined. */
  readonly httpAddress: HostPort | undefined;
  /**
   * FAILSAFE_MODE: while Consul cannot confirm the lock, the master keeps taking writes as long as
   * every peer's agent confirms it follows it (docs/failsafe.md). `key` is FAILSAFE_KEY_FILE's secret.
   */
  readonly failsafe: { readonly key: string } | undefined;
  /**
   * FAST_TAKEOVER: replicas that lose the master's Redis end its term themselves, in seconds
   * (docs/failure-detection.md); off, only Consul's session and gossip end it.
   */
  readonly fastTakeover: boolean;
  /** ON_ROLE_CHANGE: a command run after every role change. */
  readonly roleChangeHook:
    | { readonly command: string; readonly timeoutMs: Milliseconds }
    | undefined;
}

/** Consul refuses session TTLs outside this range unless its servers lowered `session_ttl_min`. */
export const CONSUL_SESSION_TTL_MIN_MS = 10_000;
export const CONSUL_SESSION_TTL_MAX_MS = 86_400_000;

/** The longest duration Go, and so Consul, represents: 2^63 - 1 nanoseconds, about 2562047h. */
export const GO_MAX_DURATION_MS = 9_223_372_036_854;

/** Every environment variable the agent reads (the compiled binary may read only these). */
export const ENVIRONMENT_VARIABLES = [
  "ANNOUNCE_ADDR",
  "CONSUL_SERVICE_NAME",
  "CONSUL_SERVICE_PREFIX",
  "CONSUL_LOCK_KEY",
  "CONSUL_LOCK_SESSION_NAME",
  "CONSUL_LOCK_MONITOR_RETRIES",
  "CONSUL_LOCK_MONITOR_RETRY_INTERVAL",
  "CONSUL_DEREGISTER_SERVICE_AFTER",
  "CONSUL_LOCK_TTL",
  "CONSUL_LOCK_DELAY",
  "CONSUL_LOCK_NODE_CHECKS",
  "CONSUL_SESSION_TTL_MIN",
  "MASTER_TAGS",
  "SLAVE_TAGS",
  "HEALTHCHECK_INTERVAL",
  "HEALTHCHECK_TIMEOUT",
  "LOG_LEVEL",
  "LOG_FORMAT",
  "MAX_LAG_ON_FAILOVER",
  "REPLICA_PRIORITY",
  "FORCE_FAILOVER",
  "HTTP_ADDR",
  "ON_ROLE_CHANGE",
  "ON_ROLE_CHANGE_TIMEOUT",
  "FAILSAFE_MODE",
  "FAILSAFE_KEY_FILE",
  "FAST_TAKEOVER",
  ...REDIS_ENV_VARIABLES,
  "CONSUL_HTTP_ADDR",
  "CONSUL_HTTP_TOKEN",
  "CONSUL_HTTP_TOKEN_FILE",
  "CONSUL_HTTP_AUTH",
  "CONSUL_HTTP_SSL",
  "CONSUL_HTTP_SSL_VERIFY",
  "CONSUL_CACERT",
  "CONSUL_CAPATH",
  "CONSUL_CLIENT_CERT",
  "CONSUL_CLIENT_KEY",
  "CONSUL_TLS_SERVER_NAME",
  "CONSUL_NAMESPACE",
  "CONSUL_DATACENTER",
] as const;

/** Variables whose values are secrets: masked by --check and never logged. */
export const SECRET_VARIABLES: ReadonlySet<string> = new Set([
  "REDIS_PASSWORD",
  "CONSUL_HTTP_TOKEN",
  "CONSUL_HTTP_AUTH",
]);

export interface LoadConfigOptions {
  /** Reads a file named by a variable (token file, certificates). */
  readTextFile?: (path: string) => string;
}

/** The result of parsing: a config, or every problem found. */
export type ConfigResult =
  | { readonly ok: true; readonly config: Config }
  | { readonly ok: false; readonly problems: readonly ConfigProblem[] };

/**
 * Parses and validates the environment.
 *
 * @example
 * ```ts
 * const result = parseConfig({ REDIS_ADDR: "127.0.0.1:6380" });
 * if (result.ok) result.config.service; // { mode: "prefix", prefix: "redis", masterTags: [], … }
 * ```
 */
export function parseConfig(env: Environment, options: LoadConfigOptions = {}): ConfigResult {
  const readTextFile = options.readTextFile ?? ((path: string) => Deno.readTextFileSync(path));
  const reader = new EnvReader(env);

  const redis = parseRedisEnv(reader, readTextFile);
  const consul = parseConsulEnv(reader, readTextFile);

  const announceText = reader.raw("ANNOUNCE_ADDR");
  let announce: HostPort = { host: redis.host, port: redis.port };
  if (announceText !== undefined) {
    try {
      announce = parseHostPort(announceText);
      if (isUnspecifiedHost(announce.host)) {
        reader.problem(
          "ANNOUNCE_ADDR",
          `ANNOUNCE_ADDR "${announceText}" names no host: give the address other hosts reach this Redis at`,
        );
      }
    } catch (error) {
      reader.problem("ANNOUNCE_ADDR", `ANNOUNCE_ADDR: ${(error as Error).message}`);
    }
  }

  // Other agents read the announced address and the session name back from the lock value and the
  // candidacies, which refuse longer ones (lib/record.ts): refuse them here, before anything starts.
  const announced = formatHostPort(announce);
  if (announced.length > MAX_ADDRESS_CHARS) {
    const variable = announceText === undefined ? "REDIS_ADDR" : "ANNOUNCE_ADDR";
    reader.problem(
      variable,
      `${variable} is ${announced.length} characters long: an address may have at most ` +
        `${MAX_ADDRESS_CHARS}`,
    );
  }

  const service = parseServiceNaming(reader);

  const sessionTtlMinMs = reader.duration("CONSUL_SESSION_TTL_MIN", CONSUL_SESSION_TTL_MIN_MS, {
    minMs: 1_000,
    maxMs: CONSUL_SESSION_TTL_MAX_MS,
    describe: "between 1s and 24h",
  });
  const lock: LockSettings = {
    key: parseLockKey(reader),
    sessionName: parseSessionName(reader),
    ttlMs: reader.duration("CONSUL_LOCK_TTL", 15_000, {
      minMs: sessionTtlMinMs,
      maxMs: CONSUL_SESSION_TTL_MAX_MS,
      describe: sessionTtlMinMs === CONSUL_SESSION_TTL_MIN_MS
        ? "between 10s and 24h, Consul's session TTL range (set CONSUL_SESSION_TTL_MIN when your " +
          "Consul servers run with a lower session_ttl_min)"
        : `between ${sessionTtlMinMs / 1000}s (CONSUL_SESSION_TTL_MIN) and 24h`,
    }),
    delayMs: reader.duration("CONSUL_LOCK_DELAY", 1_000, {
      maxMs: 60_000,
      describe: "between 0s and 60s (Consul's limit)",
    }),
    monitorRetries: reader.integer("CONSUL_LOCK_MONITOR_RETRIES", 3, { min: 0, max: 1_000 }),
    // A timer fires at once past 2^31 ms (24.8 days): cap the pause well below that.
    monitorRetryIntervalMs: reader.duration("CONSUL_LOCK_MONITOR_RETRY_INTERVAL", 1_000, {
      minMs: 1,
      maxMs: CONSUL_SESSION_TTL_MAX_MS,
      describe: "between 1ms and 24h",
    }),
    nodeChecks: reader.list("CONSUL_LOCK_NODE_CHECKS"),
  };

  const healthcheckIntervalMs = reader.duration("HEALTHCHECK_INTERVAL", 5_000, {
    minMs: 10,
    maxMs: 3_600_000,
    describe: "between 10ms and 1h",
  });
  const healthcheckTimeoutMs = reader.duration("HEALTHCHECK_TIMEOUT", 2_000, {
    minMs: 10,
    maxMs: 3_600_000,
    describe: "between 10ms and 1h",
  });

  const httpAddress = parseHttpAddress(reader);
  const config: Config = {
    consul,
    redis,
    announce,
    announceFromEnv: announceText !== undefined,
    service,
    lock,
    deregisterServiceAfterMs: reader.duration("CONSUL_DEREGISTER_SERVICE_AFTER", 72 * 3_600_000, {
      minMs: 60_000,
      maxMs: GO_MAX_DURATION_MS,
      describe: "between 1m (Consul's minimum) and 2562047h (the longest duration Consul reads)",
    }),
    healthcheckIntervalMs,
    healthcheckTimeoutMs,
    logLevel: parseLogLevel(reader),
    logFormat: reader.choice("LOG_FORMAT", LOG_FORMATS, "text"),
    election: {
      // Patroni's maximum_lag_on_failover default: 1 MiB.
      maxLagBytes: reader.integer("MAX_LAG_ON_FAILOVER", 1_048_576, { min: 0 }),
      priorityOverride: reader.raw("REPLICA_PRIORITY") === undefined
        ? undefined
        : reader.integer("REPLICA_PRIORITY", 100, { min: 0, max: 2_147_483_647 }),
      forceFailover: reader.boolean("FORCE_FAILOVER", false),
    },
    httpAddress,
    failsafe: parseFailsafe(reader, httpAddress, readTextFile),
    fastTakeover: reader.boolean("FAST_TAKEOVER", true),
    roleChangeHook: parseRoleChangeHook(reader),
  };
  return reader.problems.length > 0
    ? { ok: false, problems: reader.problems }
    : { ok: true, config };
}

function parseLogLevel(reader: EnvReader): LogLevel {
  const text = reader.raw("LOG_LEVEL");
  if (text === undefined) return "info";
  const name = text.toLowerCase();
  const level = LOG_LEVELS.find((known) => known === name) ?? LOG_LEVEL_ALIASES.get(name);
  if (level !== undefined) return level;
  reader.problem(
    "LOG_LEVEL",
    `Cannot parse LOG_LEVEL "${text}": expected one of ${
      [...LOG_LEVELS, ...LOG_LEVEL_ALIASES.keys()].join(", ")
    }`,
  );
  return "info";
}

function parseRoleChangeHook(
  reader: EnvReader,
): { command: string; timeoutMs: Milliseconds } | undefined {
  const timeoutMs = reader.duration("ON_ROLE_CHANGE_TIMEOUT", 30_000, {
    minMs: 1,
    maxMs: 3_600_000,
    describe: "between 1ms and 1h",
  });
  const command = reader.raw("ON_ROLE_CHANGE");
  return command === undefined ? undefined : { command, timeoutMs };
}

function parseFailsafe(
  reader: EnvReader,
  httpAddress: HostPort | undefined,
  readTextFile: (path: string) => string,
): { key: string } | undefined {
  if (!reader.boolean("FAILSAFE_MODE", false)) return undefined;
  if (reader.raw("HTTP_ADDR") === undefined) {
    reader.problem(
      "HTTP_ADDR",
      "FAILSAFE_MODE needs HTTP_ADDR: peers' agents call this one's /v1/failsafe on it",
    );
  }
  const path = reader.raw("FAILSAFE_KEY_FILE");
  if (path === undefined) {
    reader.problem(
      "FAILSAFE_KEY_FILE",
      "FAILSAFE_MODE needs FAILSAFE_KEY_FILE: a file holding the secret every agent of the group shares",
    );
    return undefined;
  }
  let key: string;
  try {
    key = readTextFile(path).trim();
  } catch (error) {
    reader.problem(
      "FAILSAFE_KEY_FILE",
      `Cannot read FAILSAFE_KEY_FILE: ${(error as Error).message}`,
    );
    return undefined;
  }
  const bytes = new TextEncoder().encode(key).length;
  if (bytes < MIN_KEY_BYTES) {
    reader.problem(
      "FAILSAFE_KEY_FILE",
      `FAILSAFE_KEY_FILE holds ${bytes} bytes: the key needs at least ${MIN_KEY_BYTES}`,
    );
    return undefined;
  }
  return httpAddress ? { key } : undefined;
}

function parseHttpAddress(reader: EnvReader): HostPort | undefined {
  const text = reader.raw("HTTP_ADDR");
  if (text === undefined) return undefined;
  try {
    return parseHttpAddr(text);
  } catch (error) {
    reader.problem("HTTP_ADDR", `HTTP_ADDR: ${(error as Error).message}`);
    return undefined;
  }
}

function parseServiceNaming(reader: EnvReader): ServiceNaming {
  const name = reader.raw("CONSUL_SERVICE_NAME");
  const masterTags = reader.list("MASTER_TAGS");
  const slaveTags = reader.list("SLAVE_TAGS");
  if (name === undefined) {
    const prefix = reader.string("CONSUL_SERVICE_PREFIX", "redis");
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(prefix)) {
      reader.problem(
        "CONSUL_SERVICE_PREFIX",
        `CONSUL_SERVICE_PREFIX "${prefix}" is not a valid service name prefix: use letters, digits, "-", "_" and "."`,
      );
    }
    return { mode: "prefix", prefix, masterTags, slaveTags };
  }
  if (masterTags.length === 0) {
    reader.problem(
      "MASTER_TAGS",
      `MASTER_TAGS is empty: CONSUL_SERVICE_NAME "${name}" needs MASTER_TAGS, whose first tag tells clients which instance is the master`,
    );
  } else if (slaveTags[0] !== undefined && slaveTags[0] === masterTags[0]) {
    reader.problem(
      "SLAVE_TAGS",
      `SLAVE_TAGS starts with "${
        slaveTags[0]
      }", the same tag as MASTER_TAGS: the first tags must differ so clients can tell master from slave`,
    );
  }
  return { mode: "tags", name, masterTags, slaveTags };
}

function parseSessionName(reader: EnvReader): string {
  const name = reader.string("CONSUL_LOCK_SESSION_NAME", "resec");
  if (name.length > MAX_TEXT_CHARS) {
    reader.problem(
      "CONSUL_LOCK_SESSION_NAME",
      `CONSUL_LOCK_SESSION_NAME is ${name.length} characters long: the lock value carries at most ` +
        `${MAX_TEXT_CHARS}`,
    );
  }
  return name;
}

function parseLockKey(reader: EnvReader): string {
  const key = reader.string("CONSUL_LOCK_KEY", "resec/.lock");
  if (key.startsWith("/") || key.endsWith("/") || key.includes("//")) {
    reader.problem(
      "CONSUL_LOCK_KEY",
      `CONSUL_LOCK_KEY "${key}" is not a KV key: no leading or trailing "/" and no empty segments`,
    );
  }
  return key;
}

/**
 * True when this agent announces its Consul node's address: REDIS_ADDR names this machine only
 * (loopback or unspecified) and ANNOUNCE_ADDR is unset. The Go resec then registers only the port and
 * lets Consul fill in the node's address; the agent resolves that address at start (lib/agent/placement.ts).
 */
export function announcesNodeAddress(config: Pick<Config, "announceFromEnv" | "redis">): boolean {
  return !config.announceFromEnv &&
    (isLoopbackHost(config.redis.host) || isUnspecifiedHost(config.redis.host));
}
