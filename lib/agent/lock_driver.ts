/**
 * Drives the Consul lock towards the reconciler's intent: start competing, keep holding, or let go.
 * Acquiring is a long wait, so it runs in the background and reports through `onChange`.
 */
import type { LockHold } from "../consul/lock.ts";
import type { Logger } from "../log.ts";
import type { LockIntent } from "../reconciler/model.ts";
import type { LockView } from "../reconciler/model.ts";

/** A held lock, as the Consul layer hands it out (the parts the driver uses). */
export type HeldLock = Pick<
  LockHold,
  "session" | "lockIndex" | "lost" | "lastConfirmedAt" | "updateValue" | "release"
>;

/** The Consul lock, as the driver needs it. */
export interface LockPort {
  /** Waits until the lock is ours; rejects with the signal's reason when aborted. */
  acquire(value: string, signal: AbortSignal): Promise<HeldLock>;
}

export interface LockDriverOptions {
  lock: LockPort;
  /** The lock value: who we are, and our epoch once we hold the lock. */
  value: (epoch?: number) => string;
  /** Redis run_id when we start competing, remembered with the lock it wins. */
  runId?: () => string | undefined;
  /** Called whenever the lock view changes. */
  onChange: () => void;
  /** Called when acquiring fails with an error (other than cancellation). */
  onError: (error: unknown) => void;
  logger: Logger;
}

/** Owns the lock's lifecycle; one per agent. */
export class LockDriver {
  readonly #options: LockDriverOptions;
  #held: HeldLock | undefined;
  #heldRunId: string | undefined;
  #competing: AbortController | undefined;
  #releasing: Promise<void> | undefined;
  #closed = false;

  constructor(options: LockDriverOptions) {
    this.#options = options;
  }

  /** What the reconciler sees. */
  view(): LockView {
    if (this.#held) {
      return {
        phase: "held",
        lockIndex: this.#held.lockIndex,
        session: this.#held.session,
        confirmedAt: this.#held.lastConfirmedAt(),
        ...(this.#heldRunId ? { runId: this.#heldRunId } : {}),
      };
    }
    return this.#competing ? { phase: "competing" } : { phase: "idle" };
  }

  /** The session of the lock we hold, if any. */
  get session(): string | undefined {
    return this.#held?.session;
  }

  /** Moves towards the intent; returns once any release has finished. */
  async apply(intent: LockIntent): Promise<void> {
    if (this.#closed) return;
    switch (intent) {
      case "compete":
        if (!this.#held && !this.#competing && !this.#releasing) this.#compete();
        return;
      case "hold":
        return;
      case "idle":
      case "release":
        this.#stopCompeting();
        await this.#release();
        return;
    }
  }

  /** Stops competing and releases a held lock (shutdown). */
  async close(): Promise<void> {
    this.#closed = true;
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
        if (!controller.signal.aborted) this.#options.onError(error);
        this.#options.onChange();
      },
    );
    this.#options.onChange();
  }

  #stopCompeting(): void {
    if (!this.#competing) return;
    const controller = this.#competing;
    this.#competing = undefined;
    controller.abort(new DOMException("no longer competing", "AbortError"));
    this.#options.onChange();
  }

  #release(): Promise<void> {
    const held = this.#held;
    if (!held) return this.#releasing ?? Promise.resolve();
    this.#held = undefined;
    this.#options.onChange();
    this.#releasing = held.release().then(
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
