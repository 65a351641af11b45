/**
 * The rejoin echo: a host that comes back may be listed as the master it was until its Consul agent's
 * first sync, for at most REJOIN_ECHO_GRACE_MS; anything longer, or any other host, stays a violation.
 */
import assert from "node:assert/strict";
import { REJOIN_ECHO_GRACE_MS, withoutRejoinEcho } from "./round.ts";

Deno.test("a rejoined host listed beside the new master is an echo only within the grace", () => {
  const comeback = { port: 0, at: 1_000 };
  const samples = [
    { at: 900, masters: [1] },
    { at: 4_000, masters: [1, 0] }, // the echo starts when the host's agent has joined
    { at: 4_100, masters: [1, 0] },
    { at: 4_000 + REJOIN_ECHO_GRACE_MS + 100, masters: [1, 0] }, // too long
    { at: 9_000, masters: [1, 2] }, // never came back: not an echo
  ];
  const cleaned = withoutRejoinEcho(samples, [comeback]);
  assert.equal(cleaned.echoPolls, 2);
  assert.equal(cleaned.echoMs, 100);
  assert.deepEqual(cleaned.samples.map((sample) => sample.masters), [[1], [1], [1], [1, 0], [
    1,
    2,
  ]]);
});

Deno.test("a rejoined host listed alone within the grace is an echo too, not a change of master", () => {
  const comeback = { port: 0, at: 1_000 };
  const samples = [
    { at: 900, masters: [1] },
    { at: 1_500, masters: [0, 1] },
    { at: 1_600, masters: [0] }, // the new master between two checks: still the rejoined host's echo
    { at: 1_700, masters: [1] },
  ];
  const cleaned = withoutRejoinEcho(samples, [comeback]);
  assert.equal(cleaned.echoPolls, 2);
  assert.deepEqual(cleaned.samples.map((sample) => sample.masters), [[1], [1], [], [1]]);
});

Deno.test("without a comeback two passing masters stay two", () => {
  const samples = [{ at: 10, masters: [0, 1] }];
  assert.deepEqual(withoutRejoinEcho(samples, []).samples, samples);
});
