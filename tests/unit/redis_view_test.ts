/**
 * toRedisView: a Redis that fails in a way that leaves it serving other clients is marked so, with
 * when it failed; a refused connection is not; a replica pointed at itself is detached.
 */
import assert from "node:assert/strict";
import { mayServe, toRedisView } from "../../lib/agent/watch/redis_view.ts";
import { parseInfo } from "../../lib/redis/info.ts";
import {
  RedisAuthError,
  RedisCommandError,
  RedisTimeoutError,
  RedisUnavailableError,
} from "../../lib/redis/errors.ts";

Deno.test("a timeout, a refused credential or command may leave Redis serving; a refused connection does not", () => {
  assert.equal(mayServe(new RedisTimeoutError("INFO", 3_000)), true);
  assert.equal(mayServe(new RedisAuthError("wrong-credentials", "WRONGPASS")), true);
  assert.equal(mayServe(new RedisCommandError("INFO", "NOPERM")), true);
  assert.equal(mayServe(new RedisUnavailableError("connection refused (ECONNREFUSED)")), false);
});

Deno.test("a down observation carries whether Redis may still serve, and since when it is down", () => {
  const error = new RedisTimeoutError("INFO", 3_000);
  const view = toRedisView({
    kind: "down",
    reason: error.message,
    error,
    since: 5_000,
    lastUp: undefined,
  }, 6379);
  assert.deepEqual(view, { kind: "down", reason: error.message, since: 5_000, mayServe: true });
  const refused = new RedisUnavailableError("connection refused (ECONNREFUSED)");
  assert.deepEqual(
    toRedisView({
      kind: "down",
      reason: refused.message,
      error: refused,
      since: 5_000,
      lastUp: undefined,
    }, 6379),
    { kind: "down", reason: refused.message, since: 5_000 },
  );
});

Deno.test("a replica pointed at its own port on loopback is detached; one following another port is not", () => {
  const view = (tcpPort: number, masterHost: string, masterPort: number) =>
    toRedisView({
      kind: "up",
      info: parseInfo(
        `# Server\r\nrun_id:${"r".repeat(40)}\r\ntcp_port:${tcpPort}\r\n` +
          `# Replication\r\nrole:slave\r\nmaster_host:${masterHost}\r\nmaster_port:${masterPort}\r\n` +
          "master_link_status:down\r\nmaster_link_down_since_seconds:3\r\n",
      ),
      replicaPriority: 100,
      datasetEmpty: false,
      observedAt: 0,
      latencyMs: 1,
    }, 6379);
  const detached = (v: ReturnType<typeof view>) => v.kind === "up" && v.detached;
  assert.equal(detached(view(6379, "127.0.0.1", 6379)), true);
  assert.equal(detached(view(6379, "127.0.0.1", 6380)), false, "another Redis on this host");
  assert.equal(detached(view(6379, "10.0.0.1", 6379)), false, "the announced address: a real link");
  // TLS only (`port 0`): the port the agent reaches Redis on stands in.
  assert.equal(detached(view(0, "127.0.0.1", 6379)), true);
});
