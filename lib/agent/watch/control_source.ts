/**
 * Follows the operator controls in Consul KV (maintenance mode and switchover requests) and writes the
 * switchover's progress back, with check-and-set so two writers never overwrite each other.
 */
import type { ConsulClient } from "../../consul/client.ts";
import { type KvEntry, putKey } from "../../consul/kv.ts";
import {
  encodeSwitchoverRecord,
  parsePauseNote,
  parseSwitchoverRecord,
  pauseKey,
  switchoverKey,
  type SwitchoverRecord,
} from "../../cluster/controls.ts";
import type { Logger } from "../../log.ts";
import { InvalidRecordError } from "../../record.ts";
import {
  type GroupKeys,
  type GroupKeysWatch,
  OWN_KEYS_WAIT_MS,
  sameEntry,
  sharedOrOwnKeys,
} from "./group_keys.ts";
import { InvalidRecordReporter } from "./invalid_records.ts";

export interface ControlSourceOptions {
  client: ConsulClient;
  lockKey: string;
  /** The shared watch on the lock key's prefix; without it the source watches on its own. */
  keys?: GroupKeysWatch;
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

/** Follows `<lock key>.paused` and `<lock key>.switchover`. */
export class ControlSource implements AsyncDisposable {
  readonly #options: ControlSourceOptions;
  /** The watch this source made itself (no shared one was given): closed with it. */
  readonly #ownKeys: GroupKeysWatch | undefined;
  readonly #unsubscribe: () => void;
  readonly #invalid: InvalidRecordReporter;
  /** The keys as last applied; undefined before the first answer. */
  #applied: { paused: KvEntry | undefined; switchover: KvEntry | undefined } | undefined;
  #paused = false;
  #switchover: SwitchoverEntry | undefined;

  constructor(options: ControlSourceOptions) {
    this.#options = options;
    this.#invalid = new InvalidRecordReporter({
      logger: options.logger,
      clock: options.client.clock,
      ...(options.onInvalidRecord ? { onInvalid: options.onInvalidRecord } : {}),
    });
    const { keys, own } = sharedOrOwnKeys({ ...options, waitMs: OWN_KEYS_WAIT_MS });
    this.#ownKeys = own;
    this.#unsubscribe = keys.subscribe((answer) => this.#apply(answer));
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
    this.#unsubscribe();
    await this.#ownKeys?.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** Applies the control keys of an answer when either changed; an error in one never stops the other. */
  #apply(keys: GroupKeys): void {
    const applied = this.#applied;
    const pausedChanged = !applied || !sameEntry(applied.paused, keys.paused);
    const switchoverChanged = !applied || !sameEntry(applied.switchover, keys.switchover);
    if (!pausedChanged && !switchoverChanged) return;
    this.#applied = { paused: keys.paused, switchover: keys.switchover };
    const steps: [boolean, () => void][] = [
      [pausedChanged, () => this.#setPaused(keys.paused)],
      [switchoverChanged, () => this.#setSwitchover(keys.switchover)],
    ];
    for (const [changed, step] of steps) {
      if (!changed) continue;
      try {
        step();
      } catch (error) {
        this.#options.logger.error("cannot apply a control key's value", { error });
      }
    }
    this.#options.onChange();
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
