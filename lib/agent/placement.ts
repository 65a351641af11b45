/**
 * Where this agent runs, settled once at start: the Consul node it talks to (whose sessions are its own
 * to clean up) and the address its Redis is announced at.
 *
 * With a loopback REDIS_ADDR and no ANNOUNCE_ADDR (the default on every host), the Redis is announced at
 * the address the local Consul agent advertises, as the Go resec lets Consul fill in the node's address.
 * Announcing 127.0.0.1 instead would make every host claim the same address.
 */
import { ResecError } from "../errors.ts";
import { formatHostPort, type HostPort, isUnspecifiedHost } from "../address.ts";
import { backoffDelay, type BackoffPolicy } from "../backoff.ts";
import { type Clock, systemClock } from "../clock.ts";
import { announcesNodeAddress, type Config } from "../config.ts";
import type { ConsulClient } from "../consul/client.ts";
import { isTransientConsulError } from "../consul/errors.ts";
import { type ConsulNode, localNode } from "../consul/node.ts";
import type { Logger } from "../log.ts";

/** This agent's place in the cluster. */
export interface Placement {
  /** The Consul node name of the local agent. */
  readonly node: string;
  /** The address other hosts and clients reach this Redis at. */
  readonly announce: HostPort;
}

/** No address can be announced safely: the agent refuses to start (exit 2). */
export class AnnounceAddressError extends ResecError {
  override name = "AnnounceAddressError";
}

/** An IPv4 or IPv6 address or a DNS name: what Consul's `advertise_addr` may hold. */
const DIALLABLE_HOST =
  /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*)$/;

/** Retries while the local Consul agent is unreachable (it may start after resec does). */
const PLACEMENT_RETRY: BackoffPolicy = { initialMs: 250, maxMs: 5_000 };

/**
 * The address to announce for a node (pure).
 *
 * @throws {AnnounceAddressError} when the node's address is needed but cannot be dialled by peers.
 * @example
 * ```ts
 * announceAddress(config, { name: "web-1", address: "10.0.0.5" }); // { host: "10.0.0.5", port: 6379 }
 * ```
 */
export function announceAddress(
  config: Pick<Config, "announce" | "announceFromEnv" | "redis">,
  node: ConsulNode,
): HostPort {
  if (!announcesNodeAddress(config)) return config.announce;
  const host = node.address.trim();
  if (!DIALLABLE_HOST.test(host) || isUnspecifiedHost(host)) {
    throw new AnnounceAddressError(
      `Cannot announce the Redis at REDIS_ADDR ${formatHostPort(config.redis)}: it is reachable ` +
        `from this host only, and the local Consul agent (node "${node.name}") advertises no usable ` +
        `address ("${node.address}"). Set ANNOUNCE_ADDR to the address other hosts reach this Redis at`,
    );
  }
  return { host, port: config.announce.port };
}

export interface ResolvePlacementOptions {
  client: ConsulClient;
  config: Config;
  logger: Logger;
  /** Ends the wait for an unreachable Consul agent (a stop signal). */
  signal?: AbortSignal;
  clock?: Clock;
}

/**
 * Asks the local Consul agent for its node, retrying while it is unreachable, and settles the
 * announce address.
 *
 * @throws {AnnounceAddressError} no safe address to announce.
 * @throws {ConsulError} a non-transient Consul refusal (a token that may read neither the agent nor
 * the node).
 */
export async function resolvePlacement(options: ResolvePlacementOptions): Promise<Placement> {
  const { client, config, logger } = options;
  const clock = options.clock ?? systemClock;
  for (let attempt = 1;; attempt++) {
    try {
      const node = await localNode(client, {
        probeSession: { name: config.lock.sessionName, ttlMs: config.lock.ttlMs },
        signal: options.signal,
      });
      const announce = announceAddress(config, node);
      logger.info("placed", {
        node: node.name,
        announce: formatHostPort(announce),
        from: config.announceFromEnv
          ? "ANNOUNCE_ADDR"
          : announcesNodeAddress(config)
          ? "the Consul node's address"
          : "REDIS_ADDR",
      });
      return { node: node.name, announce };
    } catch (error) {
      if (!isTransientConsulError(error) || options.signal?.aborted) throw error;
      const waitMs = backoffDelay(PLACEMENT_RETRY, attempt);
      logger.warn("waiting for the local Consul agent to name this node", {
        attempt,
        retryInMs: waitMs,
        error,
      });
      await clock.sleep(waitMs, options.signal);
    }
  }
}
