/**
 * The multi-host bed: real machines made of Linux network namespaces on one bridge (198.18.0.0/24,
 * nothing routed from the root namespace), with a 3-server Consul cluster, application hosts that each
 * run a Consul client agent, redis-server and resec with its defaults, client machines for a workload,
 * and real faults: host kills and reboots, pulled cables, Consul cuts, server kills.
 *
 * The test process observes everything through unix sockets (Consul's HTTP API, Redis), which are not
 * network-namespaced. Needs root and iproute2 (nftables for Consul cuts); elsewhere `Bed.start` throws
 * BedUnavailableError, so the tests fail with a reason instead of being skipped.
 *
 * @example
 * ```ts
 * await using bed = await Bed.start({ hosts: 3, resecEnv: { LOG_LEVEL: "debug" } });
 * const writer = bed.startWriter();
 * const master = await bed.waitForMaster();
 * await bed.linkDown(master);
 * await bed.waitForMaster({ exclude: master });
 * const report = await writer.stop();
 * ```
 */
export { Bed, type BedAgent, type BedOptions, type BedServiceInstance } from "./bed.ts";
export { BedConsulMachine, BedHost } from "./host.ts";
export { BedConsulAgent, ConsulApiError, ConsulSocket } from "./consul.ts";
export { BedRedis, REDIS_PORT } from "./redis.ts";
export { type BedAgentLaunch, BedResec } from "./resec.ts";
export { BedWriter, type BedWriterOptions, type BedWriterReport, WRITER_KEY } from "./writer.ts";
export type { WriterEvent } from "./client.ts";
export { BED_SUBNET, BedNetwork, type Machine, machineIp, type MachineKind } from "./network.ts";
export { CONSUL_CLUSTER_PORTS, consulCutRuleset } from "./firewall.ts";
export {
  BED_NAMESPACE_PREFIX,
  BedUnavailableError,
  listNamespaces,
  namespacePids,
} from "./netns.ts";
export { BED_STATE_DIR, cleanStaleBeds, readRecords } from "./registry.ts";
