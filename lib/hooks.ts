/**
 * ON_ROLE_CHANGE: an operator's command run after every role change, with the new role, the old
 * role and the master's address as arguments and environment. It runs beside the agent, one at a
 * time and in order, under a deadline; its failure is logged and never stops the agent.
 *
 * The hook gets a fresh environment, never the agent's: `PATH` (a default when the agent has none),
 * `HOME`, `LANG`, `LC_ALL` and `TZ` when the agent has them, and `RESEC_ROLE`,
 * `RESEC_PREVIOUS_ROLE`, `RESEC_MASTER_ADDR`. The agent's secrets (REDIS_PASSWORD, CONSUL_HTTP_TOKEN,
 * CONSUL_HTTP_AUTH…) and every other variable stay out of it.
 */
import type { Milliseconds } from "./duration.ts";
import type { Logger } from "./log.ts";

/** Roles as the hook sees them (the Consul service roles, plus "none" for "not yet"). */
export type HookRole = "master" | "slave" | "none";

export interface RoleChange {
  readonly role: HookRole;
  readonly previous: HookRole;
  /** The master's `host:port` (this node's when it became master). */
  readonly master: string;
}

/** The shell the hook runs under: the one program the compiled binary may start. */
export const HOOK_SHELL = "/bin/sh";

/**
 * The variables passed from the agent's environment to the hook when set: its search path, home and
 * locale. They are the only ones the agent reads besides its own (see lib/permissions.ts).
 */
export const HOOK_INHERITED_VARIABLES = ["PATH", "HOME", "LANG", "LC_ALL", "TZ"] as const;

/** Used when the agent was started without PATH (a bare container), so hooks still find commands. */
const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** The most characters of a failed hook's stderr in the log line. */
const STDERR_MAX_CHARS = 500;

/** How long a failed hook's stderr is awaited once it exited: a lingering child cannot hold the log. */
const STDERR_GRACE_MS = 100;

export interface RoleChangeHookOptions {
  /** A command line, run by /bin/sh with the role, previous role and master as "$1" "$2" "$3". */
  command: string;
  timeoutMs: Milliseconds;
  logger: Logger;
}

/** Runs the hook for each role change, in order. */
export class RoleChangeHook {
  readonly #options: RoleChangeHookOptions;
  #queue: Promise<void> = Promise.resolve();

  constructor(options: RoleChangeHookOptions) {
    this.#options = options;
  }

  /** Queues a run; the promise settles when this run has finished (never rejects). */
  run(change: RoleChange): Promise<void> {
    this.#queue = this.#queue.then(() => this.#runOnce(change));
    return this.#queue;
  }

  /** Waits for queued runs (shutdown). */
  settled(): Promise<void> {
    return this.#queue;
  }

  async #runOnce(change: RoleChange): Promise<void> {
    const { command, timeoutMs, logger } = this.#options;
    const started = Date.now();
    let child: Deno.ChildProcess;
    try {
      child = new Deno.Command(HOOK_SHELL, {
        args: ["-c", `${command} "$@"`, "resec-hook", change.role, change.previous, change.master],
        // Without clearEnv, Deno adds `env` to the agent's whole environment, secrets included.
        clearEnv: true,
        env: hookEnvironment(change, (name) => Deno.env.get(name)),
        stdin: "null",
        stdout: "null",
        stderr: "piped",
        // Its own process group, so a timeout kills whatever the hook started too.
        detached: true,
      }).spawn();
    } catch (error) {
      logger.error("ON_ROLE_CHANGE could not be started", { error });
      return;
    }
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        Deno.kill(-child.pid, "SIGKILL");
      } catch {
        try {
          child.kill("SIGKILL");
        } catch { /* already exited */ }
      }
    }, timeoutMs);
    const stderr = readSome(child.stderr, STDERR_MAX_CHARS);
    try {
      const status = await child.status;
      const fields = { role: change.role, previous: change.previous, ms: Date.now() - started };
      if (timedOut) {
        logger.error("ON_ROLE_CHANGE timed out and was killed", { ...fields, timeoutMs });
      } else if (!status.success) {
        logger.warn("ON_ROLE_CHANGE failed", {
          ...fields,
          exitCode: status.code,
          stderr: await Promise.race([
            stderr,
            new Promise<string>((r) => setTimeout(() => r(""), STDERR_GRACE_MS)),
          ]),
        });
      } else {
        logger.info("ON_ROLE_CHANGE ran", fields);
      }
    } catch (error) {
      logger.error("ON_ROLE_CHANGE failed", { error });
    } finally {
      clearTimeout(timer);
      void child.stderr.cancel().catch(() => {});
    }
  }
}

/**
 * The whole environment of one hook run: the inherited variables the agent has (PATH always) and the
 * change itself.
 *
 * @example
 * ```ts
 * hookEnvironment({ role: "master", previous: "slave", master: "10.0.0.1:6379" }, () => undefined);
 * // { PATH: "/usr/local/sbin:…", RESEC_ROLE: "master", RESEC_PREVIOUS_ROLE: "slave", RESEC_MASTER_ADDR: "10.0.0.1:6379" }
 * ```
 */
export function hookEnvironment(
  change: RoleChange,
  getEnv: (name: string) => string | undefined,
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of HOOK_INHERITED_VARIABLES) {
    const value = getEnv(name);
    if (value !== undefined && value !== "") env[name] = value;
  }
  env.PATH ??= DEFAULT_PATH;
  env.RESEC_ROLE = change.role;
  env.RESEC_PREVIOUS_ROLE = change.previous;
  env.RESEC_MASTER_ADDR = change.master;
  return env;
}

/** Reads up to `limit` characters of a stream, for a log line. */
async function readSome(stream: ReadableStream<Uint8Array>, limit: number): Promise<string> {
  const decoder = new TextDecoder();
  let text = "";
  try {
    for await (const chunk of stream) {
      text += decoder.decode(chunk, { stream: true });
      if (text.length >= limit) break;
    }
  } catch { /* cancelled */ }
  return text.trim().slice(0, limit);
}
