import assert from "node:assert/strict";
import { DurationSyntaxError, formatDuration, parseDuration } from "../../lib/duration.ts";
import {
  AddressSyntaxError,
  formatHostPort,
  parseHostPort,
  parsePort,
  splitHostPort,
} from "../../lib/address.ts";
import { backoffDelay } from "../../lib/backoff.ts";

Deno.test("Go duration strings parse to milliseconds", () => {
  const table: [string, number][] = [
    ["0", 0],
    ["1s", 1_000],
    ["500ms", 500],
    ["72h", 259_200_000],
    ["1m30s", 90_000],
    ["1.5s", 1_500],
    ["2h45m", 9_900_000],
    ["100us", 0.1],
    ["-3s", -3_000],
  ];
  for (const [input, expected] of table) assert.equal(parseDuration(input), expected, input);
});

Deno.test("strings that are not Go durations are refused", () => {
  for (const input of ["5x", "5", "", "s", "1 s", "1d", "--1s", "1s2"]) {
    assert.throws(() => parseDuration(input), DurationSyntaxError, input);
  }
});

Deno.test("durations format the way Go prints them", () => {
  assert.equal(formatDuration(0), "0s");
  assert.equal(formatDuration(500), "500ms");
  assert.equal(formatDuration(90_000), "1m30s");
  assert.equal(formatDuration(3_600_000), "1h0m0s");
});

Deno.test("host:port addresses parse, IPv6 in brackets included", () => {
  assert.deepEqual(parseHostPort("127.0.0.1:6379"), { host: "127.0.0.1", port: 6379 });
  assert.deepEqual(parseHostPort("redis.internal:7000"), { host: "redis.internal", port: 7000 });
  assert.deepEqual(parseHostPort("[::1]:6379"), { host: "::1", port: 6379 });
  assert.equal(formatHostPort({ host: "::1", port: 6379 }), "[::1]:6379");
});

Deno.test("addresses without a port, with a bad port or with a bare IPv6 host are refused", () => {
  for (
    const input of [
      "redis",
      "redis:",
      "redis:x",
      "redis:70000",
      "redis:0",
      "::1:6379",
      "[::1]6379",
      ":6379",
    ]
  ) {
    assert.throws(() => parseHostPort(input), AddressSyntaxError, input);
  }
});

Deno.test("backoff grows by its factor, stays under its ceiling, and jitters both ways", () => {
  const policy = { initialMs: 100, maxMs: 1_000, jitter: 0.2 };
  assert.equal(backoffDelay(policy, 1, () => 0.5), 100);
  assert.equal(backoffDelay(policy, 3, () => 0.5), 400);
  assert.equal(backoffDelay(policy, 10, () => 0.5), 1_000);
  assert.equal(backoffDelay(policy, 1, () => 0), 80);
  assert.equal(backoffDelay(policy, 1, () => 1), 120);
  assert.equal(backoffDelay(policy, 10, () => 1), 1_000, "jitter never exceeds the ceiling");
});

Deno.test("the address parsing core splits host and port and names each fault", () => {
  assert.deepEqual(splitHostPort("[::1]:6379"), { host: "::1", bracketed: true, portText: "6379" });
  assert.deepEqual(splitHostPort(":8008"), { host: "", bracketed: false, portText: "8008" });
  assert.deepEqual(splitHostPort("[::1]6379"), { kind: "unclosed-bracket" });
  assert.deepEqual(splitHostPort("redis"), { kind: "no-port" });
  assert.deepEqual(splitHostPort("::1:6379"), { kind: "unbracketed-ipv6" });
  assert.equal(parsePort("65535"), 65_535);
  assert.deepEqual(parsePort("http"), { kind: "port-not-a-number", portText: "http" });
  assert.deepEqual(parsePort("0"), { kind: "port-out-of-range", port: 0 });
});
