/**
 * Probing which Redis accepts writes, for failover measurements: a write that hangs (a fenced master)
 * or fails (a read-only replica) does not count.
 */
import type { Redis } from "ioredis";
import type { RedisServer } from "./redis.ts";
import { delay, waitFor } from "./wait.ts";

/** Tries one SET with a short deadline; true when Redis acknowledged it. */
export async function acceptsWrite(client: Redis, key: string, value: string): Promise<boolean> {
  try {
    const reply = await Promise.race([
      client.set(key, value),
      delay(300).then(() => "timeout"),
    ]);
    return reply === "OK";
  } catch {
    return false;
  }
}

/**
 * Waits until one of `servers` acknowledges a write; returns it and the milliseconds since `since`.
 */
export async function firstAcceptedWrite(
  servers: RedisServer[],
  since: number,
  timeoutMs = 30_000,
): Promise<{ server: RedisServer; elapsedMs: number }> {
  const clients = servers.map((server) =>
    server.client({ commandTimeout: 300, enableOfflineQueue: false, lazyConnect: false })
  );
  for (const client of clients) client.on("error", () => {});
  try {
    const deadline = since + timeoutMs;
    let attempt = 0;
    while (Date.now() < deadline) {
      attempt++;
      for (const [index, client] of clients.entries()) {
        if (await acceptsWrite(client, "resec:probe", `attempt-${attempt}`)) {
          return { server: servers[index]!, elapsedMs: Date.now() - since };
        }
      }
      await delay(10);
    }
    throw new Error(`No server accepted a write within ${timeoutMs} ms`);
  } finally {
    for (const client of clients) client.disconnect();
  }
}

/**
 * Writes `before-failover = kept` on the master and waits until every replica has it: the data a
 * failover test expects the new master to keep (an empty replica would rightly wait for the dead
 * master to come back instead of leading).
 */
export async function seedReplicatedKey(
  master: RedisServer,
  replicas: readonly RedisServer[],
): Promise<void> {
  await master.cli("SET", "before-failover", "kept");
  for (const replica of replicas) {
    await waitFor(async () => (await replica.cli("GET", "before-failover")) === "kept", {
      message: `${replica.address} to replicate the seeded key`,
    });
  }
}
