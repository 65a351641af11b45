/**
 * After a failover, how long until the surviving replica is back in sync with the new master, and
 * whether the new master had to serve it a full sync (a fork and the whole dataset over the network)
 * or a partial one. Three real agents and redis-servers on loopback (the test bed's timings), Redis's
 * default full-sync delay (5 s), a dataset of `--megabytes`, then `kill -9` of the master's Redis.
 *
 *   ./scripts/deno.sh run -A bench/resync.ts [--rounds 3] [--megabytes 100]
 *
 * Prints one line per round and the medians; figures go to docs/benchmarks.md by hand.
 */
import { parseArgs } from "node:util";
import { type ClusterNode, waitFor, withCluster } from "../tests/support/mod.ts";
import { DEFAULT_FULL_SYNC_DELAY } from "../tests/support/redis.ts";
import { firstAcceptedWrite } from "../tests/support/writes.ts";

/** Size of one value: large enough that the dataset, not the key count, makes the sync slow. */
const VALUE_BYTES = 10_240;

/** Keys written per pipeline round trip while filling the dataset. */
const FILL_BATCH = 500;

interface Round {
  firstWriteMs: number;
  inSyncMs: number;
  fullSyncs: number;
  partialSyncs: number;
}

async function fill(master: ClusterNode, megabytes: number): Promise<void> {
  const client = master.redis.client();
  try {
    const value = "v".repeat(VALUE_BYTES);
    const keys = Math.ceil((megabytes * 1_048_576) / VALUE_BYTES);
    for (let first = 0; first < keys; first += FILL_BATCH) {
      const pipeline = client.pipeline();
      for (let i = first; i < Math.min(keys, first + FILL_BATCH); i++) pipeline.set(`k${i}`, value);
      await pipeline.exec();
    }
  } finally {
    client.disconnect();
  }
}

async function offsetOf(node: ClusterNode, field: string): Promise<number> {
  return Number((await node.redis.info())[field] ?? -1);
}

async function round(megabytes: number): Promise<Round> {
  return await withCluster({ redis: () => DEFAULT_FULL_SYNC_DELAY }, async (cluster) => {
    const master = await cluster.waitForConvergence();
    await fill(master, megabytes);
    const target = await offsetOf(master, "master_repl_offset");
    for (const node of cluster.nodes.filter((node) => node !== master)) {
      await waitFor(async () => (await offsetOf(node, "slave_repl_offset")) >= target, {
        timeoutMs: 120_000,
        message: `${node.redis.address} to replicate the dataset`,
      });
    }
    const survivors = cluster.nodes.filter((node) => node !== master);
    const killedAt = Date.now();
    await master.redis.kill();
    const { server, elapsedMs } = await firstAcceptedWrite(
      survivors.map((node) => node.redis),
      killedAt,
    );
    const newMaster = survivors.find((node) => node.redis === server)!;
    const follower = survivors.find((node) => node !== newMaster)!;
    await waitFor(async () => {
      const info = await follower.redis.info();
      if (info.master_port !== String(newMaster.redis.port)) return false;
      if (info.master_link_status !== "up") return false;
      return Number(info.slave_repl_offset) >= await offsetOf(newMaster, "master_repl_offset");
    }, { timeoutMs: 120_000, intervalMs: 10, message: "the other replica to be back in sync" });
    const inSyncMs = Date.now() - killedAt;
    const stats = await newMaster.redis.info("stats");
    return {
      firstWriteMs: elapsedMs,
      inSyncMs,
      fullSyncs: Number(stats.sync_full),
      partialSyncs: Number(stats.sync_partial_ok),
    };
  });
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      rounds: { type: "string", default: "3" },
      megabytes: { type: "string", default: "100" },
    },
  });
  const rounds = Number(values.rounds);
  const megabytes = Number(values.megabytes);
  const results: Round[] = [];
  for (let i = 1; i <= rounds; i++) {
    const result = await round(megabytes);
    results.push(result);
    console.log(
      `round ${i}/${rounds}: first write ${result.firstWriteMs} ms, other replica in sync ` +
        `${result.inSyncMs} ms, new master served ${result.fullSyncs} full and ` +
        `${result.partialSyncs} partial syncs`,
    );
  }
  console.log(
    `${megabytes} MB, ${rounds} rounds: first write ${
      median(results.map((r) => r.firstWriteMs))
    } ms (median), other replica in sync ${median(results.map((r) => r.inSyncMs))} ms (median)`,
  );
}
