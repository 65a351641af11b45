/**
 * Turns the Redis observer's observation into the reconciler's RedisView: only what decisions use.
 */
import type { RedisView } from "../../reconciler/model.ts";
import {
  RedisAuthError,
  RedisCommandError,
  type RedisError,
  RedisTimeoutError,
  RedisTlsError,
} from "../../redis/errors.ts";
import type { RedisObservation } from "../../redis/observer.ts";
import { isSelfLoop } from "../../redis/self_loop.ts";

/**
 * Maps one observation; a Redis whose INFO names no role we understand counts as down. `agentPort` is
 * the port the agent reaches Redis on (a replica pointed at itself names it when Redis has no
 * plaintext port; lib/redis/self_loop.ts).
 *
 * @example
 * ```ts
 * toRedisView({ kind: "unknown" }, 6379); // { kind: "unknown" }
 * ```
 */
export function toRedisView(observation: RedisObservation, agentPort: number): RedisView {
  if (observation.kind === "unknown") return { kind: "unknown" };
  if (observation.kind === "down") {
    return {
      kind: "down",
      reason: observation.reason,
      since: observation.since,
      ...(mayServe(observation.error) ? { mayServe: true } : {}),
    };
  }
  const info = observation.info;
  if (info.role === undefined) {
    return { kind: "down", reason: "INFO reports no role this agent understands" };
  }
  const isReplica = info.role === "replica";
  const master = isReplica && info.masterHost !== undefined && info.masterPort !== undefined
    ? { host: info.masterHost, port: info.masterPort }
    : undefined;
  const downSince = info.masterLinkDownSinceSeconds;
  const linkDownMs = !isReplica || info.masterLinkUp || downSince === undefined
    ? undefined
    : downSince === "never"
    ? "never" as const
    : downSince * 1_000;
  return {
    kind: "up",
    role: info.role,
    loading: info.loading,
    ...(master ? { master } : {}),
    detached: isSelfLoop(master, info.tcpPort, agentPort),
    linkUp: isReplica && info.masterLinkUp,
    ...(linkDownMs !== undefined ? { linkDownMs } : {}),
    syncInProgress: info.masterSyncInProgress,
    offset: (isReplica ? info.slaveReplOffset : undefined) ?? info.masterReplOffset ?? 0,
    replicationId: info.masterReplId ?? "",
    replicationId2: info.masterReplId2 ?? "",
    connectedReplicas: info.connectedReplicas,
    datasetEmpty: observation.datasetEmpty,
    priority: observation.replicaPriority,
    runId: info.runId ?? "",
  };
}

/**
 * True when a Redis that failed this way may still serve other clients: it did not answer in time, or
 * refused our credentials, our TLS or a command. A refused or broken connection means it is gone.
 */
export function mayServe(error: RedisError): boolean {
  return error instanceof RedisTimeoutError || error instanceof RedisAuthError ||
    error instanceof RedisCommandError || error instanceof RedisTlsError;
}
