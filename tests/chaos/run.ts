/**
 * The chaos suite, long form: every fault (or the ones named) for N rounds, each on a fresh cluster,
 * then a markdown results table written into docs/chaos.md.
 *
 *   ./scripts/deno.sh run -A tests/chaos/run.ts --rounds 5 [--faults redis-kill,agent-kill]
 *                        [--out docs/chaos.md] [--no-write]
 *
 * Exits 1 when any round broke a promise (the table is written anyway), 2 on bad arguments.
 */
import { parseArgs } from "node:util";
import { type Fault, FAULTS, selectFaults } from "./faults.ts";
import { type FaultRuns, formatRound, replaceResults, resultsMarkdown } from "./report.ts";
import { runRound } from "./round.ts";
import { consulBinary } from "../support/consul.ts";
import { testRunDir } from "../support/tmp.ts";

const USAGE = `Usage: run.ts [--rounds N] [--faults a,b] [--out PATH] [--no-write]

Runs each chaos fault N rounds (default 3) and writes the results table into docs/chaos.md.
Faults: ${FAULTS.map((fault) => fault.name).join(", ")}`;

interface Options {
  rounds: number;
  faults: Fault[];
  out: string;
  write: boolean;
}

function parseOptions(args: string[]): Options {
  const { values } = parseArgs({
    args,
    options: {
      rounds: { type: "string", default: "3" },
      faults: { type: "string" },
      out: { type: "string", default: new URL("../../docs/chaos.md", import.meta.url).pathname },
      "no-write": { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(USAGE);
    Deno.exit(0);
  }
  const rounds = Number(values.rounds);
  if (!Number.isInteger(rounds) || rounds < 1) {
    throw new Error(`Cannot use --rounds "${values.rounds}": expected a whole number above 0`);
  }
  return {
    rounds,
    faults: selectFaults(values.faults),
    out: values.out!,
    write: !values["no-write"],
  };
}

async function machineDescription(): Promise<string[]> {
  const cpu = (await readText("/proc/cpuinfo")).match(/^model name\s*:\s*(.+)$/m)?.[1] ?? "unknown";
  const memKb = Number((await readText("/proc/meminfo")).match(/^MemTotal:\s*(\d+)/m)?.[1] ?? 0);
  const load = (await readText("/proc/loadavg")).split(" ").slice(0, 3).join(" ");
  return [
    `Machine: ${cpu}, ${navigator.hardwareConcurrency} cores, ${
      Math.round(memKb / 1024 / 1024)
    } GiB, ${Deno.build.os}/${Deno.build.arch} (kernel ${Deno.osRelease()}); load average at start ${load}`,
    `Software: Deno ${Deno.version.deno}, ${await versionOf("redis-server", [
      "--version",
    ])}, ${await versionOf(consulBinary(), ["version"])}`,
    "Cluster: one Consul dev agent, three Redis servers and three agents on loopback, FAST_AGENT_ENV " +
    "(CONSUL_LOCK_TTL 2s, CONSUL_LOCK_DELAY 500ms, HEALTHCHECK_INTERVAL 500ms, HEALTHCHECK_TIMEOUT 500ms); " +
    "a fresh cluster per round",
  ];
}

async function readText(path: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch {
    return "";
  }
}

async function versionOf(command: string, args: string[]): Promise<string> {
  try {
    const output = await new Deno.Command(command, { args, stdout: "piped", stderr: "null" })
      .output();
    return new TextDecoder().decode(output.stdout).split("\n")[0]!.trim();
  } catch {
    return `${command} (version unknown)`;
  }
}

async function main(): Promise<number> {
  let options: Options;
  try {
    options = parseOptions(Deno.args);
  } catch (error) {
    console.error(`run.ts: ${error instanceof Error ? error.message : String(error)}\n\n${USAGE}`);
    return 2;
  }
  // Ctrl-C: exit through the unload handler of tests/support, which kills every server we started.
  Deno.addSignalListener("SIGINT", () => {
    console.error("run.ts: interrupted; stopping the test servers");
    Deno.exit(130);
  });
  const started = Date.now();
  const machine = await machineDescription();
  const logDir = testRunDir();
  const runs: FaultRuns[] = [];
  let broken = 0;
  for (const fault of options.faults) {
    const rounds: FaultRuns["rounds"][number][] = [];
    for (let round = 1; round <= options.rounds; round++) {
      const outcome = await runRound(fault, { round, note: (line) => console.log(line) });
      console.log(formatRound(outcome.result));
      if (outcome.violations.length > 0) {
        broken++;
        const logPath = `${logDir}/chaos-${fault.name}-${round}.log`;
        await Deno.writeTextFile(logPath, outcome.logs);
        console.log(`  BROKEN: ${outcome.violations.join("; ")} (agent logs: ${logPath})`);
      }
      rounds.push({ result: outcome.result, violations: outcome.violations });
    }
    runs.push({ name: fault.name, title: fault.title, rounds });
  }
  const section = resultsMarkdown(runs, {
    date: new Date().toISOString().slice(0, 16).replace("T", " ") + " UTC",
    command: `./scripts/deno.sh run -A tests/chaos/run.ts --rounds ${options.rounds}${
      options.faults.length === FAULTS.length
        ? ""
        : ` --faults ${options.faults.map((fault) => fault.name).join(",")}`
    }`,
    machine,
    durationMs: Date.now() - started,
  });
  console.log(`\n${section}`);
  if (options.write) {
    const document = await readText(options.out);
    await Deno.writeTextFile(options.out, replaceResults(document, section));
    // Keep the document as `deno fmt` wants it (aligned tables), so the format check stays clean.
    await new Deno.Command(Deno.execPath(), { args: ["fmt", "--quiet", options.out] }).output();
    console.log(`\nresults written to ${options.out}`);
  }
  return broken > 0 ? 1 : 0;
}

if (import.meta.main) Deno.exit(await main());
