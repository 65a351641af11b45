/**
 * The Go resec (seatgeek/resec) as a real process, for mixed-cluster and migration tests. The binary
 * comes from scripts/provision-go-resec.sh, which scripts/test.sh runs and exports as GO_RESEC_BIN.
 *
 * It takes the same variables as ours, with its own rules: CONSUL_LOCK_TTL of at least 15s, and
 * Consul's 15 s lock delay on every session it makes.
 */
import { ManagedProcess } from "./process.ts";
import { makeServerDir } from "./tmp.ts";
import { waitFor } from "./wait.ts";

/** The Go resec binary, or undefined when this machine has none (no ../shared source). */
export function goResecBinary(): string | undefined {
  const path = Deno.env.get("GO_RESEC_BIN");
  if (!path) return undefined;
  try {
    return Deno.statSync(path).isFile ? path : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The Go resec binary: GO_RESEC_BIN, else the one scripts/provision-go-resec.sh builds or has cached.
 *
 * @throws {Error} when the script fails (no Go, no source beside the repository).
 */
export async function provisionGoResec(): Promise<string> {
  const fromEnv = Deno.env.get("GO_RESEC_BIN");
  if (fromEnv) return fromEnv;
  const script = new URL("../../scripts/provision-go-resec.sh", import.meta.url).pathname;
  const output = await new Deno.Command(script, { stdout: "piped", stderr: "piped" }).output();
  const text = new TextDecoder().decode(output.success ? output.stdout : output.stderr).trim();
  if (!output.success) throw new Error(`scripts/provision-go-resec.sh failed: ${text}`);
  return text.split("\n").pop()!;
}

/** A running Go resec agent; the same surface as AgentProcess, so a cluster node can run either. */
export class GoResecProcess {
  readonly dir: string;
  readonly #process: ManagedProcess;

  private constructor(binary: string, env: Record<string, string>, label: string) {
    this.dir = makeServerDir(label);
    this.#process = new ManagedProcess(binary, {
      args: [],
      logPath: `${this.dir}/agent.log`,
      env: { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin", ...env },
      clearEnv: true,
    });
  }

  /** Starts a Go resec with `env` (REDIS_ADDR, CONSUL_HTTP_ADDR, …). */
  static start(options: { env: Record<string, string>; label?: string }): GoResecProcess {
    const binary = goResecBinary();
    if (!binary) throw new Error("No Go resec binary: GO_RESEC_BIN is unset or not a file");
    return new GoResecProcess(binary, options.env, options.label ?? "go-resec");
  }

  get pid(): number {
    return this.#process.pid;
  }

  log(): string {
    return this.#process.readLog();
  }

  async waitForLog(pattern: RegExp, timeoutMs = 20_000): Promise<void> {
    await waitFor(() => pattern.test(this.log()), {
      timeoutMs,
      message: `Go resec log to match ${pattern}; log so far:\n${this.log().slice(-3000)}`,
    });
  }

  signal(signal: Deno.Signal): void {
    this.#process.signal(signal);
  }

  async kill(): Promise<void> {
    this.#process.signal("SIGKILL");
    await this.#process.status;
  }

  /** SIGTERM (it releases the lock and deregisters) and wait; returns the exit code. */
  async stop(graceMs = 15_000): Promise<number> {
    return (await this.#process.stop(graceMs)).code;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.#process.stop();
  }
}
