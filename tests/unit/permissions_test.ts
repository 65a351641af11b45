/**
 * The run line every artifact shares (lib/permissions.ts): its V8 settings ride with the permissions.
 */
import assert from "node:assert/strict";
import { AGENT_V8_FLAGS, agentPermissionFlags } from "../../lib/permissions.ts";

Deno.test("the agent runs single-threaded with a small young generation and no optimizing compiler, and no heap limit", () => {
  for (const hooks of [false, true]) {
    const v8 = agentPermissionFlags({ hooks }).filter((flag) => flag.startsWith("--v8-flags="));
    assert.deepEqual(v8, [`--v8-flags=${AGENT_V8_FLAGS.join(",")}`]);
  }
  assert.ok(AGENT_V8_FLAGS.includes("--single-threaded"));
  assert.ok(AGENT_V8_FLAGS.includes("--max-semi-space-size=1"));
  // A heap limit would abort the process when reached: an HA agent must not die of a burst.
  assert.ok(!AGENT_V8_FLAGS.some((flag) => flag.startsWith("--max-old-space-size")));
});
