/**
 * `resec list`'s reads: one KV listing under the lock key and the health of the role and agent
 * services, all in parallel, through lib/consul/. Needs only read permissions (see docs/list.md).
 */
import type { Config } from "../config.ts";
import type { ConsulClient } from "../consul/client.ts";
import { type HealthEntry, healthService } from "../consul/health.ts";
import { listPrefix } from "../consul/kv.ts";
import { agentTimings } from "../agent/timings.ts";
import { masterServiceQuery, presenceServiceName, slaveServiceQuery } from "../cluster/services.ts";
import type { GroupRecords, ListSettings } from "./model.ts";

/** The election settings the agents of this configuration apply, for the verdict. */
export function listSettings(config: Config): ListSettings {
  const { election } = agentTimings(config);
  return { maxLagBytes: election.maxLagBytes, staleAfterMs: election.staleAfterMs };
}

/**
 * Reads what Consul holds for the group of `config.lock.key`; the read time comes from the client's
 * clock.
 *
 * @throws {ConsulError} when Consul cannot be read (unreachable, refused by ACL, …)
 */
export async function readGroupRecords(
  client: ConsulClient,
  config: Config,
  options: { signal?: AbortSignal } = {},
): Promise<GroupRecords> {
  const { signal } = options;
  const lockKey = config.lock.key;
  const master = masterServiceQuery(config);
  const slave = slaveServiceQuery(config);
  const agentName = presenceServiceName(config);
  const health = (name: string) =>
    healthService(client, name, { checkOutput: true, signal }).then((result) => result.entries);
  // The listing covers the pause, switchover and candidates keys too: they all start with the lock
  // key. In tag mode both roles are one service, told apart by their tags.
  const [kv, masterEntries, slaveEntries, agents] = await Promise.all([
    listPrefix(client, lockKey, { signal }),
    health(master.name),
    slave.name === master.name ? Promise.resolve(undefined) : health(slave.name),
    health(agentName),
  ]);
  const tagged = (entries: HealthEntry[], tag: string | undefined) =>
    tag === undefined ? entries : entries.filter((entry) => entry.tags.includes(tag));
  const masters = tagged(masterEntries, master.tag);
  const slaves = slaveEntries ?? masterEntries.filter((entry) => !masters.includes(entry));
  return {
    lockKey,
    entries: kv.entries,
    masters,
    slaves: tagged(slaves, slave.tag),
    agents,
    readAt: client.clock.wallNow(),
  };
}
