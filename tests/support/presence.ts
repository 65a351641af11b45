/**
 * The agent's presence service (lib/agent/presence.ts) as Consul-layer tests register it by hand:
 * `redis-agent` for a Redis at 127.0.0.1:6379, with its TTL check passing.
 */
import type { ServiceDefinition } from "../../lib/consul/service.ts";

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
