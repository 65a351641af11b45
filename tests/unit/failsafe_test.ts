/**
 * Failsafe mode (FAILSAFE_MODE): the signed call, the rule for granting it, how long grants keep a
 * master writable, and both agents' sides driven by a manual clock. No network: the master's sender
 * is the peer's handler itself.
 */
import assert from "node:assert/strict";
import { ManualClock } from "../../lib/clock.ts";
import {
  encodeCall,
  FailsafeKey,
  parseAnswer,
  parseCall,
  SIGNATURE_HEADER,
} from "../../lib/failsafe/call.ts";
import { type CallSender, FailsafeMaster } from "../../lib/failsafe/master.ts";
import { FailsafePeer, MAX_CALL_BYTES } from "../../lib/failsafe/peer.ts";
import { failsafeTargets } from "../../lib/agent/failsafe_wiring.ts";
import { silentLogger } from "../../lib/log.ts";
import { answerCall, grantReliedMs, writesAllowedUntil } from "../../lib/reconciler/failsafe.ts";
import type { LeaderView, LockView } from "../../lib/reconciler/model.ts";
import { OTHER, SELF } from "./fixtures/views.ts";
import { candidacy } from "./fixtures/candidacy.ts";

const SECRET = "a shared secret of the group";
const LEASE_MS = 9_000;
/** SELF leads in term 4, as OTHER (the peer) sees it. */
const SELF_LEADS: LeaderView = { address: SELF, session: "s", lockIndex: 4 };
const CALL = { leader: SELF, lockIndex: 4, sentAt: 1_000_000 };

Deno.test("a failsafe key shorter than 16 bytes is refused", () => {
  assert.throws(() => new FailsafeKey("  short  "), /at least 16/);
});

Deno.test("a call signed with the group's key verifies; another key, another body or no signature do not", async () => {
  const key = new FailsafeKey(SECRET);
  const body = encodeCall(CALL);
  const signature = await key.sign(body);
  assert.equal(await key.verify(body, signature), true);
  assert.equal(await new FailsafeKey(`${SECRET}!`).verify(body, signature), false);
  assert.equal(await key.verify(body.replace('"lockIndex":4', '"lockIndex":5'), signature), false);
  assert.equal(await key.verify(body, null), false);
  assert.equal(await key.verify(body, "zz"), false);
  assert.deepEqual(parseCall(body), CALL);
});

Deno.test("a peer grants only a call from the holder it last saw, in that holder's term", () => {
  const base = {
    call: CALL,
    self: OTHER,
    lock: { phase: "idle" } as LockView,
    leader: SELF_LEADS as LeaderView | null | undefined,
    wallNow: CALL.sentAt + 50,
    leaseMs: LEASE_MS,
  };
  assert.deepEqual(answerCall(base), { granted: true, leaseMs: LEASE_MS });
  const refused = (changes: Partial<typeof base>) => {
    const answer = answerCall({ ...base, ...changes });
    assert.equal(answer.granted, false, JSON.stringify(changes));
    return answer.granted ? "" : answer.reason;
  };
  assert.match(refused({ leader: null }), /free/);
  assert.match(refused({ leader: undefined }), /does not know/);
  assert.match(
    refused({ leader: { ...SELF_LEADS, address: { host: "10.0.0.9", port: 6379 } } }),
    /holds the lock/,
  );
  assert.match(refused({ leader: { ...SELF_LEADS, lockIndex: 5 } }), /term is 5/);
  assert.match(refused({ lock: { phase: "competing" } }), /competing/);
  assert.match(refused({ wallNow: CALL.sentAt + 31_000 }), /clock/, "a replayed old call");
  assert.match(refused({ self: SELF }), /this node/);
});

Deno.test("grants keep the master writable until the earliest one's lease, less the clock margin, and only when every peer granted", () => {
  const grants = new Map([["a", 10_000], ["b", 12_000]]);
  assert.equal(
    writesAllowedUntil(grants, ["a", "b"], LEASE_MS),
    10_000 + grantReliedMs(LEASE_MS),
  );
  assert.equal(writesAllowedUntil(grants, ["a", "b", "c"], LEASE_MS), undefined, "c never granted");
  assert.equal(writesAllowedUntil(grants, [], LEASE_MS), undefined, "no peer confirms anything");
  assert.ok(grantReliedMs(LEASE_MS) < LEASE_MS - 1_000, "a second of margin at the default lease");
});

/** A peer (OTHER) that sees SELF lead, and a sender that hands calls straight to its handler. */
function peerAndSender(clock: ManualClock, leader: () => LeaderView | null = () => SELF_LEADS) {
  const key = new FailsafeKey(SECRET);
  const peer = new FailsafePeer({
    key,
    self: OTHER,
    view: () => ({ lock: { phase: "idle" }, leader: leader() }),
    leaseMs: LEASE_MS,
    clock,
    logger: silentLogger,
  });
  const send: CallSender = async (_api, body, signature) => {
    const response = await peer.handle(
      new Request("http://peer/v1/failsafe", {
        method: "POST",
        body,
        headers: { [SIGNATURE_HEADER]: signature },
      }),
    );
    assert.equal(response.status, 200);
    return parseAnswer(await response.text());
  };
  return { key, peer, send };
}

Deno.test("a peer's handler refuses a wrong signature, a body that is no call, a huge body and GET; it grants and records its promise", async () => {
  const clock = new ManualClock(50_000);
  const { peer } = peerAndSender(clock);
  const post = (body: string, signature: string) =>
    peer.handle(
      new Request("http://peer/v1/failsafe", {
        method: "POST",
        body,
        headers: { [SIGNATURE_HEADER]: signature },
      }),
    );
  const key = new FailsafeKey(SECRET);
  const body = encodeCall({ ...CALL, sentAt: clock.wallNow() });
  const forged = await post(body, await new FailsafeKey("not the group's key!").sign(body));
  assert.equal(forged.status, 401);
  await forged.body?.cancel();
  const junk = await post("{}", await key.sign("{}"));
  assert.equal(junk.status, 400);
  await junk.body?.cancel();
  const huge = "x".repeat(MAX_CALL_BYTES + 1);
  const tooLong = await post(huge, await key.sign(huge));
  assert.equal(tooLong.status, 413);
  await tooLong.body?.cancel();
  const get = await peer.handle(new Request("http://peer/v1/failsafe"));
  assert.equal(get.status, 405);
  await get.body?.cancel();

  // A new agent keeps the promise it may have given before it restarted.
  assert.equal(peer.promisedUntil(), 50_000 + LEASE_MS);
  await clock.advance(20_000);
  const fresh = encodeCall({ ...CALL, sentAt: clock.wallNow() });
  const granted = await post(fresh, await key.sign(fresh));
  assert.deepEqual(JSON.parse(await granted.text()), { granted: true, leaseMs: LEASE_MS });
  assert.equal(peer.promisedUntil(), 70_000 + LEASE_MS);
});

/**
 * Moves the clock on in half-second steps, letting the signing and the handler (Web Crypto, which
 * answers on later turns of the event loop) finish between them.
 */
async function pass(clock: ManualClock, ms: number): Promise<void> {
  for (let passed = 0; passed < ms; passed += 500) {
    await clock.advance(Math.min(500, ms - passed));
    for (let turn = 0; turn < 5; turn++) await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

/** The master's side, over one peer, with the lock unconfirmed since `confirmedAt`. */
function master(clock: ManualClock, send: CallSender, confirmedAt: () => number) {
  return new FailsafeMaster({
    key: new FailsafeKey(SECRET),
    self: SELF,
    lock: () => ({ phase: "held", lockIndex: 4, confirmedAt: confirmedAt() }),
    peers: () => [{ address: "10.0.0.2:6379", api: { host: "10.0.0.2", port: 8008 } }],
    leaseMs: LEASE_MS,
    startAfterMs: 7_000,
    intervalMs: 1_000,
    callTimeoutMs: 1_000,
    clock,
    logger: silentLogger,
    send,
  });
}

Deno.test("the master calls its peers only once the lock has gone unconfirmed, and its grants end before the peer's promise", async () => {
  const clock = new ManualClock(100_000);
  const { peer, send } = peerAndSender(clock);
  let calls = 0;
  const counting: CallSender = (...args) => {
    calls++;
    return send(...args);
  };
  let confirmedAt = 100_000;
  const side = master(clock, counting, () => confirmedAt);
  side.start();
  await pass(clock, 5_000);
  assert.equal(calls, 0, "no calls while Consul confirms the lock");
  assert.equal(side.until(), undefined);
  await pass(clock, 3_000); // 8 s unconfirmed
  assert.ok(calls >= 1);
  const until = side.until();
  assert.ok(until !== undefined && until > clock.now());
  assert.ok(until < peer.promisedUntil()!, "the master stops counting before the peer is free");
  // Consul confirms again: calls stop, the grants already given still hold for their lease.
  confirmedAt = clock.now();
  const made = calls;
  await pass(clock, 3_000);
  assert.equal(calls, made);
  await side.stop();
});

Deno.test("a master whose peer no longer sees it as the holder loses its failsafe once the last grant runs out", async () => {
  const clock = new ManualClock(100_000);
  let leader: LeaderView | null = SELF_LEADS;
  const { send } = peerAndSender(clock, () => leader);
  const side = master(clock, send, () => 100_000);
  side.start();
  await pass(clock, 8_000);
  const until = side.until()!;
  assert.ok(until > clock.now());
  leader = null; // the peer saw the lock freed: it refuses from now on
  await pass(clock, 3_000);
  assert.ok(side.until()! <= until + 1_000, "no grant after the refusal");
  await pass(clock, LEASE_MS);
  assert.ok(side.until()! < clock.now(), "the failsafe ran out");
  await side.stop();
});

Deno.test("the master calls every peer the board has seen, released ones too, and never itself", () => {
  const withApi = (address: string, failsafeApi?: string) =>
    candidacy(address, failsafeApi ? { failsafeApi } : {});
  const targets = failsafeTargets([
    { candidacy: withApi("10.0.0.1:6379", "10.0.0.1:8008"), seenChangedAt: 0, held: true },
    { candidacy: withApi("10.0.0.2:6379", "10.0.0.2:8008"), seenChangedAt: 0, held: true },
    { candidacy: withApi("10.0.0.3:6379", "10.0.0.3:8008"), seenChangedAt: 0, released: true },
    { candidacy: withApi("10.0.0.4:6379"), seenChangedAt: 0, held: true },
  ], SELF);
  assert.deepEqual(targets, [
    { address: "10.0.0.2:6379", api: { host: "10.0.0.2", port: 8008 } },
    { address: "10.0.0.3:6379", api: { host: "10.0.0.3", port: 8008 } },
    { address: "10.0.0.4:6379", api: undefined },
  ]);
});
