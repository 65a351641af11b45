/**
 * The agent check's output names the invalid records and malformed Consul answers the agent met.
 */
import assert from "node:assert/strict";
import { ConsulAnomalies } from "../../lib/agent/watch/consul_anomalies.ts";
import type { ConsulRequestEvent } from "../../lib/consul/client.ts";

const BASE = "resec 1.0.0 manages the Redis at 10.0.0.1:6379";

function request(outcome: ConsulRequestEvent["outcome"], endpoint = "kv.read"): ConsulRequestEvent {
  return { endpoint, method: "GET", status: outcome === "ok" ? 200 : 0, outcome, durationMs: 1 };
}

Deno.test("with nothing wrong met, the agent check's output is the plain one", () => {
  const anomalies = new ConsulAnomalies();
  for (const outcome of ["ok", "http_error", "unreachable", "timeout", "cancelled"] as const) {
    anomalies.requestDone(request(outcome));
  }
  assert.equal(anomalies.checkOutput(BASE), BASE);
});

Deno.test("the agent check's output counts invalid records and malformed answers and names the last", () => {
  const anomalies = new ConsulAnomalies();
  anomalies.invalidRecord("resec/.lock");
  assert.equal(
    anomalies.checkOutput(BASE),
    `${BASE}; since start: 1 invalid record in Consul (last: resec/.lock); the agent log has the ` +
      "details",
  );
  anomalies.invalidRecord("resec/.lock.paused");
  anomalies.requestDone(request("malformed", "health.service"));
  anomalies.requestDone(request("malformed", "kv.read"));
  assert.equal(
    anomalies.checkOutput(BASE),
    `${BASE}; since start: 2 invalid records in Consul (last: resec/.lock.paused), 2 malformed ` +
      "Consul answers (last: kv.read); the agent log has the details",
  );
});
