/**
 * scripts/compile.sh: where `deno compile` cannot get its runtime base (denort), it fails at once with a
 * message that explains DENORT_BIN, and it refuses bases that would not make a resec executable. With a
 * real denort in DENORT_BIN (CI machines that have one), it builds dist/resec and the binary runs.
 */
import assert from "node:assert/strict";
import { makeServerDir, runCommand } from "../support/mod.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const COMPILE = `${ROOT}scripts/compile.sh`;
/** compile.sh's exit code for "no usable denort". */
const EXIT_NO_DENORT = 3;

interface Outcome {
  code: number;
  output: string;
  elapsedMs: number;
}

async function compile(args: string[], env: Record<string, string> = {}): Promise<Outcome> {
  const started = Date.now();
  const result = await runCommand(COMPILE, {
    args,
    env: { NO_COLOR: "1", ...env },
    timeoutMs: 120_000,
  });
  return {
    code: result.code,
    output: result.stdout + result.stderr,
    elapsedMs: Date.now() - started,
  };
}

/** A scratch directory for one test, removed when the test ends. */
function scratch(label: string): { path: string } & Disposable {
  const path = makeServerDir(label);
  return { path, [Symbol.dispose]: () => Deno.removeSync(path, { recursive: true }) };
}

/** The explanation an operator needs when no denort is available. */
function assertExplainsDenort(outcome: Outcome): void {
  assert.equal(outcome.code, EXIT_NO_DENORT, outcome.output);
  assert.match(outcome.output, /DENORT_BIN=\/path\/to\/denort scripts\/compile\.sh/);
  assert.match(
    outcome.output,
    /https:\/\/dl\.deno\.land\/release\/v[\d.]+\/denort-x86_64-unknown-linux-gnu\.zip/,
  );
  assert.match(outcome.output, /scripts\/bundle\.sh builds dist\/resec\.js/);
}

Deno.test("compile.sh --cached-only with an empty Deno cache and no DENORT_BIN fails at once, explaining DENORT_BIN", async () => {
  using denoDir = scratch("deno-dir");
  using out = scratch("compile-out");
  const outcome = await compile(
    [
      "--cached-only",
      "--no-check",
      "--target",
      "x86_64-unknown-linux-gnu",
      "--output",
      `${out.path}/resec`,
    ],
    { DENO_DIR: denoDir.path, DENORT_BIN: "" },
  );
  assertExplainsDenort(outcome);
  assert.match(outcome.output, /nothing will be downloaded/);
  assert.ok(outcome.elapsedMs < 20_000, `took ${outcome.elapsedMs} ms`);
  assert.deepEqual([...Deno.readDirSync(out.path)], [], "no output on failure");
});

Deno.test("compile.sh fails quickly, explaining DENORT_BIN, when denort is not cached and dl.deno.land cannot be reached", async () => {
  using denoDir = scratch("deno-dir");
  using out = scratch("compile-out");
  // Every machine gets the same unreachable dl.deno.land: a proxy on a closed port. npm packages still
  // resolve from the registry, which the proxy exempts.
  const registry = new URL(Deno.env.get("NPM_CONFIG_REGISTRY") ?? "https://registry.npmjs.org/");
  const closedProxy = "http://127.0.0.1:9";
  const outcome = await compile(
    ["--no-check", "--target", "x86_64-unknown-linux-gnu", "--output", `${out.path}/resec`],
    {
      DENO_DIR: denoDir.path,
      DENORT_BIN: "",
      HTTPS_PROXY: closedProxy,
      https_proxy: closedProxy,
      NO_PROXY: registry.hostname,
      no_proxy: registry.hostname,
    },
  );
  assertExplainsDenort(outcome);
  assert.match(outcome.output, /could not get its runtime base binary/);
  assert.ok(outcome.elapsedMs < 30_000, `took ${outcome.elapsedMs} ms`);
  assert.deepEqual([...Deno.readDirSync(out.path)], [], "no output on failure");
});

Deno.test("compile.sh refuses a DENORT_BIN that is the full deno CLI: the output would not be resec", async () => {
  using out = scratch("compile-out");
  const outcome = await compile(
    ["--no-check", "--output", `${out.path}/resec`],
    { DENORT_BIN: Deno.execPath() },
  );
  assert.equal(outcome.code, EXIT_NO_DENORT, outcome.output);
  assert.match(outcome.output, /the output is the deno CLI, not resec/);
  assert.deepEqual([...Deno.readDirSync(out.path)], [], "no output on failure");
});

Deno.test("compile.sh refuses a DENORT_BIN that is missing or built for another machine", async () => {
  using out = scratch("compile-out");
  const missing = await compile(["--output", `${out.path}/resec`], {
    DENORT_BIN: `${out.path}/no-such-denort`,
  });
  assert.equal(missing.code, EXIT_NO_DENORT, missing.output);
  assert.match(missing.output, /is not an executable file/);

  const otherMachine = await compile(
    ["--target", "aarch64-unknown-linux-gnu", "--output", `${out.path}/resec`],
    { DENORT_BIN: Deno.execPath() },
  );
  assert.equal(otherMachine.code, EXIT_NO_DENORT, otherMachine.output);
  assert.match(otherMachine.output, /not a denort for aarch64-unknown-linux-gnu/);
});

Deno.test("compile.sh rejects a target it does not build for", async () => {
  const outcome = await compile(["--target", "x86_64-pc-windows-msvc"]);
  assert.equal(outcome.code, 2, outcome.output);
  assert.match(outcome.output, /unsupported target "x86_64-pc-windows-msvc"/);
});

Deno.test({
  name:
    "with a real denort in DENORT_BIN, compile.sh builds a resec binary that prints its version",
  // Only machines holding a denort can run this; ours cannot download one (see docs/install.md).
  ignore: !Deno.env.get("DENORT_BIN"),
  async fn() {
    using out = scratch("compile-out");
    const outcome = await compile(["--output", `${out.path}/resec`]);
    assert.equal(outcome.code, 0, outcome.output);
    const version = await new Deno.Command(`${out.path}/resec`, {
      args: ["--version"],
      clearEnv: true,
      stdout: "piped",
    }).output();
    assert.match(new TextDecoder().decode(version.stdout), /^resec \d+\.\d+\.\d+ \(deno /);
  },
});
