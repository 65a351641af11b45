/**
 * The sandbox: a dev Consul, three Redis servers and three resec agents on this machine, all real
 * processes on free loopback ports. It prints the roles as they change; kill the master (press "k",
 * or `kill -9` its pid) to watch a failover. Ctrl-C stops everything.
 *
 * Run it with `./scripts/sandbox.sh` (installs what it needs first).
 */
import { AgentProcess, ConsulServer, RedisServer } from "../tests/support/mod.ts";

const NODES = 3;

interface Node {
  index: number;
  redis: RedisServer;
  agent: AgentProcess;
}

async function main(): Promise<void> {
  console.log("starting a dev Consul, 3 redis-servers and 3 resec agents …");
  const consul = await ConsulServer.start({ logLevel: "error" });
  const nodes: Node[] = [];
  for (let index = 0; index < NODES; index++) {
    const redis = await RedisServer.start();
    const agent = AgentProcess.start({
      label: `sandbox-agent-${index}`,
      env: {
        CONSUL_HTTP_ADDR: consul.address,
        REDIS_ADDR: redis.address,
        // The dev Consul lowers session_ttl_min to 1s, so the sandbox can fail over in seconds.
        CONSUL_SESSION_TTL_MIN: "1s",
        CONSUL_LOCK_TTL: "5s",
        HEALTHCHECK_INTERVAL: "1s",
        HEALTHCHECK_TIMEOUT: "1s",
      },
    });
    nodes.push({ index, redis, agent });
  }

  const stop = new AbortController();
  const cleanup = async () => {
    stop.abort();
    console.log("\nstopping agents, Redis servers and Consul …");
    await Promise.all(nodes.map((node) => node.agent.stop().catch(() => {})));
    await Promise.all(nodes.map((node) => node.redis.stop()));
    await consul.stop();
    console.log("all stopped; nothing left running.");
  };
  Deno.addSignalListener("SIGINT", () => {
    void cleanup().then(() => Deno.exit(0));
  });
  Deno.addSignalListener("SIGTERM", () => {
    void cleanup().then(() => Deno.exit(0));
  });

  console.log(`Consul UI/API: ${consul.url}   (services redis-master and redis-slave)`);
  for (const node of nodes) {
    console.log(
      `node ${node.index}: redis ${node.redis.address} (pid ${node.redis.process?.pid}), agent pid ${node.agent.pid}, log ${node.agent.dir}/agent.log`,
    );
  }
  console.log(
    'press "k" + Enter to kill -9 the master\'s Redis, "r" + Enter to restart dead ones, Ctrl-C to quit\n',
  );

  // Redis servers killed from the sandbox and not restarted yet.
  const downPorts = new Set<number>();
  void readCommands(nodes, consul, downPorts, stop.signal);
  let last = "";
  while (!stop.signal.aborted) {
    const line = await rolesLine(nodes, consul, downPorts);
    if (line !== last) {
      console.log(`${new Date().toISOString().slice(11, 23)}  ${line}`);
      last = line;
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** `node 0: master  node 1: slave  node 2: slave (down)` from what Consul says. */
async function rolesLine(
  nodes: Node[],
  consul: ConsulServer,
  downPorts: ReadonlySet<number>,
): Promise<string> {
  const passing = async (service: string) => {
    try {
      const entries = await consul.api<{ Service: { Port: number } }[]>(
        "GET",
        `/v1/health/service/${service}?passing=1`,
      );
      return new Set(entries.map((entry) => entry.Service.Port));
    } catch {
      return new Set<number>();
    }
  };
  const masters = await passing("redis-master");
  const slaves = await passing("redis-slave");
  return nodes.map((node) => {
    const role = masters.has(node.redis.port)
      ? "MASTER"
      : slaves.has(node.redis.port)
      ? "slave"
      : "-";
    const down = downPorts.has(node.redis.port) ? " (redis down)" : "";
    return `node ${node.index}: ${role.padEnd(6)}${down}`;
  }).join("   ");
}

async function readCommands(
  nodes: Node[],
  consul: ConsulServer,
  downPorts: Set<number>,
  signal: AbortSignal,
): Promise<void> {
  const decoder = new TextDecoder();
  for await (const chunk of Deno.stdin.readable) {
    if (signal.aborted) return;
    const command = decoder.decode(chunk).trim();
    if (command === "k") {
      const masters = await consul.api<{ Service: { Port: number } }[]>(
        "GET",
        "/v1/health/service/redis-master?passing=1",
      );
      const master = nodes.find((node) => node.redis.port === masters[0]?.Service.Port);
      if (!master) {
        console.log("no passing master right now");
        continue;
      }
      console.log(`kill -9 redis of node ${master.index} (${master.redis.address})`);
      await master.redis.kill();
      downPorts.add(master.redis.port);
    } else if (command === "r") {
      for (const node of nodes) {
        if (downPorts.has(node.redis.port)) {
          downPorts.delete(node.redis.port);
          console.log(
            `restarting redis of node ${node.index} (empty, as after a crash without persistence)`,
          );
          await node.redis.restart();
        }
      }
    }
  }
}

if (import.meta.main) await main();
