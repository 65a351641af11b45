/**
 * The timings the agent derives from its configuration (documented in docs/failure-behaviour.md).
 */
import assert from "node:assert/strict";
import { agentTimings, checkRefreshMs, redisPollIntervalMs } from "../../lib/agent/timings.ts";
import { parseConfig } from "../../lib/config.ts";

function config(env: Record<string, string> = {}) {
  const result = parseConfig(env, { readTextFile: () => "" });
  if (!result.ok) throw new Error(result.problems.map((problem) => problem.message).join("\n"));
  return result.config;
}

Deno.test("with the defaults the agent fences at 9 s, refreshes its check every 5 s and polls Redis every second", () => {
  const defaults = config();
  const timings = agentTimings(defaults);
  assert.equal(timings.fenceAfterMs, 9_000, "0.6 × the 15 s TTL");
  assert.equal(timings.checkTtlMs, 10_000, "2 × HEALTHCHECK_INTERVAL");
  assert.equal(timings.tickMs, 5_000, "half the check TTL");
  assert.equal(timings.fenceMs, 60_000);
  assert.equal(
    redisPollIntervalMs(defaults),
    1_000,
    "half of HEALTHCHECK_TIMEOUT, below the 5 s interval",
  );
});

Deno.test("the fence bound always leaves time before Consul could hand the lock to someone else", () => {
  for (const ttl of ["10s", "15s", "1m", "24h"]) {
    const timings = agentTimings(config({ CONSUL_LOCK_TTL: ttl }));
    const ttlMs = config({ CONSUL_LOCK_TTL: ttl }).lock.ttlMs;
    assert.ok(timings.fenceAfterMs < ttlMs, ttl);
    assert.ok(timings.election.stepAsideMaxMs <= ttlMs, ttl);
  }
});

/** Every lock TTL and lock delay combination the timing tests check, with a label. */
function eachLockSetting(check: (settings: ReturnType<typeof config>, label: string) => void) {
  for (const ttl of ["2s", "10s", "15s", "1m"]) {
    for (const lockDelay of ["0s", "500ms", "1s", "5s", "30s"]) {
      const settings = config({
        CONSUL_SESSION_TTL_MIN: "1s",
        CONSUL_LOCK_TTL: ttl,
        CONSUL_LOCK_DELAY: lockDelay,
      });
      check(settings, `TTL ${ttl}, delay ${lockDelay}`);
    }
  }
}

Deno.test("a dead agent's lock is free for a peer by CONSUL_LOCK_TTL after its last heartbeat, never before the fence", () => {
  assert.equal(agentTimings(config()).agentCheckTtlMs, 14_000, "15 s TTL − 1 s lock delay");
  eachLockSetting((settings, label) => {
    const timings = agentTimings(settings);
    const peerMayLeadAfter = timings.agentCheckTtlMs + settings.lock.delayMs;
    assert.ok(timings.fenceAfterMs < peerMayLeadAfter, `fenced in time: ${label}`);
    assert.ok(timings.agentCheckTtlMs >= settings.lock.ttlMs / 2, `beats to spare: ${label}`);
    if (settings.lock.delayMs <= settings.lock.ttlMs / 2) {
      assert.equal(peerMayLeadAfter, settings.lock.ttlMs, label);
    }
  });
});

Deno.test("a dead host's session is ended no sooner than its agent check would lapse: the fence keeps its margin", () => {
  assert.equal(agentTimings(config()).holderGoneAfterMs, 14_000, "15 s TTL − 1 s lock delay");
  eachLockSetting((settings, label) => {
    // Counted from the moment gossip calls the node critical, which is after its last renewal.
    const peerMayLeadAfter = agentTimings(settings).holderGoneAfterMs + settings.lock.delayMs;
    // As on the TTL path: the fence bound comes at least 0.4 × TTL before a peer may lead.
    assert.ok(peerMayLeadAfter >= settings.lock.ttlMs, `a TTL at least: ${label}`);
  });
});

Deno.test("a short HEALTHCHECK_INTERVAL is polled as set", () => {
  assert.equal(
    redisPollIntervalMs(config({ HEALTHCHECK_INTERVAL: "500ms", HEALTHCHECK_TIMEOUT: "2s" })),
    500,
  );
});

Deno.test("the role check is refreshed at half its TTL, never closer than 2 s to it, and at least every third", () => {
  assert.equal(checkRefreshMs(10_000), 5_000);
  assert.equal(checkRefreshMs(60_000), 30_000);
  assert.equal(checkRefreshMs(5_000), 2_500);
  assert.equal(checkRefreshMs(3_000), 1_000, "a third: half would leave only 1.5 s");
  assert.equal(checkRefreshMs(1_000), 333, "the short test timings keep a third");
  for (let ttl = 60; ttl <= 120_000; ttl = Math.ceil(ttl * 1.3)) {
    const refresh = checkRefreshMs(ttl);
    assert.ok(refresh <= ttl / 2 && refresh >= Math.floor(ttl / 3), `TTL ${ttl}`);
    assert.ok(ttl - refresh >= Math.min(2_000, (2 * ttl) / 3) - 1, `spare for TTL ${ttl}`);
  }
});
