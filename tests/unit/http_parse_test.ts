import assert from "node:assert/strict";
import { HttpAddrSyntaxError, parseHttpAddr } from "../../lib/http/addr.ts";
import { LagSyntaxError, parseLagBound } from "../../lib/http/lag.ts";

Deno.test("lag bounds parse as bytes, units being powers of 1024 in any case", () => {
  const table: [string, number][] = [
    ["0", 0],
    ["4096", 4_096],
    ["512B", 512],
    ["1kB", 1_024],
    ["1KB", 1_024],
    ["16k", 16_384],
    ["2KiB", 2_048],
    ["1MB", 1_048_576],
    ["64mb", 67_108_864],
    ["1.5MB", 1_572_864],
    ["1GB", 1_073_741_824],
    ["1TB", 1_099_511_627_776],
    [" 10 kB ", 10_240],
    ["1.9", 1],
  ];
  for (const [input, expected] of table) assert.equal(parseLagBound(input), expected, input);
});

Deno.test("lag bounds that are not sizes are refused", () => {
  for (
    const input of [
      "",
      " ",
      "-1",
      "+1",
      "abc",
      "1XB",
      "1 M B",
      "1e3",
      "0x10",
      ".5MB",
      "1.",
      "Infinity",
      "NaN",
      "99999999999TB",
      "9".repeat(33),
    ]
  ) {
    assert.throws(() => parseLagBound(input), LagSyntaxError, JSON.stringify(input));
  }
});

Deno.test("a lag error quotes the value, cut short when long", () => {
  assert.throws(() => parseLagBound("lots"), {
    message:
      'Cannot parse lag "lots": expected a number of bytes such as "1048576", "512kB" or "1MB"',
  });
  assert.throws(
    () => parseLagBound("x".repeat(5_000)),
    (error: Error) => error.message.startsWith(`Cannot parse lag "${"x".repeat(40)}…":`),
  );
});

Deno.test("HTTP_ADDR takes host:port, [ipv6]:port, and :port for every IPv4 interface", () => {
  const table: [string, { host: string; port: number }][] = [
    ["127.0.0.1:8008", { host: "127.0.0.1", port: 8008 }],
    ["localhost:8008", { host: "localhost", port: 8008 }],
    ["resec-1.internal:80", { host: "resec-1.internal", port: 80 }],
    ["[::1]:8008", { host: "::1", port: 8008 }],
    ["[::]:8008", { host: "::", port: 8008 }],
    ["[fe80::1%eth0]:8008", { host: "fe80::1%eth0", port: 8008 }],
    [":8008", { host: "0.0.0.0", port: 8008 }],
    ["0.0.0.0:65535", { host: "0.0.0.0", port: 65_535 }],
    [" 127.0.0.1:8008 ", { host: "127.0.0.1", port: 8008 }],
  ];
  for (const [input, expected] of table) assert.deepEqual(parseHttpAddr(input), expected, input);
});

Deno.test("HTTP_ADDR values that are not listen addresses are refused with a hint", () => {
  const table: [string, RegExp][] = [
    ["", /expected "host:port" such as "127.0.0.1:8008"/],
    ["8008", /a port alone needs a colon: ":8008" listens on every interface/],
    ["localhost", /expected "host:port" with a port/],
    ["http://127.0.0.1:8008", /without a scheme or path/],
    ["127.0.0.1:8008/metrics", /without a scheme or path/],
    ["::1:8008", /write an IPv6 address in brackets/],
    ["[::1]8008", /expected "\[ipv6\]:port"/],
    ["[::1", /expected "\[ipv6\]:port"/],
    ["[local]:8008", /"local" is not an IPv6 address/],
    ["my host:8008", /"my host" is not a host name or IPv4 address/],
    ["*:8008", /"\*" is not a host name/],
    ["127.0.0.1:", /the port "" is not a number/],
    ["127.0.0.1:http", /the port "http" is not a number/],
    ["127.0.0.1:0", /the port 0 is outside 1–65535/],
    ["127.0.0.1:65536", /the port 65536 is outside 1–65535/],
    [":-1", /the port "-1" is not a number/],
  ];
  for (const [input, message] of table) {
    assert.throws(() => parseHttpAddr(input), HttpAddrSyntaxError, input);
    assert.throws(() => parseHttpAddr(input), message, input);
  }
  assert.throws(() => parseHttpAddr("8008"), {
    message: 'Cannot parse HTTP address "8008": a port alone needs a colon: ":8008" listens on ' +
      "every interface",
  });
});
