/**
 * Running the agent as a process: logging, signals, and a graceful stop. The control loop itself lives
 * in lib/agent/.
 */
import type { Config } from "./config.ts";
import { configureLogging, type Logger } from "./log.ts";
import { AgentRuntime } from "./agent/runtime.ts";
import { EXIT_FAILURE, EXIT_OK } from "./cli.ts";
import { versionLine } from "./version.ts";

/** Signals that stop the agent gracefully (the Go resec's set; systemd sends SIGTERM). */
const STOP_SIGNALS: Deno.Signal[] = ["SIGTERM", "SIGINT", "SIGQUIT"];

/** A stop that takes longer than this ends the process anyway. */
export const HARD_EXIT_AFTER_MS = 30_000;

/** Runs the agent until a stop signal; returns the exit code. */
export async function runAgent(config: Config): Promise<number> {
  await using logging = await configureLogging({
    level: config.logLevel,
    format: config.logFormat,
  });
  const logger = logging.logger;
  installCrashGuard(logger);
  logger.info("starting", {
    version: versionLine(),
    redis: `${config.redis.host}:${config.redis.port}`,
    consul: config.consul.baseUrl,
    lockKey: config.lock.key,
  });

  let runtime: AgentRuntime;
  try {
    runtime = new AgentRuntime(config, { logger });
  } catch (error) {
    logger.error("cannot start", { error });
    return EXIT_FAILURE;
  }
  const stopSignal = Promise.withResolvers<Deno.Signal>();
  const handlers = new Map<Deno.Signal, () => void>();
  for (const signal of STOP_SIGNALS) handlers.set(signal, () => stopSignal.resolve(signal));
  handlers.set(
    "SIGUSR1",
    () => printDump("consul and redis state", runtime.agent.snapshot().observed),
  );
  handlers.set("SIGUSR2", () => printDump("agent state", runtime.agent.snapshot()));
  for (const [signal, handler] of handlers) Deno.addSignalListener(signal, handler);

  try {
    await runtime.start();
  } catch (error) {
    logger.error("cannot start", { error });
    await runtime.stop();
    return EXIT_FAILURE;
  }
  const signal = await stopSignal.promise;
  logger.info("stopping", { signal });
  const hardExit = setTimeout(() => {
    logger.error("graceful stop took too long; exiting", { afterMs: HARD_EXIT_AFTER_MS });
    Deno.exit(EXIT_FAILURE);
  }, HARD_EXIT_AFTER_MS);
  try {
    await runtime.stop();
  } finally {
    clearTimeout(hardExit);
    for (const [name, handler] of handlers) Deno.removeSignalListener(name, handler);
  }
  return EXIT_OK;
}

/** Dumps state to stdout whatever the log level, as the Go resec does on USR1/USR2. */
function printDump(title: string, state: unknown): void {
  console.log(JSON.stringify({ dump: title, at: new Date().toISOString(), state }));
}

/**
 * ioredis can raise a socket error (EPIPE after a rejected TLS handshake) outside any promise; log it
 * instead of letting it end the process. systemd's Restart=on-failure stays as the second line.
 */
function installCrashGuard(logger: Logger): void {
  globalThis.addEventListener("error", (event) => {
    event.preventDefault();
    logger.error("unexpected error", { error: event.error });
  });
  globalThis.addEventListener("unhandledrejection", (event) => {
    event.preventDefault();
    logger.error("unhandled rejection", { error: event.reason });
  });
}
