/**
 * How the fuzz tests run: fast-check properties from a fixed seed, so CI explores the same inputs every
 * time and a failure is reproducible, with the seed and the counterexample's path printed on failure.
 *
 *   ./scripts/test.sh tests/fuzz                                              # CI: a few seconds
 *   RESEC_FUZZ_RUNS=50000 RESEC_FUZZ_SEED=random ./scripts/test.sh tests/fuzz   # a long run, new inputs
 *   RESEC_FUZZ_SEED=… RESEC_FUZZ_PATH=… ./scripts/test.sh tests/fuzz/x_test.ts --filter "…"  # replay
 */
import fc from "fast-check";

/** CI's seed: any fixed number; change it to explore other inputs for good. */
export const DEFAULT_SEED = 14_2026;

/** Runs per property in CI: all fuzz tests together take a few seconds. */
export const DEFAULT_RUNS = 1_000;

/** The seed of this run: RESEC_FUZZ_SEED (a number, or "random"), else DEFAULT_SEED. */
export function fuzzSeed(): number {
  const text = Deno.env.get("RESEC_FUZZ_SEED");
  if (text === undefined || text === "") return DEFAULT_SEED;
  if (text === "random") return Math.floor(Math.random() * 2 ** 31);
  const seed = Number(text);
  if (!Number.isSafeInteger(seed)) throw new Error(`RESEC_FUZZ_SEED "${text}" is not an integer`);
  return seed;
}

/** Runs per property: RESEC_FUZZ_RUNS, else `defaultRuns` (a property's own, lower for slow ones). */
export function fuzzRuns(defaultRuns = DEFAULT_RUNS): number {
  const text = Deno.env.get("RESEC_FUZZ_RUNS");
  if (text === undefined || text === "") return defaultRuns;
  const runs = Number(text);
  if (!Number.isSafeInteger(runs) || runs < 1) {
    throw new Error(`RESEC_FUZZ_RUNS "${text}" is not a positive integer`);
  }
  return runs;
}

/**
 * Checks a property (sync or async) and, when it fails, throws with fast-check's report (the shrunk
 * counterexample) and the command line that replays exactly that failure.
 *
 * @example
 * ```ts
 * Deno.test("parseInfo never throws", async (t) => {
 *   await checkProperty(t, fc.property(fc.string(), (text) => void parseInfo(text)));
 * });
 * ```
 */
export async function checkProperty<Ts>(
  t: Deno.TestContext,
  property: fc.IProperty<Ts> | fc.IAsyncProperty<Ts>,
  options: { runs?: number } = {},
): Promise<void> {
  const seed = fuzzSeed();
  const path = Deno.env.get("RESEC_FUZZ_PATH");
  const details = await fc.check(property, {
    seed,
    numRuns: fuzzRuns(options.runs),
    ...(path ? { path } : {}),
  });
  if (!details.failed) return;
  const file = new URL(t.origin).pathname.replace(/^.*\/(tests\/fuzz\/)/, "$1");
  throw new Error(
    `${fc.defaultReportMessage(details)}\n\nReplay: RESEC_FUZZ_SEED=${details.seed} ` +
      `RESEC_FUZZ_PATH=${details.counterexamplePath} ./scripts/test.sh ${file} ` +
      `--filter ${JSON.stringify(t.name)}`,
  );
}

/** Every path (keys and indexes) to a node of a JSON value, the root's included. */
function jsonPaths(value: unknown, prefix: (string | number)[] = []): (string | number)[][] {
  const paths = [prefix];
  if (Array.isArray(value)) {
    value.forEach((item, index) => paths.push(...jsonPaths(item, [...prefix, index])));
  } else if (typeof value === "object" && value !== null) {
    for (const [key, item] of Object.entries(value)) {
      paths.push(...jsonPaths(item, [...prefix, key]));
    }
  }
  return paths;
}

/** `value` with the node at `path` replaced (or removed, for `undefined`); unchanged if unreachable. */
function replaceAt(value: unknown, path: (string | number)[], replacement: unknown): unknown {
  if (path.length === 0) return replacement;
  const copy = structuredClone(value) as Record<string | number, unknown>;
  let node: unknown = copy;
  for (const key of path.slice(0, -1)) {
    if (typeof node !== "object" || node === null) return copy;
    node = (node as Record<string | number, unknown>)[key];
  }
  if (typeof node !== "object" || node === null) return copy;
  const last = path[path.length - 1]!;
  if (replacement === undefined && !Array.isArray(node)) {
    delete (node as Record<string | number, unknown>)[last];
  } else {
    (node as Record<string | number, unknown>)[last] = replacement;
  }
  return copy;
}

/** Values that sit near the edges of what decoders check: wrong types, empties, huge and odd numbers. */
export const edgyJson: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(
    null,
    "",
    " ",
    0,
    -1,
    1.5,
    2 ** 53,
    1e308,
    -0,
    true,
    false,
    [],
    {},
    "0",
    "-1",
    "NaN",
    "Infinity",
    "__proto__",
    "constructor",
    "toString",
    { toString: "x" },
    { valueOf: 1 },
    "127.0.0.1:6379",
    "[::1]:0",
    "2026-01-01T00:00:00Z",
  ),
  fc.jsonValue({ maxDepth: 3 }),
  fc.string({ unit: "binary", maxLength: 40 }),
);

/**
 * Mutants of a valid JSON value: up to three of its nodes (the root included) replaced by arbitrary
 * or edgy values, or removed; so decoders are driven past their first check.
 */
export function jsonMutants(valid: unknown): fc.Arbitrary<unknown> {
  const paths = jsonPaths(valid);
  const mutation = fc.tuple(
    fc.constantFrom(...paths),
    fc.oneof(edgyJson, fc.constant(undefined)),
  );
  return fc.array(mutation, { maxLength: 3 }).map((mutations) =>
    mutations.reduce<unknown>(
      (value, [path, replacement]) => replaceAt(value, path, replacement),
      valid,
    )
  );
}
