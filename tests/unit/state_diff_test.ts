import assert from "node:assert/strict";
import { diffState } from "../../lib/agent/state_diff.ts";

Deno.test("a changed field is reported with its full path and new JSON value", () => {
  assert.deepEqual(
    diffState({ redis: { role: "replica", offset: 1 } }, { redis: { role: "master", offset: 1 } }),
    [{ path: ".redis.role", value: '"master"' }],
  );
});

Deno.test("a new nested object reports each of its leaves, and a removed field reads undefined", () => {
  assert.deepEqual(diffState({ a: 1 }, { b: { c: true } }), [
    { path: ".a", value: "undefined" },
    { path: ".b.c", value: "true" },
  ]);
});

Deno.test("identical states have no differences", () => {
  assert.deepEqual(diffState({ x: [1, 2], y: { z: null } }, { x: [1, 2], y: { z: null } }), []);
});
