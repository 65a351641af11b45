import assert from "node:assert/strict";
import type { Clock } from "../../lib/clock.ts";
import type { ConsulRequestEvent } from "../../lib/consul/client.ts";
import type { RedisView } from "../../lib/reconciler/model.ts";
import { ResecMetrics } from "../../lib/metrics/resec.ts";
import { parseExposition } from "../../lib/metrics/testing.ts";

const fixedClock = (now: number): Clock => ({
  now: () => now,
  wallNow: () => now,
  sleep: () => Promise.resolve(),
});

function samples(metrics: ResecMetrics): ReadonlyMap<string, number> {
  return parseExposition(metrics.render()).samples;
}

function upView(overrides: Partial<Extract<RedisView, { kind: "up" }>> = {}): RedisView {
  return {
    kind: "up",
    role: "replica",
    loading: false,
    master: { host: "10.0.0.1", port: 6379 },
    detached: false,
    linkUp: true,
    syncInProgress: false,
    offset: 4_096,
    replicationId: "a".repeat(40),
    replicationId2: "",
    connectedReplicas: 0,
    datasetEmpty: false,
    priority: 100,
    runId: "b".repeat(40),
    ...overrides,
  };
}

function event(overrides: Partial<ConsulRequestEvent>): ConsulRequestEvent {
  return {
    endpoint: "kv.read",
    method: "GET",
    status: 200,
    outcome: "ok",
    durationMs: 3,
    ...overrides,
  };
}

Deno.test("fresh metrics are well-formed, all prefixed resec_, each with HELP and TYPE", () => {
  const metrics = new ResecMetrics({ version: "9.9.9" });
  const exposition = parseExposition(metrics.render());
  assert.ok(exposition.types.size >= 15);
  for (const [name] of exposition.types) {
    assert.match(name, /^resec_/);
    assert.ok((exposition.help.get(name) ?? "").length > 10, `${name} has a help text`);
  }
  for (const [name, type] of exposition.types) {
    if (type === "counter") assert.match(name, /_total$/, `counter ${name} ends in _total`);
  }
  assert.equal(exposition.samples.get('resec_build_info{version="9.9.9"}'), 1);
});

Deno.test("before anything happens: role unknown, no lock, zero counters, unknowns absent", () => {
  const s = samples(new ResecMetrics());
  assert.equal(s.get('resec_role{role="unknown"}'), 1);
  assert.equal(s.get('resec_role{role="master"}'), 0);
  assert.equal(s.get('resec_role{role="replica"}'), 0);
  assert.equal(s.get("resec_lock_held"), 0);
  assert.equal(s.get("resec_elections_won_total"), 0);
  assert.equal(s.get("resec_failovers_total"), 0);
  for (const status of ["passing", "warning", "critical"]) {
    assert.equal(s.get(`resec_check_updates_total{status="${status}"}`), 0);
  }
  for (
    const absent of [
      "resec_last_failover_duration_seconds",
      "resec_last_failover_timestamp_seconds",
      "resec_redis_replication_offset",
      "resec_redis_replication_lag_bytes",
      "resec_redis_master_link_up",
      "resec_consul_reachable",
    ]
  ) {
    assert.equal(s.get(absent), undefined, `${absent} is absent while unknown`);
  }
});

Deno.test("setRole marks exactly one role with 1", () => {
  const metrics = new ResecMetrics();
  metrics.setRole("master");
  metrics.setRole("replica");
  const s = samples(metrics);
  assert.deepEqual(
    ["master", "replica", "unknown"].map((role) => s.get(`resec_role{role="${role}"}`)),
    [0, 1, 0],
  );
});

Deno.test("winning the lock and completing a failover count up and record duration and time", () => {
  const metrics = new ResecMetrics({ clock: fixedClock(1_700_000_000_500) });
  metrics.setLockHeld(true);
  metrics.electionWon();
  metrics.failoverCompleted(2_750);
  metrics.electionWon();
  const s = samples(metrics);
  assert.equal(s.get("resec_lock_held"), 1);
  assert.equal(s.get("resec_elections_won_total"), 2);
  assert.equal(s.get("resec_failovers_total"), 1);
  assert.equal(s.get("resec_last_failover_duration_seconds"), 2.75);
  assert.equal(s.get("resec_last_failover_timestamp_seconds"), 1_700_000_000.5);
  metrics.setLockHeld(false);
  assert.equal(samples(metrics).get("resec_lock_held"), 0);
});

Deno.test("each backoff after a failed lock acquire is counted", () => {
  const metrics = new ResecMetrics();
  assert.equal(samples(metrics).get("resec_lock_acquire_backoffs_total"), 0);
  metrics.lockAcquireBackoff();
  metrics.lockAcquireBackoff();
  assert.equal(samples(metrics).get("resec_lock_acquire_backoffs_total"), 2);
});

Deno.test("a Redis observation sets role, health, link and offset; a down Redis clears them", () => {
  const metrics = new ResecMetrics();
  metrics.redisObserved(upView({ linkUp: false, offset: 123 }));
  let s = samples(metrics);
  assert.equal(s.get('resec_role{role="replica"}'), 1);
  assert.equal(s.get("resec_redis_healthy"), 1);
  assert.equal(s.get("resec_redis_master_link_up"), 0);
  assert.equal(s.get("resec_redis_replication_offset"), 123);

  metrics.redisObserved(upView({ role: "master", offset: 200 }));
  s = samples(metrics);
  assert.equal(s.get('resec_role{role="master"}'), 1);
  assert.equal(s.get("resec_redis_master_link_up"), undefined, "a master has no link to report");

  metrics.redisObserved(upView({ loading: true }));
  assert.equal(samples(metrics).get("resec_redis_healthy"), 0, "a loading Redis is not healthy");

  metrics.redisObserved({ kind: "down", reason: "connection refused" });
  s = samples(metrics);
  assert.equal(s.get('resec_role{role="unknown"}'), 1);
  assert.equal(s.get("resec_redis_healthy"), 0);
  assert.equal(s.get("resec_redis_replication_offset"), undefined);
  assert.equal(s.get("resec_redis_master_link_up"), undefined);
});

Deno.test("replication lag is shown in bytes when known and absent when not", () => {
  const metrics = new ResecMetrics();
  metrics.setReplicationLag(1_024);
  assert.equal(samples(metrics).get("resec_redis_replication_lag_bytes"), 1_024);
  metrics.setReplicationLag(undefined);
  assert.equal(samples(metrics).get("resec_redis_replication_lag_bytes"), undefined);
});

Deno.test("Consul requests are counted by endpoint and status code, failures also by outcome", () => {
  const metrics = new ResecMetrics();
  metrics.recordConsulRequest(event({}));
  metrics.recordConsulRequest(event({}));
  metrics.recordConsulRequest(event({ status: 404 })); // an accepted 404: a missing key, no error
  metrics.recordConsulRequest(
    event({ endpoint: "session.renew", method: "PUT", status: 500, outcome: "http_error" }),
  );
  metrics.recordConsulRequest(event({ endpoint: "session.renew", status: 0, outcome: "timeout" }));
  metrics.recordConsulRequest(event({ status: 0, outcome: "unreachable" }));
  metrics.recordConsulRequest(event({ status: 0, outcome: "cancelled" }));
  metrics.recordConsulRequest(event({ status: 200, outcome: "malformed" }));
  const s = samples(metrics);
  assert.equal(s.get('resec_consul_requests_total{code="200",endpoint="kv.read"}'), 3);
  assert.equal(s.get('resec_consul_requests_total{code="404",endpoint="kv.read"}'), 1);
  assert.equal(s.get('resec_consul_requests_total{code="none",endpoint="kv.read"}'), 2);
  assert.equal(s.get('resec_consul_requests_total{code="500",endpoint="session.renew"}'), 1);
  assert.equal(s.get('resec_consul_requests_total{code="none",endpoint="session.renew"}'), 1);
  const errors = [...s].filter(([series]) =>
    series.startsWith("resec_consul_request_errors_total")
  );
  assert.deepEqual(errors, [
    ['resec_consul_request_errors_total{endpoint="kv.read",outcome="malformed"}', 1],
    ['resec_consul_request_errors_total{endpoint="kv.read",outcome="unreachable"}', 1],
    ['resec_consul_request_errors_total{endpoint="session.renew",outcome="http_error"}', 1],
    ['resec_consul_request_errors_total{endpoint="session.renew",outcome="timeout"}', 1],
  ]);
});

Deno.test("check updates are counted by status, and the last status sent is marked", () => {
  const metrics = new ResecMetrics();
  metrics.checkUpdated("passing");
  metrics.checkUpdated("passing");
  metrics.checkUpdated("critical");
  const s = samples(metrics);
  assert.equal(s.get('resec_check_updates_total{status="passing"}'), 2);
  assert.equal(s.get('resec_check_updates_total{status="critical"}'), 1);
  assert.equal(s.get('resec_check_updates_total{status="warning"}'), 0);
  assert.equal(s.get('resec_check_status{status="critical"}'), 1);
  assert.equal(s.get('resec_check_status{status="passing"}'), 0);
});

Deno.test("decision changes are counted by the new decision, and a repeat of the same name is not", () => {
  const metrics = new ResecMetrics();
  metrics.decisionChanged("detaching");
  metrics.decisionChanged("promoting");
  metrics.decisionChanged("promoting");
  metrics.decisionChanged("master");
  const s = samples(metrics);
  assert.equal(s.get('resec_decision_changes_total{decision="promoting"}'), 1);
  assert.equal(s.get('resec_decision_changes_total{decision="master"}'), 1);
  assert.equal(s.get('resec_decision{decision="master"}'), 1);
  assert.equal(s.get('resec_decision{decision="promoting"}'), 0);
  assert.equal(s.get('resec_decision{decision="detaching"}'), 0);
});

Deno.test("Consul reachability, maintenance mode and the agent check show as 0/1 gauges", () => {
  const metrics = new ResecMetrics();
  metrics.setConsulReachable(false);
  metrics.setPaused(true);
  metrics.setAgentCheckRegistered(false);
  let s = samples(metrics);
  assert.equal(s.get("resec_consul_reachable"), 0);
  assert.equal(s.get("resec_paused"), 1);
  assert.equal(s.get("resec_agent_check_registered"), 0);
  metrics.setConsulReachable(true);
  metrics.setPaused(false);
  metrics.setAgentCheckRegistered(true);
  s = samples(metrics);
  assert.equal(s.get("resec_consul_reachable"), 1);
  assert.equal(s.get("resec_paused"), 0);
  assert.equal(s.get("resec_agent_check_registered"), 1);
});
