/**
 * classifyRedisError: every failure ioredis or the socket can produce becomes a typed error with a
 * message naming the server and the cause, and never carries a password along.
 */
import assert from "node:assert/strict";
import { ReplyError } from "ioredis";
import {
  type AuthFailure,
  classifyRedisError,
  isPermissionDenied,
  RedisAuthError,
  RedisCommandError,
  type RedisError,
  RedisMissingPermissionError,
  RedisTimeoutError,
  RedisTlsError,
  RedisUnavailableError,
} from "../../lib/redis/errors.ts";

const context = { command: "INFO", address: "127.0.0.1:6379" };

function reply(message: string, args: string[] = []): Error {
  const error = new ReplyError(message) as Error & { command?: unknown };
  // ioredis attaches the command to its reply errors; for AUTH that includes the password.
  error.command = { name: "auth", args };
  return error;
}

function socketError(code: string, message = `connect ${code} 127.0.0.1:6379`): Error {
  return Object.assign(new Error(message), { code });
}

const authCases: { name: string; error: Error; command?: string; failure: AuthFailure }[] = [
  {
    name: "WRONGPASS",
    error: reply("WRONGPASS invalid username-password pair or user is disabled.", ["hunter2"]),
    failure: "wrong-credentials",
  },
  { name: "NOAUTH", error: reply("NOAUTH Authentication required."), failure: "password-required" },
  {
    name: "a password for a server without one",
    error: reply(
      "ERR AUTH <password> called without any password configured for the default user.",
      ["hunter2"],
    ),
    failure: "no-password-configured",
  },
  {
    name: "a user name for Redis 5",
    error: reply("ERR wrong number of arguments for 'auth' command", ["resec", "hunter2"]),
    command: "AUTH",
    failure: "acl-unsupported",
  },
  {
    name: "NOPERM",
    error: reply("NOPERM this user has no permissions to run the 'info' command"),
    failure: "permission-denied",
  },
];

for (const { name, error, command, failure } of authCases) {
  Deno.test(`classifyRedisError turns ${name} into a RedisAuthError without the password`, () => {
    const classified = classifyRedisError(error, { ...context, command: command ?? "AUTH" });
    assert.ok(classified instanceof RedisAuthError);
    assert.equal(classified.failure, failure);
    assert.match(classified.message, /^Redis at 127\.0\.0\.1:6379 /);
    const everything = JSON.stringify({
      message: classified.message,
      cause: classified.cause,
      causeMessage: (classified.cause as Error).message,
    });
    assert.ok(!everything.includes("hunter2"), everything);
  });
}

Deno.test("classifyRedisError names the ACL user a refusal is about", () => {
  const classified = classifyRedisError(reply("WRONGPASS invalid username-password pair"), {
    ...context,
    command: "AUTH",
    username: "resec",
  });
  assert.match(classified.message, /ACL user "resec"/);
});

Deno.test("a NOPERM refusal names the command as the ACL does, and the missing-permission error the grant", () => {
  const classified = classifyRedisError(
    reply("NOPERM this user has no permissions to run the 'client|pause' command"),
    { ...context, command: "CLIENT PAUSE", username: "resec" },
  );
  assert.ok(isPermissionDenied(classified));
  assert.equal(classified.command, "client|pause");
  const missing = new RedisMissingPermissionError("127.0.0.1:6379", "resec", [
    "client|pause",
    "failover",
  ]);
  assert.match(
    missing.message,
    /^Redis at 127\.0\.0\.1:6379 does not allow ACL user "resec" to run CLIENT PAUSE, FAILOVER \(NOPERM\)/,
  );
  assert.match(missing.message, /ACL SETUSER resec \+client\|pause \+failover /);
  assert.ok(!isPermissionDenied(missing));
});

type RedisErrorClass = abstract new (...args: never[]) => RedisError;

const otherCases: { name: string; error: unknown; type: RedisErrorClass; message: RegExp }[] = [
  {
    name: "an error reply",
    error: reply("ERR unknown command 'FAILOVER'"),
    type: RedisCommandError,
    message: /^Redis refused INFO: ERR unknown command/,
  },
  {
    name: "a refused connection",
    error: socketError("ECONNREFUSED"),
    type: RedisUnavailableError,
    message: /refused the connection \(ECONNREFUSED\)/,
  },
  {
    name: "a reset connection",
    error: socketError("ECONNRESET", "read ECONNRESET"),
    type: RedisUnavailableError,
    message: /reset the connection/,
  },
  {
    name: "a host name that does not resolve",
    error: socketError("ENOTFOUND", "getaddrinfo ENOTFOUND redis.invalid"),
    type: RedisUnavailableError,
    message: /does not resolve/,
  },
  {
    name: "ioredis's command timeout",
    error: new Error("Command timed out"),
    type: RedisTimeoutError,
    message: /did not answer INFO within 300 ms/,
  },
  {
    name: "a certificate problem",
    error: socketError("DEPTH_ZERO_SELF_SIGNED_CERT", "self-signed certificate"),
    type: RedisTlsError,
    message: /^TLS handshake with Redis at 127\.0\.0\.1:6379 failed: self-signed certificate/,
  },
  {
    name: "a closed connection",
    error: new Error("Connection is closed."),
    type: RedisUnavailableError,
    message: /closed the connection/,
  },
  {
    name: "something unforeseen",
    error: "a string",
    type: RedisUnavailableError,
    message: /failed during INFO: a string/,
  },
];

for (const { name, error, type, message } of otherCases) {
  Deno.test(`classifyRedisError turns ${name} into a ${type.name}`, () => {
    const classified = classifyRedisError(error, { ...context, timeoutMs: 300 });
    assert.ok(classified instanceof type, `${classified.name}: ${classified.message}`);
    assert.match(classified.message, message);
  });
}

Deno.test("classifyRedisError passes its own errors through unchanged", () => {
  const original = new RedisTimeoutError("INFO", 300);
  assert.equal(classifyRedisError(original, context), original);
});
