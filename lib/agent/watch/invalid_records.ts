/**
 * Reports records in Consul that failed validation (lib/record.ts). A bad value is read again on every
 * watch answer, and its readers go on without it, so each one is reported when it first appears and
 * then at most once a minute while it stays.
 */
import type { Clock } from "../../clock.ts";
import type { Milliseconds } from "../../duration.ts";
import type { Logger } from "../../log.ts";

/** A bad value that stays is reported again this often, so it is not forgotten in the logs. */
export const INVALID_RECORD_REMINDER_MS: Milliseconds = 60_000;

export interface InvalidRecordReporterOptions {
  logger: Logger;
  clock: Clock;
  /** Called once per distinct bad value of a key (metrics). */
  onInvalid?: (key: string) => void;
}

/** Remembers the last bad value of each key; owned by the watch that reads the keys. */
export class InvalidRecordReporter {
  readonly #options: InvalidRecordReporterOptions;
  readonly #reported = new Map<string, { value: string; at: number }>();

  constructor(options: InvalidRecordReporterOptions) {
    this.#options = options;
  }

  /**
   * Reports that `key` holds `value`, which is invalid for `reason`, and what the agent does instead
   * (`effect`). Warns when the value is new for the key or the last warning is a minute old.
   */
  invalid(key: string, value: string, reason: string, effect: string): void {
    const now = this.#options.clock.now();
    const last = this.#reported.get(key);
    const repeated = last !== undefined && last.value === value;
    if (repeated && now - last.at < INVALID_RECORD_REMINDER_MS) return;
    this.#reported.set(key, { value, at: now });
    if (!repeated) this.#options.onInvalid?.(key);
    this.#options.logger.warn("invalid record in Consul", { key, reason, effect });
  }

  /** `key` holds a valid record again, or none: its next bad value is news. */
  valid(key: string): void {
    if (this.#reported.delete(key)) {
      this.#options.logger.info("invalid record in Consul was replaced or removed", { key });
    }
  }

  /** Forgets the keys not in `keys` (they were deleted). */
  retain(keys: ReadonlySet<string>): void {
    for (const key of this.#reported.keys()) {
      if (!keys.has(key)) this.#reported.delete(key);
    }
  }
}
