/**
 * Registering a service with the local Consul agent, with a TTL check the agent heartbeats. A
 * restarted agent (a dev agent, or one without persistent state) forgets both: callers tell that by
 * `isUnknownToAgent` and register again.
 */
import { consulDuration, type Milliseconds } from "../duration.ts";
import type { ConsulClient } from "./client.ts";
import { encodePath } from "./client.ts";
import { ConsulHttpError } from "./errors.ts";
import type { CheckStatus } from "./health.ts";

export interface ServiceCheckDefinition {
  id: string;
  name: string;
  /** The check turns critical when not updated within this time. */
  ttlMs: Milliseconds;
  /** Consul removes the service after its check stayed critical this long. */
  deregisterCriticalAfterMs: Milliseconds;
  initialStatus: CheckStatus;
  /**
   * The status written into the registration itself, when it differs from `initialStatus` (which a
   * second request then sets). A Consul agent that restarts after the check's TTL restores the
   * registration's status: "critical" keeps a host that reboots from being listed as it was.
   */
  persistedStatus?: CheckStatus;
  /** Initial output; sent by a second request, as registration cannot carry it. */
  output?: string;
  notes?: string;
}

export interface ServiceDefinition {
  id: string;
  name: string;
  tags: string[];
  /** Omit to let Consul use the node's address. */
  address?: string;
  port: number;
  meta?: Record<string, string>;
  check: ServiceCheckDefinition;
  signal?: AbortSignal;
}

/**
 * Registers (or replaces) a service and its TTL check in one request; checks the service had before
 * and no longer declares are dropped.
 *
 * @example
 * ```ts
 * await registerService(client, {
 *   id: "redis@10.0.0.5:6379", name: "redis", tags: ["master"], port: 6379,
 *   check: { id: "redis@10.0.0.5:6379:replication", name: "Replication", ttlMs: 6_000,
 *            deregisterCriticalAfterMs: 72 * 3_600_000, initialStatus: "warning" },
 * });
 * ```
 */
export async function registerService(
  client: ConsulClient,
  service: ServiceDefinition,
): Promise<void> {
  const check: Record<string, unknown> = {
    CheckID: service.check.id,
    Name: service.check.name,
    TTL: consulDuration(service.check.ttlMs),
    DeregisterCriticalServiceAfter: consulDuration(service.check.deregisterCriticalAfterMs),
    Status: service.check.persistedStatus ?? service.check.initialStatus,
  };
  if (service.check.notes !== undefined) check.Notes = service.check.notes;
  const body: Record<string, unknown> = {
    ID: service.id,
    Name: service.name,
    Tags: service.tags,
    Port: service.port,
    Check: check,
  };
  if (service.address !== undefined) body.Address = service.address;
  if (service.meta !== undefined) body.Meta = service.meta;
  await client.request({
    method: "PUT",
    path: "/v1/agent/service/register",
    endpoint: "agent.service.register",
    query: { "replace-existing-checks": true },
    datacenter: false,
    body,
    action: `registering service "${service.name}" (ID "${service.id}")`,
    signal: service.signal,
  });
  const persisted = service.check.persistedStatus ?? service.check.initialStatus;
  const output = service.check.output ?? "";
  if (output !== "" || persisted !== service.check.initialStatus) {
    await updateCheck(client, service.check.id, service.check.initialStatus, output, {
      signal: service.signal,
    });
  }
}

/** Consul's default cap on check output (`check_output_max_size`). */
export const CHECK_OUTPUT_MAX_BYTES = 4_096;

/** Room left under that cap, so output trimmed here is never cut again by Consul. */
const CHECK_OUTPUT_HEADROOM_BYTES = 96;

/**
 * Sets a TTL check's status and output (trimmed below Consul's 4 KB cap), which also resets its TTL.
 * Rejects with a ConsulNotFoundError when the agent does not know the check (see isUnknownToAgent).
 *
 * @example
 * ```ts
 * await updateCheck(client, "redis@:6379:replication-status-check", "passing", "master, 2 replicas");
 * ```
 */
export async function updateCheck(
  client: ConsulClient,
  checkId: string,
  status: CheckStatus,
  output: string,
  options: { signal?: AbortSignal } = {},
): Promise<void> {
  await client.request({
    method: "PUT",
    path: `/v1/agent/check/update/${encodePath(checkId)}`,
    endpoint: "agent.check.update",
    datacenter: false,
    body: { Status: status, Output: trimCheckOutput(output) },
    action: `updating check "${checkId}"`,
    signal: options.signal,
  });
}

/**
 * Removes a service and its checks from the local agent. An unknown ID is not an error.
 *
 * @example
 * ```ts
 * await deregisterService(client, "redis@:6379");
 * ```
 */
export async function deregisterService(
  client: ConsulClient,
  serviceId: string,
  options: { signal?: AbortSignal } = {},
): Promise<void> {
  await client.request({
    method: "PUT",
    path: `/v1/agent/service/deregister/${encodePath(serviceId)}`,
    endpoint: "agent.service.deregister",
    datacenter: false,
    acceptStatus: [404],
    action: `deregistering service "${serviceId}"`,
    signal: options.signal,
  });
}

/**
 * Removes a service of another node from the catalog, on the servers (`/v1/catalog/deregister`): for
 * a node whose agent is dead or cut off, and so cannot say the service is gone. Its agent registers
 * it again from its own state once it can reach the servers. The ACL token needs `node:write` on
 * that node besides `service:write`.
 *
 * @example
 * ```ts
 * await deregisterFromCatalog(client, "host-1", "redis@:6379");
 * ```
 */
export async function deregisterFromCatalog(
  client: ConsulClient,
  node: string,
  serviceId: string,
  options: { signal?: AbortSignal } = {},
): Promise<void> {
  await client.request({
    method: "PUT",
    path: "/v1/catalog/deregister",
    endpoint: "catalog.deregister",
    body: { Node: node, ServiceID: serviceId },
    action: `removing service "${serviceId}" of node "${node}" from the catalog`,
    signal: options.signal,
  });
}

/**
 * True when the agent does not know the check or service a request named: it restarted and forgot
 * it, or it was deregistered (DeregisterCriticalServiceAfter). Register again.
 *
 * @example
 * ```ts
 * await updateCheck(client, checkId, "passing", output).catch(async (error) => {
 *   if (!isUnknownToAgent(error)) throw error;
 *   await registerService(client, definition); // the agent restarted and forgot us
 * });
 * ```
 */
export function isUnknownToAgent(error: unknown): boolean {
  if (!(error instanceof ConsulHttpError)) return false;
  if (error.status === 404) return true;
  // Older agents answer 500 for a TTL update of an unknown check.
  return /does not have associated TTL|Unknown (check|service) ID/i.test(error.consulMessage);
}

/**
 * Cuts text to at most `maxBytes` UTF-8 bytes (never inside a character), marking the cut.
 *
 * @example
 * ```ts
 * trimCheckOutput("x".repeat(10_000)).length < 4_096; // true
 * ```
 */
export function trimCheckOutput(
  output: string,
  maxBytes = CHECK_OUTPUT_MAX_BYTES - CHECK_OUTPUT_HEADROOM_BYTES,
): string {
  const bytes = new TextEncoder().encode(output);
  if (bytes.length <= maxBytes) return output;
  const marker = `\n… (trimmed, ${bytes.length} bytes in all)`;
  let end = maxBytes - new TextEncoder().encode(marker).length;
  // Step back over UTF-8 continuation bytes (10xxxxxx) so no character is split.
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--;
  return new TextDecoder().decode(bytes.subarray(0, end)) + marker;
}
