/**
 * The command line: `resec [run]`, `--help`, `--version`, `--check`, `--env-file PATH`. Returns an exit
 * code instead of exiting, so tests can call it.
 */
import { ResecError } from "./errors.ts";
import { parseArgs } from "node:util";
import { parse as parseDotenv } from "dotenv";
import {
  announcesNodeAddress,
  type Config,
  ENVIRONMENT_VARIABLES,
  parseConfig,
  SECRET_VARIABLES,
} from "./config.ts";
import type { Environment } from "./env.ts";
import { versionLine } from "./version.ts";
import { formatDuration, type Milliseconds, parseDuration } from "./duration.ts";
import { parseHostPort } from "./address.ts";
import { MAX_SWITCHOVER_TIMEOUT_MS } from "./cluster/controls.ts";
import type { CommandIo } from "./operator.ts";
import { mayRunHooks } from "./permissions.ts";

/** Exit codes: 0 ok, 1 runtime failure, 2 bad usage or configuration (nothing was touched). */
export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

export const USAGE = `Usage: resec [options]
       resec switchover [--to host:port] [--timeout 30s]
       resec pause [--reason text]
       resec resume
       resec list [--json] [--watch[=2s]]

Runs the resec agent beside one Redis server: elects one master through a Consul lock, points every
other Redis at it, and registers each Redis in Consul under its role.

Commands (they use the same environment as the agent to reach Consul):
  switchover        hand the master role to the best replica (or --to one) with no write lost
  pause             maintenance mode: no agent promotes or demotes anything until resume
  resume            end maintenance mode
  list              the group from Consul alone: each Redis's role, check, lag, priority and
                    eligibility, the lock holder and epoch, pause and switchover; --json for
                    scripts, --watch to refresh every 2s (or --watch=5s) until Ctrl-C

Options:
  --env-file PATH   read variables from a .env file (the real environment wins)
  --check           validate the configuration, print it with secrets masked, and exit
  -v, --version     print the version and the Deno/V8 versions it was built with
  -h, --help        print this help

Configuration comes from environment variables; see README.md or systemd/resec.env.example.
The Go resec's flags set the same variables and win over the environment, as they did there:
  --announce-addr --consul-deregister-service-after --consul-lock-key --consul-lock-monitor-retries
  --consul-lock-monitor-retry-interval --consul-lock-session-name --consul-lock-ttl
  --consul-service-name --consul-service-prefix --consul-master-tags (MASTER_TAGS)
  --consul-slave-tags (SLAVE_TAGS) --healthcheck-interval --healthcheck-timeout --log-level
  --log-format --redis-addr --redis-password
Exit codes: 0 stopped cleanly, 1 failed, 2 invalid usage or configuration.
resec list exits 0 healthy (one master, every member passing and eligible), 1 degraded, 2 invalid
usage, 3 no passing master, 4 two passing masters (or one that does not hold the lock), 5 cannot
read Consul.`;

/**
 * The Go resec's command-line flags (urfave/cli) and the variable each one sets. As there, a flag
 * wins over the variable, which wins over the default.
 */
export const GO_RESEC_FLAGS: Readonly<Record<string, string>> = {
  "announce-addr": "ANNOUNCE_ADDR",
  "consul-deregister-service-after": "CONSUL_DEREGISTER_SERVICE_AFTER",
  "consul-lock-key": "CONSUL_LOCK_KEY",
  "consul-lock-monitor-retries": "CONSUL_LOCK_MONITOR_RETRIES",
  "consul-lock-monitor-retry-interval": "CONSUL_LOCK_MONITOR_RETRY_INTERVAL",
  "consul-lock-session-name": "CONSUL_LOCK_SESSION_NAME",
  "consul-lock-ttl": "CONSUL_LOCK_TTL",
  "consul-service-name": "CONSUL_SERVICE_NAME",
  "consul-service-prefix": "CONSUL_SERVICE_PREFIX",
  "consul-master-tags": "MASTER_TAGS",
  "consul-slave-tags": "SLAVE_TAGS",
  "healthcheck-interval": "HEALTHCHECK_INTERVAL",
  "healthcheck-timeout": "HEALTHCHECK_TIMEOUT",
  "log-level": "LOG_LEVEL",
  "log-format": "LOG_FORMAT",
  "redis-addr": "REDIS_ADDR",
  "redis-password": "REDIS_PASSWORD",
};

/** Variables set on the command line (Go resec flags), by variable name. */
export type FlagSettings = Readonly<Record<string, string>>;

/** What the command line asked for. */
export type Invocation =
  | { readonly command: "help" }
  | { readonly command: "version" }
  | {
    readonly command: "run";
    readonly envFile?: string;
    readonly settings?: FlagSettings;
    readonly checkOnly: boolean;
  }
  | {
    readonly command: "switchover";
    readonly envFile?: string;
    readonly settings?: FlagSettings;
    readonly to?: string;
    readonly timeoutMs: number;
  }
  | {
    readonly command: "pause";
    readonly envFile?: string;
    readonly settings?: FlagSettings;
    readonly reason: string;
  }
  | { readonly command: "resume"; readonly envFile?: string; readonly settings?: FlagSettings }
  | {
    readonly command: "list";
    readonly envFile?: string;
    readonly settings?: FlagSettings;
    readonly json: boolean;
    /** `--watch`: refresh this often until Ctrl-C. */
    readonly watchMs?: Milliseconds;
  };

/** Thrown for a command line we cannot understand. */
export class UsageError extends ResecError {
  override name = "UsageError";
}

/**
 * The Go flag package took `-name` as well as `--name`: spell the Go resec's flags with two dashes,
 * so `parseArgs` reads them (it takes single letters only after one dash).
 */
function withGoFlagsSpelledLong(args: readonly string[]): string[] {
  const end = args.indexOf("--");
  return args.map((arg, index) => {
    if (end >= 0 && index > end) return arg;
    const name = /^-([a-z][a-z-]+)(?:=|$)/.exec(arg)?.[1];
    return name !== undefined && name in GO_RESEC_FLAGS ? `-${arg}` : arg;
  });
}

/** How long a bare `resec switchover` waits for the handover to finish (`--timeout`'s default). */
export const DEFAULT_SWITCHOVER_TIMEOUT_MS: Milliseconds = 30_000;

/** The refresh interval of a bare `resec list --watch`. */
export const DEFAULT_WATCH_MS: Milliseconds = 2_000;

/** The shortest refresh `--watch` takes: each one is four Consul reads. */
export const MIN_WATCH_MS: Milliseconds = 1_000;

/**
 * `--watch` takes an optional value, which `parseArgs` cannot express: a bare `--watch` becomes
 * `--watch=<the next argument>` when that starts with a digit, else `--watch=2s`.
 */
function withWatchValue(args: readonly string[]): string[] {
  const spelled: string[] = [];
  for (let index = 0; index < args.length; index++) {
    const arg = args[index]!;
    if (arg === "--") {
      spelled.push(...args.slice(index));
      break;
    }
    if (arg !== "--watch") {
      spelled.push(arg);
      continue;
    }
    const next = args[index + 1];
    if (next !== undefined && /^\d/.test(next)) {
      spelled.push(`--watch=${next}`);
      index++;
    } else {
      spelled.push(`--watch=${formatDuration(DEFAULT_WATCH_MS)}`);
    }
  }
  return spelled;
}

/** Parses argv (without the program name). */
export function parseInvocation(args: readonly string[]): Invocation {
  let parsed;
  try {
    parsed = parseArgs({
      args: withWatchValue(withGoFlagsSpelledLong(args)),
      options: {
        help: { type: "boolean", short: "h" },
        version: { type: "boolean", short: "v" },
        check: { type: "boolean" },
        "env-file": { type: "string" },
        to: { type: "string" },
        timeout: { type: "string" },
        reason: { type: "string" },
        json: { type: "boolean" },
        watch: { type: "string" },
        ...Object.fromEntries(
          Object.keys(GO_RESEC_FLAGS).map((flag) => [flag, { type: "string" as const }]),
        ),
      },
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help) return { command: "help" };
  if (values.version) return { command: "version" };
  const [command = "run", ...rest] = positionals;
  if (rest.length > 0) throw new UsageError(`Unexpected argument "${rest[0]}"`);
  const flagged = Object.entries(GO_RESEC_FLAGS).flatMap(([flag, variable]) => {
    const value = (values as Record<string, unknown>)[flag];
    return typeof value === "string" ? [[variable, value] as const] : [];
  });
  const envFile = values["env-file"];
  const settings: FlagSettings | undefined = flagged.length > 0
    ? Object.fromEntries(flagged)
    : undefined;
  return withSettings(parseCommand(command, values, envFile), settings);
}

/** The invocation with the flags' settings, when any flag was given. */
function withSettings(invocation: Invocation, settings: FlagSettings | undefined): Invocation {
  if (settings === undefined || invocation.command === "help" || invocation.command === "version") {
    return invocation;
  }
  return { ...invocation, settings };
}

function parseCommand(
  command: string,
  values: {
    check?: boolean;
    to?: string;
    timeout?: string;
    reason?: string;
    json?: boolean;
    watch?: string;
  },
  envFile: string | undefined,
): Invocation {
  const only = (allowed: string[]) => {
    for (const option of ["to", "timeout", "reason", "check", "json", "watch"] as const) {
      if (values[option] !== undefined && !allowed.includes(option)) {
        throw new UsageError(`--${option} does not go with "${command}"`);
      }
    }
  };
  switch (command) {
    case "run":
      only(["check"]);
      return { command: "run", envFile, checkOnly: values.check ?? false };
    case "switchover": {
      only(["to", "timeout"]);
      let timeoutMs = DEFAULT_SWITCHOVER_TIMEOUT_MS;
      if (values.timeout !== undefined) {
        try {
          timeoutMs = parseDuration(values.timeout);
        } catch {
          throw new UsageError(
            `Cannot parse --timeout "${values.timeout}": expected a duration such as "30s"`,
          );
        }
        if (timeoutMs <= 0) throw new UsageError(`--timeout "${values.timeout}" must be positive`);
        // Agents ignore a record asking for more (lib/cluster/controls.ts): say so here instead.
        if (timeoutMs > MAX_SWITCHOVER_TIMEOUT_MS) {
          throw new UsageError(
            `--timeout "${values.timeout}" is longer than the ${
              formatDuration(MAX_SWITCHOVER_TIMEOUT_MS)
            } a switchover may take`,
          );
        }
      }
      if (values.to !== undefined) {
        try {
          parseHostPort(values.to);
        } catch (error) {
          throw new UsageError(`--to: ${(error as Error).message}`);
        }
      }
      return { command: "switchover", envFile, to: values.to, timeoutMs };
    }
    case "pause":
      only(["reason"]);
      return { command: "pause", envFile, reason: values.reason ?? "paused by an operator" };
    case "resume":
      only([]);
      return { command: "resume", envFile };
    case "list":
      only(["json", "watch"]);
      return {
        command: "list",
        envFile,
        json: values.json ?? false,
        ...(values.watch !== undefined ? { watchMs: parseWatchInterval(values.watch) } : {}),
      };
    default:
      throw new UsageError(
        `Unknown command "${command}": expected run, switchover, pause, resume or list`,
      );
  }
}

/** `--watch`'s value: a duration (`5s`) or a number of seconds (`5`), at least `MIN_WATCH_MS`. */
function parseWatchInterval(text: string): Milliseconds {
  let ms: Milliseconds;
  try {
    ms = /^\d+$/.test(text) ? Number(text) * 1_000 : parseDuration(text);
  } catch {
    throw new UsageError(`Cannot parse --watch "${text}": expected a duration such as "5s"`);
  }
  if (ms < MIN_WATCH_MS) {
    throw new UsageError(`--watch "${text}" is shorter than ${formatDuration(MIN_WATCH_MS)}`);
  }
  return ms;
}

/**
 * Reads the variables the agent knows from the process environment (one by one: the compiled binary
 * may read only these), with an env file's values underneath.
 */
export function readEnvironment(
  getEnv: (name: string) => string | undefined,
  envFileText?: string,
): Environment {
  const fromFile = envFileText === undefined ? {} : parseDotenv(envFileText);
  const env: Record<string, string | undefined> = {};
  for (const name of ENVIRONMENT_VARIABLES) {
    env[name] = getEnv(name) ?? fromFile[name];
  }
  return env;
}

/** The effective configuration as `NAME=value` lines, secrets masked. */
export function describeEffectiveConfig(config: Config, env: Environment): string[] {
  const lines = [
    `redis            ${config.redis.host}:${config.redis.port}${
      config.redis.password === undefined ? "" : " (password set)"
    }`,
    announcesNodeAddress(config)
      ? `announce         <the local Consul node's address>:${config.announce.port} (resolved at start)`
      : `announce         ${config.announce.host}:${config.announce.port}${
        config.announceFromEnv ? "" : " (from REDIS_ADDR)"
      }`,
    `consul           ${config.consul.baseUrl}${config.consul.token ? " (token set)" : ""}`,
    config.service.mode === "tags"
      ? `service          ${config.service.name} master tags [${
        config.service.masterTags.join(",")
      }] slave tags [${config.service.slaveTags.join(",")}]`
      : `services         ${config.service.prefix}-master / ${config.service.prefix}-slave${
        config.service.masterTags.length + config.service.slaveTags.length > 0
          ? ` master tags [${config.service.masterTags.join(",")}] slave tags [${
            config.service.slaveTags.join(",")
          }]`
          : ""
      }`,
    `agent service    ${
      config.service.mode === "tags" ? config.service.name : config.service.prefix
    }-agent (lock sessions are tied to its check)`,
    `lock             ${config.lock.key} session "${config.lock.sessionName}" ttl ${
      formatDuration(config.lock.ttlMs)
    } delay ${formatDuration(config.lock.delayMs)}`,
    `healthcheck      every ${formatDuration(config.healthcheckIntervalMs)}, timeout ${
      formatDuration(config.healthcheckTimeoutMs)
    }`,
    `log              ${config.logLevel} ${config.logFormat}`,
    `failsafe         ${
      config.failsafe ? "on (key from FAILSAFE_KEY_FILE; peers call /v1/failsafe)" : "off"
    }`,
    "",
    "variables set:",
  ];
  for (const name of ENVIRONMENT_VARIABLES) {
    const value = env[name];
    if (value === undefined || value === "") continue;
    lines.push(`  ${name}=${SECRET_VARIABLES.has(name) ? "********" : value}`);
  }
  return lines;
}

/**
 * Why an agent with ON_ROLE_CHANGE but without the permission to run it refuses to start: the
 * executable's permissions are fixed when it is built, and a hook that never runs is a failure found
 * only at the first failover.
 */
export const HOOK_NOT_ALLOWED =
  "ON_ROLE_CHANGE is set, but this resec may not run programs (it lacks --allow-run=/bin/sh): " +
  "build the executable with `scripts/compile.sh --hooks`, or run the bundle with the flags " +
  "`deno run lib/permissions.ts --hooks` prints; or unset ON_ROLE_CHANGE";

/** Dependencies of the CLI, injectable for tests. */
export interface CliIo {
  getEnv: (name: string) => string | undefined;
  readTextFile: (path: string) => string;
  stdout: (line: string) => void;
  stderr: (line: string) => void;
  /** Whether the hook's shell may be started (default: the process's Deno permissions). */
  mayRunHooks?: () => boolean;
  /** Runs the agent until it stops; returns the exit code. */
  runAgent: (config: Config) => Promise<number>;
  /** Runs an operator command against Consul; returns the exit code. */
  runCommand?: (
    invocation: Exclude<Invocation, { command: "help" | "version" | "run" }>,
    config: Config,
    io: CommandIo,
  ) => Promise<number>;
}

/** Runs the command line and returns the exit code. */
export async function runCli(args: readonly string[], io: CliIo): Promise<number> {
  let invocation: Invocation;
  try {
    invocation = parseInvocation(args);
  } catch (error) {
    io.stderr(`resec: ${(error as Error).message}\n\n${USAGE}`);
    return EXIT_USAGE;
  }
  if (invocation.command === "help") {
    io.stdout(USAGE);
    return EXIT_OK;
  }
  if (invocation.command === "version") {
    io.stdout(versionLine());
    return EXIT_OK;
  }

  let envFileText: string | undefined;
  if (invocation.envFile !== undefined) {
    try {
      envFileText = io.readTextFile(invocation.envFile);
    } catch (error) {
      io.stderr(`resec: Cannot read env file "${invocation.envFile}": ${(error as Error).message}`);
      return EXIT_USAGE;
    }
  }
  // Flags win over the environment, as the Go resec's urfave/cli flags did.
  const env = { ...readEnvironment(io.getEnv, envFileText), ...invocation.settings };
  const result = parseConfig(env, { readTextFile: io.readTextFile });
  const problems = result.ok ? [] : result.problems.map((problem) => problem.message);
  if (
    result.ok && invocation.command === "run" && result.config.roleChangeHook !== undefined &&
    !(io.mayRunHooks ?? mayRunHooks)()
  ) {
    problems.push(HOOK_NOT_ALLOWED);
  }
  if (!result.ok || problems.length > 0) {
    io.stderr(
      `resec: invalid configuration, nothing was started (${problems.length} problem${
        problems.length === 1 ? "" : "s"
      }):\n${problems.map((message) => `  - ${message}`).join("\n")}`,
    );
    return EXIT_USAGE;
  }
  if (invocation.command !== "run") {
    if (!io.runCommand) throw new Error(`No runner for "${invocation.command}"`);
    try {
      return await io.runCommand(invocation, result.config, io);
    } catch (error) {
      io.stderr(`resec ${invocation.command}: ${(error as Error).message}`);
      return EXIT_FAILURE;
    }
  }
  if (invocation.checkOnly) {
    io.stdout(
      ["configuration is valid", ...describeEffectiveConfig(result.config, env)].join("\n"),
    );
    return EXIT_OK;
  }
  return await io.runAgent(result.config);
}
