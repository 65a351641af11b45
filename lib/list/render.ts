/**
 * `resec list`'s output: an aligned plain-text table for people, JSON for scripts. Pure.
 */
import { formatAge, type GroupListing, type MemberRow } from "./model.ts";

const COLUMNS = [
  "MEMBER",
  "NODE",
  "LOCK",
  "REDIS",
  "CONSUL",
  "CHECK",
  "AGENT",
  "LAG",
  "PRIO",
  "PUBLISHED",
  "ELIGIBLE",
] as const;

/**
 * The listing as lines of text: the lock and controls, one row per member, then the verdict and its
 * reasons.
 *
 * @example
 * ```ts
 * for (const line of renderTable(listGroup(records, settings))) console.log(line);
 * ```
 */
export function renderTable(listing: GroupListing): string[] {
  const rows = [[...COLUMNS], ...listing.members.map(memberCells)];
  const widths = COLUMNS.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)));
  const table = rows.map((row) =>
    row.map((cell, column) => column === row.length - 1 ? cell : cell.padEnd(widths[column]!))
      .join("  ").trimEnd()
  );
  return [
    `${listing.lockKey}: ${describeLock(listing)}`,
    `maintenance mode: ${describePause(listing)}; switchover: ${describeSwitchover(listing)}`,
    ...(listing.members.length > 0 ? table : ["(no member: nothing in Consul for this group)"]),
    `status: ${listing.verdict} (exit ${listing.exitCode})`,
    ...listing.problems.map((problem) => `  - ${problem}`),
  ];
}

/** The listing as JSON: one line (`pretty: false`, for `--watch`) or indented. */
export function renderJson(listing: GroupListing, options: { pretty: boolean }): string {
  return JSON.stringify(listing, null, options.pretty ? 2 : undefined);
}

function memberCells(member: MemberRow): string[] {
  const redis = member.redis;
  return [
    member.address,
    member.node ?? "-",
    member.lockHolder ? "holder" : "",
    redis ? (redis.healthy ? redis.role : "down") : member.invalidCandidacy ? "invalid" : "-",
    member.consulRole ?? "-",
    member.check ?? "-",
    member.agent === "absent" ? "-" : member.agent,
    member.lagBytes === undefined ? "-" : String(member.lagBytes),
    redis ? String(redis.priority) : "-",
    redis ? `${formatAge(redis.ageMs)} ago${redis.stale ? " (stale)" : ""}` : "-",
    member.eligible ? "yes" : `no: ${member.ineligibleReason}`,
  ];
}

function describeLock(listing: GroupListing): string {
  const lock = listing.lock;
  if (lock.state === "free") return "the lock is free";
  const holder = lock.holder === undefined
    ? "an unknown holder"
    : lock.holderFrom === "catalog"
    ? `${lock.holder} (the passing master; the holder announced nothing)`
    : lock.holder;
  const details = [`epoch ${lock.epoch}`];
  if (lock.since !== undefined) details.push(`since ${lock.since}`);
  if (lock.agent) details.push(`agent "${lock.agent}"`);
  details.push(`session ${lock.session}`);
  const invalid = lock.invalid !== undefined ? `; its value is invalid: ${lock.invalid}` : "";
  return `lock held by ${holder} (${details.join(", ")})${invalid}`;
}

function describePause(listing: GroupListing): string {
  const pause = listing.pause;
  if (!pause.paused) return "off";
  if (pause.invalid !== undefined) return `ON (its note is invalid: ${pause.invalid})`;
  return `ON since ${pause.since} ("${pause.reason}")`;
}

function describeSwitchover(listing: GroupListing): string {
  const switchover = listing.switchover;
  if (!switchover) return "none";
  if (!switchover.valid) return `invalid record (${switchover.invalid})`;
  const parts: string[] = [switchover.state];
  if (switchover.from) parts.push(`from ${switchover.from}`);
  if (switchover.to) parts.push(`to ${switchover.to}`);
  parts.push(`requested ${switchover.requestedAt}`);
  if (switchover.detail) parts.push(`(${switchover.detail})`);
  return parts.join(" ");
}
