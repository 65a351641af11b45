/**
 * Runs simulation seeds from the command line and prints each failure with its trace tail:
 *
 *   ./scripts/deno.sh run -A tests/sim/run.ts 1234          # one seed
 *   ./scripts/deno.sh run -A tests/sim/run.ts 0 5000        # seeds 0 to 4999
 */
import { runSeed } from "./world.ts";

const first = Number(Deno.args[0] ?? 0);
const count = Number(Deno.args[1] ?? 1);
const started = performance.now();
let failed = 0;
let events = 0;
for (let seed = first; seed < first + count; seed++) {
  const result = await runSeed({ seed });
  events += result.events;
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
console.log(`${count} seeds, ${failed} failed, ${events} events in ${seconds.toFixed(1)} s`);
if (failed > 0) Deno.exit(1);
