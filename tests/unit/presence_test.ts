/**
 * The agent's presence (the check its lock sessions are tied to), and the pure helpers around it:
 * which sessions a restarted agent ends, how a held lock's confirmation counts the check, and how
 * Consul's refusal of a session for a missing check is recognised. The Consul agent is replaced by a
 * recorder of the presence's own port; no I/O.
 */
import assert from "node:assert/strict";
import { ConsulAnomalies } from "../../lib/agent/watch/consul_anomalies.ts";
import { withAgentCheck } from "../../lib/agent/loop.ts";
import { earlierRunSessions } from "../../lib/agent/earlier_run.ts";
import { AgentPresence, type PresencePort } from "../../lib/agent/apply/presence.ts";
import { ConsulHttpError, ConsulPermissionDeniedError } from "../../lib/consul/errors.ts";
import type { ServiceDefinition } from "../../lib/consul/service.ts";
import { isSessionCheckNotReady, type SessionInfo } from "../../lib/consul/session.ts";
import { ManualClock } from "../../lib/clock.ts";
import { silentLogger } from "../../lib/log.ts";

const DEFINITION: ServiceDefinition = {
  id: "redis-agent@10.0.0.1:6379",
  name: "redis-agent",
  tags: [],
  port: 6379,
  check: {
    id: "redis-agent@10.0.0.1:6379:alive",
    name: "Resec: agent alive",
    ttlMs: 14_000,
    deregisterCriticalAfterMs: 60_000,
    initialStatus: "passing",
    output: "resec manages 10.0.0.1:6379",
  },
};

class UnknownCheck extends Error {}

function recorder(clock: ManualClock) {
  const calls: string[] = [];
  const failures = { next: undefined as Error | undefined };
  /** Fails with the queued error, if any; records the call otherwise. */
  const answer = (what: string): Promise<void> => {
    const failure = failures.next;
    failures.next = undefined;
    if (failure) return Promise.reject(failure);
    calls.push(`${what} at ${clock.now()}`);
    return Promise.resolve();
  };
  const port: PresencePort = {
    register: () => answer("register"),
    beat: () => answer("beat"),
    deregister: (id) => {
      calls.push(`deregister ${id}`);
      return Promise.resolve();
    },
    isUnknownCheck: (error) => error instanceof UnknownCheck,
    isPermissionDenied: (error) => error instanceof ConsulPermissionDeniedError,
  };
  const presence = new AgentPresence({
    port,
    definition: DEFINITION,
    heartbeatMs: 4_000,
    deniedRetryMs: 60_000,
    clock,
    logger: silentLogger,
  });
  return { calls, failures, presence };
}

Deno.test("the presence registers before the agent competes, then beats on its own timer", async () => {
  const clock = new ManualClock(1_000);
  const { calls, presence } = recorder(clock);
  assert.deepEqual(presence.tiedChecks(), [], "nothing to tie a session to yet");
  await presence.start();
  assert.deepEqual(presence.tiedChecks(), [DEFINITION.check.id]);
  assert.equal(presence.confirmedAt(), 1_000);
  await clock.advance(8_000);
  assert.deepEqual(calls, ["register at 1000", "beat at 5000", "beat at 9000"]);
  assert.equal(presence.confirmedAt(), 9_000);
  await presence.stop();
  assert.equal(calls.at(-1), `deregister ${DEFINITION.id}`);
  assert.deepEqual(presence.tiedChecks(), []);
});

Deno.test("a failed heartbeat leaves the confirmation where it was and is retried within 100 ms or so", async () => {
  const clock = new ManualClock(0);
  const { failures, presence } = recorder(clock);
  await presence.start();
  failures.next = new ConsulHttpError(500, "rpc error", "PUT", "/v1/agent/check/update/x");
  await clock.advance(4_000);
  assert.equal(presence.confirmedAt(), 0);
  assert.deepEqual(presence.tiedChecks(), [DEFINITION.check.id], "still registered");
  await clock.advance(200);
  const retriedAt = presence.confirmedAt()!;
  assert.ok(retriedAt > 4_000 && retriedAt <= 4_120, `retried at ${retriedAt}, not a beat later`);
  await presence.stop();
});

Deno.test("a Consul agent that forgot the check gets the presence registered again at once", async () => {
  const clock = new ManualClock(0);
  const { calls, failures, presence } = recorder(clock);
  await presence.start();
  failures.next = new UnknownCheck();
  await clock.advance(4_000);
  assert.deepEqual(calls, ["register at 0", "register at 4000"]);
  assert.equal(presence.confirmedAt(), 4_000);
  await presence.stop();
});

Deno.test("an ACL token without the permission leaves sessions untied and asks again only rarely", async () => {
  const clock = new ManualClock(0);
  const { calls, failures, presence } = recorder(clock);
  failures.next = new ConsulPermissionDeniedError(
    "Permission denied",
    "PUT",
    "/v1/agent/service/register",
    "registering",
  );
  await presence.start();
  assert.deepEqual(presence.tiedChecks(), [], "a session must not wait for a check it cannot have");
  assert.equal(
    presence.confirmedAt(),
    undefined,
    "fencing does not count a check that is not there",
  );
  await clock.advance(59_000);
  assert.deepEqual(calls, [], "no retry every heartbeat");
  await clock.advance(1_000);
  assert.deepEqual(calls, ["register at 60000"]);
  assert.deepEqual(presence.tiedChecks(), [DEFINITION.check.id]);
  await presence.stop();
});

function session(id: string, name: string, serviceChecks: string[]): SessionInfo {
  return {
    id,
    name,
    node: "node-1",
    ttlMs: 15_000,
    lockDelayMs: 1_000,
    behavior: "release",
    nodeChecks: [],
    serviceChecks,
    createIndex: 1,
  };
}

Deno.test("a restarted agent ends only its own earlier sessions: its node, same name, tied to its own check", () => {
  const sessions = [
    session("old-own", "resec", [DEFINITION.check.id]),
    // Another host's agent: the same session name and check ID (`redis-agent@:6379:alive`).
    { ...session("other-host", "resec", [DEFINITION.check.id]), node: "node-2" },
    session("peer", "resec", ["redis-agent@10.0.0.2:6379:alive"]),
    session("other-tool", "vault-lock", [DEFINITION.check.id]),
    session("untied", "resec", []),
  ];
  assert.deepEqual(
    earlierRunSessions(sessions, {
      node: "node-1",
      sessionName: "resec",
      agentCheckId: DEFINITION.check.id,
    }).map((found) => found.id),
    ["old-own"],
  );
});

Deno.test("a held lock is only as fresh as the older of its session renewal and its agent check", () => {
  const held = { phase: "held", lockIndex: 7, session: "s", confirmedAt: 10_000 } as const;
  assert.deepEqual(withAgentCheck(held, 8_000), { ...held, confirmedAt: 8_000 });
  assert.deepEqual(withAgentCheck(held, 12_000), held);
  assert.deepEqual(withAgentCheck(held, undefined), held, "no check: the session alone");
  assert.deepEqual(withAgentCheck({ phase: "competing" }, 1), { phase: "competing" });
});

Deno.test("Consul's refusal of a session for a missing or critical check is told apart", () => {
  const path = "/v1/session/create";
  const missing = "apply failed: Missing check 'redis-agent@10.0.0.1:6379:alive' registration";
  assert.equal(isSessionCheckNotReady(new ConsulHttpError(500, missing, "PUT", path)), true);
  const critical = "apply failed: Check 'redis-agent@10.0.0.1:6379:alive' is in critical state";
  assert.equal(isSessionCheckNotReady(new ConsulHttpError(500, critical, "PUT", path)), true);
  assert.equal(
    isSessionCheckNotReady(new ConsulHttpError(500, "No cluster leader", "PUT", path)),
    false,
  );
  assert.equal(isSessionCheckNotReady(new Error(missing)), false);
});

Deno.test("the presence heartbeats its check with the output of the moment", async () => {
  const clock = new ManualClock(0);
  const beats: string[] = [];
  const anomalies = new ConsulAnomalies();
  const presence = new AgentPresence({
    port: {
      register: () => Promise.resolve(),
      beat: (_id, output) => {
        beats.push(output);
        return Promise.resolve();
      },
      deregister: () => Promise.resolve(),
      isUnknownCheck: () => false,
      isPermissionDenied: () => false,
    },
    definition: DEFINITION,
    output: () => anomalies.checkOutput(DEFINITION.check.output ?? ""),
    heartbeatMs: 4_000,
    clock,
    logger: silentLogger,
  });
  await presence.start();
  await clock.advance(4_000);
  anomalies.requestDone({
    endpoint: "kv.read",
    method: "GET",
    status: 200,
    outcome: "malformed",
    durationMs: 1,
  });
  await clock.advance(4_000);
  await presence.stop();
  assert.equal(beats[0], DEFINITION.check.output);
  assert.match(beats[1] ?? "", /1 malformed Consul answer \(last: kv\.read\)/);
});
