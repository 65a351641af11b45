/**
 * End to end: nothing written into resec's control keys stops a failover.
 *
 * Why this test exists (issue 14): one malformed switchover record, written by hand, made every
 * evaluation of every agent throw. The error escaped the loop as an unhandled rejection (logged on
 * every tick by lib/agent/process.ts's crash guard), so nothing was decided or applied any more; the master's
 * lock, renewed on its own, was never given up, and killing its Redis caused no failover. An
 * unhandled rejection in any agent's log is how that showed, so it fails this test on its own.
 */
import assert from "node:assert/strict";
import { type ClusterNode, delay, ESCAPED_ERROR, withCluster } from "../support/mod.ts";
import { firstAcceptedWrite, seedReplicatedKey } from "../support/writes.ts";

/** The record a user wrote: in progress, with a `from` that is not host:port. */
const MALFORMED_SWITCHOVER = {
  id: "x",
  state: "in-progress",
  to: "127.0.0.1:1",
  from: "no-port",
};

/**
 * With the fast test timings (lock TTL 2 s, lock delay 500 ms) a dead Redis's agent gives the lock up
 * at once and a replica leads within a few hundred milliseconds; even the TTL and the lock delay fit.
 */
const FAILOVER_WINDOW_MS = 5_000;

/**
 * An error that escaped every handler (withCluster fails any test on those, but only at its end), or
 * the loop's report of an evaluation that failed (it goes on, but nothing here should fail).
 */
const ESCAPED_OR_FAILED = new RegExp(`${ESCAPED_ERROR.source}|evaluation failed`, "i");

function assertNoEscapedErrors(nodes: ClusterNode[]): void {
  for (const node of nodes) {
    const line = node.agent.log().split("\n").find((text) => ESCAPED_OR_FAILED.test(text));
    assert.equal(line, undefined, `agent ${node.index} let an error escape its loop`);
  }
}

Deno.test("a malformed switchover record is ignored: the master's Redis dies and a replica takes over in the usual time", async () => {
  await withCluster({}, async (cluster) => {
    const oldMaster = await cluster.waitForConvergence();
    await cluster.consul.api("PUT", "/v1/kv/resec/.lock.switchover", MALFORMED_SWITCHOVER);
    // And a candidacy that is not an object, under a peer that does not exist.
    await cluster.consul.api("PUT", "/v1/kv/resec/.lock.candidates/127.0.0.1:1", "not json");
    // Every agent has read the record once its log names the bad address.
    for (const node of cluster.nodes) await node.agent.waitForLog(/no-port/, 10_000);
    // A few ticks (~333 ms each) with the record in place, as in the report.
    await delay(2_000);
    assertNoEscapedErrors(cluster.nodes);

    // Data on the replicas, as in the usual failover test (with none, the election waits out its
    // whole collect window, 2 s here, for positions: a separate matter).
    const survivors = cluster.nodes.filter((node) => node !== oldMaster);
    await seedReplicatedKey(oldMaster.redis, survivors.map((node) => node.redis));

    const killedAt = Date.now();
    await oldMaster.redis.kill();
    const { server, elapsedMs } = await firstAcceptedWrite(
      survivors.map((node) => node.redis),
      killedAt,
      FAILOVER_WINDOW_MS,
    );
    const newMaster = await cluster.waitForMaster(
      Math.max(1, killedAt + FAILOVER_WINDOW_MS - Date.now()),
      oldMaster,
    );
    console.log(
      `malformed switchover record: first accepted write ${elapsedMs} ms, one passing master ` +
        `${Date.now() - killedAt} ms after kill -9`,
    );
    assert.equal(newMaster.redis, server, "the Redis that took the write is the one Consul names");
    assert.equal(await newMaster.redis.cli("GET", "before-failover"), "kept");

    // The warning names the key and the reason, and does not repeat on every evaluation.
    for (const node of cluster.nodes) {
      const warnings = node.agent.log().split("\n").filter((line) =>
        /resec\/\.lock\.switchover/.test(line) && /no-port/.test(line)
      );
      assert.ok(warnings.length >= 1, `agent ${node.index} did not report the record`);
      assert.ok(
        warnings.length <= 2,
        `agent ${node.index} reported the same record ${warnings.length} times`,
      );
    }
    assertNoEscapedErrors(cluster.nodes);
  });
});
