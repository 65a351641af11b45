/**
 * The command line: `resec [run]`, `--help`, `--version`, `--check`, `--env-file PATH`. Returns an exit
 * code instead of exiting, so tests can call it.
 */
import { parseArgs } from "node:util";
import { parse as parseDotenv } from "dotenv";
import { type Config, ENVIRONMENT_VARIABLES, parseConfig, SECRET_VARIABLES } from "./config.ts";
import type { Environment } from "./env.ts";
import { versionLine } from "./version.ts";

/** Exit codes: 0 ok, 1 runtime failure, 2 bad usage or configuration (nothing was touched). */
export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

export const USAGE = `Usage: resec [options]

Runs the resec agent beside one Redis server: elects one master through a Consul lock, points every
other Redis at it, and registers each Redis in Consul under its role.

Options:
  --env-file PATH   read variables from a .env file (the real environment wins)
  --check           validate the configuration, print it with secrets masked, and exit
  --version         print the version and the Deno/V8 versions it was built with
  -h, --help        print this help

Configuration comes from environment variables; see README.md or systemd/resec.env.example.
Exit codes: 0 stopped cleanly, 1 failed, 2 invalid usage or configuration.`;

/** What the command line asked for. */
export type Invocation =
  | { readonly command: "help" }
  | { readonly command: "version" }
  | { readonly command: "run"; readonly envFile?: string; readonly checkOnly: boolean };

/** Thrown for a command line we cannot understand. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** Parses argv (without the program name). */
export function parseInvocation(args: readonly string[]): Invocation {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...args],
      options: {
        help: { type: "boolean", short: "h" },
        version: { type: "boolean" },
        check: { type: "boolean" },
        "env-file": { type: "string" },
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
  const [command, ...rest] = positionals;
  if (command !== undefined && command !== "run") {
    throw new UsageError(`Unknown command "${command}": expected no command or "run"`);
  }
  if (rest.length > 0) throw new UsageError(`Unexpected argument "${rest[0]}"`);
  return { command: "run", envFile: values["env-file"], checkOnly: values.check ?? false };
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
    `redis            ${config.redis.host}:${config.redis.port}`,
    `announce         ${config.announce.host}:${config.announce.port}${
      config.announceFromEnv ? "" : " (from REDIS_ADDR)"
    }`,
    `consul           ${config.consul.baseUrl}${config.consul.token ? " (token set)" : ""}`,
    config.service.mode === "tags"
      ? `service          ${config.service.name} master tags [${
        config.service.masterTags.join(",")
      }] slave tags [${config.service.slaveTags.join(",")}]`
      : `services         ${config.service.prefix}-master / ${config.service.prefix}-slave`,
    `lock             ${config.lock.key} session "${config.lock.sessionName}" ttl ${config.lock.ttlMs}ms delay ${config.lock.delayMs}ms`,
    `healthcheck      every ${config.healthcheckIntervalMs}ms, timeout ${config.healthcheckTimeoutMs}ms`,
    `log              ${config.logLevel} ${config.logFormat}`,
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

/** Dependencies of the CLI, injectable for tests. */
export interface CliIo {
  getEnv: (name: string) => string | undefined;
  readTextFile: (path: string) => string;
  stdout: (line: string) => void;
  stderr: (line: string) => void;
  /** Runs the agent until it stops; returns the exit code. */
  runAgent: (config: Config) => Promise<number>;
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
  const env = readEnvironment(io.getEnv, envFileText);
  const result = parseConfig(env, { readTextFile: io.readTextFile });
  if (!result.ok) {
    io.stderr(
      `resec: invalid configuration, nothing was started (${result.problems.length} problem${
        result.problems.length === 1 ? "" : "s"
      }):\n${result.problems.map((problem) => `  - ${problem.message}`).join("\n")}`,
    );
    return EXIT_USAGE;
  }
  if (invocation.checkOnly) {
    io.stdout(
      ["configuration is valid", ...describeEffectiveConfig(result.config, env)].join("\n"),
    );
    return EXIT_OK;
  }
  return await io.runAgent(result.config);
}
