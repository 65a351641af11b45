/**
 * Credentials against real redis-server processes: wrong passwords, ACL users and permissions give a
 * clear, typed error naming the cause, never the secret, and the observer neither crashes nor spins.
 */
import assert from "node:assert/strict";
import { CapturingLogger } from "../../lib/log.ts";
import { RedisClient } from "../../lib/redis/client.ts";
import type { RedisConnectionConfig } from "../../lib/redis/connection.ts";
import { RedisAuthError } from "../../lib/redis/errors.ts";
import {
  type DownObservation,
  type RedisObservation,
  RedisObserver,
  type UpObservation,
} from "../../lib/redis/observer.ts";
import { RedisCommander } from "../../lib/redis/commander.ts";
import { RedisServer } from "../support/mod.ts";

const RIGHT = "correct-horse-battery";
const WRONG = "wrong-staple-4711";

const isUp = (o: RedisObservation): o is UpObservation => o.kind === "up";
const isDown = (o: RedisObservation): o is DownObservation => o.kind === "down";

function config(server: RedisServer, auth: Partial<RedisConnectionConfig>): RedisConnectionConfig {
  return { host: server.host, port: server.port, ...auth };
}

async function connectError(connection: RedisConnectionConfig): Promise<RedisAuthError> {
  try {
    const client = await RedisClient.connect(connection, {
      timeoutMs: 2_000,
      connectionName: "resec-test",
    });
    client.close();
  } catch (error) {
    assert.ok(error instanceof RedisAuthError, `expected a RedisAuthError, got ${error}`);
    return error;
  }
  assert.fail("the connection was accepted");
}

Deno.test("a wrong password is refused with a RedisAuthError that names the cause, not the password", async () => {
  await using redis = await RedisServer.start({ password: RIGHT });
  const error = await connectError(config(redis, { password: WRONG }));
  assert.equal(error.failure, "wrong-credentials");
  assert.match(error.message, /refused the credentials: wrong password for the "default" user/);
  assert.match(error.message, new RegExp(`Redis at ${redis.address}`));
  const everything = `${error.message} ${error.stack} ${(error.cause as Error)?.message}`;
  assert.ok(!everything.includes(WRONG) && !everything.includes(RIGHT));
});

Deno.test("no password for a Redis that requires one is reported as 'set REDIS_PASSWORD'", async () => {
  await using redis = await RedisServer.start({ password: RIGHT });
  const error = await connectError(config(redis, {}));
  assert.equal(error.failure, "password-required");
  assert.match(error.message, /requires authentication.*set REDIS_PASSWORD \(NOAUTH\)/);
});

Deno.test("a password for a Redis without one is reported, not silently ignored", async () => {
  await using redis = await RedisServer.start();
  const error = await connectError(config(redis, { password: WRONG }));
  assert.equal(error.failure, "no-password-configured");
  assert.match(error.message, /no password configured for the default user/);
  assert.ok(!error.message.includes(WRONG));
});

Deno.test("an ACL user with a wrong password, or one that does not exist, is named in the error", async () => {
  await using redis = await RedisServer.start();
  await redis.cli("ACL", "SETUSER", "resec", "on", `>${RIGHT}`, "~*", "&*", "+@all");
  const wrong = await connectError(config(redis, { username: "resec", password: WRONG }));
  assert.equal(wrong.failure, "wrong-credentials");
  assert.match(wrong.message, /wrong password for ACL user "resec"/);
  const missing = await connectError(config(redis, { username: "nobody", password: RIGHT }));
  assert.match(missing.message, /ACL user "nobody", or the user does not exist/);

  const client = await RedisClient.connect(config(redis, { username: "resec", password: RIGHT }), {
    timeoutMs: 2_000,
    connectionName: "resec-test",
  });
  try {
    assert.equal(await client.call("ACL", ["WHOAMI"]), "resec");
  } finally {
    client.close();
  }
});

Deno.test("an ACL user that may not run INFO makes the observer report down with a permission error", async () => {
  await using redis = await RedisServer.start();
  await redis.cli("ACL", "SETUSER", "limited", "on", `>${RIGHT}`, "+ping", "+client|setname");
  const logger = new CapturingLogger();
  await using observer = new RedisObserver({
    connection: config(redis, { username: "limited", password: RIGHT }),
    intervalMs: 200,
    timeoutMs: 2_000,
    logger,
  });
  observer.start();
  const down = await observer.waitFor(isDown, { timeoutMs: 5_000 });
  assert.ok(down.error instanceof RedisAuthError);
  assert.equal(down.error.failure, "permission-denied");
  assert.match(down.reason, /does not allow ACL user "limited" to run INFO/);
});

Deno.test("an ACL user without CONFIG still observes, falling back to the default replica-priority", async () => {
  await using redis = await RedisServer.start();
  await redis.cli(
    "ACL",
    "SETUSER",
    "observer",
    "on",
    `>${RIGHT}`,
    "+info",
    "+ping",
    "+client|setname",
  );
  const logger = new CapturingLogger();
  await using observer = new RedisObserver({
    connection: config(redis, { username: "observer", password: RIGHT }),
    intervalMs: 200,
    timeoutMs: 2_000,
    logger,
  });
  observer.start();
  const up = await observer.waitFor(isUp, { timeoutMs: 5_000 });
  assert.equal(up.replicaPriority, 100);
  assert.match(logger.text(), /cannot read replica-priority/);
});

Deno.test("an observer with a wrong password reports down once, retries without spinning, logs no secret, and recovers when the password is fixed", async () => {
  await using redis = await RedisServer.start({ password: RIGHT });
  const logger = new CapturingLogger();
  const seen: RedisObservation[] = [];
  await using observer = new RedisObserver({
    connection: config(redis, { password: WRONG }),
    intervalMs: 200,
    timeoutMs: 2_000,
    logger,
  });
  observer.onChange((o) => seen.push(o));
  observer.start();
  const down = await observer.waitFor(isDown, { timeoutMs: 5_000 });
  assert.ok(down.error instanceof RedisAuthError);
  assert.match(down.reason, /wrong password/);

  const connectionsBefore = Number((await redis.info("stats")).total_connections_received);
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  const attempts = Number((await redis.info("stats")).total_connections_received) -
    connectionsBefore - 1; // minus the redis-cli call itself
  // Backoff from 100 ms up to the 200 ms interval: a handful of attempts a second, not a spin.
  assert.ok(attempts >= 2 && attempts <= 12, `${attempts} connection attempts in 1 s`);
  assert.equal(seen.filter(isDown).length, 1, "one down observation while the reason is unchanged");
  assert.equal(logger.lines.filter((line) => line.message === "redis down").length, 1);

  // The operator fixes the server side: the same observer gets in.
  await redis.cli("CONFIG", "SET", "requirepass", WRONG);
  await observer.waitFor(isUp, { timeoutMs: 5_000 });
  const log = logger.text();
  assert.ok(!log.includes(WRONG), log);
  assert.ok(!log.includes(RIGHT), log);
  assert.ok(!JSON.stringify(seen.map((o) => (o.kind === "down" ? o.reason : ""))).includes(WRONG));
});

Deno.test("a commander with a wrong password throws RedisAuthError for each command and logs no secret", async () => {
  await using redis = await RedisServer.start({ password: RIGHT });
  const logger = new CapturingLogger();
  await using commander = new RedisCommander({
    connection: config(redis, { password: WRONG }),
    timeoutMs: 2_000,
    logger,
  });
  await assert.rejects(() => commander.promote(), RedisAuthError);
  await assert.rejects(() => commander.pauseWrites(100), RedisAuthError);
  assert.ok(!logger.text().includes(WRONG));
});
