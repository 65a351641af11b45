/**
 * Exponential backoff with jitter, as a pure function of the attempt number.
 */
import type { Milliseconds } from "./duration.ts";

/** Each delay doubles the one before. */
const DEFAULT_FACTOR = 2;

/** ±20 % of each delay is random, enough to spread agents that failed at the same instant. */
const DEFAULT_JITTER = 0.2;

export interface BackoffPolicy {
  /** Delay after the first failure. */
  initialMs: Milliseconds;
  /** Upper bound of any delay. */
  maxMs: Milliseconds;
  /** Growth per attempt (default 2). */
  factor?: number;
  /** Fraction of the delay that is randomised, 0–1 (default 0.2). */
  jitter?: number;
}

/**
 * Returns the delay before retry number `attempt` (1 = first retry). `random` is injectable so tests can
 * pin the jitter.
 *
 * @example
 * ```ts
 * backoffDelay({ initialMs: 100, maxMs: 5_000 }, 3, () => 0.5); // 400
 * ```
 */
export function backoffDelay(
  policy: BackoffPolicy,
  attempt: number,
  random: () => number = Math.random,
): Milliseconds {
  const factor = policy.factor ?? DEFAULT_FACTOR;
  const jitter = policy.jitter ?? DEFAULT_JITTER;
  const base = Math.min(policy.maxMs, policy.initialMs * factor ** Math.max(0, attempt - 1));
  // Jitter spreads retries of many agents so they do not hit Consul in lockstep.
  const spread = base * jitter * (random() * 2 - 1);
  return Math.max(0, Math.min(policy.maxMs, Math.round(base + spread)));
}
