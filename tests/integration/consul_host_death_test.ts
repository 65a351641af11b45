/**
 * What Consul does when a whole host dies, with its own Consul agent: a server and a client agent,
 * both real, the client killed with SIGKILL. The README's failure table and docs/benchmarks.md rely
 * on these facts: the agent check cannot lapse once the agent that runs its TTL is gone, so a
 * session tied only to it outlives the host, while a session tied to `serfHealth` ends once gossip
 * marks the node failed; and a graceful stop of the client agent ends every session of its node.
 */
import assert from "node:assert/strict";
import { ConsulClient } from "../../lib/consul/client.ts";
import { registerService } from "../../lib/consul/service.ts";
import { createSession, sessionInfo } from "../../lib/consul/session.ts";
import { ConsulServer, waitFor } from "../support/mod.ts";
import { presenceService } from "../support/presence.ts";

const PRESENCE = presenceService(3_000);

/** A client agent ("the host") with the presence registered on it, and a client for each agent. */
async function hostWithPresence(server: ConsulServer) {
  const host = await ConsulServer.start({ joinTo: server });
  const onHost = new ConsulClient({ connection: { baseUrl: host.url } });
  const onServer = new ConsulClient({ connection: { baseUrl: server.url } });
  await registerService(onHost, PRESENCE);
  const session = (nodeChecks: string[], serviceChecks: string[]) =>
    createSession(onHost, {
      name: "resec",
      ttlMs: 30_000,
      lockDelayMs: 1_000,
      behavior: "release",
      nodeChecks,
      serviceChecks,
    });
  return { host, onHost, onServer, session };
}

Deno.test("a host that dies with its Consul agent: the agent check stays passing, only serfHealth ends a session", async () => {
  await using server = await ConsulServer.start();
  const { host, onHost, onServer, session } = await hostWithPresence(server);
  try {
    const tiedToCheck = await session([], [PRESENCE.check.id]);
    const tiedToSerf = await session(["serfHealth"], []);
    const killedAt = Date.now();
    host.process!.signal("SIGKILL");
    await waitFor(async () => (await sessionInfo(onServer, tiedToSerf)) === undefined, {
      timeoutMs: 20_000,
      intervalMs: 100,
      message: "the serfHealth session to end once gossip marks the host failed",
    });
    const serfAfter = Date.now() - killedAt;
    // Well past the agent check's 3 s TTL: it would have lapsed had its agent lived.
    await waitFor(() => Date.now() - killedAt > 2 * PRESENCE.check.ttlMs, { timeoutMs: 10_000 });
    const checks = await server.api<{ CheckID: string; Status: string }[]>(
      "GET",
      `/v1/health/node/${encodeURIComponent(`resec-test-client-${host.httpPort}`)}`,
    );
    const status = Object.fromEntries(checks.map((check) => [check.CheckID, check.Status]));
    console.log(
      `host killed: serfHealth session ended after ${serfAfter} ms; ` +
        `${Date.now() - killedAt} ms after the kill the checks are ${JSON.stringify(status)}`,
    );
    assert.equal(status.serfHealth, "critical");
    assert.equal(status[PRESENCE.check.id], "passing", "nobody is left to lapse the TTL");
    assert.ok(await sessionInfo(onServer, tiedToCheck), "the check-tied session lives on");
  } finally {
    onHost.close();
    onServer.close();
    await host.stop();
  }
});

Deno.test("a graceful stop of the host's Consul agent ends every session of its node, whatever they are tied to", async () => {
  await using server = await ConsulServer.start();
  const { host, onHost, onServer, session } = await hostWithPresence(server);
  try {
    const sessions = {
      untied: await session([], []),
      "agent check": await session([], [PRESENCE.check.id]),
      serfHealth: await session(["serfHealth"], []),
    };
    const stoppedAt = Date.now();
    await host.stop(); // SIGTERM: a client agent leaves, and the servers deregister its node
    for (const [tie, id] of Object.entries(sessions)) {
      await waitFor(async () => (await sessionInfo(onServer, id)) === undefined, {
        timeoutMs: 15_000,
        intervalMs: 50,
        message: `the ${tie} session to end when the agent leaves`,
      });
    }
    console.log(`Consul client left: all its sessions ended within ${Date.now() - stoppedAt} ms`);
  } finally {
    onHost.close();
    onServer.close();
  }
});
