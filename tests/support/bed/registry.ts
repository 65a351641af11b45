/**
 * Who owns which bed: one record per bed under /run/resec-bed, naming the owner process, so a later
 * bed (or scripts/bed-clean.sh) removes the namespaces of a bed whose owner died without cleaning up.
 */
import { BED_NAMESPACE_PREFIX, deleteNamespace, listNamespaces } from "./netns.ts";

/** /run is a tmpfs on most systems: records vanish at boot, as namespaces do. */
export const BED_STATE_DIR = "/run/resec-bed";

/** What a bed writes before it creates its first namespace. */
export interface BedRecord {
  id: string;
  ownerPid: number;
  /** The owner's start time in clock ticks since boot, so a reused pid is not taken for the owner. */
  ownerStartTime: string;
  /** The test run directory that holds the bed's logs. */
  runDir: string;
  createdAt: string;
}

/** A fresh bed id: short, so namespace names stay readable, and without dashes, so names parse. */
export function newBedId(): string {
  return crypto.randomUUID().replaceAll("-", "").slice(0, 8);
}

/** The prefix of every namespace of bed `id`. */
export function bedNamespacePrefix(id: string): string {
  return `${BED_NAMESPACE_PREFIX}${id}-`;
}

/** The bed id in a namespace name made by bedNamespacePrefix, or undefined for any other name. */
export function bedIdOf(namespace: string): string | undefined {
  if (!namespace.startsWith(BED_NAMESPACE_PREFIX)) return undefined;
  const rest = namespace.slice(BED_NAMESPACE_PREFIX.length);
  const dash = rest.indexOf("-");
  return dash > 0 ? rest.slice(0, dash) : undefined;
}

/** Field 22 of /proc/<pid>/stat (the start time), or undefined when the process does not exist. */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // The command name in parentheses may contain spaces: count fields after the last ")".
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return fields[19]; // field 3 (state) is fields[0], so field 22 is fields[19]
  } catch (error) {
    // Only a missing process means "dead". Anything else (Deno refuses /proc without --allow-all)
    // must not make a live bed look stale: the clean-up would then kill a running test's bed.
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
}

/** Records this process as the owner of bed `id`, before any namespace exists. */
export function writeRecord(id: string, runDir: string): BedRecord {
  const record: BedRecord = {
    id,
    ownerPid: Deno.pid,
    ownerStartTime: processStartTime(Deno.pid) ?? "",
    runDir,
    createdAt: new Date().toISOString(),
  };
  Deno.mkdirSync(BED_STATE_DIR, { recursive: true });
  // Write then rename: a concurrent clean-up never reads half a record.
  const temporary = `${BED_STATE_DIR}/.${id}.json.tmp`;
  Deno.writeTextFileSync(temporary, JSON.stringify(record, null, 2));
  Deno.renameSync(temporary, recordPath(id));
  return record;
}

/** Removes the record of bed `id`, once its namespaces are gone. */
export function removeRecord(id: string): void {
  try {
    Deno.removeSync(recordPath(id));
  } catch { /* already gone */ }
}

/** Every readable bed record. */
export function readRecords(): BedRecord[] {
  const records: BedRecord[] = [];
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(BED_STATE_DIR)];
  } catch {
    return records;
  }
  for (const entry of entries) {
    if (!entry.isFile || !entry.name.endsWith(".json") || entry.name.startsWith(".")) continue;
    try {
      const record = JSON.parse(Deno.readTextFileSync(`${BED_STATE_DIR}/${entry.name}`));
      if (typeof record.id === "string" && typeof record.ownerPid === "number") {
        records.push(record);
      }
    } catch { /* removed meanwhile, or not ours */ }
  }
  return records;
}

/** True while the process that wrote the record is still running (the same process, not a reuse). */
export function ownerAlive(record: BedRecord): boolean {
  const startTime = processStartTime(record.ownerPid);
  if (startTime === undefined) return false;
  return record.ownerStartTime === "" || record.ownerStartTime === startTime;
}

export interface CleanOptions {
  /** Remove live beds too (an operator's last resort; never used by tests). */
  all?: boolean;
}

/**
 * Deletes the namespaces (and kills the processes in them) of every bed whose owner is dead, or, with
 * `all`, of every bed. A namespace with the bed prefix but no record is a leftover too. Returns the
 * ids of the beds removed.
 */
export async function cleanStaleBeds(options: CleanOptions = {}): Promise<string[]> {
  // Namespaces first, records second: a bed writes its record before its first namespace, so any
  // namespace listed here already has its record on disk when the records are read below.
  const namespaces = (await listNamespaces()).filter((name) => bedIdOf(name) !== undefined);
  const records = new Map(readRecords().map((record) => [record.id, record]));
  const stale = new Set<string>();
  for (const record of records.values()) {
    if (options.all || !ownerAlive(record)) stale.add(record.id);
  }
  for (const name of namespaces) {
    const id = bedIdOf(name)!;
    if (!records.has(id)) stale.add(id);
  }
  for (const id of stale) {
    const prefix = bedNamespacePrefix(id);
    await Promise.all(
      namespaces.filter((name) => name.startsWith(prefix)).map((name) => deleteNamespace(name)),
    );
    removeRecord(id);
  }
  return [...stale];
}

function recordPath(id: string): string {
  return `${BED_STATE_DIR}/${id}.json`;
}
