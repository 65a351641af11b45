/**
 * Drives the Consul lock towards the reconciler's intent: start competing, keep holding, or let go.
 * Acquiring is a long wait, so it runs in the background and reports through `onChange`. An acquire
 * that fails (the lock retries transient errors itself, so a 403, a 400 or a malformed answer) is not
 * tried again before a backoff has passed.
 */
import { backoffDelay, type BackoffPolicy } from "../../backoff.ts";
import { type Clock, systemClock } from "../../clock.ts";
import type { LockHold } from "../../consul/lock.ts";
import type { Milliseconds } from "../../duration.ts";
import type { Logger } from "../../log.ts";
import type { LockIntent } from "../../reconciler/model.ts";
import type { LockView } from "../../reconciler/model.ts";

/** A held lock, as the Consul layer hands it out (the parts the driver uses). */
export type HeldLock =
  & Pick<
    LockHold,
    "session" | "lockIndex" | "lost" | "lastConfirmedAt" | "updateValue" | "release"
  >
  & Partial<Pick<LockHold, "confirmNow">>;

/** The Consul lock, as the driver needs it. */
export interface LockPort {
  /** Waits until the lock is ours; rejects with the signal's reason when aborted. */
  acquire(value: string, signal: AbortSignal): Promise<HeldLock>;
}

/**
 * Backoff after a failed acquire: the failure (an ACL denial, a bad request) will not mend itself within
 * a tick, and competing again at once would hammer Consul thousands of times a second.
 */
export const LOCK_ACQUIRE_BACKOFF: BackoffPolicy = { initialMs: 1_000, maxMs: 30_000 };

export interface LockDriverOptions {
  lock: LockPort;
  /** The lock value: who we are, and our epoch once we hold the lock. */
  value: (epoch?: number) => string;
  /** Redis run_id when we start competing, remembered with the lock it wins. */
  runId?: () => string | undefined;
  /** Called whenever the lock view changes. */
  onChange: () => void;
  /**
   * Called when acquiring fails with an error (other than cancellation), with how long the driver waits
   * before competing again.
   */
  onError: (error: unknown, retryInMs: Milliseconds) => void;
  logger: Logger;
  /** Times the backoff after a failed acquire (default: the system clock). */
  clock?: Clock;
  /** Backoff after failed acquires (default LOCK_ACQUIRE_BACKOFF). */
  backoff?: BackoffPolicy;
}

/** Owns the lock's lifecycle; one per agent. */
export class LockDriver {
  readonly #options: LockDriverOptions;
  #held: HeldLock | undefined;
  #heldRunId: string | undefined;
  #competing: AbortController | undefined;
  #releasing: Promise<void> | undefined;
  /** Failed acquires since the last one that won. */
  #failures = 0;
  /** No competing before this time (after a failed acquire). */
  #retryAt = 0;
  readonly #closing = new AbortController();

  constructor(options: LockDriverOptions) {
    this.#options = options;
  }

  get #clock(): Clock {
    return this.#options.clock ?? systemClock;
  }

  get #closed(): boolean {
    return this.#closing.signal.aborted;
  }

  /** What the reconciler sees. */
  view(): LockView {
    if (this.#held) {
      return {
        phase: "held",
        lockIndex: this.#held.lockIndex,
        session: this.#held.session,
        confirmedAt: this.#held.lastConfirmedAt(),
        sessionConfirmedAt: this.#held.lastConfirmedAt(),
        ...(this.#heldRunId ? { runId: this.#heldRunId } : {}),
      };
    }
    return this.#competing ? { phase: "competing" } : { phase: "idle" };
  }

  /**
   * Renews the held lock's session now (a guarded master, lib/reconciler/takeover.ts); resolves
   * without doing anything when no lock is held. Rejects when Consul does not accept it.
   */
  async confirm(timeoutMs: Milliseconds): Promise<void> {
    const held = this.#held;
    if (!held?.confirmNow) return;
    await held.confirmNow(timeoutMs);
  }

  /** The session of the lock we hold, if any. */
  get session(): string | undefined {
    return this.#held?.session;
  }

  /**
   * Moves towards the intent; returns once any release has finished. `releaseValue` is what a
   * release leaves in the key (a release note, lib/cluster/lock_value.ts).
   */
  async apply(intent: LockIntent, releaseValue?: string): Promise<void> {
    if (this.#closed) return;
    switch (intent) {
      case "compete":
        if (this.#held || this.#competing || this.#releasing) return;
        if (this.#clock.now() < this.#retryAt) return;
        this.#compete();
        return;
      case "hold":
        return;
      case "idle":
      case "release":
        this.#stopCompeting();
        await this.#release(intent === "release" ? releaseValue : undefined);
        return;
    }
  }

  /** Stops competing and releases a held lock (shutdown). */
  async close(): Promise<void> {
    this.#closing.abort();
    this.#stopCompeting();
    await this.#release();
  }

  #compete(): void {
    const controller = new AbortController();
    this.#competing = controller;
    this.#options.logger.info("competing for the lock");
    const runId = this.#options.runId?.();
    this.#options.lock.acquire(this.#options.value(), controller.signal).then(
      (held) => {
        if (this.#competing !== controller) {
          // Cancelled between winning and hearing about it: give it straight back.
          void held.release().catch(() => {});
          return;
        }
        this.#competing = undefined;
        this.#failures = 0;
        this.#held = held;
        this.#heldRunId = runId;
        // The epoch (LockIndex) is known only now: publish it so people can see which term leads.
        held.updateValue(this.#options.value(held.lockIndex)).catch((error) =>
          this.#options.logger.warn("cannot write the epoch into the lock value", { error })
        );
        held.lost.addEventListener("abort", () => {
          if (this.#held !== held) return;
          this.#held = undefined;
          this.#options.logger.warn("lock lost", {
            reason: String(held.lost.reason?.message ?? held.lost.reason),
          });
          this.#options.onChange();
        }, { once: true });
        this.#options.onChange();
      },
      (error) => {
        if (this.#competing !== controller) return;
        this.#competing = undefined;
        if (!controller.signal.aborted) this.#backOff(error);
        this.#options.onChange();
      },
    );
    this.#options.onChange();
  }

  /** Holds off competing after a failed acquire, and asks for an evaluation once the wait is over. */
  #backOff(error: unknown): void {
    this.#failures += 1;
    const delay = backoffDelay(this.#options.backoff ?? LOCK_ACQUIRE_BACKOFF, this.#failures);
    this.#retryAt = this.#clock.now() + delay;
    this.#options.onError(error, delay);
    this.#clock.sleep(delay, this.#closing.signal).then(() => this.#options.onChange(), () => {});
  }

  #stopCompeting(): void {
    if (!this.#competing) return;
    const controller = this.#competing;
    this.#competing = undefined;
    controller.abort(new DOMException("no longer competing", "AbortError"));
    this.#options.onChange();
  }

  #release(value?: string): Promise<void> {
    const held = this.#held;
    if (!held) return this.#releasing ?? Promise.resolve();
    this.#held = undefined;
    this.#options.onChange();
    this.#releasing = held.release(value).then(
      () => {},
      (error) =>
        this.#options.logger.warn("lock release failed; Consul frees it when the session expires", {
          error,
        }),
    ).finally(() => {
      this.#releasing = undefined;
      this.#options.onChange();
    });
    return this.#releasing;
  }
}
