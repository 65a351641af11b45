/**
 * The resec agent under test on one host, started as an operator would on that machine: the artifact
 * chosen by RESEC_UNDER_TEST, its permission flags, and no configuration at all, so it finds Redis at
 * 127.0.0.1:6379 and its Consul agent at 127.0.0.1:8500 by its defaults.
 */
import { agentCommand } from "../agent.ts";
import type { ManagedProcess } from "../process.ts";
import { waitFor } from "../wait.ts";
import { startLog } from "./logs.ts";
import type { BedNetwork, Machine } from "./network.ts";

const ROOT = new URL("../../../", import.meta.url).pathname;

/**
 * Another agent than resec to run beside Redis on a host (the Go resec, redis-sentinel): its command,
 * and the environment it gets besides PATH; nothing else is set.
 */
export interface BedAgentLaunch {
  /** What the log calls it: "go-resec", "redis-sentinel". */
  label: string;
  command: string;
  args: string[];
  env?: Record<string, string>;
}

/** The resec agent of one host (or the agent `launch` names); each start appends to one log file. */
export class BedResec {
  readonly logPath: string;
  #process: ManagedProcess | undefined;
  #launches = 0;
  /** Where the current launch's output starts in the log file. */
  #logOffset = 0;

  /** `env` holds only the extras a test asked for (LOG_LEVEL=debug, …); nothing else is set. */
  constructor(
    readonly network: BedNetwork,
    readonly machine: Machine,
    readonly dir: string,
    readonly env: Record<string, string>,
    readonly launch?: BedAgentLaunch,
  ) {
    this.logPath = `${dir}/resec.log`;
  }

  get process(): ManagedProcess | undefined {
    return this.#process;
  }

  get pid(): number | undefined {
    return this.#process?.pid;
  }

  /** Starts the agent (again); it does not wait for it to do anything. */
  start(): void {
    if (this.#process) throw new Error(`resec on ${this.machine.name} is already running`);
    this.#launches++;
    if (this.launch) return this.#startOther(this.launch);
    const { command, args } = agentCommand();
    // As AgentProcess does: a bundle runs from an empty directory with an empty Deno cache, so a
    // dependency that is not inlined fails the test.
    const bundle = args.some((arg) => arg.endsWith(".js"));
    startLog(this.logPath, `resec, launch ${this.#launches}`);
    this.#logOffset = Deno.statSync(this.logPath).size;
    this.#process = this.network.spawn(this.machine, command, {
      args,
      logPath: this.logPath,
      env: {
        DENO_NO_UPDATE_CHECK: "1",
        NO_COLOR: "1",
        // A service manager passes a PATH; the role-change hook relies on it.
        PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin",
        ...(bundle ? { DENO_DIR: `${this.dir}/deno-dir` } : {}),
        ...this.env,
      },
      clearEnv: true,
      cwd: bundle ? this.dir : ROOT,
    });
  }

  #startOther(launch: BedAgentLaunch): void {
    startLog(this.logPath, `${launch.label}, launch ${this.#launches}`);
    this.#logOffset = Deno.statSync(this.logPath).size;
    this.#process = this.network.spawn(this.machine, launch.command, {
      args: launch.args,
      logPath: this.logPath,
      env: { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin", ...launch.env },
      clearEnv: true,
      cwd: this.dir,
    });
  }

  /** What the current launch printed so far. */
  log(): string {
    try {
      const bytes = Deno.readFileSync(this.logPath);
      return new TextDecoder().decode(bytes.subarray(this.#logOffset));
    } catch {
      return "";
    }
  }

  /** Waits until the current launch's output matches `pattern`. */
  async waitForLog(pattern: RegExp, timeoutMs = 30_000): Promise<void> {
    await waitFor(() => pattern.test(this.log()), {
      timeoutMs,
      intervalMs: 100,
      message: `resec on ${this.machine.name} to log ${pattern}; its log:\n${
        this.log().slice(-3000)
      }`,
    });
  }

  /** SIGTERM, SIGKILL after `graceMs`; returns the exit code (undefined when it was not running). */
  async stop(graceMs = 15_000): Promise<number | undefined> {
    const process = this.#process;
    if (!process) return undefined;
    const status = await process.stop(graceMs);
    this.#process = undefined;
    return status.code;
  }

  /** SIGKILL: the agent dies without releasing anything. */
  async kill(): Promise<void> {
    this.#process?.signal("SIGKILL");
    await this.reap();
  }

  /** Forgets the process after something else killed it (a host kill). */
  async reap(): Promise<void> {
    await this.#process?.stop(0);
    this.#process = undefined;
  }
}
