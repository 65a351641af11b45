/**
 * Running the agent as a process: logging, signals, and a graceful stop. The control loop itself lives
 * in lib/agent/loop.ts.
 */
import type { Config } from "../config.ts";
import { configureLogging, type Logger } from "../log.ts";
import { AgentLifecycle } from "./lifecycle.ts";
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE } from "../cli.ts";
import { ConsulClient } from "../consul/client.ts";
import { ConsulPermissionDeniedError } from "../consul/errors.ts";
import { AnnounceAddressError, type Placement, resolvePlacement } from "./placement.ts";
import { RedisCommander } from "../redis/commander.ts";
import { RedisMissingPermissionError, RedisVersionError } from "../redis/errors.ts";
import { detachEmptyMasterEarly } from "./redis_ports.ts";
import { versionLine } from "../version.ts";

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

  const stopSignal = Promise.withResolvers<Deno.Signal>();
  const stopping = new AbortController();
  let lifecycle: AgentLifecycle | undefined;
  const handlers = new Map<Deno.Signal, () => void>();
  for (const signal of STOP_SIGNALS) {
    handlers.set(signal, () => {
      stopping.abort(new Error(`stopped by ${signal}`));
      stopSignal.resolve(signal);
    });
  }
  const dump = (signal: "SIGUSR1" | "SIGUSR2") => () =>
    console.log(formatDump(signal, lifecycle?.status.state() ?? { placing: true }));
  handlers.set("SIGUSR1", dump("SIGUSR1"));
  handlers.set("SIGUSR2", dump("SIGUSR2"));
  for (const [signal, handler] of handlers) Deno.addSignalListener(signal, handler);
  const removeHandlers = () => {
    for (const [name, handler] of handlers) Deno.removeSignalListener(name, handler);
  };

  // Before anything waits on Consul: a host back from a reboot with an empty Redis must not feed it
  // to replicas that still follow it (lib/agent/redis_ports.ts).
  {
    await using commander = new RedisCommander({
      connection: config.redis,
      timeoutMs: config.healthcheckTimeoutMs,
      logger: logger.child("redis"),
    });
    await detachEmptyMasterEarly(commander, logger);
  }

  let placed: Config;
  let node: string;
  try {
    const placement = await place(config, logger, stopping.signal);
    placed = { ...config, announce: placement.announce };
    node = placement.node;
  } catch (error) {
    removeHandlers();
    if (stopping.signal.aborted) return EXIT_OK;
    logger.error("cannot start", { error });
    return error instanceof AnnounceAddressError || error instanceof ConsulPermissionDeniedError
      ? EXIT_USAGE
      : EXIT_FAILURE;
  }

  try {
    lifecycle = new AgentLifecycle(placed, { logger, node });
  } catch (error) {
    removeHandlers();
    logger.error("cannot start", { error });
    return EXIT_FAILURE;
  }

  try {
    await lifecycle.start();
  } catch (error) {
    logger.error("cannot start", { error });
    await lifecycle.stop();
    removeHandlers();
    // A Redis too old to manage, or an ACL user that may not run what resec needs, is a setup to
    // fix, not a failure to retry (systemd's RestartPreventExitStatus=2).
    return error instanceof RedisVersionError || error instanceof RedisMissingPermissionError
      ? EXIT_USAGE
      : EXIT_FAILURE;
  }
  const signal = await stopSignal.promise;
  logger.info("stopping", { signal });
  const hardExit = setTimeout(() => {
    logger.error("graceful stop took too long; exiting", { afterMs: HARD_EXIT_AFTER_MS });
    Deno.exit(EXIT_FAILURE);
  }, HARD_EXIT_AFTER_MS);
  try {
    await lifecycle.stop();
  } finally {
    clearTimeout(hardExit);
    removeHandlers();
  }
  return EXIT_OK;
}

/** Settles the node and the announce address with a Consul client of its own, closed afterwards. */
async function place(config: Config, logger: Logger, signal: AbortSignal): Promise<Placement> {
  using client = new ConsulClient({ connection: config.consul, logger: logger.child("consul") });
  return await resolvePlacement({ client, config, logger: logger.child("placement"), signal });
}

/**
 * The state dump printed on USR1 (Consul and Redis state) or USR2 (the whole agent), whatever the log
 * level, as the Go resec does. One JSON line; the state holds no secret.
 */
export function formatDump(
  signal: "SIGUSR1" | "SIGUSR2",
  state: unknown,
  now = Date.now(),
): string {
  const at = new Date(now).toISOString();
  if (signal === "SIGUSR2") return JSON.stringify({ dump: "agent state", at, state });
  const observed = (state as { observed?: Record<string, unknown> }).observed ?? {};
  const { redis, consulReachable, leader, lock, registration } = observed;
  return JSON.stringify({
    dump: "consul and redis state",
    at,
    state: { consul: { reachable: consulReachable, leader, lock, registration }, redis },
  });
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
