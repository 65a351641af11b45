/**
 * Prometheus metrics: a small registry and resec's own metrics.
 *
 * @example
 * ```ts
 * import { ResecMetrics } from "./lib/metrics/mod.ts";
 * const metrics = new ResecMetrics();
 * metrics.electionWon();
 * ```
 */
export * from "./registry.ts";
export * from "./resec.ts";
