/**
 * The lifecycle every test server shares: a child process with a log file, launched and waited for
 * until it answers (or given up on at once, with its log, when it exits early), frozen, stopped, and
 * restarted on the same ports.
 */
import { ManagedProcess } from "./process.ts";
import { GiveUpError, waitFor } from "./wait.ts";

/** How to launch a server's process and how to tell it is ready. */
export interface ServerLaunch {
  /** Names the server in the early-exit error ("consul", "redis-server"). */
  name: string;
  /** The program to run. */
  command: string;
  args: string[];
  /** Where its stdout and stderr go. */
  logPath: string;
  /** Its working directory (default: the test's). */
  cwd?: string;
  /** True once the server answers; polled until `timeoutMs`. */
  isReady: () => Promise<boolean>;
  timeoutMs: number;
  /** Pause between two readiness probes (default: `waitFor`'s). */
  intervalMs?: number;
  /** What the wait is for, in the timeout error. */
  readyMessage: string;
}

/**
 * A server process a test owns: subclasses say how to launch it (`launchPlan`) and may wait for more
 * once it answers (override `launch`, calling `super.launch()` first). Dispose it (`await using`) to
 * stop it.
 *
 * @example
 * ```ts
 * class EchoServer extends TestServer {
 *   protected launchPlan(): ServerLaunch {
 *     return { name: "echo", command: "echo-server", args: [], logPath: "/tmp/echo.log",
 *       isReady: () => Promise.resolve(true), timeoutMs: 5_000, readyMessage: "echo to answer" };
 *   }
 * }
 * ```
 */
export abstract class TestServer implements AsyncDisposable {
  #process: ManagedProcess | undefined;

  /** The running process; undefined once stopped. */
  get process(): ManagedProcess | undefined {
    return this.#process;
  }

  /** Freezes the server (SIGSTOP): it keeps its connections open but answers nothing. */
  pause(): Promise<void> {
    return this.#process?.freeze() ?? Promise.resolve();
  }

  /** Thaws a server frozen by pause(). */
  resume(): void {
    this.#process?.signal("SIGCONT");
  }

  /** Stops the server gracefully (SIGTERM, then SIGKILL); a test server keeps no state across it. */
  async stop(): Promise<void> {
    await this.#process?.stop();
    this.#process = undefined;
  }

  /** Stops and starts the server on the same ports, with the same options; it comes back empty. */
  async restart(): Promise<void> {
    await this.stop();
    await this.launch();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  /** What the next launch runs; asked again on every launch. */
  protected abstract launchPlan(): ServerLaunch;

  /** Spawns the process and waits until it answers; throws at once with its log if it exits. */
  protected async launch(): Promise<void> {
    const plan = this.launchPlan();
    const process = new ManagedProcess(plan.command, {
      args: plan.args,
      logPath: plan.logPath,
      cwd: plan.cwd,
    });
    this.#process = process;
    await waitFor(async () => {
      if (!(await process.isRunning())) {
        throw new GiveUpError(`${plan.name} exited early; its log:\n${process.readLog()}`);
      }
      return await plan.isReady();
    }, { timeoutMs: plan.timeoutMs, intervalMs: plan.intervalMs, message: plan.readyMessage });
  }
}
