/**
 * Candidacies against a real Consul: each is held by a session without TTL, tied to its agent's
 * check, so a steady agent writes nothing and a dead one is seen gone when its check lapses.
 */
import assert from "node:assert/strict";
import { CandidacyBoard } from "../../lib/agent/apply/candidacy_board.ts";
import { type Candidacy, isLive } from "../../lib/reconciler/election.ts";
import { systemClock } from "../../lib/clock.ts";
import { ConsulClient } from "../../lib/consul/client.ts";
import { readKey } from "../../lib/consul/kv.ts";
import { registerService, updateCheck } from "../../lib/consul/service.ts";
import { silentLogger } from "../../lib/log.ts";
import { ConsulServer, delay, waitFor } from "../support/mod.ts";
import { presenceService } from "../support/services.ts";

const LOCK_KEY = "resec/.lock";

function candidacy(address: string): Candidacy {
  return {
    address,
    runId: "r".repeat(40),
    replicationId: "a".repeat(40),
    replicationId2: "",
    offset: 100,
    role: "replica",
    healthy: true,
    datasetEmpty: false,
    synced: true,
    priority: 100,
    forced: false,
    vacancy: 0,
    updatedAt: new Date().toISOString(),
  };
}

/** A board for `address` whose session is tied to `checkId`. */
function board(client: ConsulClient, address: string, checkId: string): CandidacyBoard {
  return new CandidacyBoard({
    client,
    lockKey: LOCK_KEY,
    self: address,
    session: { name: "resec", serviceChecks: () => [checkId], ttlMs: 15_000 },
    staleAfterMs: 1_000,
    clock: systemClock,
    logger: silentLogger,
    onChange: () => {},
  });
}

/** Registers an agent check of `ttlMs` for the agent at `port`; returns its ID. */
async function agentCheck(client: ConsulClient, port: number, ttlMs: number): Promise<string> {
  const base = presenceService(ttlMs);
  const id = `redis-agent@127.0.0.1:${port}`;
  await registerService(client, { ...base, id, port, check: { ...base.check, id: `${id}:alive` } });
  return `${id}:alive`;
}

Deno.test("a candidacy is held by a session tied to its agent check: written once, seen gone when the check lapses, published again when it passes", async () => {
  await using consul = await ConsulServer.start();
  using client = new ConsulClient({ connection: { baseUrl: consul.url } });
  const checkA = await agentCheck(client, 6379, 2_000);
  const checkB = await agentCheck(client, 6380, 60_000);
  await using a = board(client, "127.0.0.1:6379", checkA);
  await using b = board(client, "127.0.0.1:6380", checkB);
  const keyA = `${LOCK_KEY}.candidates/127.0.0.1:6379`;

  await a.publish(candidacy("127.0.0.1:6379"));
  const seen = await waitFor(() => b.peers().find((peer) => peer.held) ?? false, {
    message: "B to see A's candidacy held",
  });
  assert.equal(seen.candidacy.address, "127.0.0.1:6379");
  const written = await readKey(client, keyA);
  assert.ok(written.entry?.session, "held by A's session");

  // A steady agent writes nothing: the entry does not change while A's check passes.
  await updateCheck(client, checkA, "passing", "alive");
  await delay(1_000);
  assert.equal((await readKey(client, keyA)).entry?.modifyIndex, written.entry?.modifyIndex);
  assert.equal(b.peers().length, 1);

  // A's agent stops heartbeating: its check lapses, Consul ends the session, B sees A released:
  // never live, but an election waits a moment for it (A may be back from a cut).
  await waitFor(() => b.peers().some((peer) => peer.released === true), {
    timeoutMs: 10_000,
    message: "A's candidacy to be released once its check lapsed",
  });
  const released = await readKey(client, keyA);
  assert.equal(released.entry?.session, undefined);
  assert.equal(isLive(b.peers()[0]!, Date.now(), { staleAfterMs: 60_000 }), false);

  // Its check passes again: A's board notices its released entry and takes it with a new session.
  await updateCheck(client, checkA, "passing", "alive");
  await waitFor(() => b.peers().some((peer) => peer.held), {
    timeoutMs: 10_000,
    message: "A's candidacy to be held again",
  });
  const again = await readKey(client, keyA);
  assert.ok(again.entry?.session);
  assert.notEqual(again.entry?.session, written.entry?.session);
});

Deno.test("a board that closes ends its session and removes its entry: its peers see it gone at once", async () => {
  await using consul = await ConsulServer.start();
  using client = new ConsulClient({ connection: { baseUrl: consul.url } });
  const checkA = await agentCheck(client, 6379, 60_000);
  const checkB = await agentCheck(client, 6380, 60_000);
  const a = board(client, "127.0.0.1:6379", checkA);
  await using b = board(client, "127.0.0.1:6380", checkB);
  await a.publish(candidacy("127.0.0.1:6379"));
  await waitFor(() => b.peers().length === 1, { message: "B to see A" });
  await a.close();
  assert.equal((await readKey(client, `${LOCK_KEY}.candidates/127.0.0.1:6379`)).entry, undefined);
  // Released or deleted, A no longer counts once its staleness window (1 s here) has passed.
  const live = () => b.peers().filter((peer) => isLive(peer, Date.now(), { staleAfterMs: 1_000 }));
  await waitFor(() => live().length === 0, { timeoutMs: 3_000, message: "B to drop A" });
});
