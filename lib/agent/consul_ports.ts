/**
 * The agent's parts reach Consul through small ports; these bind them to a ConsulClient. One catalog
 * adapter registers both the role service and the presence service.
 */
import type { Clock } from "../clock.ts";
import { encodeLeaderAnnouncement, GO_RESEC_LOCK_FLAGS } from "../cluster/lock_value.ts";
import type { Config } from "../config.ts";
import { ConsulClient, type ConsulRequestEvent } from "../consul/client.ts";
import { ConsulPermissionDeniedError } from "../consul/errors.ts";
import { nodeGossipHealth } from "../consul/health.ts";
import { ConsulLock } from "../consul/lock.ts";
import { RequestGate } from "../consul/request_gate.ts";
import {
  deregisterService,
  isUnknownToAgent,
  registerService,
  updateCheck,
} from "../consul/service.ts";
import { destroySession, sessionInfo } from "../consul/session.ts";
import type { Logger } from "../log.ts";
import type { HolderHostPort } from "./watch/holder_watch.ts";
import { LockDriver } from "./apply/lock_driver.ts";
import type { PresencePort } from "./apply/presence.ts";
import type { CatalogPort } from "./apply/registrar.ts";
import { consulRequestTimeoutMs, HOLDER_WAIT_MS } from "./timings.ts";

/** Transient monitor failures tolerated in failsafe mode: as many as the outage lasts. */
export const FAILSAFE_MONITOR_RETRIES = Number.MAX_SAFE_INTEGER;
/** The agent's Consul client: every request is reported to `onRequest` (the metrics count them). */
export function agentConsulClient(
  config: Config,
  options: { clock: Clock; logger: Logger; onRequest: (event: ConsulRequestEvent) => void },
): ConsulClient {
  return new ConsulClient({
    connection: config.consul,
    // One short request at a time beside the blocking queries: three connections to Consul.
    fetch: new RequestGate((input, init) => fetch(input, init)).fetch,
    clock: options.clock,
    logger: options.logger,
    requestTimeoutMs: consulRequestTimeoutMs(config),
    onRequest: options.onRequest,
  });
}

/** The local Consul agent's service endpoints: the one adapter both registrations go through. */
export function catalogPort(consul: ConsulClient): CatalogPort {
  return {
    register: (definition) => registerService(consul, definition),
    updateCheck: (checkId, status, output) => updateCheck(consul, checkId, status, output),
    deregister: (id) => deregisterService(consul, id),
    isUnknownCheck: isUnknownToAgent,
  };
}

/** The catalog as the presence uses it: its check is only ever beaten passing. */
export function presencePort(consul: ConsulClient): PresencePort {
  const catalog = catalogPort(consul);
  return {
    ...catalog,
    beat: (checkId, output) => catalog.updateCheck(checkId, "passing", output),
    isPermissionDenied: (error) => error instanceof ConsulPermissionDeniedError,
  };
}

/** What the holder watch reads: the holder's session node and that node's gossip health. */
export function holderPort(consul: ConsulClient): HolderHostPort {
  return {
    sessionNode: async (session, signal) => (await sessionInfo(consul, session, { signal }))?.node,
    gossipHealth: (node, options) => nodeGossipHealth(consul, node, options),
    endSession: (session) => destroySession(consul, session),
  };
}

/**
 * The lock on CONSUL_LOCK_KEY, its sessions tied to `serviceChecks` (the agent check), its value
 * announcing this node and the run_id of its Redis (`runId`).
 */
export function agentLockDriver(
  config: Config,
  consul: ConsulClient,
  options: {
    serviceChecks: () => string[];
    runId: () => string | undefined;
    onChange: () => void;
    /** Called each time a failed acquire makes the driver wait before competing again. */
    onBackoff: () => void;
    clock: Clock;
    logger: Logger;
  },
): LockDriver {
  const { clock, logger } = options;
  const lock = new ConsulLock({
    client: consul,
    key: config.lock.key,
    sessionName: config.lock.sessionName,
    ttlMs: config.lock.ttlMs,
    lockDelayMs: config.lock.delayMs,
    nodeChecks: [...config.lock.nodeChecks],
    serviceChecks: options.serviceChecks,
    // In failsafe mode the peers' grants, not Consul, bound how long an unconfirmed lock may take
    // writes: the monitor keeps retrying an unreachable Consul (a quorum loss answers "No cluster
    // leader" at once, which would use up CONSUL_LOCK_MONITOR_RETRIES within seconds) and gives the
    // lock up only when Consul says the session is gone.
    monitorRetries: config.failsafe ? FAILSAFE_MONITOR_RETRIES : config.lock.monitorRetries,
    monitorRetryIntervalMs: config.lock.monitorRetryIntervalMs,
    waitMs: HOLDER_WAIT_MS,
    // The Go resec's lock helper refuses a key carrying other flags: writing its value keeps a
    // mixed cluster (mid-migration) contending on one lock.
    flags: GO_RESEC_LOCK_FLAGS,
    clock,
    logger,
  });
  return new LockDriver({
    lock,
    value: (epoch) =>
      encodeLeaderAnnouncement({
        address: config.announce,
        agent: config.lock.sessionName,
        runId: options.runId(),
        now: clock.wallNow(),
        epoch,
      }),
    runId: options.runId,
    onChange: options.onChange,
    onError: (error, retryInMs) => {
      logger.warn("competing for the lock failed; trying again", { error, retryInMs });
      options.onBackoff();
    },
    logger,
    clock,
  });
}
