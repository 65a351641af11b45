/**
 * Follows the operator controls in Consul KV (maintenance mode and switchover requests) and writes the
 * switchover's progress back, with check-and-set so two writers never overwrite each other.
 */
import type { ConsulClient } from "../consul/client.ts";
import { type KvEntry, putKey, watchKey } from "../consul/kv.ts";
import type { BlockingWatch } from "../consul/watch.ts";
import {
  parseSwitchoverRecord,
  pauseKey,
  switchoverKey,
  type SwitchoverRecord,
} from "../control.ts";
import type { Logger } from "../log.ts";

export interface ControlSourceOptions {
  client: ConsulClient;
  lockKey: string;
  logger: Logger;
  onChange: () => void;
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
  #paused = false;
  #switchover: SwitchoverEntry | undefined;

  constructor(options: ControlSourceOptions) {
    this.#options = options;
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
      this.#follow(pause, (entry) => this.#setPaused(entry !== undefined)),
      this.#follow(switchover, (entry) => this.#setSwitchover(entry)),
    ];
  }

  /** Maintenance mode is on. */
  paused(): boolean {
    return this.#paused;
  }

  /** The current switchover record, if any. */
  switchover(): SwitchoverEntry | undefined {
    return this.#switchover;
  }

  /** Writes a switchover record over the one at `modifyIndex`; false when someone wrote first. */
  async updateSwitchover(record: SwitchoverRecord, modifyIndex: number): Promise<boolean> {
    return await putKey(
      this.#options.client,
      switchoverKey(this.#options.lockKey),
      JSON.stringify(record),
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

  async #follow(
    watch: BlockingWatch<KvEntry | undefined>,
    apply: (entry: KvEntry | undefined) => void,
  ): Promise<void> {
    for await (const entry of watch) {
      apply(entry);
      this.#options.onChange();
    }
  }

  #setPaused(paused: boolean): void {
    if (paused !== this.#paused) {
      this.#options.logger[paused ? "warn" : "info"](
        paused ? "maintenance mode on: no promotion or demotion" : "maintenance mode off",
      );
    }
    this.#paused = paused;
  }

  #setSwitchover(entry: KvEntry | undefined): void {
    if (!entry) {
      this.#switchover = undefined;
      return;
    }
    try {
      this.#switchover = {
        record: parseSwitchoverRecord(entry.value),
        modifyIndex: entry.modifyIndex,
      };
    } catch (error) {
      this.#options.logger.warn("ignoring a switchover record that is not ours", { error });
      this.#switchover = undefined;
    }
  }
}
