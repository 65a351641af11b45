/**
 * `resec list [--json] [--watch[=2s]]`: reads the group from Consul, prints it, and exits with the
 * verdict's code (model.ts `LIST_EXIT_CODES`); with `--watch`, again every interval until Ctrl-C.
 */
import type { Config } from "../config.ts";
import { type Clock, systemClock } from "../clock.ts";
import { ConsulClient } from "../consul/client.ts";
import { ConsulError } from "../consul/errors.ts";
import { formatDuration, type Milliseconds } from "../duration.ts";
import { type GroupRecords, LIST_EXIT_CODES, listGroup } from "./model.ts";
import { listSettings, readGroupRecords } from "./read.ts";
import { renderJson, renderTable } from "./render.ts";

/** What the operator asked for. */
export interface ListOptions {
  readonly json: boolean;
  /** Refresh this often until stopped; once when undefined. */
  readonly watchMs?: Milliseconds;
}

/** Where `resec list` prints and what ends a watch; the reads and the clock are injectable for tests. */
export interface ListIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** Clears the terminal before each refresh of a watched table (set only when stdout is one). */
  clearScreen?: () => void;
  /** Ends `--watch` (Ctrl-C). */
  signal?: AbortSignal;
  /** Reads the group (default: from Consul, with the configuration's connection). */
  read?: (signal: AbortSignal | undefined) => Promise<GroupRecords>;
  clock?: Clock;
}

/**
 * Lists the group once, or every `watchMs` until `io.signal` aborts. Returns the exit code of the last
 * listing: `LIST_EXIT_CODES` (`failed` when Consul could not be read).
 */
export async function listCluster(
  config: Config,
  options: ListOptions,
  io: ListIo,
): Promise<number> {
  using client = new ConsulClient({ connection: config.consul });
  const read = io.read ?? ((signal) => readGroupRecords(client, config, { signal }));
  const clock = io.clock ?? systemClock;
  const settings = listSettings(config);
  const watching = options.watchMs !== undefined;
  let code: number = LIST_EXIT_CODES.failed;
  while (!io.signal?.aborted) {
    try {
      const listing = listGroup(await read(io.signal), settings);
      code = listing.exitCode;
      if (options.json) {
        io.stdout(renderJson(listing, { pretty: !watching }));
      } else {
        io.clearScreen?.();
        if (watching) {
          io.stdout(
            `read at ${listing.readAt}, every ${formatDuration(options.watchMs!)}; Ctrl-C ends`,
          );
        }
        io.stdout(renderTable(listing).join("\n"));
      }
    } catch (error) {
      if (io.signal?.aborted) break;
      code = LIST_EXIT_CODES.failed;
      io.stderr(
        `resec list: ${
          error instanceof ConsulError ? "cannot read Consul" : "cannot list the group"
        }: ${(error as Error).message}`,
      );
    }
    if (!watching) break;
    try {
      await clock.sleep(options.watchMs!, io.signal);
    } catch {
      break; // Ctrl-C
    }
  }
  return code;
}

/**
 * `listCluster` on the real terminal: Ctrl-C (SIGINT) ends a watch, and a watched table redraws in
 * place when stdout is a terminal.
 */
export async function listClusterOnTerminal(
  config: Config,
  options: ListOptions,
  io: Pick<ListIo, "stdout" | "stderr">,
): Promise<number> {
  if (options.watchMs === undefined) return await listCluster(config, options, io);
  const stop = new AbortController();
  const onInterrupt = () => stop.abort(new Error("interrupted"));
  Deno.addSignalListener("SIGINT", onInterrupt);
  try {
    const clearScreen = !options.json && Deno.stdout.isTerminal()
      ? () => Deno.stdout.writeSync(new TextEncoder().encode("\x1b[H\x1b[2J"))
      : undefined;
    return await listCluster(config, options, {
      ...io,
      signal: stop.signal,
      ...(clearScreen ? { clearScreen } : {}),
    });
  } finally {
    Deno.removeSignalListener("SIGINT", onInterrupt);
  }
}
