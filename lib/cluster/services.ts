/**
 * The services resec keeps in the Consul catalog: this node's role service (`<prefix>-master` /
 * `-slave`, or one name told apart by tags) with its replication check, and the agent's presence
 * service (`<name>-agent`) whose check the lock sessions are tied to. IDs follow the Go resec's, so a
 * mixed cluster (mid-migration) sees one service per node.
 */
import { formatHostPort, isLoopbackHost } from "../address.ts";
import { announcesNodeAddress, type Config } from "../config.ts";
import type { ServiceDefinition } from "../consul/service.ts";
import type { Milliseconds } from "../duration.ts";
import type { CheckStatus, Role } from "../reconciler/model.ts";
import { VERSION } from "../version.ts";

/**
 * The Service.Meta key (the agent's version) on every service a resec agent registers. A resec agent
 * always announces itself in the lock value while it holds the lock, so a master entry carrying this
 * key is never the master of a holder that announced nothing (a Go resec): see leader_source.ts.
 */
export const RESEC_META_KEY = "resec_version";

/** The parts of the configuration the service names and IDs follow from. */
type ServiceConfig = Pick<Config, "announce" | "announceFromEnv" | "redis" | "service">;

/**
 * The Address field of the service registrations: omitted when the node's address is announced (Consul
 * then uses it, as for the Go resec) or the announce address is loopback; else the announce host.
 *
 * @example
 * ```ts
 * announcedServiceAddress(config); // undefined for REDIS_ADDR 127.0.0.1:6379: Consul uses the node's
 * ```
 */
export function announcedServiceAddress(
  config: Pick<Config, "announce" | "announceFromEnv" | "redis">,
): string | undefined {
  return announcesNodeAddress(config) || isLoopbackHost(config.announce.host)
    ? undefined
    : config.announce.host;
}

/**
 * The address part of service and check IDs, as the Go resec builds it: `:6379` when the node's address
 * is announced (so IDs stay the same across hosts and across a migration), else `host:port`. Consul keys
 * services and checks by node, so equal IDs on different hosts never collide.
 *
 * @example
 * ```ts
 * serviceIdAddress(config); // ":6379" for REDIS_ADDR 127.0.0.1:6379 (the node's address announced)
// "10.0.0.5:6379" for ANNOUNCE_ADDR 10.0.0.5:6379
 * ```
 */
export function serviceIdAddress(
  config: Pick<Config, "announce" | "announceFromEnv" | "redis">,
): string {
  return announcesNodeAddress(config)
    ? `:${config.announce.port}`
    : formatHostPort(config.announce);
}

/**
 * The service ID: `<service name or prefix>@<address part>` (see `serviceIdAddress`).
 *
 * @example
 * ```ts
 * serviceId(config); // "redis@:6379" with the default prefix and a loopback REDIS_ADDR
 * ```
 */
export function serviceId(config: ServiceConfig): string {
  const base = config.service.mode === "tags" ? config.service.name : config.service.prefix;
  return `${base}@${serviceIdAddress(config)}`;
}

/**
 * The Consul service definition for this node in a role, its check in `status` at once (a promotion
 * never flaps through "warning").
 *
 * @example
 * ```ts
 * await registerService(client, serviceDefinition(config, timings, "master", "passing", "master"));
 * ```
 */
export function serviceDefinition(
  config: ServiceConfig & Pick<Config, "deregisterServiceAfterMs">,
  timings: { readonly checkTtlMs: Milliseconds },
  role: Role,
  status: CheckStatus,
  output: string,
): ServiceDefinition {
  const id = serviceId(config);
  const naming = config.service;
  const address = announcedServiceAddress(config);
  return {
    id,
    name: naming.mode === "tags" ? naming.name : `${naming.prefix}-${role}`,
    tags: [...(role === "master" ? naming.masterTags : naming.slaveTags)],
    meta: { [RESEC_META_KEY]: VERSION },
    ...(address !== undefined ? { address } : {}),
    port: config.announce.port,
    check: {
      id: `${id}:replication-status-check`,
      name: `Resec: ${role} replication status`,
      ttlMs: timings.checkTtlMs,
      deregisterCriticalAfterMs: config.deregisterServiceAfterMs,
      initialStatus: status,
      // A host back from a reboot must not be listed as the master it was: its Consul agent
      // restores this status, and resec sets the live one at once.
      persistedStatus: "critical",
      output,
    },
  };
}

/**
 * The name of the agent's presence service: `<service name or prefix>-agent`.
 *
 * @example
 * ```ts
 * presenceServiceName(config); // "redis-agent" with the default prefix
 * ```
 */
export function presenceServiceName(config: Pick<Config, "service">): string {
  const naming = config.service;
  return `${naming.mode === "tags" ? naming.name : naming.prefix}-agent`;
}

/**
 * The agent's presence service (`<name>-agent`, inside the ACL prefix the role services need) and the
 * check its lock sessions are tied to, registered passing.
 *
 * @example
 * ```ts
 * await registerService(client, presenceDefinition(config, timings));
 * ```
 */
export function presenceDefinition(
  config: ServiceConfig & Pick<Config, "deregisterServiceAfterMs">,
  timings: { readonly agentCheckTtlMs: Milliseconds },
): ServiceDefinition {
  const name = presenceServiceName(config);
  const id = `${name}@${serviceIdAddress(config)}`;
  const address = announcedServiceAddress(config);
  return {
    id,
    name,
    tags: [],
    meta: { [RESEC_META_KEY]: VERSION },
    ...(address !== undefined ? { address } : {}),
    port: config.announce.port,
    check: {
      id: `${id}:alive`,
      name: "Resec: agent alive",
      ttlMs: timings.agentCheckTtlMs,
      deregisterCriticalAfterMs: config.deregisterServiceAfterMs,
      initialStatus: "passing",
      output: `resec ${VERSION} manages the Redis at ${formatHostPort(config.announce)}`,
    },
  };
}

/** A catalog query for one role's services: by name, and by tag when the name is shared. */
export interface ServiceQuery {
  readonly name: string;
  readonly tag?: string;
}

/**
 * Where the slave services live in the catalog: by name, or by the first slave tag if any.
 *
 * @example
 * ```ts
 * const { name, tag } = slaveServiceQuery(config); // { name: "redis-slave" } in prefix mode
 * const { entries } = await healthService(client, name, { tag, passing: true });
 * ```
 */
export function slaveServiceQuery(config: Pick<Config, "service">): ServiceQuery {
  const naming = config.service;
  if (naming.mode === "prefix") return { name: `${naming.prefix}-slave` };
  const tag = naming.slaveTags[0];
  return tag === undefined ? { name: naming.name } : { name: naming.name, tag };
}

/**
 * Where the master service lives in the catalog (the leader fallback reads it).
 *
 * @example
 * ```ts
 * masterServiceQuery(config); // { name: "redis-master" } in prefix mode
 * ```
 */
export function masterServiceQuery(config: Pick<Config, "service">): ServiceQuery {
  return config.service.mode === "tags"
    ? { name: config.service.name, tag: config.service.masterTags[0] }
    : { name: `${config.service.prefix}-master` };
}
