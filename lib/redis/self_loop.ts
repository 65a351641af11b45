/**
 * A replica pointed at itself: how a replica waits out a vacancy. `REPLICAOF 127.0.0.1 <own port>`
 * leaves the Redis a read-only replica that keeps its data, its replication ID and its offset. Its
 * link never comes up (syncing from itself, it answers itself -NOMASTERLINK, as it answers any replica
 * following it), so a former master that comes back empty cannot wipe it, and it never takes writes,
 * even if its agent dies. `REPLICAOF NO ONE` would start a new replication ID, and every replica would
 * then need a full sync from the new master instead of a partial one.
 */
import { type HostPort, sameHostPort } from "../address.ts";

/**
 * Loopback: the address that reaches this Redis from its own host whatever it announces. When it does
 * not listen there (another `bind`, TLS only), the connection is refused, which is as good: no link.
 */
export const SELF_LOOP_HOST = "127.0.0.1";

/**
 * Where a replica is pointed to wait: its own plaintext port (INFO `tcp_port`), or, for a Redis that
 * has none (`port 0`, TLS only), the port the agent reaches it on.
 *
 * @example
 * ```ts
 * selfLoopTarget(6379, 6379); // { host: "127.0.0.1", port: 6379 }
 * ```
 */
export function selfLoopTarget(tcpPort: number | undefined, agentPort: number): HostPort {
  return { host: SELF_LOOP_HOST, port: tcpPort !== undefined && tcpPort > 0 ? tcpPort : agentPort };
}

/**
 * True when a replica's master is its own self-loop target (see `selfLoopTarget`).
 *
 * @example
 * ```ts
 * isSelfLoop({ host: "127.0.0.1", port: 6379 }, 6379, 6379); // true
 * ```
 */
export function isSelfLoop(
  master: HostPort | undefined,
  tcpPort: number | undefined,
  agentPort: number,
): boolean {
  return master !== undefined && sameHostPort(master, selfLoopTarget(tcpPort, agentPort));
}
