/**
 * Turns round results into text: one line per round for test output and progress, and the markdown
 * results section the long form (run.ts) writes into docs/chaos.md between two marker comments.
 */
import type { RoundResult } from "./analysis.ts";

/** The comments that delimit the generated section of docs/chaos.md. */
export const RESULTS_BEGIN = "<!-- chaos-results:begin (written by tests/chaos/run.ts) -->";
export const RESULTS_END = "<!-- chaos-results:end -->";

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

/** The rounds of one fault and the promises each broke. */
export interface FaultRuns {
  readonly name: string;
  readonly title: string;
  readonly rounds: readonly {
    readonly result: RoundResult;
    readonly violations: readonly string[];
  }[];
}

/** Where and how the numbers were measured. */
export interface RunContext {
  readonly date: string;
  readonly command: string;
  readonly machine: readonly string[];
  readonly durationMs: number;
}

/**
 * The markdown results section: one table row per fault, then every broken promise by round.
 *
 * @example
 * ```ts
 * const section = resultsMarkdown([{ name: "redis-kill", title: "…", rounds }], context);
 * ```
 */
export function resultsMarkdown(faults: readonly FaultRuns[], context: RunContext): string {
  const lines = [
    `Measured ${context.date} with \`${context.command}\` (${
      Math.round(context.durationMs / 1_000)
    } s).`,
    "",
    ...context.machine.map((line) => `- ${line}`),
    "",
    "| Fault | Rounds | Acked | Lost | Split-brain rounds | Comeback writable (max ms) | Two passing masters (polls) | Max no-master window (ms) | New master after (median ms) | Role changes | Wrong promotions | Converged | Promises kept |",
    "| --- | --: | --: | --: | --: | --: | --: | --: | --: | --- | --: | --: | --: |",
  ];
  for (const fault of faults) lines.push(tableRow(fault));
  const broken = faults.flatMap((fault) =>
    fault.rounds.filter((round) => round.violations.length > 0).map((round) =>
      `- ${fault.name} #${round.result.round}: ${round.violations.join("; ")}`
    )
  );
  lines.push("");
  if (broken.length === 0) {
    lines.push("Every round kept every promise.");
  } else {
    lines.push("Broken promises, by round:", "", ...broken);
  }
  return lines.join("\n");
}

function tableRow(fault: FaultRuns): string {
  const results = fault.rounds.map((round) => round.result);
  const completed = results.filter((result) => !result.error);
  const sum = (pick: (result: RoundResult) => number) =>
    completed.reduce((total, result) => total + pick(result), 0);
  const max = (values: readonly (number | undefined)[]) => {
    const known = values.filter((value): value is number => value !== undefined);
    return known.length > 0 ? String(Math.max(...known)) : "–";
  };
  const lostPerRound = completed.map((result) => result.lost);
  const comebackRounds = completed.filter((result) => result.comebacks.length > 0);
  const cells = [
    `${fault.name}`,
    `${results.length}${
      completed.length < results.length ? ` (${results.length - completed.length} broke)` : ""
    }`,
    `${sum((result) => result.acknowledged)}`,
    `${sum((result) => result.lost)}${
      lostPerRound.some((lost) => lost > 0) ? ` (${lostPerRound.join("/")})` : ""
    }`,
    `${completed.filter((result) => result.splitBrain.length > 0).length}`,
    comebackRounds.length > 0
      ? max(comebackRounds.map((result) => result.comebackWritableMs ?? 0))
      : "–",
    `${sum((result) => result.multiMasterSamples)}`,
    max(completed.map((result) => result.maxNoMasterMs)),
    median(completed.map((result) => result.newMasterAfterMs)),
    completed.map((result) => result.roleChanges).join(" "),
    `${sum((result) => result.wrongPromotions)}`,
    `${completed.filter((result) => result.converged).length}/${results.length}`,
    `${fault.rounds.filter((round) => round.violations.length === 0).length}/${results.length}`,
  ];
  return `| ${cells.join(" | ")} |`;
}

function median(values: readonly (number | undefined)[]): string {
  const known = values.filter((value): value is number => value !== undefined).sort((a, b) =>
    a - b
  );
  if (known.length === 0) return "–";
  const middle = Math.floor(known.length / 2);
  const value = known.length % 2 === 1
    ? known[middle]!
    : Math.round((known[middle - 1]! + known[middle]!) / 2);
  return String(value);
}

/**
 * Replaces the generated section of a markdown document (between the begin and end markers, by
 * default RESULTS_BEGIN and RESULTS_END), or appends one under `heading` when the markers are missing.
 */
export function replaceResults(
  document: string,
  section: string,
  markers: { begin: string; end: string; heading: string } = {
    begin: RESULTS_BEGIN,
    end: RESULTS_END,
    heading: "Results",
  },
): string {
  const begin = document.indexOf(markers.begin);
  const end = document.indexOf(markers.end);
  const block = `${markers.begin}\n${section}\n${markers.end}`;
  if (begin >= 0 && end > begin) {
    return document.slice(0, begin) + block + document.slice(end + markers.end.length);
  }
  return `${document.trimEnd()}\n\n## ${markers.heading}\n\n${block}\n`;
}
