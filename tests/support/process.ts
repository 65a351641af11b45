/**
 * A child process owned by a test: output goes to a log file, and it is always stopped, even when the
 * test fails or the test process exits early.
 */
import { delay } from "./wait.ts";

/**
 * Children still running in this test process. Module state is deliberate here: it is the last line of
 * defence that kills servers when a test module exits without disposing them.
 */
const liveChildren = new Set<Deno.ChildProcess>();
globalThis.addEventListener("unload", () => {
  for (const child of liveChildren) {
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
  }
});

export interface SpawnOptions {
  args: string[];
  /** Where stdout and stderr go. */
  logPath: string;
  env?: Record<string, string>;
  cwd?: string;
  /** Start from an empty environment plus `env` (default false: inherit). */
  clearEnv?: boolean;
}

/** A spawned process whose output is appended to a log file. */
export class ManagedProcess {
  readonly #child: Deno.ChildProcess;
  readonly #copying: Promise<unknown>;
  readonly status: Promise<Deno.CommandStatus>;
  #stopped = false;

  constructor(readonly command: string, readonly options: SpawnOptions) {
    this.#child = new Deno.Command(command, {
      args: options.args,
      env: options.env,
      cwd: options.cwd,
      clearEnv: options.clearEnv ?? false,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    liveChildren.add(this.#child);
    const log = Deno.openSync(options.logPath, { append: true, create: true });
    // One sink per stream: a WritableStream can be piped into by only one source at a time.
    const copy = (stream: ReadableStream<Uint8Array>) =>
      stream.pipeTo(
        new WritableStream<Uint8Array>({
          write: (chunk) => {
            log.writeSync(chunk);
          },
        }),
      ).catch(() => {});
    this.#copying = Promise.all([copy(this.#child.stdout), copy(this.#child.stderr)]).finally(
      () => log.close(),
    );
    this.status = this.#child.status.finally(() => liveChildren.delete(this.#child));
  }

  get pid(): number {
    return this.#child.pid;
  }

  /** Sends a signal without waiting (SIGSTOP, SIGCONT, SIGKILL …). */
  signal(signal: Deno.Signal): void {
    try {
      this.#child.kill(signal);
    } catch (error) {
      if (!(error instanceof TypeError)) throw error; // TypeError: the process has already exited
    }
  }

  /**
   * Freezes the process (SIGSTOP) and waits until the kernel reports it stopped, so what the test
   * does next really meets a frozen process.
   */
  async freeze(): Promise<void> {
    this.signal("SIGSTOP");
    for (let attempt = 0; attempt < 200; attempt++) {
      try {
        const stat = Deno.readTextFileSync(`/proc/${this.pid}/stat`);
        // The state follows the command name in parentheses: "123 (consul) T ...".
        if (/\) [Tt] /.test(stat)) return;
      } catch {
        return; // exited
      }
      await delay(5);
    }
  }

  /** True while the process has not exited. */
  async isRunning(): Promise<boolean> {
    const exited = await Promise.race([this.status.then(() => true), delay(0).then(() => false)]);
    return !exited;
  }

  /**
   * Stops the process: SIGTERM (SIGCONT first, in case a test froze it), then SIGKILL after
   * `graceMs`. Resolves once it has exited and its output is flushed.
   */
  async stop(graceMs = 5_000): Promise<Deno.CommandStatus> {
    if (!this.#stopped) {
      this.#stopped = true;
      this.signal("SIGCONT");
      this.signal("SIGTERM");
      const timer = setTimeout(() => this.signal("SIGKILL"), graceMs);
      try {
        await this.status;
      } finally {
        clearTimeout(timer);
      }
    }
    const status = await this.status;
    await this.#copying;
    return status;
  }

  /** Reads what the process has logged so far. */
  readLog(): string {
    try {
      return Deno.readTextFileSync(this.options.logPath);
    } catch {
      return "";
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}

/** What a finished command printed. */
export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs a command to completion with its output captured (for short tools: builds, `--version`,
 * systemd-analyze). Killed when it outlives `timeoutMs`.
 */
export async function runCommand(
  command: string,
  options: {
    args: string[];
    cwd?: string;
    env?: Record<string, string>;
    clearEnv?: boolean;
    timeoutMs: number;
  },
): Promise<CommandResult> {
  const result = await new Deno.Command(command, {
    args: options.args,
    cwd: options.cwd,
    env: options.env,
    clearEnv: options.clearEnv,
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(options.timeoutMs),
  }).output();
  const decoder = new TextDecoder();
  return {
    code: result.code,
    stdout: decoder.decode(result.stdout),
    stderr: decoder.decode(result.stderr),
  };
}
