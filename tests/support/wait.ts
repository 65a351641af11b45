/** Polling helpers for tests that wait on real processes. */

export interface WaitOptions {
  /** Give up after this many milliseconds (default 15 000). */
  timeoutMs?: number;
  /** Pause between attempts (default 50 ms). */
  intervalMs?: number;
  /** What we were waiting for, used in the timeout error. */
  message?: string;
}

/**
 * Calls `probe` until it returns a value other than `undefined`/`false`, and returns that value.
 * Exceptions thrown by the probe count as "not yet"; the last one is attached to the timeout error.
 */
export async function waitFor<T>(
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  options: WaitOptions = {},
): Promise<T> {
  const timeoutMs = options.timeoutMs ?? 15_000;
  const intervalMs = options.intervalMs ?? 50;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (true) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      if (error instanceof GiveUpError) throw error;
      lastError = error;
    }
    if (Date.now() >= deadline) {
      throw new Error(
        `Timed out after ${timeoutMs} ms waiting for ${options.message ?? "a condition"}`,
        { cause: lastError },
      );
    }
    await delay(intervalMs);
  }
}

/** Resolves after `ms` milliseconds. */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Thrown by a probe to stop waiting at once (the awaited thing can no longer happen). */
export class GiveUpError extends Error {
  override name = "GiveUpError";
}
