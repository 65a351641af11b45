/**
 * The multi-host chaos suite, long form: every fault (or the ones named) for N rounds, each on a fresh
 * bed of real hosts with resec's default settings, then a markdown section written into docs/chaos.md.
 * Needs root (network namespaces), like the tests.
 *
 *   ./scripts/deno.sh run -A tests/multihost/run.ts --rounds 3 [--faults host-death,cable-pull]
 *                        [--out docs/chaos.md] [--no-write]
 *
 * Exits 1 when any round broke a promise (the section is written anyway), 2 on bad arguments.
 */
import { parseArgs } from "node:util";
import { type FaultRuns, replaceResults, resultsMarkdown } from "../chaos/report.ts";
import { BED_FAULTS, type BedFault } from "./faults.ts";
import { type BedRoundOutcome, runBedRound } from "./round.ts";
import { testRunDir } from "../support/tmp.ts";

const MARKERS = {
  begin: "<!-- multihost-results:begin (written by tests/multihost/run.ts) -->",
  end: "<!-- multihost-results:end -->",
  heading: "Results on real hosts, default settings",
};

const USAGE = `Usage: run.ts [--rounds N] [--faults a,b] [--out PATH] [--no-write]

Faults: ${BED_FAULTS.map((fault) => fault.name).join(", ")}`;

function parseOptions(args: string[]) {
  const { values } = parseArgs({
    args,
    options: {
      rounds: { type: "string", default: "3" },
      faults: { type: "string" },
      out: { type: "string", default: new URL("../../docs/chaos.md", import.meta.url).pathname },
      "no-write": { type: "boolean", default: false },
    },
    strict: true,
  });
  const rounds = Number(values.rounds);
  if (!Number.isInteger(rounds) || rounds < 1) {
    throw new Error(`Cannot use --rounds "${values.rounds}": expected a whole number above 0`);
  }
  const names = values.faults?.split(",").map((name) => name.trim());
  const unknown = names?.filter((name) => !BED_FAULTS.some((fault) => fault.name === name));
  if (unknown && unknown.length > 0) throw new Error(`Unknown fault "${unknown[0]}"`);
  const faults: BedFault[] = BED_FAULTS.filter((fault) => !names || names.includes(fault.name));
  return { rounds, faults, out: values.out!, write: !values["no-write"] };
}

/** Per fault: time to a new master and the longest stretch without an acknowledged write. */
export function timingTable(runs: readonly { fault: BedFault; outcomes: BedRoundOutcome[] }[]) {
  const lines = [
    "| Fault | New master after (median / max s) | Longest write gap (median / max s) | Acknowledged writes lost (per round) |",
    "| --- | --: | --: | --- |",
  ];
  const seconds = (values: (number | undefined)[]) => {
    const known = values.filter((value): value is number => value !== undefined).sort((a, b) =>
      a - b
    );
    if (known.length === 0) return "–";
    const median = known[Math.floor((known.length - 1) / 2)]!;
    return `${(median / 1_000).toFixed(1)} / ${(known.at(-1)! / 1_000).toFixed(1)}`;
  };
  for (const { fault, outcomes } of runs) {
    lines.push(
      `| ${fault.name} | ${seconds(outcomes.map((o) => o.result.newMasterAfterMs))} | ${
        seconds(outcomes.map((o) => o.longestWriteGapMs))
      } | ${outcomes.map((o) => o.result.lost).join(" / ")} |`,
    );
  }
  return lines.join("\n");
}

async function main(): Promise<number> {
  let options: ReturnType<typeof parseOptions>;
  try {
    options = parseOptions(Deno.args);
  } catch (error) {
    console.error(`run.ts: ${(error as Error).message}\n\n${USAGE}`);
    return 2;
  }
  Deno.addSignalListener("SIGINT", () => Deno.exit(130));
  const started = Date.now();
  const runs: { fault: BedFault; outcomes: BedRoundOutcome[] }[] = [];
  let broken = 0;
  for (const fault of options.faults) {
    const outcomes: BedRoundOutcome[] = [];
    for (let round = 1; round <= options.rounds; round++) {
      const outcome = await runBedRound(fault, { round, note: (line) => console.log(line) });
      if (outcome.violations.length > 0) {
        broken++;
        const logPath = `${testRunDir()}/multihost-${fault.name}-${round}.log`;
        await Deno.writeTextFile(logPath, outcome.logs);
        console.log(`  BROKEN: ${outcome.violations.join("; ")} (logs: ${logPath})`);
      }
      outcomes.push(outcome);
    }
    runs.push({ fault, outcomes });
  }
  const faultRuns: FaultRuns[] = runs.map(({ fault, outcomes }) => ({
    name: fault.name,
    title: fault.title,
    rounds: outcomes.map((outcome) => ({
      result: outcome.result,
      violations: outcome.violations,
    })),
  }));
  const section = [
    resultsMarkdown(faultRuns, {
      date: new Date().toISOString().slice(0, 16).replace("T", " ") + " UTC",
      command: `./scripts/deno.sh run -A tests/multihost/run.ts --rounds ${options.rounds}`,
      machine: [
        `Bed: 3 Consul servers, 3 hosts (Consul client agent, redis-server on 6379, resec with ` +
        `no settings), 1 client host with the writer; network namespaces on one bridge; ` +
        `${navigator.hardwareConcurrency} cores`,
      ],
      durationMs: Date.now() - started,
    }),
    "",
    timingTable(runs),
  ].join("\n");
  console.log(`\n${section}`);
  if (options.write) {
    let document = "";
    try {
      document = await Deno.readTextFile(options.out);
    } catch { /* a new document */ }
    await Deno.writeTextFile(options.out, replaceResults(document, section, MARKERS));
    await new Deno.Command(Deno.execPath(), { args: ["fmt", "--quiet", options.out] }).output();
    console.log(`\nresults written to ${options.out}`);
  }
  return broken > 0 ? 1 : 0;
}

if (import.meta.main) Deno.exit(await main());
