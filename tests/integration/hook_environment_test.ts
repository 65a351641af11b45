/**
 * ON_ROLE_CHANGE runs in a real child process under the agent's own permission flags: the hook sees
 * the documented environment and nothing else (never a password or token), and an agent that may not
 * start programs refuses a hook at start instead of failing at the first role change.
 */
import assert from "node:assert/strict";
import { HOOK_NOT_ALLOWED } from "../../lib/cli.ts";
import { agentPermissionFlags } from "../../lib/permissions.ts";
import { AgentProcess, makeServerDir, runCommand } from "../support/mod.ts";

const HOOKS_MODULE = new URL("../../lib/hooks.ts", import.meta.url).href;
const LOG_MODULE = new URL("../../lib/log.ts", import.meta.url).href;
/** The script lives in a scratch directory: the project's config resolves its npm imports. */
const CONFIG = new URL("../../deno.json", import.meta.url).pathname;

const SECRETS = {
  REDIS_PASSWORD: "redis-secret-4711",
  CONSUL_HTTP_TOKEN: "consul-token-0815",
  CONSUL_HTTP_AUTH: "ops:basic-secret-42",
  AWS_SECRET_ACCESS_KEY: "unrelated-secret",
};

/**
 * Runs one hook the way the agent does (RoleChangeHook, in a `deno run` with the agent's flags and
 * exactly `env`), the hook writing its environment to a file; returns that environment.
 */
async function hookEnvironmentIn(env: Record<string, string>): Promise<Record<string, string>> {
  const dir = makeServerDir("hook-env");
  try {
    const recorder = `${dir}/record.sh`;
    Deno.writeTextFileSync(recorder, `#!/bin/sh\nenv > ${dir}/env\n`, { mode: 0o755 });
    const script = `${dir}/run-hook.ts`;
    Deno.writeTextFileSync(
      script,
      `import { RoleChangeHook } from "${HOOKS_MODULE}";
import { silentLogger } from "${LOG_MODULE}";
const hook = new RoleChangeHook({ command: "${recorder}", timeoutMs: 10_000, logger: silentLogger });
await hook.run({ role: "master", previous: "slave", master: "10.0.0.1:6379" });
`,
    );
    const result = await runCommand(Deno.execPath(), {
      args: [
        "run",
        "--quiet",
        `--config=${CONFIG}`,
        ...agentPermissionFlags({ hooks: true }),
        script,
      ],
      env: { DENO_NO_UPDATE_CHECK: "1", NO_COLOR: "1", ...env },
      clearEnv: true,
      timeoutMs: 60_000,
    });
    assert.equal(result.code, 0, result.stdout + result.stderr);
    const lines = Deno.readTextFileSync(`${dir}/env`).trim().split("\n");
    return Object.fromEntries(lines.map((line) => {
      const equals = line.indexOf("=");
      return [line.slice(0, equals), line.slice(equals + 1)];
    }));
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

Deno.test("a hook sees PATH, HOME, the locale and its own variables, never a password or token", async () => {
  const seen = await hookEnvironmentIn({
    ...SECRETS,
    PATH: "/usr/bin:/bin",
    HOME: "/var/lib/resec",
    LANG: "C.UTF-8",
    TZ: "UTC",
    REDIS_ADDR: "127.0.0.1:6379",
  });
  // The shell sets PWD (and may set OLDPWD, SHLVL, _) itself; everything else comes from the agent.
  const fromAgent = Object.fromEntries(
    Object.entries(seen).filter(([name]) => !["PWD", "OLDPWD", "SHLVL", "_"].includes(name)),
  );
  assert.deepEqual(fromAgent, {
    PATH: "/usr/bin:/bin",
    HOME: "/var/lib/resec",
    LANG: "C.UTF-8",
    TZ: "UTC",
    RESEC_ROLE: "master",
    RESEC_PREVIOUS_ROLE: "slave",
    RESEC_MASTER_ADDR: "10.0.0.1:6379",
  });
  const everything = JSON.stringify(seen);
  for (const secret of Object.values(SECRETS)) assert.ok(!everything.includes(secret), secret);
});

Deno.test("an agent without --allow-run refuses ON_ROLE_CHANGE at start (exit 2); with it, the hook is accepted", async () => {
  const env = { ON_ROLE_CHANGE: "/usr/local/bin/notify-role" };
  const refused = await AgentProcess.run({ env, args: ["--check"], hooks: false });
  assert.equal(refused.code, 2, refused.output);
  assert.ok(refused.output.includes(HOOK_NOT_ALLOWED), refused.output);
  const accepted = await AgentProcess.run({ env, args: ["--check"], hooks: true });
  assert.equal(accepted.code, 0, accepted.output);
  assert.match(accepted.output, /ON_ROLE_CHANGE=\/usr\/local\/bin\/notify-role/);
});
