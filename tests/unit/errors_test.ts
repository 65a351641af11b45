import assert from "node:assert/strict";
import { AnnounceAddressError } from "../../lib/agent/placement.ts";
import { AddressSyntaxError } from "../../lib/address.ts";
import { UsageError } from "../../lib/cli.ts";
import {
  ConsulError,
  ConsulHttpError,
  ConsulPermissionDeniedError,
  ConsulResponseTooLargeError,
  ConsulTimeoutError,
} from "../../lib/consul/errors.ts";
import { LockLostError } from "../../lib/consul/lock.ts";
import { SessionGoneError } from "../../lib/consul/session.ts";
import { DurationSyntaxError } from "../../lib/duration.ts";
import { ConfigError } from "../../lib/env.ts";
import { ResecError } from "../../lib/errors.ts";
import { HttpAddrSyntaxError } from "../../lib/http/addr.ts";
import { LagSyntaxError } from "../../lib/http/lag.ts";
import { HttpListenError } from "../../lib/http/server.ts";
import { MetricsError } from "../../lib/metrics/registry.ts";
import { InvalidRecordError } from "../../lib/record.ts";
import {
  RedisError,
  RedisMissingPermissionError,
  RedisTimeoutError,
  RedisVersionError,
} from "../../lib/redis/errors.ts";

Deno.test("every error family is a ResecError and keeps its own name and base", () => {
  const cases: [Error, string, (abstract new (...args: never[]) => Error)[]][] = [
    [new ConsulTimeoutError("GET", "/v1/kv/a", 100), "ConsulTimeoutError", [ConsulError]],
    [
      new ConsulPermissionDeniedError("denied", "PUT", "/v1/kv/a", 'writing key "a"'),
      "ConsulPermissionDeniedError",
      [ConsulHttpError, ConsulError],
    ],
    [new ConsulResponseTooLargeError("GET", "/v1/kv/a", 8), "ConsulResponseTooLargeError", [
      ConsulError,
    ]],
    [new SessionGoneError("s"), "SessionGoneError", [ConsulError]],
    [new LockLostError("k", "s", "session-gone", "gone"), "LockLostError", []],
    [new RedisTimeoutError("INFO", 100), "RedisTimeoutError", [RedisError]],
    [new RedisVersionError("127.0.0.1:6379", "6.0.0"), "RedisVersionError", [RedisError]],
    [
      new RedisMissingPermissionError("127.0.0.1:6379", undefined, ["client|pause"]),
      "RedisMissingPermissionError",
      [RedisError],
    ],
    [new ConfigError([]), "ConfigError", []],
    [new DurationSyntaxError("5x"), "DurationSyntaxError", []],
    [new AddressSyntaxError("x", "bad"), "AddressSyntaxError", []],
    [new HttpAddrSyntaxError("x", "bad"), "HttpAddrSyntaxError", []],
    [new LagSyntaxError("x"), "LagSyntaxError", []],
    [new UsageError("bad"), "UsageError", []],
    [new AnnounceAddressError("bad"), "AnnounceAddressError", []],
    [new InvalidRecordError("lock value", "bad"), "InvalidRecordError", []],
    [
      new HttpListenError({ host: "127.0.0.1", port: 1 }, new Error("in use")),
      "HttpListenError",
      [],
    ],
    [new MetricsError("bad"), "MetricsError", []],
  ];
  for (const [error, name, bases] of cases) {
    assert.ok(error instanceof ResecError, name);
    assert.equal(error.name, name);
    for (const base of bases) assert.ok(error instanceof base, `${name} is a ${base.name}`);
  }
});

Deno.test("errors that are not resec's own are not ResecErrors", () => {
  assert.ok(!(new Error("bug") instanceof ResecError));
  assert.ok(!(new TypeError("bug") instanceof ResecError));
});
