/**
 * Three real hosts as a new user sets them up: a Consul client agent per host, `redis-server` on 6379,
 * and resec with no settings at all. Before the announce address came from the Consul node, every
 * agent announced 127.0.0.1:6379 and no replica was ever pointed at the master.
 */
import assert from "node:assert/strict";
import { Bed } from "../support/bed/mod.ts";
import { waitFor } from "../support/wait.ts";

interface KvEntry {
  Key: string;
  Value: string | null;
  Session?: string;
  Flags: number;
}

function decodeValue(entry: KvEntry): string {
  return entry.Value === null ? "" : new TextDecoder().decode(
    Uint8Array.from(atob(entry.Value), (char) => char.charCodeAt(0)),
  );
}

async function lockEntry(bed: Bed): Promise<KvEntry | undefined> {
  const entries = await bed.server(0).consul.api.get<KvEntry[] | null>(
    "/v1/kv/resec/.lock?recurse",
  ).catch(() => null);
  return entries?.find((entry) => entry.Key === "resec/.lock");
}

Deno.test("three hosts with default settings elect one master at its host address, and the others replicate from it", async () => {
  await using bed = await Bed.start();
  try {
    const master = await bed.waitForMaster();
    const masterIp = bed.host(master).machine.ip;
    await waitFor(async () => (await bed.passingSlaves()).length === 2, {
      timeoutMs: 60_000,
      message: "two passing redis-slave instances",
    });
    const [registered] = await bed.passingMasters();
    assert.equal(registered!.address, masterIp, "the master is registered at its host's address");
    assert.equal(registered!.port, 6379);
    const slaves = await bed.passingSlaves();
    assert.deepEqual(
      slaves.map((slave) => slave.address).sort(),
      bed.hosts.filter((host) => host.index !== master).map((host) => host.machine.ip).sort(),
    );
    for (const host of bed.hosts.filter((host) => host.index !== master)) {
      const info = await host.redis.info();
      assert.equal(info.role, "slave", `${host.name} is a replica`);
      assert.equal(info.master_host, masterIp, `${host.name} replicates from the master's host`);
      assert.equal(info.master_link_status, "up");
    }

    // The lock announces the master's host address; each host has its own candidacy key.
    const lock = await lockEntry(bed);
    assert.ok(lock?.Session, "the lock is held");
    assert.equal(JSON.parse(decodeValue(lock)).address, `${masterIp}:6379`);
    const candidacies = await bed.server(0).consul.api.get<string[]>(
      "/v1/kv/resec/.lock.candidates/?keys",
    );
    assert.deepEqual(
      candidacies.map((key) => key.slice(key.lastIndexOf("/") + 1)).sort(),
      bed.hosts.map((host) => `${host.machine.ip}:6379`).sort(),
    );

    // Service IDs are the Go resec's: the same on every host, kept apart by the node.
    const services = await bed.host(master).consul.api.get<Record<string, { ID: string }>>(
      "/v1/agent/services",
    );
    assert.ok("redis@:6379" in services, Object.keys(services).join(", "));
    assert.ok("redis-agent@:6379" in services);

    // A replica's agent restarting ends only its own host's earlier sessions, never the leader's.
    const replica = bed.hosts.find((host) => host.index !== master)!;
    await bed.restartAgent(replica.index);
    await replica.resec.waitForLog(/placed/, 30_000);
    await waitFor(async () => (await bed.passingSlaves()).length === 2, {
      timeoutMs: 60_000,
      message: "the restarted replica to pass again",
    });
    const after = await lockEntry(bed);
    assert.equal(after?.Session, lock.Session, "the leader kept its session");
    assert.equal(await bed.waitForMaster(), master);
  } catch (error) {
    console.error(bed.logs());
    throw error;
  }
});
