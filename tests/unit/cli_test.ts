/**
 * runCli(): the command line an operator types, with the agent replaced by a recorder (no I/O).
 */
import assert from "node:assert/strict";
import { EXIT_OK, EXIT_USAGE, parseInvocation, runCli } from "../../lib/cli.ts";
import type { Config } from "../../lib/config.ts";

function harness(env: Record<string, string> = {}, files: Record<string, string> = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const started: Config[] = [];
  return {
    out,
    err,
    started,
    io: {
      getEnv: (name: string) => env[name],
      readTextFile: (path: string) => {
        const text = files[path];
        if (text === undefined) throw new Error(`No such file: ${path}`);
        return text;
      },
      stdout: (line: string) => out.push(line),
      stderr: (line: string) => err.push(line),
      runAgent: (config: Config) => {
        started.push(config);
        return Promise.resolve(EXIT_OK);
      },
    },
  };
}

Deno.test("--version prints resec's version with the Deno and V8 versions", async () => {
  const h = harness();
  assert.equal(await runCli(["--version"], h.io), EXIT_OK);
  assert.match(h.out.join(), /^resec \d+\.\d+\.\d+ \(deno \d+\.\d+\.\d+, v8 /);
});

Deno.test("--help prints usage and starts nothing", async () => {
  const h = harness();
  assert.equal(await runCli(["--help"], h.io), EXIT_OK);
  assert.match(h.out.join(), /Usage: resec/);
  assert.equal(h.started.length, 0);
});

Deno.test("an unknown flag exits 2 with the usage", async () => {
  const h = harness();
  assert.equal(await runCli(["--frobnicate"], h.io), EXIT_USAGE);
  assert.match(h.err.join(), /frobnicate/);
});

Deno.test("an invalid environment exits 2, lists every problem and never starts the agent", async () => {
  const h = harness({ HEALTHCHECK_INTERVAL: "5x", REDIS_ADDR: "redis" });
  assert.equal(await runCli([], h.io), EXIT_USAGE);
  assert.match(h.err.join(), /HEALTHCHECK_INTERVAL "5x"/);
  assert.match(h.err.join(), /REDIS_ADDR/);
  assert.equal(h.started.length, 0);
});

Deno.test("--check validates, prints the effective configuration with secrets masked, and exits 0", async () => {
  const h = harness({
    REDIS_PASSWORD: "hunter2",
    CONSUL_HTTP_TOKEN: "tok-secret",
    REDIS_ADDR: "10.0.0.5:6379",
  });
  assert.equal(await runCli(["--check"], h.io), EXIT_OK);
  const text = h.out.join("\n");
  assert.match(text, /configuration is valid/);
  assert.match(text, /REDIS_PASSWORD=\*\*\*\*\*\*\*\*/);
  assert.match(text, /10\.0\.0\.5:6379/);
  assert.match(text, /agent service +redis-agent /, "names the agent's own service");
  assert.doesNotMatch(text, /hunter2|tok-secret/);
  assert.equal(h.started.length, 0);
});

Deno.test("--check with default settings says the host's address comes from its Consul node", async () => {
  const h = harness({});
  assert.equal(await runCli(["--check"], h.io), EXIT_OK);
  assert.match(
    h.out.join("\n"),
    /announce +<the local Consul node's address>:6379 \(resolved at start\)/,
  );
});

Deno.test("--env-file supplies variables and the real environment wins over it", async () => {
  const h = harness({ REDIS_ADDR: "10.0.0.9:6379" }, {
    "/etc/default/resec": "REDIS_ADDR=10.0.0.1:6379\nCONSUL_LOCK_KEY=team/.lock\n# comment\n",
  });
  assert.equal(await runCli(["--env-file", "/etc/default/resec"], h.io), EXIT_OK);
  assert.equal(h.started[0]?.redis.host, "10.0.0.9");
  assert.equal(h.started[0]?.lock.key, "team/.lock");
});

Deno.test("a missing env file exits 2 naming the file", async () => {
  const h = harness();
  assert.equal(await runCli(["--env-file", "/nope/.env"], h.io), EXIT_USAGE);
  assert.match(h.err.join(), /Cannot read env file "\/nope\/\.env"/);
});

Deno.test("the USR1 dump keeps the Consul and Redis state, the USR2 dump everything", async () => {
  const { formatDump } = await import("../../lib/agent.ts");
  const state = {
    decision: { name: "master" },
    observed: {
      redis: { kind: "up", role: "master" },
      consulReachable: true,
      leader: null,
      lock: { phase: "held" },
    },
  };
  const usr1 = JSON.parse(formatDump("SIGUSR1", state, 0));
  assert.equal(usr1.dump, "consul and redis state");
  assert.deepEqual(usr1.state.redis, { kind: "up", role: "master" });
  assert.equal(usr1.state.consul.reachable, true);
  assert.equal(usr1.state.decision, undefined);
  const usr2 = JSON.parse(formatDump("SIGUSR2", state, 0));
  assert.equal(usr2.state.decision.name, "master");
});

Deno.test("switchover --timeout is refused above the 10m agents accept, and accepted up to it", () => {
  assert.throws(
    () => parseInvocation(["switchover", "--timeout", "11m"]),
    /--timeout "11m" is longer than the 10m0s a switchover may take/,
  );
  assert.deepEqual(parseInvocation(["switchover", "--timeout", "10m"]), {
    command: "switchover",
    envFile: undefined,
    to: undefined,
    timeoutMs: 600_000,
  });
});
