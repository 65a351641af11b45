/** Summaries of benchmark samples: median and spread, and ratios between systems. */

/** The distribution of one measurement over the rounds that produced a value. */
export interface Summary {
  /** Rounds that produced a value. */
  readonly n: number;
  /** Rounds that timed out or failed. */
  readonly failed: number;
  readonly median: number;
  readonly min: number;
  readonly max: number;
  readonly p10: number;
  readonly p90: number;
}

/**
 * Summarizes samples; `undefined` entries are rounds that produced no value (timeouts).
 *
 * @example
 * ```ts
 * summarize([30, 10, 20, undefined]); // { n: 3, failed: 1, median: 20, min: 10, max: 30, … }
 * ```
 */
export function summarize(samples: readonly (number | undefined)[]): Summary | undefined {
  const values = samples.filter((value): value is number => value !== undefined).sort((a, b) =>
    a - b
  );
  if (values.length === 0) return undefined;
  return {
    n: values.length,
    failed: samples.length - values.length,
    median: quantile(values, 0.5),
    min: values[0]!,
    max: values[values.length - 1]!,
    p10: quantile(values, 0.1),
    p90: quantile(values, 0.9),
  };
}

/** The q-quantile of sorted values, interpolating linearly between neighbours. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) throw new RangeError("Cannot take a quantile of no values");
  const position = (sorted.length - 1) * q;
  const below = Math.floor(position);
  const above = Math.ceil(position);
  const low = sorted[below]!;
  const high = sorted[above]!;
  return low + (high - low) * (position - below);
}

/** `peer / ours` as a multiplier ("Sentinel takes 3.2× as long"), undefined when either is missing. */
export function ratio(ours: Summary | undefined, peer: Summary | undefined): number | undefined {
  if (!ours || !peer || ours.median <= 0) return undefined;
  return peer.median / ours.median;
}
