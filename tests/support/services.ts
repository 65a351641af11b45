/**
 * Service definitions as Consul-layer tests register them by hand, for a Redis at 127.0.0.1:6379.
 */
import type { ServiceDefinition } from "../../lib/consul/service.ts";

/** The master's role service with its replication check, still in "warning". */
export function masterService(): ServiceDefinition {
  return {
    id: "redis@127.0.0.1:6379",
    name: "redis-master",
    tags: ["master"],
    address: "127.0.0.1",
    port: 6379,
    check: {
      id: "redis@127.0.0.1:6379:replication",
      name: "Resec: master replication status",
      ttlMs: 30_000,
      deregisterCriticalAfterMs: 3_600_000,
      initialStatus: "warning",
    },
  };
}

/** The agent's presence service (lib/agent/apply/presence.ts), its TTL check passing. */
export function presenceService(checkTtlMs: number): ServiceDefinition {
  const id = "redis-agent@127.0.0.1:6379";
  return {
    id,
    name: "redis-agent",
    tags: [],
    port: 6379,
    check: {
      id: `${id}:alive`,
      name: "Resec: agent alive",
      ttlMs: checkTtlMs,
      deregisterCriticalAfterMs: 3_600_000,
      initialStatus: "passing",
      output: "alive",
    },
  };
}
