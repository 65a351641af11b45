/**
 * The side-by-side benchmark: this project, the Go resec and Redis Sentinel on loopback, same Redis,
 * same run. Every round starts fresh processes and always stops them.
 *
 *   ./scripts/deno.sh run -A bench/run.ts [--rounds 5] [--death-rounds 5]
 *       [--systems resec,go-resec,sentinel-1000,sentinel-5000]
 *       [--faults redis-crash,agent-kill,host-death] [--footprint-seconds 60] [--no-switchover]
 *       [--out DIR]
 *   ./scripts/deno.sh run -A bench/run.ts --render DIR/results.json   # the tables again
 *
 * Prints the Markdown tables at the end and writes them, with the raw samples as JSON, to DIR (default
 * a fresh directory under $TMPDIR). RESEC_UNDER_TEST chooses our artifact as in the tests.
 */
import { parseArgs } from "node:util";
import { agentCommand } from "../tests/support/agent.ts";
import { consulBinary } from "../tests/support/consul.ts";
import {
  type BenchResults,
  type Fault,
  FAULTS,
  renderReport,
  type SystemName,
  SYSTEMS,
} from "./report.ts";
import {
  consulFailover,
  consulFootprint,
  type FailoverSample,
  resecSwitchover,
  sentinelCrash,
  sentinelFootprint,
  sentinelSwitchover,
} from "./scenarios.ts";
import type { SentinelSettings } from "./sentinel_cluster.ts";

const ROOT = new URL("../", import.meta.url).pathname;

/** Sentinel settings per system: quorum 2 of 3, parallel-syncs 1, failover-timeout 10 s. */
const SENTINEL_SETTINGS: Record<string, SentinelSettings> = {
  "sentinel-1000": { downAfterMs: 1_000, failoverTimeoutMs: 10_000 },
  "sentinel-5000": { downAfterMs: 5_000, failoverTimeoutMs: 10_000 },
};

interface Options {
  /** Only re-render the tables of an earlier run's results.json. */
  render: string | undefined;
  rounds: number;
  deathRounds: number;
  systems: SystemName[];
  faults: Fault[];
  footprintSeconds: number;
  switchover: boolean;
  /** Where results go; a new directory under $TMPDIR when not given. */
  out: string | undefined;
}

/** A command line we cannot run. */
class UsageError extends Error {
  override name = "UsageError";
}

function parseOptions(args: string[]): Options {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: {
        rounds: { type: "string", default: "5" },
        "death-rounds": { type: "string" },
        systems: { type: "string", default: SYSTEMS.join(",") },
        faults: { type: "string", default: FAULTS.join(",") },
        "footprint-seconds": { type: "string", default: "60" },
        "no-switchover": { type: "boolean", default: false },
        out: { type: "string" },
        render: { type: "string" },
      },
      strict: true,
    });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const { values } = parsed;
  const count = (name: string, text: string, min: number) => {
    const value = Number(text);
    if (!Number.isInteger(value) || value < min) {
      throw new UsageError(`Cannot use --${name} "${text}": expected a whole number ≥ ${min}`);
    }
    return value;
  };
  const list = <T extends string>(name: string, text: string, allowed: readonly T[]): T[] => {
    const items = text.split(",").map((item) => item.trim()).filter(Boolean);
    for (const item of items) {
      if (!allowed.includes(item as T)) {
        throw new UsageError(
          `Cannot use --${name} "${item}": expected one of ${allowed.join(", ")}`,
        );
      }
    }
    return items as T[];
  };
  const rounds = count("rounds", values.rounds, 1);
  return {
    render: values.render,
    rounds,
    deathRounds: count("death-rounds", values["death-rounds"] ?? String(rounds), 0),
    systems: list("systems", values.systems, SYSTEMS),
    faults: list("faults", values.faults, FAULTS),
    footprintSeconds: count("footprint-seconds", values["footprint-seconds"], 0),
    switchover: !values["no-switchover"],
    out: values.out,
  };
}

async function commandOutput(
  command: string,
  args: string[],
): Promise<{ ok: boolean; text: string }> {
  try {
    const output = await new Deno.Command(command, {
      args,
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(600_000),
    }).output();
    const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes).trim();
    return {
      ok: output.success,
      text: output.success ? decode(output.stdout) : `${decode(output.stderr)}`.trim(),
    };
  } catch (error) {
    return { ok: false, text: (error as Error).message };
  }
}

async function describeMachine(goResec: string | undefined): Promise<Record<string, string>> {
  const memKib = Number(/MemTotal:\s+(\d+)/.exec(Deno.readTextFileSync("/proc/meminfo"))?.[1]);
  const cpu = /model name\s*:\s*(.*)/.exec(Deno.readTextFileSync("/proc/cpuinfo"))?.[1] ?? "?";
  const first = async (command: string, args: string[]) =>
    (await commandOutput(command, args)).text.split("\n")[0] ?? "";
  return {
    nproc: String(navigator.hardwareConcurrency),
    cpu,
    memory: `${(memKib / 1024 / 1024).toFixed(1)} GiB`,
    kernel: await first("uname", ["-r"]),
    deno: `${Deno.version.deno} (V8 ${Deno.version.v8})`,
    agentUnderTest: Deno.env.get("RESEC_UNDER_TEST") ?? "source (deno run main.ts)",
    redis: await first("redis-server", ["--version"]),
    sentinel: await first("redis-sentinel", ["--version"]),
    consul: await first(consulBinary(), ["version"]),
    goResec: goResec ?? "not built",
    go: await first("go", ["version"]),
    commit: await first("git", ["-C", ROOT, "describe", "--always", "--dirty"]),
    loadAverageAtStart: Deno.readTextFileSync("/proc/loadavg").trim(),
  };
}

/** Whether our agent offers a planned switchover on its command line yet. */
async function oursHasSwitchover(): Promise<boolean> {
  const { command, args } = agentCommand();
  const help = await commandOutput(command, [...args, "--help"]);
  return /\bswitchover\b/.test(help.text);
}

function log(message: string): void {
  console.error(`[${new Date().toISOString().slice(11, 19)}] ${message}`);
}

function describeSample(sample: FailoverSample): string {
  const ms = (value: number | undefined) =>
    value === undefined ? "timeout" : `${Math.round(value)} ms`;
  const extra = sample.twoWritableMs === undefined
    ? ""
    : `, old master writable ${ms(sample.twoWritableMs)} after`;
  return `write ${ms(sample.writeMs)}, discovery ${ms(sample.discoveryMs)}${extra}`;
}

async function main(): Promise<void> {
  const options = parseOptions(Deno.args);
  if (options.render) {
    const earlier = JSON.parse(Deno.readTextFileSync(options.render)) as BenchResults;
    const earlierOptions = earlier.options as { systems: SystemName[]; faults: Fault[] };
    console.log(renderReport(earlier, earlierOptions.systems, earlierOptions.faults));
    return;
  }
  // Our own scratch directory: the test runner's leak sweep of another run never matches it.
  const scratch = Deno.makeTempDirSync({ prefix: "resec-bench-" });
  Deno.env.set("RESEC_TEST_TMP", scratch);
  const out = options.out ?? Deno.makeTempDirSync({ prefix: "resec-bench-results-" });
  Deno.mkdirSync(out, { recursive: true });

  const results: BenchResults = {
    startedAt: new Date().toISOString(),
    machine: {},
    options: { ...options },
    skipped: {},
    failover: {},
    switchover: {},
    footprint: {},
    notes: [],
  };

  let goResecBin: string | undefined;
  if (options.systems.includes("go-resec")) {
    const built = await commandOutput(`${ROOT}scripts/provision-go-resec.sh`, []);
    if (built.ok) {
      goResecBin = built.text.split("\n").pop();
    } else {
      results.skipped["go-resec"] = `scripts/provision-go-resec.sh could not build it: ${
        built.text.replaceAll("\n", " ")
      }`;
      log(`go-resec skipped: ${built.text}`);
    }
  }
  const systems = options.systems.filter((system) => !results.skipped[system]);
  results.machine = await describeMachine(goResecBin);
  log(`machine: ${JSON.stringify(results.machine)}`);
  log(`scratch directory (servers' logs): ${scratch}`);

  const switchoverSystems: SystemName[] = [];
  if (options.switchover) {
    if (systems.includes("resec")) {
      if (await oursHasSwitchover()) {
        switchoverSystems.push("resec");
      } else {
        results.skipped.resec =
          "planned switchover: `resec --help` offers no switchover command yet " +
          "(failovers, footprint and startup were measured)";
      }
    }
    // SENTINEL FAILOVER does not depend on down-after-milliseconds: one configuration is enough.
    const sentinel = systems.find((system) => system.startsWith("sentinel"));
    if (sentinel) switchoverSystems.push(sentinel);
  }

  const save = () => {
    Deno.writeTextFileSync(`${out}/results.json`, JSON.stringify(results, null, 2));
    Deno.writeTextFileSync(
      `${out}/results.md`,
      renderReport(results, options.systems, options.faults),
    );
  };

  const started = performance.now();
  for (let round = 1; round <= options.rounds; round++) {
    for (const system of systems) {
      const faults = system.startsWith("sentinel")
        ? options.faults.filter((fault) => fault !== "agent-kill")
          .map((fault) => fault === "host-death" ? "redis-crash" : fault)
          .filter((fault, index, all) => all.indexOf(fault) === index)
        : options.faults;
      for (const fault of faults) {
        if (fault !== "redis-crash" && round > options.deathRounds) continue;
        log(`round ${round}/${options.rounds}: ${system} ${fault}`);
        let sample: FailoverSample;
        try {
          sample = system.startsWith("sentinel")
            ? await sentinelCrash(SENTINEL_SETTINGS[system]!)
            : await consulFailover(system as "resec" | "go-resec", fault, goResecBin);
        } catch (error) {
          sample = {
            writeMs: undefined,
            discoveryMs: undefined,
            note: `${system} ${fault}: ${(error as Error).message}`,
          };
        }
        if (sample.note) results.notes.push(`round ${round}: ${sample.note}`);
        log(`  ${describeSample(sample)}`);
        const bySystem = results.failover[system] ??= {};
        (bySystem[fault] ??= []).push(sample);
        save();
      }
      if (switchoverSystems.includes(system)) {
        log(`round ${round}/${options.rounds}: ${system} switchover`);
        try {
          const sample = system === "resec"
            ? await resecSwitchover()
            : await sentinelSwitchover(SENTINEL_SETTINGS[system]!);
          if (sample.note) {
            results.notes.push(`round ${round}: ${system} switchover: ${sample.note}`);
          }
          log(
            `  longest pause ${sample.longestGapMs?.toFixed(0)} ms (raw ${
              sample.rawGapMs?.toFixed(0)
            } ms), lost ${sample.lost}, switched after ${sample.switchMs?.toFixed(0)} ms`,
          );
          (results.switchover[system] ??= []).push(sample);
        } catch (error) {
          results.notes.push(`round ${round}: ${system} switchover: ${(error as Error).message}`);
        }
        save();
      }
    }
  }

  if (options.footprintSeconds > 0) {
    const windowMs = options.footprintSeconds * 1_000;
    for (const system of systems) {
      // One Sentinel configuration is enough: down-after does not change a steady sentinel's work.
      if (system === "sentinel-5000" && systems.includes("sentinel-1000")) continue;
      log(`footprint: ${system} over ${options.footprintSeconds} s`);
      try {
        results.footprint[system] = system.startsWith("sentinel")
          ? await sentinelFootprint(SENTINEL_SETTINGS[system]!, windowMs)
          : await consulFootprint(system as "resec" | "go-resec", windowMs, goResecBin);
      } catch (error) {
        results.notes.push(`footprint ${system}: ${(error as Error).message}`);
      }
      save();
    }
  }

  results.finishedAt = new Date().toISOString();
  results.machine.loadAverageAtEnd = Deno.readTextFileSync("/proc/loadavg").trim();
  results.machine.durationMinutes = ((performance.now() - started) / 60_000).toFixed(1);
  save();
  console.log(renderReport(results, options.systems, options.faults));
  if (results.notes.length > 0) {
    console.log(`Notes:\n${results.notes.map((note) => `- ${note.split("\n")[0]}`).join("\n")}`);
  }
  log(`results written to ${out}/results.md and results.json`);
  // Keep the servers' logs when something went wrong.
  if (results.notes.length === 0) Deno.removeSync(scratch, { recursive: true });
}

// Ctrl-C: exit through Deno.exit so the harness's unload handler kills every server we started.
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.addSignalListener(signal, () => {
    log(`${signal}: stopping every server of this run`);
    Deno.exit(130);
  });
}

if (import.meta.main) {
  try {
    await main();
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(`bench/run.ts: ${error.message}`);
    Deno.exit(2);
  }
}
