/**
 * The one watch on the lock key's prefix: how an answer splits into the lock, the controls and the
 * candidacies, and how a candidacy entry's session tells whether its agent lives.
 */
import assert from "node:assert/strict";
import { entryState } from "../../lib/agent/apply/candidacy_board.ts";
import { sameEntry, splitGroupKeys } from "../../lib/agent/watch/group_keys.ts";
import type { KvEntry } from "../../lib/consul/kv.ts";

function entry(key: string, overrides: Partial<KvEntry> = {}): KvEntry {
  return {
    key,
    value: "",
    bytes: new Uint8Array(),
    lockIndex: 0,
    modifyIndex: 7,
    createIndex: 7,
    flags: 0,
    ...overrides,
  };
}

Deno.test("an answer for the lock key's prefix splits into the lock, the controls and the candidacies", () => {
  const keys = splitGroupKeys("resec/.lock", [
    entry("resec/.lock", { session: "s-1", lockIndex: 3 }),
    entry("resec/.lock.candidates/10.0.0.1:6379"),
    entry("resec/.lock.candidates/10.0.0.2:6379"),
    entry("resec/.lock.paused"),
    entry("resec/.lock.switchover"),
  ], 42);
  assert.equal(keys.lock?.session, "s-1");
  assert.equal(keys.paused?.key, "resec/.lock.paused");
  assert.equal(keys.switchover?.key, "resec/.lock.switchover");
  assert.deepEqual(keys.candidacies.map((c) => c.key), [
    "resec/.lock.candidates/10.0.0.1:6379",
    "resec/.lock.candidates/10.0.0.2:6379",
  ]);
  assert.equal(keys.index, 42);
});

Deno.test("keys of another cluster that merely start with the lock key are left out", () => {
  const keys = splitGroupKeys("resec/.lock", [
    entry("resec/.lock2"),
    entry("resec/.lock2.candidates/10.0.0.9:6379"),
    entry("resec/.lock.candidates/"),
    entry("resec/.lock.pausedx"),
  ], 1);
  assert.equal(keys.lock, undefined);
  assert.equal(keys.paused, undefined);
  assert.deepEqual(keys.candidacies, []);
});

Deno.test("two reads show the same write when index and holder agree", () => {
  const a = entry("k", { modifyIndex: 5, session: "s" });
  assert.equal(sameEntry(a, { ...a }), true);
  assert.equal(sameEntry(a, { ...a, modifyIndex: 6 }), false);
  assert.equal(sameEntry(a, { ...a, session: undefined }), false);
  assert.equal(sameEntry(undefined, undefined), true);
  assert.equal(sameEntry(a, undefined), false);
});

Deno.test("a candidacy entry is held while a session holds it, released when its session ended", () => {
  assert.equal(entryState({ session: "s", lockIndex: 1, modifyIndex: 9 }, undefined), "held");
  assert.equal(
    entryState({ lockIndex: 1, modifyIndex: 10 }, { state: "held", modifyIndex: 9 }),
    "released",
  );
  // First seen after its session ended (this agent just started): gone all the same.
  assert.equal(entryState({ lockIndex: 1, modifyIndex: 10 }, undefined), "released");
  assert.equal(
    entryState({ lockIndex: 1, modifyIndex: 10 }, { state: "released", modifyIndex: 10 }),
    "released",
  );
});

Deno.test("an entry written without a session is an earlier version's, judged by how recently it changed", () => {
  assert.equal(entryState({ lockIndex: 0, modifyIndex: 10 }, undefined), "unheld");
  // Written again after its session ended: an earlier version's agent took the address over.
  assert.equal(
    entryState({ lockIndex: 2, modifyIndex: 11 }, { state: "released", modifyIndex: 10 }),
    "unheld",
  );
  assert.equal(
    entryState({ lockIndex: 2, modifyIndex: 12 }, { state: "unheld", modifyIndex: 11 }),
    "unheld",
  );
});
