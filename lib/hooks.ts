/**
 * ON_ROLE_CHANGE: an operator's command run after every role change, with the new role, the old
 * role and the master's address as arguments and environment. It runs beside the agent, one at a
 * time and in order, under a deadline; its failure is logged and never stops the agent.
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

/** The one variable besides the agent's own that it reads: the hook's search path. */
export const HOOK_PATH_VARIABLE = "PATH";

/** Used when the agent was started without PATH (a bare container), so hooks still find commands. */
const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

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
        env: {
          PATH: Deno.env.get(HOOK_PATH_VARIABLE) ?? DEFAULT_PATH,
          RESEC_ROLE: change.role,
          RESEC_PREVIOUS_ROLE: change.previous,
          RESEC_MASTER_ADDR: change.master,
        },
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
    const stderr = readSome(child.stderr, 500);
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
            new Promise<string>((r) => setTimeout(() => r(""), 100)),
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
