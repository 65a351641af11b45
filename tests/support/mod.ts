/**
 * The test bed: real Consul and redis-server processes on free loopback ports, always stopped.
 *
 * @example
 * ```ts
 * await using consul = await ConsulServer.start();
 * await using redis = await RedisServer.start();
 * ```
 */
export { consulBinary, type ConsulOptions, ConsulServer } from "./consul.ts";
export { RedisServer, type RedisServerOptions } from "./redis.ts";
export { type CommandResult, ManagedProcess, runCommand } from "./process.ts";
export { freePort } from "./ports.ts";
export { delay, GiveUpError, waitFor, type WaitOptions } from "./wait.ts";
export { makeServerDir, testRunDir } from "./tmp.ts";
export { agentCommand, AgentProcess, type AgentProcessOptions } from "./agent.ts";
export {
  Cluster,
  type ClusterNode,
  type ClusterOptions,
  ESCAPED_ERROR,
  FAST_AGENT_ENV,
  withCluster,
} from "./cluster.ts";
export { type ServerLaunch, TestServer } from "./server.ts";
export { TcpProxy } from "./proxy.ts";
export { ContinuousWriter, type WriterReport } from "./writer.ts";
