/**
 * The multi-host chaos suite, short form: one round of each fault on real hosts with resec's default
 * settings, each judged against what the design promises (tests/chaos/analysis.ts). The long form,
 * several rounds with a report, is `deno run -A tests/multihost/run.ts`.
 */
import { BED_FAULTS, type BedFault } from "./faults.ts";
import { runBedRound } from "./round.ts";

function describe(fault: BedFault): string {
  const changes = fault.expect.roleChanges;
  const failover = changes.max === 0
    ? "no failover"
    : changes.min === 0
    ? "at most one failover"
    : "one failover";
  const loss = fault.expect.loss.kind === "none"
    ? "no acknowledged write lost"
    : "at most the unreplicated tail lost";
  return `${fault.title}: ${failover}, never two writable Redis, ${loss}, one master again`;
}

// RESEC_BED_FAULTS=cable-pull,consul-cut runs only those (for a person chasing one fault).
const only = Deno.env.get("RESEC_BED_FAULTS")?.split(",").map((name) => name.trim());
for (const fault of BED_FAULTS.filter((fault) => !only || only.includes(fault.name))) {
  Deno.test(`multi-host, defaults: ${describe(fault)}`, async () => {
    const outcome = await runBedRound(fault, { note: (line) => console.log(line) });
    const r = outcome.result;
    console.log(
      `[${fault.name}] new master after ${r.newMasterAfterMs ?? "-"} ms, longest write gap ` +
        `${outcome.longestWriteGapMs} ms, no master for ${r.maxNoMasterMs} ms, ` +
        `${r.acknowledged} acknowledged, ${r.lost} lost, comeback writable ` +
        `${r.comebackWritableMs ?? "-"} ms, converged after ${r.convergedAfterMs ?? "-"} ms`,
    );
    if (outcome.logs) console.error(outcome.logs);
    if (outcome.violations.length > 0) {
      throw new Error(`${fault.name} broke its promises:\n- ${outcome.violations.join("\n- ")}`);
    }
  });
}
