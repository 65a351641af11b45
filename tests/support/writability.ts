/**
 * Which Redis servers take writes at the same instant: the question every split-brain check asks.
 */
import type { Redis } from "ioredis";
import type { RedisServer } from "./redis.ts";

/** A client suited to probing: short deadline, no queueing, quick reconnects, errors swallowed. */
export function probeClient(server: RedisServer): Redis {
  const client = server.client({
    commandTimeout: 250,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: () => 50,
  });
  client.on("error", () => {});
  return client;
}

/** One probe client per server, made on first use; `close()` disconnects them all. */
export class ProbeClients {
  readonly #clients = new Map<RedisServer, Redis>();

  for(server: RedisServer): Redis {
    let client = this.#clients.get(server);
    if (!client) {
      client = probeClient(server);
      this.#clients.set(server, client);
    }
    return client;
  }

  close(): void {
    for (const client of this.#clients.values()) client.disconnect();
    this.#clients.clear();
  }
}

/**
 * Indexes of the clients whose Redis was writable throughout one probe: two passes of `SET`, the
 * second sent only after every answer to the first. A Redis that takes both writes was writable over
 * the gap between them, so two such Redis were writable at the same instant. A single acceptance is a
 * role change landing between the passes (`REPLICAOF` on an old master is acknowledged before the new
 * master's `CLIENT UNPAUSE` is even sent): sequential, not split brain.
 */
export async function writableTogether(clients: readonly Redis[], key: string): Promise<number[]> {
  const pass = () =>
    Promise.all(clients.map(async (client) => {
      try {
        return (await client.set(key, String(Date.now()))) === "OK";
      } catch {
        return false;
      }
    }));
  const first = await pass();
  const second = await pass();
  return first.flatMap((ok, index) => (ok && second[index] ? [index] : []));
}
