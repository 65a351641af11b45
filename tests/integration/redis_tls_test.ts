/**
 * TLS to a real redis-server (built with TLS): REDIS_TLS_* files read by parseRedisEnv, server
 * verification by CA and name, and mutual TLS. Certificates are made with openssl for each module.
 */
import assert from "node:assert/strict";
import { EnvReader } from "../../lib/env.ts";
import { CapturingLogger } from "../../lib/log.ts";
import { parseRedisEnv, type RedisConnectionConfig } from "../../lib/redis/connection.ts";
import { RedisTlsError, RedisUnavailableError } from "../../lib/redis/errors.ts";
import {
  type DownObservation,
  type RedisObservation,
  RedisObserver,
  type UpObservation,
} from "../../lib/redis/observer.ts";
import { freePort, makeServerDir, RedisServer } from "../support/mod.ts";

const isUp = (o: RedisObservation): o is UpObservation => o.kind === "up";
const isDown = (o: RedisObservation): o is DownObservation => o.kind === "down";

async function openssl(dir: string, ...args: string[]): Promise<void> {
  const output = await new Deno.Command("openssl", { args, cwd: dir, stderr: "piped" }).output();
  if (!output.success) {
    throw new Error(`openssl ${args[0]} failed: ${new TextDecoder().decode(output.stderr)}`);
  }
}

/** A CA, a server certificate for 127.0.0.1/localhost and a client certificate, all X.509 v3. */
async function makeCertificates(): Promise<string> {
  const dir = makeServerDir("tls");
  Deno.writeTextFileSync(`${dir}/server.ext`, "subjectAltName=DNS:localhost,IP:127.0.0.1\n");
  Deno.writeTextFileSync(`${dir}/client.ext`, "extendedKeyUsage=clientAuth\n");
  await openssl(
    dir,
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-days",
    "2",
    "-subj",
    "/CN=resec test CA",
    "-keyout",
    "ca.key",
    "-out",
    "ca.pem",
  );
  for (const name of ["server", "client"]) {
    await openssl(
      dir,
      "req",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-subj",
      `/CN=resec test ${name}`,
      "-keyout",
      `${name}.key`,
      "-out",
      `${name}.csr`,
    );
    await openssl(
      dir,
      "x509",
      "-req",
      "-days",
      "2",
      "-in",
      `${name}.csr`,
      "-CA",
      "ca.pem",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-extfile",
      `${name}.ext`,
      "-out",
      `${name}.pem`,
    );
  }
  return dir;
}

const certs = await makeCertificates();

async function startTlsRedis(authClients: "yes" | "no") {
  const tlsPort = freePort();
  const server = await RedisServer.start({
    args: [
      "--tls-port",
      String(tlsPort),
      "--tls-cert-file",
      `${certs}/server.pem`,
      "--tls-key-file",
      `${certs}/server.key`,
      "--tls-ca-cert-file",
      `${certs}/ca.pem`,
      "--tls-auth-clients",
      authClients,
    ],
  });
  return { server, tlsPort };
}

function configFromEnv(env: Record<string, string>): RedisConnectionConfig {
  const reader = new EnvReader(env);
  const config = parseRedisEnv(reader, Deno.readTextFileSync);
  reader.assertValid();
  return config;
}

async function observeOnce(connection: RedisConnectionConfig): Promise<RedisObservation> {
  await using observer = new RedisObserver({
    connection,
    intervalMs: 200,
    timeoutMs: 3_000,
    logger: new CapturingLogger(),
  });
  observer.start();
  return await observer.waitFor((o) => o.kind !== "unknown", { timeoutMs: 5_000 });
}

Deno.test("the observer reaches Redis over TLS, verifying the server against REDIS_TLS_CA_CERT", async () => {
  const { server, tlsPort } = await startTlsRedis("no");
  await using _ = server;
  const observation = await observeOnce(configFromEnv({
    REDIS_ADDR: `127.0.0.1:${tlsPort}`,
    REDIS_TLS: "true",
    REDIS_TLS_CA_CERT: `${certs}/ca.pem`,
  }));
  assert.ok(isUp(observation), JSON.stringify(observation));
  assert.equal(observation.info.role, "master");
});

Deno.test("a certificate that does not name REDIS_TLS_SERVER_NAME is refused with a RedisTlsError", async () => {
  const { server, tlsPort } = await startTlsRedis("no");
  await using _ = server;
  const observation = await observeOnce(configFromEnv({
    REDIS_ADDR: `127.0.0.1:${tlsPort}`,
    REDIS_TLS: "true",
    REDIS_TLS_CA_CERT: `${certs}/ca.pem`,
    REDIS_TLS_SERVER_NAME: "redis.example.com",
  }));
  assert.ok(isDown(observation));
  assert.ok(observation.error instanceof RedisTlsError, observation.reason);
  assert.match(observation.reason, /TLS handshake with Redis at 127\.0\.0\.1:\d+ failed/);
});

Deno.test("a server whose CA is not trusted is refused, unless REDIS_TLS_SKIP_VERIFY is set", async () => {
  const { server, tlsPort } = await startTlsRedis("no");
  await using _ = server;
  const untrusted = await observeOnce(configFromEnv({
    REDIS_ADDR: `127.0.0.1:${tlsPort}`,
    REDIS_TLS: "true",
  }));
  assert.ok(isDown(untrusted));
  assert.ok(untrusted.error instanceof RedisTlsError, untrusted.reason);

  const skipped = await observeOnce(configFromEnv({
    REDIS_ADDR: `127.0.0.1:${tlsPort}`,
    REDIS_TLS: "true",
    REDIS_TLS_SKIP_VERIFY: "true",
  }));
  assert.ok(isUp(skipped), JSON.stringify(skipped));
});

Deno.test("mutual TLS: a client certificate gets in, and its absence is reported down", async () => {
  const { server, tlsPort } = await startTlsRedis("yes");
  await using _ = server;
  const without = await observeOnce(configFromEnv({
    REDIS_ADDR: `127.0.0.1:${tlsPort}`,
    REDIS_TLS: "true",
    REDIS_TLS_CA_CERT: `${certs}/ca.pem`,
  }));
  assert.ok(isDown(without));
  assert.ok(
    without.error instanceof RedisTlsError || without.error instanceof RedisUnavailableError,
    without.reason,
  );

  const withCert = await observeOnce(configFromEnv({
    REDIS_ADDR: `127.0.0.1:${tlsPort}`,
    REDIS_TLS: "true",
    REDIS_TLS_CA_CERT: `${certs}/ca.pem`,
    REDIS_TLS_CERT: `${certs}/client.pem`,
    REDIS_TLS_KEY: `${certs}/client.key`,
  }));
  assert.ok(isUp(withCert), JSON.stringify(withCert));
});
