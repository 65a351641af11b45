/**
 * Follows the operator controls in Consul KV (maintenance mode and switchover requests) and writes the
 * switchover's progress back, with check-and-set so two writers never overwrite each other.
 */
import type { ConsulClient } from "../consul/client.ts";
import { type KvEntry, putKey, watchKey } from "../consul/kv.ts";
import type { BlockingWatch } from "../consul/watch.ts";
import {
  encodeSwitchoverRecord,
  parsePauseNote,
  parseSwitchoverRecord,
  pauseKey,
  switchoverKey,
  type SwitchoverRecord,
} from "../control.ts";
import type { Logger } from "../log.ts";
import { InvalidRecordError } from "../record.ts";
import { InvalidRecordReporter } from "./invalid_records.ts";

export interface ControlSourceOptions {
  client: ConsulClient;
  lockKey: string;
  logger: Logger;
  onChange: () => void;
  /** Called once per distinct invalid value of a control key (metrics). */
  onInvalidRecord?: (key: string) => void;
}

/** The switchover record with the index needed to update it. */
export interface SwitchoverEntry {
  readonly record: SwitchoverRecord;
  readonly modifyIndex: number;
}

/** Watches `<lock key>.paused` and `<lock key>.switchover`. */
export class ControlSource implements AsyncDisposable {
  readonly #options: ControlSourceOptions;
  readonly #watches: BlockingWatch<KvEntry | undefined>[];
  readonly #done: Promise<void>[];
  readonly #invalid: InvalidRecordReporter;
  #paused = false;
  #switchover: SwitchoverEntry | undefined;

  constructor(options: ControlSourceOptions) {
    this.#options = options;
    this.#invalid = new InvalidRecordReporter({
      logger: options.logger,
      clock: options.client.clock,
      ...(options.onInvalidRecord ? { onInvalid: options.onInvalidRecord } : {}),
    });
    const watch = (key: string) =>
      watchKey(options.client, key, {
        minIntervalMs: 20,
        backoff: { initialMs: 100, maxMs: 2_000 },
        logger: options.logger,
      });
    const pause = watch(pauseKey(options.lockKey));
    const switchover = watch(switchoverKey(options.lockKey));
    this.#watches = [pause, switchover];
    this.#done = [
      this.#follow(pause, (entry) => this.#setPaused(entry)),
      this.#follow(switchover, (entry) => this.#setSwitchover(entry)),
    ];
  }

  /** Maintenance mode is on. */
  paused(): boolean {
    return this.#paused;
  }

  /** The current switchover record, if any (an invalid one counts as none). */
  switchover(): SwitchoverEntry | undefined {
    return this.#switchover;
  }

  /** Writes a switchover record over the one at `modifyIndex`; false when someone wrote first. */
  async updateSwitchover(record: SwitchoverRecord, modifyIndex: number): Promise<boolean> {
    return await putKey(
      this.#options.client,
      switchoverKey(this.#options.lockKey),
      encodeSwitchoverRecord(record),
      { cas: modifyIndex },
    );
  }

  async close(): Promise<void> {
    for (const watch of this.#watches) watch.close();
    await Promise.all(this.#done);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** Applies each value; an error in one never ends the watch (leaving the loop would close it). */
  async #follow(
    watch: BlockingWatch<KvEntry | undefined>,
    apply: (entry: KvEntry | undefined) => void,
  ): Promise<void> {
    for await (const entry of watch) {
      try {
        apply(entry);
      } catch (error) {
        this.#options.logger.error("cannot apply a control key's value", { error });
      }
      this.#options.onChange();
    }
  }

  /**
   * The key's presence pauses, whatever it holds: an operator who writes it by hand means maintenance,
   * and a failover in the middle of one is what pausing exists to prevent. An unreadable note is
   * reported, and the pause shows in /state, the resec_paused metric and the check outputs.
   */
  #setPaused(entry: KvEntry | undefined): void {
    const paused = entry !== undefined;
    if (paused !== this.#paused) {
      this.#options.logger[paused ? "warn" : "info"](
        paused ? "maintenance mode on: no promotion or demotion" : "maintenance mode off",
      );
    }
    this.#paused = paused;
    const key = pauseKey(this.#options.lockKey);
    if (!entry) return this.#invalid.valid(key);
    try {
      parsePauseNote(entry.value);
      this.#invalid.valid(key);
    } catch (error) {
      if (!(error instanceof InvalidRecordError)) throw error;
      this.#invalid.invalid(
        key,
        entry.value,
        error.reason,
        "the cluster is paused anyway: the key's presence is what pauses; delete it to resume",
      );
    }
  }

  #setSwitchover(entry: KvEntry | undefined): void {
    const key = switchoverKey(this.#options.lockKey);
    this.#switchover = undefined;
    if (!entry) return this.#invalid.valid(key);
    try {
      this.#switchover = {
        record: parseSwitchoverRecord(entry.value),
        modifyIndex: entry.modifyIndex,
      };
      this.#invalid.valid(key);
    } catch (error) {
      if (!(error instanceof InvalidRecordError)) throw error;
      this.#invalid.invalid(
        key,
        entry.value,
        error.reason,
        "ignored: no switchover is in progress",
      );
    }
  }
}
