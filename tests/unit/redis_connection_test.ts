/**
 * REDIS_* environment → RedisConnectionConfig, and the ioredis options made from it.
 */
import assert from "node:assert/strict";
import { EnvReader } from "../../lib/env.ts";
import {
  describeRedisConfig,
  ioredisOptions,
  parseRedisEnv,
  type RedisConnectionConfig,
} from "../../lib/redis/connection.ts";

const PEM = {
  "/etc/resec/ca.pem": "-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n",
  "/etc/resec/client.pem": "-----BEGIN CERTIFICATE-----\nCLIENT\n-----END CERTIFICATE-----\n",
  "/etc/resec/client.key": "-----BEGIN PRIVATE KEY-----\nKEY\n-----END PRIVATE KEY-----\n",
  "/etc/resec/not-pem.txt": "hello\n",
  "/run/credentials/resec.service/redis-password": " pa ss \r\n",
  "/etc/resec/empty-password": "\n\n",
} as Record<string, string>;

const PASSWORD_FILE = "/run/credentials/resec.service/redis-password";

function readFixture(path: string): string {
  const text = PEM[path];
  if (text === undefined) throw new Deno.errors.NotFound(`No such file: ${path}`);
  return text;
}

function parse(env: Record<string, string>) {
  const reader = new EnvReader(env);
  const config = parseRedisEnv(reader, readFixture);
  return { config, problems: reader.problems };
}

const accepted: { name: string; env: Record<string, string>; config: RedisConnectionConfig }[] = [
  { name: "nothing set → 127.0.0.1:6379", env: {}, config: { host: "127.0.0.1", port: 6379 } },
  {
    name: "a host name and port",
    env: { REDIS_ADDR: "redis.internal:6380" },
    config: { host: "redis.internal", port: 6380 },
  },
  {
    name: "an IPv6 address in brackets",
    env: { REDIS_ADDR: "[::1]:6379" },
    config: { host: "::1", port: 6379 },
  },
  {
    name: "a password, kept verbatim with its spaces",
    env: { REDIS_PASSWORD: " s3cret " },
    config: { host: "127.0.0.1", port: 6379, password: " s3cret " },
  },
  {
    name: "an ACL user with its password",
    env: { REDIS_USERNAME: "resec", REDIS_PASSWORD: "pw" },
    config: { host: "127.0.0.1", port: 6379, username: "resec", password: "pw" },
  },
  {
    name: "an empty password means none",
    env: { REDIS_PASSWORD: "" },
    config: { host: "127.0.0.1", port: 6379 },
  },
  {
    name: "a password file, only its trailing line break dropped",
    env: { REDIS_PASSWORD_FILE: PASSWORD_FILE },
    config: { host: "127.0.0.1", port: 6379, password: " pa ss " },
  },
  {
    name: "an ACL user with a password file",
    env: { REDIS_USERNAME: "resec", REDIS_PASSWORD_FILE: PASSWORD_FILE, REDIS_PASSWORD: "" },
    config: { host: "127.0.0.1", port: 6379, username: "resec", password: " pa ss " },
  },
  {
    name: "TLS with the built-in roots",
    env: { REDIS_TLS: "true" },
    config: { host: "127.0.0.1", port: 6379, tls: { rejectUnauthorized: true } },
  },
  {
    name: "mutual TLS with a CA, client certificate, key and server name",
    env: {
      REDIS_TLS: "1",
      REDIS_TLS_CA_CERT: "/etc/resec/ca.pem",
      REDIS_TLS_CERT: "/etc/resec/client.pem",
      REDIS_TLS_KEY: "/etc/resec/client.key",
      REDIS_TLS_SERVER_NAME: "redis.example.com",
    },
    config: {
      host: "127.0.0.1",
      port: 6379,
      tls: {
        rejectUnauthorized: true,
        caPem: PEM["/etc/resec/ca.pem"]!,
        certPem: PEM["/etc/resec/client.pem"]!,
        keyPem: PEM["/etc/resec/client.key"]!,
        serverName: "redis.example.com",
      },
    },
  },
  {
    name: "TLS without verification",
    env: { REDIS_TLS: "yes", REDIS_TLS_SKIP_VERIFY: "true" },
    config: { host: "127.0.0.1", port: 6379, tls: { rejectUnauthorized: false } },
  },
];

for (const { name, env, config } of accepted) {
  Deno.test(`parseRedisEnv accepts ${name}`, () => {
    const result = parse(env);
    assert.deepEqual(result.problems, []);
    assert.deepEqual(result.config, config);
  });
}

const refused: { name: string; env: Record<string, string>; variable: string; message: RegExp }[] =
  [
    {
      name: "an address without a port",
      env: { REDIS_ADDR: "redis" },
      variable: "REDIS_ADDR",
      message: /Cannot parse REDIS_ADDR "redis": expected "host:port" with a port/,
    },
    {
      name: "an IPv6 address without brackets",
      env: { REDIS_ADDR: "::1:6379" },
      variable: "REDIS_ADDR",
      message: /brackets/,
    },
    {
      name: "a port out of range",
      env: { REDIS_ADDR: "127.0.0.1:70000" },
      variable: "REDIS_ADDR",
      message: /outside 1–65535/,
    },
    {
      name: "a port that is not a number",
      env: { REDIS_ADDR: "127.0.0.1:redis" },
      variable: "REDIS_ADDR",
      message: /is not a number/,
    },
    {
      name: "a user without a password",
      env: { REDIS_USERNAME: "resec" },
      variable: "REDIS_USERNAME",
      message: /without REDIS_PASSWORD/,
    },
    {
      name: "TLS settings while REDIS_TLS is off",
      env: { REDIS_TLS_CA_CERT: "/etc/resec/ca.pem" },
      variable: "REDIS_TLS_CA_CERT",
      message: /REDIS_TLS is not true/,
    },
    {
      name: "a REDIS_TLS that is not a boolean",
      env: { REDIS_TLS: "maybe" },
      variable: "REDIS_TLS",
      message: /expected true or false/,
    },
    {
      name: "a CA file that does not exist",
      env: { REDIS_TLS: "true", REDIS_TLS_CA_CERT: "/etc/resec/missing.pem" },
      variable: "REDIS_TLS_CA_CERT",
      message: /Cannot read REDIS_TLS_CA_CERT "\/etc\/resec\/missing.pem"/,
    },
    {
      name: "a CA file that is not PEM",
      env: { REDIS_TLS: "true", REDIS_TLS_CA_CERT: "/etc/resec/not-pem.txt" },
      variable: "REDIS_TLS_CA_CERT",
      message: /is not a PEM file/,
    },
    {
      name: "REDIS_PASSWORD beside REDIS_PASSWORD_FILE",
      env: { REDIS_PASSWORD: "pw", REDIS_PASSWORD_FILE: PASSWORD_FILE },
      variable: "REDIS_PASSWORD_FILE",
      message: /REDIS_PASSWORD and REDIS_PASSWORD_FILE are both set: keep one/,
    },
    {
      name: "a password file that does not exist, naming it",
      env: { REDIS_PASSWORD_FILE: "/etc/resec/missing" },
      variable: "REDIS_PASSWORD_FILE",
      message: /^Cannot read REDIS_PASSWORD_FILE "\/etc\/resec\/missing": no such file$/,
    },
    {
      name: "an empty password file",
      env: { REDIS_PASSWORD_FILE: "/etc/resec/empty-password" },
      variable: "REDIS_PASSWORD_FILE",
      message: /^REDIS_PASSWORD_FILE "\/etc\/resec\/empty-password" is empty$/,
    },
    {
      name: "a client certificate without its key",
      env: { REDIS_TLS: "true", REDIS_TLS_CERT: "/etc/resec/client.pem" },
      variable: "REDIS_TLS_KEY",
      message: /go together/,
    },
  ];

for (const { name, env, variable, message } of refused) {
  Deno.test(`parseRedisEnv refuses ${name}`, () => {
    const { problems } = parse(env);
    assert.equal(problems.length, 1, JSON.stringify(problems));
    assert.equal(problems[0]?.variable, variable);
    assert.match(problems[0]?.message ?? "", message);
  });
}

Deno.test("parseRedisEnv reports every bad variable at once", () => {
  const { problems } = parse({
    REDIS_ADDR: "redis",
    REDIS_USERNAME: "resec",
    REDIS_TLS: "maybe",
    REDIS_TLS_KEY: "/etc/resec/client.key",
  });
  assert.deepEqual(problems.map((p) => p.variable), [
    "REDIS_ADDR",
    "REDIS_USERNAME",
    "REDIS_TLS",
    "REDIS_TLS_KEY",
  ]);
});

Deno.test("parseRedisEnv never echoes a password or pasted key material into a problem", () => {
  const key = PEM["/etc/resec/client.key"]!;
  const { problems } = parse({
    REDIS_ADDR: "nope",
    REDIS_PASSWORD: "hunter2-secret",
    REDIS_TLS: "true",
    REDIS_TLS_KEY: key,
    REDIS_TLS_CERT: "/etc/resec/client.pem",
  });
  const text = JSON.stringify(problems);
  assert.ok(problems.some((p) => p.variable === "REDIS_TLS_KEY"));
  assert.ok(!text.includes("hunter2-secret"));
  assert.ok(!text.includes("PRIVATE KEY"));
});

Deno.test("ioredisOptions never queues offline, never retries on its own and sets both timeouts", () => {
  const options = ioredisOptions(
    {
      host: "::1",
      port: 6380,
      username: "resec",
      password: "pw",
      tls: { rejectUnauthorized: false, caPem: "CA", serverName: "redis.example.com" },
    },
    { timeoutMs: 1_500, connectionName: "resec-test" },
  );
  assert.equal(options.host, "::1");
  assert.equal(options.port, 6380);
  assert.equal(options.enableOfflineQueue, false);
  assert.equal(options.enableReadyCheck, false);
  assert.equal(options.autoResendUnfulfilledCommands, false);
  assert.equal(options.maxRetriesPerRequest, 0);
  assert.equal(options.lazyConnect, true);
  assert.equal(options.retryStrategy?.(1), null);
  assert.equal(options.connectTimeout, 1_500);
  assert.equal(options.commandTimeout, 1_500);
  assert.equal(options.connectionName, "resec-test");
  assert.equal(options.username, "resec");
  assert.equal(options.password, "pw");
  assert.deepEqual(options.tls, {
    rejectUnauthorized: false,
    ca: "CA",
    servername: "redis.example.com",
  });
});

Deno.test("describeRedisConfig shows whether a password is set, never the password", () => {
  const described = describeRedisConfig({
    host: "::1",
    port: 6379,
    password: "hunter2",
    tls: { rejectUnauthorized: true, keyPem: "-----BEGIN PRIVATE KEY-----" },
  });
  const text = JSON.stringify(described);
  assert.equal(described.address, "[::1]:6379");
  assert.equal(described.password, "(set)");
  assert.ok(!text.includes("hunter2"));
  assert.ok(!text.includes("PRIVATE"));
});
