/**
 * The operator's commands that talk to Consul instead of running the agent: `resec pause`,
 * `resec resume` and `resec switchover`. They read the same environment as the agent.
 */
import { formatHostPort, parseHostPort } from "./address.ts";
import type { Config } from "./config.ts";
import { ConsulClient } from "./consul/client.ts";
import { deleteKey, putKey, readKey } from "./consul/kv.ts";
import {
  encodeSwitchoverRecord,
  isFinished,
  parseSwitchoverRecord,
  pauseKey,
  switchoverKey,
  type SwitchoverRecord,
} from "./cluster/controls.ts";
import type { Milliseconds } from "./duration.ts";
import { InvalidRecordError } from "./record.ts";

/**
 * How long `resec switchover` follows the record past its own timeout: two lock TTLs (Consul may keep
 * the old master's session for up to 2 × TTL) plus this margin.
 */
const FOLLOW_MARGIN_MS = 5_000;

/** One read of the record blocks at most this long, so the deadline is checked often. */
const FOLLOW_WAIT_MAX_MS = 5_000;

/** The shortest blocking wait asked for near the deadline (a zero wait would not block). */
const FOLLOW_WAIT_MIN_MS = 100;

/** Where a command prints. */
export interface CommandIo {
  stdout: (line: string) => void;
  stderr: (line: string) => void;
}

/** Turns maintenance mode on: no agent promotes or demotes anything until `resume`. */
export async function pauseCluster(config: Config, reason: string, io: CommandIo): Promise<number> {
  using client = new ConsulClient({ connection: config.consul });
  const note = { reason, since: new Date().toISOString() };
  await putKey(client, pauseKey(config.lock.key), JSON.stringify(note));
  io.stdout(`maintenance mode on for ${config.lock.key}: agents will not promote or demote Redis`);
  return 0;
}

/** Turns maintenance mode off. */
export async function resumeCluster(config: Config, io: CommandIo): Promise<number> {
  using client = new ConsulClient({ connection: config.consul });
  await deleteKey(client, pauseKey(config.lock.key));
  io.stdout(`maintenance mode off for ${config.lock.key}: agents act on failures again`);
  return 0;
}

/**
 * Asks the current master's agent to hand over to `to` (or the best replica) and waits for the
 * outcome. Exit code 0 when done, 1 when refused, failed or not answered in time.
 */
export async function requestSwitchover(
  config: Config,
  options: { to?: string; timeoutMs: Milliseconds },
  io: CommandIo,
): Promise<number> {
  using client = new ConsulClient({ connection: config.consul });
  const key = switchoverKey(config.lock.key);
  const record: SwitchoverRecord = {
    id: crypto.randomUUID(),
    state: "requested",
    ...(options.to !== undefined ? { to: parseHostPort(options.to) } : {}),
    timeoutMs: options.timeoutMs,
    requestedAt: new Date().toISOString(),
  };
  const current = await readKey(client, key);
  let cas = 0;
  if (current.entry) {
    const previous = readRecord(current.entry.value);
    if (!previous.ok) {
      io.stderr(`resec: replacing an invalid switchover record (${previous.reason})`);
    } else if (!isFinished(previous.record)) {
      const { state, id } = previous.record;
      io.stderr(`resec: a switchover is already ${state} (id ${id}); try again later`);
      return 1;
    }
    cas = current.entry.modifyIndex;
  }
  if (!(await putKey(client, key, encodeSwitchoverRecord(record), { cas }))) {
    io.stderr("resec: another switchover request was written at the same moment; try again");
    return 1;
  }
  io.stdout(
    `switchover ${record.id} requested${
      record.to ? ` to ${formatHostPort(record.to)}` : ""
    }; waiting for the master`,
  );

  const deadline = Date.now() + options.timeoutMs + 2 * config.lock.ttlMs + FOLLOW_MARGIN_MS;
  let index = 0;
  let lastState = "requested";
  while (Date.now() < deadline) {
    const waitMs = Math.max(
      FOLLOW_WAIT_MIN_MS,
      Math.min(FOLLOW_WAIT_MAX_MS, deadline - Date.now()),
    );
    const result = await readKey(client, key, { index: Math.max(index, 1), waitMs });
    index = result.index < index ? 0 : result.index;
    const read = result.entry ? readRecord(result.entry.value) : undefined;
    const seen = read?.ok ? read.record : undefined;
    if (!seen || seen.id !== record.id) {
      io.stderr("resec: the switchover request was replaced or removed by someone else");
      return 1;
    }
    if (seen.state !== lastState) {
      lastState = seen.state;
      const parts = [`switchover ${seen.state}`];
      if (seen.from) parts.push(`from ${formatHostPort(seen.from)}`);
      if (seen.to) parts.push(`to ${formatHostPort(seen.to)}`);
      if (seen.detail) parts.push(`: ${seen.detail}`);
      (seen.state === "refused" || seen.state === "failed" ? io.stderr : io.stdout)(
        parts.join(" "),
      );
    }
    if (isFinished(seen)) return seen.state === "done" ? 0 : 1;
  }
  io.stderr(
    lastState === "requested"
      ? "resec: no master agent answered the switchover request (is a master elected?)"
      : `resec: the switchover did not finish in time (last state: ${lastState})`,
  );
  return 1;
}

/** The record in the key, or why it cannot be read. */
function readRecord(
  text: string,
): { ok: true; record: SwitchoverRecord } | { ok: false; reason: string } {
  try {
    return { ok: true, record: parseSwitchoverRecord(text) };
  } catch (error) {
    if (error instanceof InvalidRecordError) return { ok: false, reason: error.reason };
    throw error;
  }
}
