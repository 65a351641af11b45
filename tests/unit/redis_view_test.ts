/**
 * toRedisView: a Redis that fails in a way that leaves it serving other clients is marked so, with
 * when it failed; a refused connection is not.
 */
import assert from "node:assert/strict";
import { mayServe, toRedisView } from "../../lib/agent/watch/redis_view.ts";
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
  });
  assert.deepEqual(view, { kind: "down", reason: error.message, since: 5_000, mayServe: true });
  const refused = new RedisUnavailableError("connection refused (ECONNREFUSED)");
  assert.deepEqual(
    toRedisView({
      kind: "down",
      reason: refused.message,
      error: refused,
      since: 5_000,
      lastUp: undefined,
    }),
    { kind: "down", reason: refused.message, since: 5_000 },
  );
});
