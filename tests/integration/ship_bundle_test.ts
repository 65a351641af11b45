/**
 * The single-file bundle dist/resec.js (scripts/bundle.sh): it carries every npm package, so it runs with
 * `deno run` and the agent's permission flags from a directory with no node_modules and an empty Deno
 * cache, with no network, and behaves like the source.
 */
import assert from "node:assert/strict";
import { EXIT_OK, EXIT_USAGE } from "../../lib/cli.ts";
import { agentPermissionFlags } from "../../lib/permissions.ts";
import { type CommandResult, makeServerDir, runCommand } from "../support/mod.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

/** A scratch directory for one test, removed when the test ends. */
function scratch(label: string): { path: string } & Disposable {
  const path = makeServerDir(label);
  return { path, [Symbol.dispose]: () => Deno.removeSync(path, { recursive: true }) };
}

/** Builds the bundle into `dir` with scripts/bundle.sh and returns its path. */
async function buildBundle(dir: string): Promise<string> {
  const output = `${dir}/resec.js`;
  const result = await runCommand(`${ROOT}scripts/bundle.sh`, {
    // Type-checking is CI's `deno check`; here only the bundle matters.
    args: ["--no-check", "--output", output],
    timeoutMs: 120_000,
  });
  assert.equal(result.code, 0, `bundle.sh failed:\n${result.stdout}${result.stderr}`);
  return output;
}

/**
 * Runs `deno run <agent flags> <entry> <args>` with nothing but `env`: from `cwd`, with `denoDir` as
 * the whole Deno cache, and every network path closed (a proxy on a closed port, an unreachable npm
 * registry), so anything the bundle failed to carry cannot be fetched.
 */
async function runAgentEntry(options: {
  entry: string;
  args: string[];
  env?: Record<string, string>;
  cwd: string;
  denoDir?: string;
}): Promise<CommandResult> {
  const closed = "http://127.0.0.1:9";
  const isolation: Record<string, string> = options.denoDir === undefined ? {} : {
    DENO_DIR: options.denoDir,
    HTTP_PROXY: closed,
    HTTPS_PROXY: closed,
    NPM_CONFIG_REGISTRY: `${closed}/`,
  };
  return await runCommand(Deno.execPath(), {
    args: ["run", ...agentPermissionFlags(), options.entry, ...options.args],
    cwd: options.cwd,
    clearEnv: true,
    env: { DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1", ...isolation, ...options.env },
    timeoutMs: 60_000,
  });
}

Deno.test("the bundle runs --version and --check from an empty directory with an empty Deno cache and no network", async () => {
  using build = scratch("bundle");
  using empty = scratch("bundle-cwd");
  using denoDir = scratch("bundle-deno-dir");
  const bundle = await buildBundle(build.path);

  const version = await runAgentEntry({
    entry: bundle,
    args: ["--version"],
    cwd: empty.path,
    denoDir: denoDir.path,
  });
  assert.equal(version.code, EXIT_OK, version.stderr);
  assert.match(version.stdout, /^resec \d+\.\d+\.\d+ \(deno \d+\.\d+\.\d+, v8 [^,]+, typescript /);

  const check = await runAgentEntry({
    entry: bundle,
    args: ["--check"],
    env: {
      REDIS_ADDR: "127.0.0.1:6390",
      CONSUL_HTTP_ADDR: "127.0.0.1:8590",
      CONSUL_SERVICE_NAME: "cache",
      MASTER_TAGS: "master",
      SLAVE_TAGS: "replica",
      REDIS_PASSWORD: "s3cret",
    },
    cwd: empty.path,
    denoDir: denoDir.path,
  });
  assert.equal(check.code, EXIT_OK, check.stderr);
  assert.match(check.stdout, /^configuration is valid$/m);
  assert.match(check.stdout, /redis\s+127\.0\.0\.1:6390/);
  assert.match(check.stdout, /REDIS_PASSWORD=\*{8}/);
  assert.doesNotMatch(check.stdout + check.stderr, /s3cret/);

  // Nothing was installed next to it: no node_modules, no npm packages in the cache.
  assert.deepEqual([...Deno.readDirSync(empty.path)], []);
  const npmCache = [...Deno.readDirSync(denoDir.path)].find((entry) => entry.name === "npm");
  if (npmCache) assert.deepEqual([...Deno.readDirSync(`${denoDir.path}/npm`)], []);
});

Deno.test("the bundle refuses a bad environment with the same exit code 2 and message as the source", async () => {
  using build = scratch("bundle");
  using empty = scratch("bundle-cwd");
  using denoDir = scratch("bundle-deno-dir");
  const bundle = await buildBundle(build.path);
  const env = {
    REDIS_ADDR: "redis-without-port",
    HEALTHCHECK_INTERVAL: "5x",
    CONSUL_SERVICE_NAME: "cache",
    LOG_LEVEL: "loud",
  };

  const fromSource = await runAgentEntry({ entry: `${ROOT}main.ts`, args: [], env, cwd: ROOT });
  const fromBundle = await runAgentEntry({
    entry: bundle,
    args: [],
    env,
    cwd: empty.path,
    denoDir: denoDir.path,
  });

  assert.equal(fromSource.code, EXIT_USAGE, fromSource.stderr);
  assert.equal(fromBundle.code, EXIT_USAGE, fromBundle.stderr);
  assert.match(fromSource.stderr, /invalid configuration, nothing was started \(4 problems\)/);
  assert.match(fromSource.stderr, /REDIS_ADDR "redis-without-port"/);
  assert.equal(fromBundle.stderr, fromSource.stderr);
  assert.equal(fromBundle.stdout, fromSource.stdout);
});
