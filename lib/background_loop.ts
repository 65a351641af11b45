/**
 * A loop one object runs beside everything else (a watch, the failsafe master): started once,
 * stopped by aborting the signal it runs with and waiting until it has returned.
 */

/**
 * Runs `run` once started; `stop()` aborts its signal and waits for it.
 *
 * @example
 * ```ts
 * const loop = new BackgroundLoop(async (signal) => { while (!signal.aborted) await tick(signal); });
 * loop.start();
 * await loop.stop();
 * ```
 */
export class BackgroundLoop {
  readonly #stop = new AbortController();
  readonly #run: (signal: AbortSignal) => Promise<void>;
  #running: Promise<void> | undefined;

  constructor(run: (signal: AbortSignal) => Promise<void>) {
    this.#run = run;
  }

  /** Aborted once `stop()` was called. */
  get signal(): AbortSignal {
    return this.#stop.signal;
  }

  /** Starts the loop; a second call does nothing. */
  start(): void {
    this.#running ??= this.#run(this.#stop.signal);
  }

  /** Aborts the loop's signal and waits until it returned (at once when never started). */
  async stop(): Promise<void> {
    this.#stop.abort();
    await this.#running;
  }
}
