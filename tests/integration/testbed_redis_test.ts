/**
 * The test bed's own proof for Redis: real servers on free ports, reached through ioredis, and a replica
 * that links up with its master.
 */
import assert from "node:assert/strict";
import { RedisServer, waitFor } from "../support/mod.ts";

Deno.test("a test redis-server answers PING and INFO replication through ioredis", async () => {
  await using redis = await RedisServer.start();
  const client = redis.client();
  try {
    assert.equal(await client.ping(), "PONG");
    const info = await client.info("replication");
    assert.match(info, /^role:master$/m);
  } finally {
    client.disconnect();
  }
});

Deno.test("a replica started with REPLICAOF reports master_link_status:up and sees the master's keys", async () => {
  await using master = await RedisServer.start();
  await using replica = await RedisServer.start();
  const client = replica.client();
  const masterClient = master.client();
  try {
    assert.equal(await client.call("REPLICAOF", master.host, String(master.port)), "OK");
    await waitFor(async () => (await replica.info()).master_link_status === "up", {
      message: "the replica's link to come up",
    });
    await masterClient.set("greeting", "hello");
    await waitFor(async () => (await client.get("greeting")) === "hello", {
      message: "the key to replicate",
    });
  } finally {
    client.disconnect();
    masterClient.disconnect();
  }
});

Deno.test("a password-protected test server refuses a client without the password", async () => {
  await using redis = await RedisServer.start({ password: "s3cret" });
  const anonymous = redis.client({ password: undefined });
  try {
    await assert.rejects(() => anonymous.ping(), /NOAUTH|Authentication required/);
  } finally {
    anonymous.disconnect();
  }
  assert.equal(await redis.cli("PING"), "PONG");
});

Deno.test("a killed test server is gone and a restarted one comes back empty on the same port", async () => {
  await using redis = await RedisServer.start();
  await redis.cli("SET", "k", "v");
  await redis.kill();
  assert.equal(await redis.process?.isRunning(), false);
  await redis.restart();
  assert.equal(await redis.cli("DBSIZE"), "0");
});
