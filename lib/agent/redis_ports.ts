/**
 * The agent's parts reach Redis through small ports; these bind them to the observer and commander
 * of lib/redis/.
 */
import { type HostPort, sameHostPort } from "../address.ts";
import type { Config } from "../config.ts";
import type { Milliseconds } from "../duration.ts";
import type { Logger } from "../log.ts";
import { RedisCommander } from "../redis/commander.ts";
import {
  isPermissionDenied,
  RedisError,
  RedisMissingPermissionError,
  RedisVersionError,
} from "../redis/errors.ts";
import { isDatasetEmpty, isSupportedRedisVersion, type RedisInfo } from "../redis/info.ts";
import type { RedisObserver } from "../redis/observer.ts";
import type { FailoverOutcome, LeaderSourcePort, RedisObserverPort } from "./loop.ts";
import type { RedisActuator, RedisCommandPort } from "./apply/redis_actuator.ts";
import { toRedisView } from "./watch/redis_view.ts";

/** The observer as the loop reads it; `agentPort` is the port of REDIS_ADDR. */
export function observerPort(observer: RedisObserver, agentPort: number): RedisObserverPort {
  return {
    current: () => toRedisView(observer.current(), agentPort),
    onChange: (listener) => observer.onChange(() => listener()),
    refresh: () => observer.refresh(),
    observedAt: () => {
      const current = observer.current();
      return current.kind === "up" ? current.observedAt : undefined;
    },
  };
}

/** The local Redis's run_id as last observed; undefined while it is not up. */
export function observedRunId(observer: RedisObserver): string | undefined {
  const current = observer.current();
  return current.kind === "up" ? current.info.runId : undefined;
}

/**
 * The leader whose offset the lag probe reads: the one the local Redis replicates from, while it is
 * a replica of another node.
 */
export function followedLeader(
  observer: RedisObserver,
  leaderSource: Pick<LeaderSourcePort, "leader">,
  self: HostPort,
): () => HostPort | undefined {
  return () => {
    const leader = leaderSource.leader();
    const current = observer.current();
    const replica = current.kind === "up" && current.info.role === "replica";
    return replica && leader && !sameHostPort(leader.address, self) ? leader.address : undefined;
  };
}

/** The commands the actuator sends, through the agent's commander. */
export function commandPort(commander: RedisCommander): RedisCommandPort {
  return {
    promote: () => commander.promote(),
    detach: () => commander.detach(),
    replicateFrom: async (master) => {
      await commander.replicateFrom(master);
    },
    pauseWrites: (ms) => commander.pauseWrites(ms),
    unpauseWrites: () => commander.unpauseWrites(),
  };
}

/** A switchover's handover: FAILOVER to `target`, then follow it. */
export function failoverPort(
  commander: RedisCommander,
): (target: HostPort, timeoutMs: Milliseconds) => Promise<FailoverOutcome> {
  return async (target, timeoutMs) => {
    const result = await commander.failoverTo(target, timeoutMs);
    if (result.outcome !== "completed") return { ok: false, reason: result.reason };
    // Already a replica of the target: this only disconnects clients so they look it up again.
    await commander.replicateFrom(target);
    return { ok: true, durationMs: result.durationMs };
  };
}

/** Points a former master at `self` through a short-lived connection of its own. */
export async function fencePeer(
  config: Pick<Config, "redis" | "healthcheckTimeoutMs">,
  logger: Logger,
  peer: HostPort,
  self: HostPort,
): Promise<void> {
  const commander = new RedisCommander({
    connection: { ...config.redis, host: peer.host, port: peer.port },
    timeoutMs: config.healthcheckTimeoutMs,
    logger: logger.child("redis"),
  });
  try {
    await commander.replicateFrom(self);
    // Its agent may have fenced it on a graceful stop: a replica now, it must not stay paused (it
    // would hold writes for the rest of that minute if it were promoted again).
    await commander.unpauseWrites();
  } finally {
    await commander.close();
  }
}

/** A master-role Redis with no keys, not loading: one the agent points at itself at start. */
function isEmptyMaster(info: RedisInfo): boolean {
  return info.role === "master" && !info.loading && isDatasetEmpty(info);
}

/** Detaches an empty master at start; false when Redis refused (the loop tries again later). */
async function detachAtStart(
  commander: RedisCommander,
  log: Logger,
  detach: () => Promise<unknown>,
): Promise<boolean> {
  log.warn("an empty master at start: pointing Redis at itself until the election", {
    address: commander.address,
  });
  try {
    await detach();
    return true;
  } catch (error) {
    if (!(error instanceof RedisError)) throw error;
    log.warn("cannot detach the empty master at start; the agent's loop tries again", { error });
    return false;
  }
}

/**
 * Before the agent asks Consul anything (placing the node needs Consul, which may be out of reach for
 * as long as a reboot takes): points an empty master at itself (see `inspectRedis`). A Redis that
 * does not answer yet is left for later.
 */
export async function detachEmptyMasterEarly(
  commander: RedisCommander,
  logger: Logger,
): Promise<void> {
  const log = logger.child("redis");
  let info;
  try {
    info = await commander.info();
  } catch (error) {
    if (!(error instanceof RedisError)) throw error;
    log.debug("Redis does not answer yet at start", { error });
    return;
  }
  // A Redis resec does not manage is never commanded: the lifecycle refuses to start beside it.
  if (!isSupportedRedisVersion(info.redisVersion)) return;
  if (isEmptyMaster(info)) await detachAtStart(commander, log, () => commander.detach());
}

/**
 * One look at Redis before anything else: refuse a version resec cannot manage or an ACL user that may
 * not run the commands resec changes Redis with, lift a write pause an earlier run left on a Redis
 * that is a replica now, and detach an empty master (below). A Redis that does not answer yet is left
 * to the observer, which reports a too old one as down. Returns the role Redis has (undefined when it
 * did not answer).
 *
 * An empty master-role Redis at start may be the master's, back from a reboot without its data, while
 * replicas still follow its address (Consul's session outlives the reboot, or Consul is out of
 * reach): they would full-sync its emptiness. It is pointed at itself at once (lib/redis/self_loop.ts),
 * which drops their links and refuses them any sync, before the agent even asks Consul; the election
 * later promotes it again if it is the best (a new group, where every Redis is empty).
 *
 * @throws {RedisVersionError} when Redis answers and is older than 6.2, or names no version
 * @throws {RedisMissingPermissionError} when Redis answers NOPERM to a command resec needs
 */
export async function inspectRedis(
  commander: RedisCommander,
  actuator: RedisActuator,
  logger: Logger,
  now: number,
): Promise<RedisInfo["role"] | undefined> {
  const log = logger.child("redis");
  let info;
  let permissions;
  try {
    info = await commander.info();
    if (!isSupportedRedisVersion(info.redisVersion)) {
      throw new RedisVersionError(commander.address, info.redisVersion);
    }
    permissions = await commander.checkPermissions();
  } catch (error) {
    if (!(error instanceof RedisError) || error instanceof RedisVersionError) throw error;
    if (isPermissionDenied(error)) {
      const refused = error.command ?? "info";
      throw new RedisMissingPermissionError(commander.address, commander.username, [refused]);
    }
    log.debug("Redis does not answer yet at start", { error });
    return undefined;
  }
  if (permissions.denied.length > 0) {
    throw new RedisMissingPermissionError(
      commander.address,
      commander.username,
      permissions.denied,
    );
  }
  if (permissions.unchecked.length > 0 && info.role !== "replica") {
    log.warn("cannot check at start whether Redis lets the agent run these commands", {
      commands: permissions.unchecked,
      reason: "checking CLIENT UNPAUSE without running it needs MULTI",
    });
  }
  if (isEmptyMaster(info)) {
    const detached = await detachAtStart(
      commander,
      log,
      () => actuator.apply({ kind: "detach" }, now),
    );
    if (detached) return "replica";
  }
  if (info.role !== "replica") return info.role;
  try {
    await actuator.liftLeftoverPause();
  } catch (error) {
    if (isPermissionDenied(error)) {
      throw new RedisMissingPermissionError(commander.address, commander.username, [
        "client|unpause",
      ]);
    }
    if (!(error instanceof RedisError)) throw error;
    log.warn("cannot lift a write pause left on the replica", { error });
  }
  return info.role;
}
