/**
 * A real resec agent process for end-to-end tests, started the way operators start it: the same entry
 * point and the same permission flags as the compiled binary (lib/permissions.ts).
 *
 * RESEC_UNDER_TEST chooses the artifact: unset or "source" runs main.ts with `deno run`; a path ending
 * in ".js" runs that bundle with `deno run`; any other path is run as a compiled binary.
 */
import { agentPermissionFlags } from "../../lib/permissions.ts";
import { ManagedProcess } from "./process.ts";
import { makeServerDir } from "./tmp.ts";
import { waitFor } from "./wait.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

/**
 * The command and leading arguments that start the agent under test; with `hooks`, the permissions to
 * run ON_ROLE_CHANGE (a compiled binary has what it was built with: `scripts/compile.sh --hooks`).
 */
export function agentCommand(
  options: { hooks?: boolean } = {},
): { command: string; args: string[] } {
  const underTest = Deno.env.get("RESEC_UNDER_TEST") ?? "source";
  const flags = agentPermissionFlags({ hooks: options.hooks });
  if (underTest === "source") {
    return { command: Deno.execPath(), args: ["run", ...flags, `${ROOT}main.ts`] };
  }
  if (underTest.endsWith(".js")) {
    return { command: Deno.execPath(), args: ["run", ...flags, underTest] };
  }
  return { command: underTest, args: [] };
}

export interface AgentProcessOptions {
  /** Environment variables of the agent (REDIS_ADDR, CONSUL_HTTP_ADDR, …). */
  env: Record<string, string>;
  /** Extra command-line arguments. */
  args?: string[];
  label?: string;
  /** Give the agent the permissions to run ON_ROLE_CHANGE (default: when the variable is set). */
  hooks?: boolean;
}

/** A running agent; dispose it to stop it gracefully. */
export class AgentProcess {
  readonly dir: string;
  readonly #process: ManagedProcess;

  private constructor(readonly options: AgentProcessOptions) {
    this.dir = makeServerDir(options.label ?? "agent");
    const { command, args } = agentCommand({
      hooks: options.hooks ?? (options.env.ON_ROLE_CHANGE ?? "") !== "",
    });
    // A bundle runs as an operator would run it: from an empty directory with an empty Deno cache,
    // so a dependency that is not inlined fails the test.
    const bundle = args.some((arg) => arg.endsWith(".js"));
    this.#process = new ManagedProcess(command, {
      args: [...args, ...(options.args ?? [])],
      logPath: `${this.dir}/agent.log`,
      env: {
        DENO_NO_UPDATE_CHECK: "1",
        NO_COLOR: "1",
        // A service manager passes a PATH; the role-change hook relies on it.
        PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
        ...(bundle ? { DENO_DIR: `${this.dir}/deno-dir` } : {}),
        ...options.env,
      },
      clearEnv: true,
      cwd: bundle ? this.dir : ROOT,
    });
  }

  /** Starts an agent (does not wait for it to do anything). */
  static start(options: AgentProcessOptions): AgentProcess {
    return new AgentProcess(options);
  }

  /** Runs the agent to completion (e.g. `--check` or a refused configuration). */
  static async run(options: AgentProcessOptions): Promise<{ code: number; output: string }> {
    const agent = new AgentProcess(options);
    const status = await agent.#process.status;
    await agent.#process.stop();
    return { code: status.code, output: agent.log() };
  }

  /**
   * Runs an agent that should exit on its own (a refused start); stops it and throws when it is still
   * running `withinMs` after it started.
   */
  static async runToExit(
    options: AgentProcessOptions,
    withinMs = 20_000,
  ): Promise<{ code: number; output: string }> {
    const agent = new AgentProcess(options);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const exited = await Promise.race([
      agent.#process.status.then(() => true),
      new Promise<boolean>((resolve) => timer = setTimeout(() => resolve(false), withinMs)),
    ]);
    clearTimeout(timer);
    const status = await agent.#process.stop();
    if (!exited) {
      throw new Error(
        `${
          options.label ?? "the agent"
        } was still running ${withinMs} ms after it started; log:\n` +
          agent.log().slice(-3000),
      );
    }
    return { code: status.code, output: agent.log() };
  }

  get process(): ManagedProcess {
    return this.#process;
  }

  get pid(): number {
    return this.#process.pid;
  }

  /** Everything the agent printed so far. */
  log(): string {
    return this.#process.readLog();
  }

  /** Waits until the agent's output matches `pattern`. */
  async waitForLog(pattern: RegExp, timeoutMs = 20_000): Promise<void> {
    await waitFor(() => pattern.test(this.log()), {
      timeoutMs,
      message: `agent log to match ${pattern}; log so far:\n${this.log().slice(-3000)}`,
    });
  }

  /** Sends a signal (never SIGUSR1 to a `deno run` agent: it opens the inspector). */
  signal(signal: Deno.Signal): void {
    this.#process.signal(signal);
  }

  /** SIGKILL: the agent dies without releasing anything. */
  async kill(): Promise<void> {
    this.#process.signal("SIGKILL");
    await this.#process.status;
  }

  /** SIGTERM and wait; returns the exit code. */
  async stop(graceMs = 15_000): Promise<number> {
    return (await this.#process.stop(graceMs)).code;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.#process.stop();
  }
}
