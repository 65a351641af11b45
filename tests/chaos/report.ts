/**
 * Turns round results into text: one line per round for test output, and the markdown results table
 * the long form writes into docs/chaos.md.
 */
import type { RoundResult } from "./analysis.ts";

/** One line about a round, for test output and progress. */
export function formatRound(result: RoundResult): string {
  if (result.error) return `${result.fault} #${result.round}: did not complete: ${result.error}`;
  const ms = (value: number | undefined) => (value === undefined ? "never" : `${value} ms`);
  return [
    `${result.fault} #${result.round}:`,
    `${result.acknowledged} acked, ${result.lost} lost`,
    `(${result.lostRuns} runs, ${result.lostAfterReplication} replicated before the fault);`,
    `split brain in ${result.splitBrain.length}/${result.probeRounds} probe rounds`,
    `(writer's probe ${result.writerSplitBrainRounds}/${result.writerProbeRounds}),`,
    result.comebacks.length > 0
      ? `comeback writable ${
        ms(result.comebackWritableMs)
      } (${result.comebackRounds} rounds beside the master),`
      : "",
    `${result.multiMasterSamples} polls with two passing masters;`,
    `masters ${result.masterSequence.join(" → ") || "none"} (${result.roleChanges} changes);`,
    `new master after ${
      ms(result.newMasterAfterMs)
    }, longest without a master ${result.maxNoMasterMs} ms`,
    `(Consul silent ${result.unansweredMs} ms);`,
    `${result.wrongPromotions} wrong promotions of ${result.promotions.length} checked`,
    `(checkpoint ${result.checkpoint} writes);`,
    result.converged ? `converged after ${ms(result.convergedAfterMs)}` : "DID NOT CONVERGE",
  ].filter((part) => part !== "").join(" ");
}
