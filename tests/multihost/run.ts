/**
 * The multi-host chaos suite, long form: every fault (or the ones named) for N rounds, each on a fresh
 * bed of real hosts with resec's default settings, then a markdown section written into docs/chaos.md.
 * Needs root (network namespaces), like the tests.
 *
 *   ./scripts/deno.sh run -A tests/multihost/run.ts --rounds 3 [--faults host-death,cable-pull]
 *                        [--out docs/chaos.md] [--no-write]
 *
 * With --systems (e.g. resec,go-resec,sentinel-1s,sentinel-30s; see systems.ts) each fault runs on
 * each system in turn, and a side-by-side table is written into docs/benchmarks.md instead. With
 * --stale-lookups the client reads the catalog with `?stale`, as Consul's DNS does by default (it
 * still finds the master while the servers have no leader: what failsafe mode is measured with).
 *
 * Exits 1 when any round of resec broke a promise (the section is written anyway), 2 on bad
 * arguments. The peers' rounds are judged by resec's promises too, and reported, not failed.
 */
import { parseArgs } from "node:util";
import type { RoundResult } from "../chaos/analysis.ts";
import { type FaultRuns, replaceResults, resultsMarkdown } from "../chaos/report.ts";
import { BED_FAULTS, type BedFault } from "./faults.ts";
import { type BedRoundOutcome, runBedRound } from "./round.ts";
import { testRunDir } from "../support/tmp.ts";
import { type HostSystem, RESEC_SYSTEM, SYSTEM_NAMES, systemByName } from "./systems.ts";

const MARKERS = {
  begin: "<!-- multihost-results:begin (written by tests/multihost/run.ts) -->",
  end: "<!-- multihost-results:end -->",
  heading: "Results on real hosts, default settings",
};

const COMPARISON_MARKERS = {
  begin: "<!-- multihost-peers:begin (written by tests/multihost/run.ts --systems) -->",
  end: "<!-- multihost-peers:end -->",
  heading: "Multi-host bed: resec, the Go resec and Sentinel",
};

const USAGE =
  `Usage: run.ts [--rounds N] [--faults a,b] [--systems a,b] [--stale-lookups] [--out PATH]
       [--no-write]

Faults: ${BED_FAULTS.map((fault) => fault.name).join(", ")}
Systems: ${SYSTEM_NAMES.join(", ")}`;

function parseOptions(args: string[]) {
  const { values } = parseArgs({
    args,
    options: {
      rounds: { type: "string", default: "3" },
      faults: { type: "string" },
      systems: { type: "string" },
      out: { type: "string" },
      "no-write": { type: "boolean", default: false },
      "stale-lookups": { type: "boolean", default: false },
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
  const systems = values.systems?.split(",").map((name) => name.trim());
  const strange = systems?.find((name) => !(SYSTEM_NAMES as readonly string[]).includes(name));
  if (strange !== undefined) throw new Error(`Unknown system "${strange}"`);
  const document = systems ? "benchmarks.md" : "chaos.md";
  const out = values.out ?? new URL(`../../docs/${document}`, import.meta.url).pathname;
  return {
    rounds,
    faults,
    systems,
    out,
    write: !values["no-write"],
    staleLookups: values["stale-lookups"],
  };
}

/** "median / max" in seconds of the known values, or "–". */
function seconds(values: (number | undefined)[]): string {
  const known = values.filter((value): value is number => value !== undefined).sort((a, b) =>
    a - b
  );
  if (known.length === 0) return "–";
  const median = known[Math.floor((known.length - 1) / 2)]!;
  return `${(median / 1_000).toFixed(1)} / ${(known.at(-1)! / 1_000).toFixed(1)}`;
}

/** Per fault: time to a new master and the longest stretch without an acknowledged write. */
export function timingTable(runs: readonly { fault: BedFault; outcomes: BedRoundOutcome[] }[]) {
  const lines = [
    "| Fault | New master after (median / max s) | Longest write gap (median / max s) | Acknowledged writes lost (per round) |",
    "| --- | --: | --: | --- |",
  ];
  for (const { fault, outcomes } of runs) {
    lines.push(
      `| ${fault.name} | ${seconds(outcomes.map((o) => o.result.newMasterAfterMs))} | ${
        seconds(outcomes.map((o) => o.longestWriteGapMs))
      } | ${outcomes.map((o) => o.result.lost).join(" / ")} |`,
    );
  }
  return lines.join("\n");
}

/** Per fault and system: the same figures side by side, and what resec's promises would say. */
export function comparisonTable(runs: readonly SystemRuns[]): string {
  const lines = [
    "| Fault | System | New master after (median / max s) | Longest write gap (median / max s) | Acknowledged writes lost (per round) | Probes with two writable Redis (per round) | Broke resec's promises |",
    "| --- | --- | --: | --: | --- | --- | --- |",
  ];
  for (const { fault, system, outcomes } of runs) {
    const broke = outcomes.filter((o) => o.violations.length > 0).length;
    lines.push(
      `| ${fault.name} | ${system.name} | ${
        seconds(outcomes.map((o) => o.result.newMasterAfterMs))
      } | ${seconds(outcomes.map((o) => o.longestWriteGapMs))} | ${
        outcomes.map((o) => lostText(o.result)).join(" / ")
      } | ${outcomes.map((o) => o.result.splitBrain.length).join(" / ")} | ${
        broke === 0 ? "no" : `${broke} of ${outcomes.length} rounds`
      } |`,
    );
  }
  return lines.join("\n");
}

/** The writes lost, or "unknown" when the round had no single master to read back from. */
function lostText(result: RoundResult): string {
  return result.error ? "unknown" : String(result.lost);
}

/** Every round's raw figures and broken promises, one line each. */
function roundLines(runs: readonly SystemRuns[]): string {
  const ms = (value: number | undefined) => value === undefined ? "–" : `${value} ms`;
  return runs.flatMap(({ fault, system, outcomes }) =>
    outcomes.map(({ result: r, longestWriteGapMs, violations }) =>
      `- ${fault.name}, ${system.name}, round ${r.round}: new master after ${
        ms(r.newMasterAfterMs)
      }, longest write gap ${longestWriteGapMs} ms, ${r.acknowledged} acknowledged, ${
        lostText(r)
      } ` +
      `lost, ${r.splitBrain.length} probes with two writable Redis, converged after ${
        ms(r.convergedAfterMs)
      }${violations.length > 0 ? `; broke: ${violations.join("; ")}` : ""}`
    )
  ).join("\n");
}

interface SystemRuns {
  fault: BedFault;
  system: HostSystem;
  outcomes: BedRoundOutcome[];
}

async function commitOf(): Promise<string> {
  const output = await new Deno.Command("git", {
    args: ["rev-parse", "--short", "HEAD"],
    cwd: new URL("../../", import.meta.url).pathname,
    stdout: "piped",
    stderr: "null",
  }).output();
  return new TextDecoder().decode(output.stdout).trim() || "unknown";
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
  const systems = options.systems
    ? await Promise.all(options.systems.map(systemByName))
    : [RESEC_SYSTEM];
  const runs: SystemRuns[] = [];
  let broken = 0;
  for (const fault of options.faults) {
    for (const system of systems) {
      const outcomes: BedRoundOutcome[] = [];
      for (let round = 1; round <= options.rounds; round++) {
        const outcome = await runBedRound(fault, {
          round,
          system,
          staleLookups: options.staleLookups,
          note: (line) => console.log(`${system.name} ${line}`),
        });
        if (outcome.violations.length > 0) {
          if (system === RESEC_SYSTEM) broken++;
          const logPath = `${testRunDir()}/multihost-${system.name}-${fault.name}-${round}.log`;
          await Deno.writeTextFile(logPath, outcome.logs);
          console.log(`  BROKEN: ${outcome.violations.join("; ")} (logs: ${logPath})`);
        }
        outcomes.push(outcome);
      }
      runs.push({ fault, system, outcomes });
    }
  }
  const date = new Date().toISOString().slice(0, 16).replace("T", " ") + " UTC";
  const section = options.systems
    ? [
      `Run ${date} on commit \`${await commitOf()}\`, ${options.rounds} round(s) each, in ${
        Math.round((Date.now() - started) / 60_000)
      } min: \`./scripts/deno.sh run -A tests/multihost/run.ts --rounds ${options.rounds} ` +
      `--faults ${options.faults.map((f) => f.name).join(",")} --systems ${
        systems.map((system) => system.name).join(",")
      }${
        options.staleLookups ? " --stale-lookups" : ""
      }\`; ${navigator.hardwareConcurrency} cores.`,
      "",
      comparisonTable(runs),
      "",
      roundLines(runs),
    ].join("\n")
    : [
      resultsMarkdown(faultRuns(runs), {
        date,
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
    const markers = options.systems ? COMPARISON_MARKERS : MARKERS;
    await Deno.writeTextFile(options.out, replaceResults(document, section, markers));
    await new Deno.Command(Deno.execPath(), { args: ["fmt", "--quiet", options.out] }).output();
    console.log(`\nresults written to ${options.out}`);
  }
  return broken > 0 ? 1 : 0;
}

function faultRuns(runs: readonly SystemRuns[]): FaultRuns[] {
  return runs.map(({ fault, outcomes }) => ({
    name: fault.name,
    title: fault.title,
    rounds: outcomes.map((outcome) => ({
      result: outcome.result,
      violations: outcome.violations,
    })),
  }));
}

if (import.meta.main) Deno.exit(await main());
