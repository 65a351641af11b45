/**
 * Field-by-field differences between two observed states, for DEBUG lines such as
 * `modified: .redis.role = "master"` (the Go resec's format, which operators grep for).
 */

/** One changed leaf: its path from the root (`.redis.role`) and the new value as JSON. */
export interface FieldChange {
  readonly path: string;
  readonly value: string;
}

/**
 * Lists the leaves of `next` that differ from `previous` (added, changed, or removed as `undefined`).
 *
 * @example
 * ```ts
 * diffState({ redis: { role: "replica" } }, { redis: { role: "master" } });
 * // [{ path: ".redis.role", value: '"master"' }]
 * ```
 */
export function diffState(previous: unknown, next: unknown, path = ""): FieldChange[] {
  if (isPlainObject(previous) && isPlainObject(next)) {
    const keys = new Set([...Object.keys(previous), ...Object.keys(next)]);
    return [...keys].sort().flatMap((key) => diffState(previous[key], next[key], `${path}.${key}`));
  }
  if (isPlainObject(next)) {
    return Object.keys(next).sort().flatMap((key) =>
      diffState(undefined, next[key], `${path}.${key}`)
    );
  }
  const before = JSON.stringify(previous);
  const after = JSON.stringify(next);
  return before === after ? [] : [{ path: path || ".", value: after ?? "undefined" }];
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
