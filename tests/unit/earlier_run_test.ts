/**
 * A restarted agent ends the lock sessions its earlier run left, which frees a lock they hold. Whatever
 * must happen before that (fencing a Redis still master from the earlier term: simulator seed 71)
 * runs first, and only when there is a session to end.
 */
import assert from "node:assert/strict";
import { endEarlierRunSessions } from "../../lib/agent/earlier_run.ts";
import { ManualClock } from "../../lib/clock.ts";
import { ConsulClient } from "../../lib/consul/client.ts";
import { consulJson, ScriptedFetch } from "../../lib/consul/testing.ts";
import { silentLogger } from "../../lib/log.ts";

const CHECK = "redis-agent@10.0.0.1:6379:alive";

function sessionJson(id: string) {
  return {
    ID: id,
    Name: "resec",
    Node: "node-1",
    TTL: "15s",
    LockDelay: 1_000_000_000,
    Behavior: "release",
    NodeChecks: ["serfHealth"],
    ServiceChecks: [{ ID: CHECK }],
    CreateIndex: 5,
  };
}

/** Ends the earlier run's sessions listed by `sessions`, recording each request in order. */
async function endWith(sessions: unknown[]) {
  const steps: string[] = [];
  const fetch = new ScriptedFetch([], (request) => {
    steps.push(`${request.method} ${request.url.pathname}`);
    return request.url.pathname === "/v1/session/list" ? consulJson(sessions) : consulJson(true);
  });
  const clock = new ManualClock(1_000);
  const client = new ConsulClient({
    connection: { baseUrl: "http://consul.test:8500" },
    fetch: fetch.fetch,
    clock,
  });
  const ended = await endEarlierRunSessions({
    client,
    node: "node-1",
    sessionName: "resec",
    agentCheckId: CHECK,
    logger: silentLogger,
    deadlineMs: 3_000,
    clock,
  });
  return { ended, steps };
}

Deno.test("a restarted agent ends every lock session its earlier run left", async () => {
  const { ended, steps } = await endWith([sessionJson("old-1"), sessionJson("old-2")]);
  assert.equal(ended, 2);
  assert.deepEqual(steps, [
    "GET /v1/session/list",
    "PUT /v1/session/destroy/old-1",
    "PUT /v1/session/destroy/old-2",
  ]);
});

Deno.test("with no earlier session, nothing is ended", async () => {
  const { ended, steps } = await endWith([]);
  assert.equal(ended, 0);
  assert.deepEqual(steps, ["GET /v1/session/list"]);
});
