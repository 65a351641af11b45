/**
 * The Deno permissions the agent runs with: the ONE place that `scripts/compile.sh` (baked into the
 * binary), `scripts/bundle.sh` and `scripts/build-image.sh` (the bundle's `deno run`), `deno task start`
 * and the test harness all read, so a missing permission fails a test rather than a production failover.
 */
import { ENVIRONMENT_VARIABLES } from "./config.ts";
import { HOOK_INHERITED_VARIABLES, HOOK_SHELL } from "./hooks.ts";

/**
 * V8 settings the agent runs with, for a small, quiet daemon (its heap is a few MB):
 * - `--single-threaded`: no background GC and compiler threads; they cost a third of the agent's
 *   CPU at steady state, for a heap that small;
 * - `--max-semi-space-size=1`: a young generation of 1 MB, not 16: fewer pages touched between
 *   collections, and no 15 MB swings of resident memory;
 * - `--lite-mode`: no optimizing compiler and lazily allocated feedback: less code in memory, for
 *   a program that never runs hot.
 * A heap limit (`--max-old-space-size`) is left out on purpose: reaching it aborts the process.
 */
export const AGENT_V8_FLAGS: readonly string[] = [
  "--single-threaded",
  "--max-semi-space-size=1",
  "--lite-mode",
];

export interface PermissionOptions {
  /**
   * Let the agent run ON_ROLE_CHANGE: start `/bin/sh` and read the variables a hook inherits. Off by
   * default, so an agent without a hook cannot start any program at all.
   */
  hooks?: boolean;
}

/**
 * The permission flags for `deno run` / `deno compile`.
 *
 * - net: Consul's HTTP API and Redis, at addresses only known at run time.
 * - env: exactly the variables the agent reads (and, with hooks, PATH, HOME and the locale a hook
 *   inherits); `--ignore-env` makes every other read `undefined`
 *   (ioredis's `debug` dependency enumerates the environment and would otherwise fail).
 * - read: the files the operator names (env file, token and password files, certificates) are only
 *   known at run time, and a compiled binary cannot widen its permissions then.
 * - run: with hooks only, and only /bin/sh, which runs the operator's ON_ROLE_CHANGE hook. An agent
 *   given a hook without this permission refuses to start (lib/cli.ts), rather than fail at the
 *   first role change.
 * - nothing else: no write, no FFI, no system information; `--no-prompt` turns any other access into
 *   an error instead of a prompt a daemon cannot answer.
 * - and the V8 settings of AGENT_V8_FLAGS, which ride on the same run line.
 *
 * @example
 * ```ts
 * const command = new Deno.Command(Deno.execPath(), {
 *   args: ["run", ...agentPermissionFlags({ hooks: true }), "main.ts", "--check"],
 * });
 * ```
 */
export function agentPermissionFlags(options: PermissionOptions = {}): string[] {
  const variables = options.hooks
    ? [...ENVIRONMENT_VARIABLES, ...HOOK_INHERITED_VARIABLES]
    : [...ENVIRONMENT_VARIABLES];
  return [
    "--allow-net",
    `--allow-env=${variables.join(",")}`,
    "--ignore-env",
    "--allow-read",
    ...(options.hooks ? [`--allow-run=${HOOK_SHELL}`] : []),
    "--no-prompt",
    `--v8-flags=${AGENT_V8_FLAGS.join(",")}`,
  ];
}

/** Whether this process may start the hook's shell (it was given `agentPermissionFlags({ hooks: true })`). */
export function mayRunHooks(): boolean {
  return Deno.permissions.querySync({ name: "run", command: HOOK_SHELL }).state === "granted";
}

if (import.meta.main) {
  // `deno run lib/permissions.ts [--hooks]` prints the flags, one per line, for shell scripts.
  console.log(agentPermissionFlags({ hooks: Deno.args.includes("--hooks") }).join("\n"));
}
