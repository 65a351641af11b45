/** Renders benchmark results as Markdown tables: medians, spreads and ratios against this project. */
import type { FailoverSample, FootprintRow, StartupSample, SwitchoverSample } from "./scenarios.ts";
import { ratio, summarize, type Summary } from "./stats.ts";

/** The systems a run can compare; "resec" is this project. */
export const SYSTEMS = ["resec", "go-resec", "sentinel-1000", "sentinel-5000"] as const;
export type SystemName = typeof SYSTEMS[number];

export const FAULTS = ["redis-crash", "agent-kill", "host-death"] as const;
export type Fault = typeof FAULTS[number];

/** Everything one run measured (also written out as JSON). */
export interface BenchResults {
  startedAt: string;
  finishedAt?: string;
  machine: Record<string, string>;
  options: Record<string, unknown>;
  /** Systems that could not run, and why. */
  skipped: Partial<Record<SystemName, string>>;
  failover: Partial<Record<SystemName, Partial<Record<Fault, FailoverSample[]>>>>;
  switchover: Partial<Record<SystemName, SwitchoverSample[]>>;
  footprint: Partial<Record<SystemName, FootprintRow[]>>;
  notes: string[];
}

const LABELS: Record<SystemName, string> = {
  "resec": "resec (this project)",
  "go-resec": "Go resec",
  "sentinel-1000": "Sentinel, down-after 1000 ms",
  "sentinel-5000": "Sentinel, down-after 5000 ms",
};

/** "38 ms", "1.27 s", "31.4 s". */
export function formatMs(ms: number): string {
  if (ms < 1_000) return `${Math.round(ms)} ms`;
  if (ms < 10_000) return `${(ms / 1_000).toFixed(2)} s`;
  return `${(ms / 1_000).toFixed(1)} s`;
}

function cell(summary: Summary | undefined): string {
  if (!summary) return "–";
  const failed = summary.failed > 0 ? `, ${summary.failed} failed` : "";
  return `**${formatMs(summary.median)}** (${formatMs(summary.min)}–${
    formatMs(summary.max)
  }; p10–p90 ${formatMs(summary.p10)}–${formatMs(summary.p90)}; n=${summary.n}${failed})`;
}

function ratioCell(ours: Summary | undefined, peer: Summary | undefined, self: boolean): string {
  if (self) return "1×";
  const value = ratio(ours, peer);
  if (value === undefined) return "–";
  return value < 1 ? `${value.toFixed(2)}×` : `${value.toFixed(1)}×`;
}

function failoverTable(results: BenchResults, fault: Fault, systems: SystemName[]): string {
  const rows = systems.map((system) => {
    // Sentinel has no agent: a host death is a Redis crash.
    const source = system.startsWith("sentinel") && fault === "host-death" ? "redis-crash" : fault;
    return { system, samples: results.failover[system]?.[source] };
  }).filter((row) => row.samples && row.samples.length > 0);
  if (rows.length === 0) return "";
  const ours = results.failover.resec?.[fault];
  const oursWrite = summarize(ours?.map((sample) => sample.writeMs) ?? []);
  const oursDiscovery = summarize(ours?.map((sample) => sample.discoveryMs) ?? []);
  const showTwoWritable = fault === "agent-kill";
  const header = [
    "system",
    "kill → first acknowledged write on the new master",
    "× ours",
    "kill → discovery shows the new master",
    "× ours",
    ...(showTwoWritable
      ? [
        "old master's last acknowledged write (from the kill)",
        "old master still took writes after the new one did",
      ]
      : []),
  ];
  const lines = [
    `| ${header.join(" | ")} |`,
    `|${header.map(() => " --- ").join("|")}|`,
  ];
  for (const { system, samples } of rows) {
    const write = summarize(samples!.map((sample) => sample.writeMs));
    const discovery = summarize(samples!.map((sample) => sample.discoveryMs));
    const self = system === "resec";
    const note = system.startsWith("sentinel") && fault === "host-death" ? " ¹" : "";
    lines.push(
      `| ${LABELS[system]}${note} | ${cell(write)} | ${ratioCell(oursWrite, write, self)} | ${
        cell(discovery)
      } | ${ratioCell(oursDiscovery, discovery, self)} |${
        showTwoWritable
          ? ` ${cell(summarize(samples!.map((sample) => sample.oldMasterLastAckMs)))} | ${
            cell(summarize(samples!.map((sample) => sample.twoWritableMs)))
          } |`
          : ""
      }`,
    );
  }
  return lines.join("\n");
}

function switchoverTable(results: BenchResults, systems: SystemName[]): string {
  const rows = systems.filter((system) => (results.switchover[system]?.length ?? 0) > 0);
  if (rows.length === 0) return "";
  const ours = summarize(results.switchover.resec?.map((sample) => sample.longestGapMs) ?? []);
  const lines = [
    "| system | longest pause between acknowledged writes that survived | × ours | same, counting writes later lost | acknowledged writes lost, per round | request → discovery names the new master |",
    "| --- | --- | --- | --- | --- | --- |",
  ];
  for (const system of rows) {
    const samples = results.switchover[system]!;
    const gap = summarize(samples.map((sample) => sample.longestGapMs));
    const lost = samples.map((sample) => sample.lost).filter((value) => value !== undefined);
    lines.push(
      `| ${LABELS[system]} | ${cell(gap)} | ${ratioCell(ours, gap, system === "resec")} | ${
        cell(summarize(samples.map((sample) => sample.rawGapMs)))
      } | ${lost.join(", ") || "–"} | ${
        cell(summarize(samples.map((sample) => sample.switchMs)))
      } |`,
    );
  }
  return lines.join("\n");
}

function footprintTable(results: BenchResults, systems: SystemName[]): string {
  const rows = systems.filter((system) => (results.footprint[system]?.length ?? 0) > 0);
  if (rows.length === 0) return "";
  const lines = [
    "| system | process | RSS (median; max) | CPU per minute | Consul HTTP requests per minute | busiest requests per minute |",
    "| --- | --- | --- | --- | --- | --- |",
  ];
  for (const system of rows) {
    for (const row of results.footprint[system]!) {
      lines.push(
        `| ${LABELS[system]} | ${row.role} | ${row.rssMib.toFixed(1)} MiB; ${
          row.rssMaxMib.toFixed(1)
        } MiB | ${row.cpuSecondsPerMinute.toFixed(2)} s | ${
          row.consulRequestsPerMinute === undefined ? "–" : row.consulRequestsPerMinute.toFixed(1)
        } | ${row.topRequests ?? "–"} |`,
      );
    }
  }
  return lines.join("\n");
}

function startupTable(results: BenchResults, systems: SystemName[]): string {
  const rows = systems.map((system) => {
    const startups: StartupSample[] = Object.values(results.failover[system] ?? {}).flatMap(
      (samples) => samples.flatMap((sample) => sample.startup ? [sample.startup] : []),
    );
    return { system, startups };
  }).filter((row) => row.startups.length > 0);
  if (rows.length === 0) return "";
  const lines = [
    "| system | process start → registered in Consul (per agent; Sentinel: ready to fail over) | first spawn → one passing master |",
    "| --- | --- | --- |",
  ];
  for (const { system, startups } of rows) {
    const perProcess = summarize(startups.flatMap((startup) => startup.perProcessMs));
    const master = system.startsWith("sentinel")
      ? undefined
      : summarize(startups.map((startup) => startup.masterMs));
    lines.push(`| ${LABELS[system]} | ${cell(perProcess)} | ${cell(master)} |`);
  }
  return lines.join("\n");
}

/** The whole report: one section per measurement. */
export function renderReport(
  results: BenchResults,
  systems: SystemName[],
  faults: readonly Fault[] = FAULTS,
): string {
  const sections: string[] = [];
  const titles: Record<Fault, string> = {
    "redis-crash": "Failover after `kill -9` of the master Redis",
    "agent-kill": "Failover after `kill -9` of the master's agent (Redis stays up)",
    "host-death": "Failover after the master's host dies (agent and Redis killed together)",
  };
  for (const fault of faults) {
    const table = failoverTable(results, fault, systems);
    if (table) sections.push(`### ${titles[fault]}\n\n${table}`);
  }
  if (sections.some((section) => section.includes(" ¹ |"))) {
    sections.push("¹ Sentinel has no agent beside Redis: a host death is the Redis crash above.");
  }
  const switchover = switchoverTable(results, systems);
  if (switchover) sections.push(`### Planned switchover: write pause\n\n${switchover}`);
  const footprint = footprintTable(results, systems);
  if (footprint) sections.push(`### Footprint at steady state\n\n${footprint}`);
  const startup = startupTable(results, systems);
  if (startup) sections.push(`### Startup\n\n${startup}`);
  const skipped = Object.entries(results.skipped);
  if (skipped.length > 0) {
    sections.push(
      `### Not measured\n\n${
        skipped.map(([system, reason]) => `- ${LABELS[system as SystemName]}: ${reason}`).join(
          "\n",
        )
      }`,
    );
  }
  return sections.join("\n\n") + "\n";
}
