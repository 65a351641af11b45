/**
 * The Deno permissions the agent runs with: the ONE place that `scripts/compile.sh` (baked into the
 * binary), `scripts/bundle.sh` and `scripts/build-image.sh` (the bundle's `deno run`), `deno task start`
 * and the test harness all read, so a missing permission fails a test rather than a production failover.
 */
import { ENVIRONMENT_VARIABLES } from "./config.ts";
import { HOOK_PATH_VARIABLE, HOOK_SHELL } from "./hooks.ts";

/**
 * The permission flags for `deno run` / `deno compile`.
 *
 * - net: Consul's HTTP API and Redis, at addresses only known at run time.
 * - env: exactly the variables the agent reads (and PATH, for the hook); `--ignore-env` makes every
 *   other read `undefined`
 *   (ioredis's `debug` dependency enumerates the environment and would otherwise fail).
 * - read: the files the operator names (env file, token file, certificates) are only known at run
 *   time, and a compiled binary cannot widen its permissions then.
 * - run: only /bin/sh, which runs the operator's ON_ROLE_CHANGE hook.
 * - nothing else: no write, no FFI, no system information; `--no-prompt` turns any other access into
 *   an error instead of a prompt a daemon cannot answer.
 *
 * @example
 * ```ts
 * const command = new Deno.Command(Deno.execPath(), {
 *   args: ["run", ...agentPermissionFlags(), "main.ts", "--check"],
 * });
 * ```
 */
export function agentPermissionFlags(): string[] {
  return [
    "--allow-net",
    `--allow-env=${[...ENVIRONMENT_VARIABLES, HOOK_PATH_VARIABLE].join(",")}`,
    "--ignore-env",
    "--allow-read",
    `--allow-run=${HOOK_SHELL}`,
    "--no-prompt",
  ];
}

if (import.meta.main) {
  // `deno run lib/permissions.ts` prints the flags, one per line, for shell scripts.
  console.log(agentPermissionFlags().join("\n"));
}
