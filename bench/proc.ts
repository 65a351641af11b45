/** What a process costs, read from Linux's /proc: resident memory and CPU time. */

/** Clock ticks per second of /proc/<pid>/stat times (`getconf CLK_TCK`; 100 on every Linux we run). */
const CLOCK_TICKS_PER_SECOND = 100;

/** A process's resident set size (VmRSS) in KiB, or undefined once it has exited. */
export function residentKib(pid: number): number | undefined {
  let status: string;
  try {
    status = Deno.readTextFileSync(`/proc/${pid}/status`);
  } catch {
    return undefined;
  }
  const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
  return match ? Number(match[1]) : undefined;
}

/** User plus system CPU time a process has used so far, in seconds, or undefined once it has exited. */
export function cpuSeconds(pid: number): number | undefined {
  let stat: string;
  try {
    stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  } catch {
    return undefined;
  }
  // The command name (field 2) may hold spaces and parentheses: count fields after its last ")".
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // Fields 14 (utime) and 15 (stime) of proc(5), i.e. 12 and 13 after the name.
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) return undefined;
  return (utime + stime) / CLOCK_TICKS_PER_SECOND;
}

/** Samples of one process over a window. */
export interface ProcessUsage {
  /** Median VmRSS over the samples, in MiB. */
  readonly rssMib: number;
  /** Largest VmRSS seen, in MiB. */
  readonly rssMaxMib: number;
  /** CPU seconds used per minute of the window. */
  readonly cpuSecondsPerMinute: number;
}

/**
 * Watches processes for `windowMs`, sampling VmRSS every `sampleMs`; CPU is the difference of the
 * counters at both ends. A process that exits during the window is left out of the result.
 */
export async function measureUsage(
  pids: readonly number[],
  options: { windowMs: number; sampleMs?: number },
): Promise<Map<number, ProcessUsage>> {
  const sampleMs = options.sampleMs ?? 1_000;
  const startCpu = new Map(pids.map((pid) => [pid, cpuSeconds(pid)]));
  const rss = new Map<number, number[]>(pids.map((pid) => [pid, []]));
  const started = performance.now();
  while (performance.now() - started < options.windowMs) {
    for (const pid of pids) {
      const kib = residentKib(pid);
      if (kib !== undefined) rss.get(pid)!.push(kib / 1024);
    }
    const left = options.windowMs - (performance.now() - started);
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, Math.min(sampleMs, left))));
  }
  const minutes = (performance.now() - started) / 60_000;
  const usage = new Map<number, ProcessUsage>();
  for (const pid of pids) {
    const before = startCpu.get(pid);
    const after = cpuSeconds(pid);
    const samples = rss.get(pid)!.sort((a, b) => a - b);
    if (before === undefined || after === undefined || samples.length === 0) continue;
    usage.set(pid, {
      rssMib: samples[Math.floor(samples.length / 2)]!,
      rssMaxMib: samples[samples.length - 1]!,
      cpuSecondsPerMinute: (after - before) / minutes,
    });
  }
  return usage;
}

/** Socket inodes of the established TCP connections (IPv4 and IPv6) whose remote port is `port`. */
function establishedSocketsTo(port: number): Set<string> {
  const inodes = new Set<string>();
  for (const table of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text: string;
    try {
      text = Deno.readTextFileSync(table);
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode …
      const fields = line.trim().split(/\s+/);
      const remote = fields[2];
      if (fields[3] !== "01" || remote === undefined || fields[9] === undefined) continue;
      if (parseInt(remote.slice(remote.lastIndexOf(":") + 1), 16) === port) inodes.add(fields[9]);
    }
  }
  return inodes;
}

/**
 * How many established TCP connections each process holds to `port` (the Consul HTTP port): its
 * socket descriptors matched against the kernel's connection table. A process that has exited is
 * left out.
 */
export function connectionsTo(pids: readonly number[], port: number): Map<number, number> {
  const sockets = establishedSocketsTo(port);
  const counts = new Map<number, number>();
  for (const pid of pids) {
    let count = 0;
    try {
      for (const entry of Deno.readDirSync(`/proc/${pid}/fd`)) {
        let target: string;
        try {
          target = Deno.readLinkSync(`/proc/${pid}/fd/${entry.name}`);
        } catch {
          continue; // closed meanwhile
        }
        const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
        if (inode !== undefined && sockets.has(inode)) count++;
      }
    } catch {
      continue;
    }
    counts.set(pid, count);
  }
  return counts;
}
