/**
 * Runs simulation seeds from the command line and prints each failure with its trace tail:
 *
 *   ./scripts/deno.sh run -A tests/sim/run.ts 1234          # one seed
 *   ./scripts/deno.sh run -A tests/sim/run.ts 0 5000        # seeds 0 to 4999
 *
 * RESEC_SIM_BACKWARD_CLOCK=1 adds backward clock steps; RESEC_SIM_STRICT_PAUSE=1 counts a writable
 * Redis left alone in maintenance mode as a second writer (see README.md); RESEC_SIM_FAULTS=a,b
 * draws only those faults (world.ts `FaultKind`), RESEC_SIM_FAULT_COUNT=n exactly n of them,
 * RESEC_SIM_MAX_FAULT_MS=ms none longer than that, RESEC_SIM_LEGACY_BOARD=1 candidacies published as
 * agents before 22a9392 did, RESEC_SIM_FAILSAFE=1 failsafe mode on every agent.
 */
import { type FaultKind, runSeed } from "./world.ts";

const kinds = Deno.env.get("RESEC_SIM_FAULTS")?.split(",") as FaultKind[] | undefined;

const first = Number(Deno.args[0] ?? 0);
const count = Number(Deno.args[1] ?? 1);
const started = performance.now();
let failed = 0;
let events = 0;
let failovers = 0;
let allowedLosses = 0;
let failsafeMasters = 0;
let fastTakeovers = 0;
for (let seed = first; seed < first + count; seed++) {
  const result = await runSeed({
    seed,
    backwardClockSteps: Deno.env.get("RESEC_SIM_BACKWARD_CLOCK") === "1",
    strictMaintenance: Deno.env.get("RESEC_SIM_STRICT_PAUSE") === "1",
    ...(kinds ? { faultKinds: kinds } : {}),
    legacyBoard: Deno.env.get("RESEC_SIM_LEGACY_BOARD") === "1",
    failsafe: Deno.env.get("RESEC_SIM_FAILSAFE") === "1",
    fastTakeover: Deno.env.get("RESEC_SIM_FAST_TAKEOVER") !== "0",
    ...(Deno.env.get("RESEC_SIM_MAX_FAULT_MS")
      ? { maxFaultMs: Number(Deno.env.get("RESEC_SIM_MAX_FAULT_MS")) }
      : {}),
    ...(Deno.env.get("RESEC_SIM_FAULT_COUNT")
      ? { faults: Number(Deno.env.get("RESEC_SIM_FAULT_COUNT")) }
      : {}),
  });
  events += result.events;
  failovers += result.failovers;
  allowedLosses += result.allowedLosses;
  failsafeMasters += result.failsafeMasters;
  fastTakeovers += result.fastTakeovers;
  if (result.violation) {
    failed++;
    console.log(`seed ${seed}: ${result.violation}\n${result.trace.join("\n")}\n`);
  } else if (count === 1) {
    console.log(result.trace.join("\n"));
    console.log(
      `seed ${seed}: ok, ${result.events} events, ${result.acknowledged} writes acknowledged`,
    );
  }
}
const seconds = (performance.now() - started) / 1000;
console.log(
  `${count} seeds, ${failed} failed, ${events} events, ${failovers} failovers, ${allowedLosses} ` +
    `terms began without writes only faulted nodes held, ${failsafeMasters} failsafe masters, ${fastTakeovers} fast takeovers, in ` +
    `${seconds.toFixed(1)} s`,
);
if (failed > 0) Deno.exit(1);
