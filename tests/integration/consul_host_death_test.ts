/**
 * What Consul does when a whole host dies, with its own Consul agent: a server and a client agent,
 * both real, the client killed with SIGKILL. The agent check cannot lapse once the agent that runs
 * its TTL is gone, so a session tied only to it outlives the host, while a session tied to
 * `serfHealth` ends once gossip marks the node failed; a graceful stop of the client agent ends every
 * session of its node. And the other agents' HolderHostWatch ends a dead host's session once its
 * `serfHealth` stayed critical for the grace, but not for a Consul agent that is back in time.
 */
import assert from "node:assert/strict";
import { ConsulClient } from "../../lib/consul/client.ts";
import { registerService } from "../../lib/consul/service.ts";
import { createSession, destroySession, sessionInfo } from "../../lib/consul/session.ts";
import { nodeGossipHealth } from "../../lib/consul/health.ts";
import { HolderHostWatch } from "../../lib/agent/watch/holder_watch.ts";
import { parseHostPort } from "../../lib/address.ts";
import { systemClock } from "../../lib/clock.ts";
import { CapturingLogger } from "../../lib/log.ts";
import { ConsulServer, delay, waitFor } from "../support/mod.ts";
import { presenceService } from "../support/services.ts";

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

/** A watch, as another agent runs it, over the server's HTTP API; `leader` is the lock holder. */
function watchFor(server: ConsulClient, leader: { session: string }, graceMs: number) {
  const logger = new CapturingLogger();
  const watch = new HolderHostWatch({
    port: {
      sessionNode: async (session, signal) =>
        (await sessionInfo(server, session, { signal }))?.node,
      gossipHealth: (node, options) => nodeGossipHealth(server, node, options),
      endSession: (session) => destroySession(server, session),
    },
    leader: () => ({
      address: parseHostPort("127.0.0.1:6379"),
      session: leader.session,
      lockIndex: 1,
    }),
    ownSession: () => undefined,
    paused: () => false,
    graceMs,
    idleMs: 200,
    waitMs: 2_000,
    clock: systemClock,
    logger,
  });
  return { watch, logger };
}

Deno.test("the other agents end the session of a leader whose host died, once gossip gave up on it for the grace", async () => {
  await using server = await ConsulServer.start();
  const { host, onHost, onServer, session } = await hostWithPresence(server);
  const holder = { session: await session([], [PRESENCE.check.id]) };
  const { watch, logger } = watchFor(onServer, holder, 2_000);
  watch.start();
  try {
    await delay(500); // the watch has found the holder's node and is blocking on its health
    const killedAt = Date.now();
    host.process!.signal("SIGKILL");
    await waitFor(async () => (await sessionInfo(onServer, holder.session)) === undefined, {
      timeoutMs: 20_000,
      intervalMs: 100,
      message: "the watch to end the dead host's session",
    });
    const endedAfter = Date.now() - killedAt;
    console.log(
      `host killed: its lock session ended by a peer's watch after ${endedAfter} ms (grace 2 s)`,
    );
    assert.ok(endedAfter >= 2_000, `not before the grace: ${endedAfter} ms`);
    assert.match(logger.text(), /ending its lock session/);
  } finally {
    await watch.stop();
    onHost.close();
    onServer.close();
    await host.stop();
  }
});

Deno.test("a host whose Consul agent is only down for a moment keeps its leader's session", async () => {
  await using server = await ConsulServer.start();
  const { host, onHost, onServer, session } = await hostWithPresence(server);
  const holder = { session: await session([], [PRESENCE.check.id]) };
  const { watch, logger } = watchFor(onServer, holder, 8_000);
  watch.start();
  try {
    await delay(500);
    host.process!.signal("SIGSTOP"); // frozen: gossip marks it failed, then it answers again
    await waitFor(async () => {
      const { status } = await nodeGossipHealth(onServer, `resec-test-client-${host.httpPort}`);
      return status === "critical";
    }, { timeoutMs: 20_000, intervalMs: 100, message: "gossip to mark the frozen host failed" });
    host.process!.signal("SIGCONT");
    await waitFor(async () => {
      const { status } = await nodeGossipHealth(onServer, `resec-test-client-${host.httpPort}`);
      return status === "passing";
    }, { timeoutMs: 20_000, intervalMs: 100, message: "the host to rejoin" });
    await delay(1_000);
    assert.ok(await sessionInfo(onServer, holder.session), "the session survived the blip");
    assert.doesNotMatch(logger.text(), /ending its lock session/);
  } finally {
    host.process?.signal("SIGCONT");
    await watch.stop();
    onHost.close();
    onServer.close();
    await host.stop();
  }
});
