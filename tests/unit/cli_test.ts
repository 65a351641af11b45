/**
 * runCli(): the command line an operator types, with the agent replaced by a recorder (no I/O).
 */
import assert from "node:assert/strict";
import { EXIT_OK, EXIT_USAGE, HOOK_NOT_ALLOWED, parseInvocation, runCli } from "../../lib/cli.ts";
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

Deno.test("--check names the password and token files, never what they hold", async () => {
  const h = harness({
    REDIS_PASSWORD_FILE: "/run/credentials/resec.service/redis-password",
    CONSUL_HTTP_TOKEN_FILE: "/run/credentials/resec.service/consul-token",
  }, {
    "/run/credentials/resec.service/redis-password": "hunter2\n",
    "/run/credentials/resec.service/consul-token": "tok-secret\n",
  });
  assert.equal(await runCli(["--check"], h.io), EXIT_OK);
  const text = h.out.join("\n");
  assert.match(text, /redis +127\.0\.0\.1:6379 \(password set\)/);
  assert.match(text, /\(token set\)/);
  assert.match(text, /REDIS_PASSWORD_FILE=\/run\/credentials\/resec\.service\/redis-password/);
  assert.doesNotMatch(text, /hunter2|tok-secret/);
});

Deno.test("ON_ROLE_CHANGE without the permission to run /bin/sh exits 2 saying how to grant it", async () => {
  const h = harness({ ON_ROLE_CHANGE: "/usr/local/bin/notify" });
  const io = { ...h.io, mayRunHooks: () => false };
  assert.equal(await runCli([], io), EXIT_USAGE);
  assert.equal(await runCli(["--check"], io), EXIT_USAGE);
  assert.equal(
    h.err[0],
    `resec: invalid configuration, nothing was started (1 problem):\n  - ${HOOK_NOT_ALLOWED}`,
  );
  assert.match(
    HOOK_NOT_ALLOWED,
    /--allow-run=\/bin\/sh.*compile\.sh --hooks.*permissions\.ts --hooks/,
  );
  assert.equal(h.started.length, 0);
  // Without a hook, or with the permission, the agent starts.
  assert.equal(await runCli([], { ...harness().io, mayRunHooks: () => false }), EXIT_OK);
  assert.equal(await runCli([], { ...h.io, mayRunHooks: () => true }), EXIT_OK);
  assert.equal(h.started.length, 1);
});

Deno.test("--env-file supplies variables and the real environment wins over it", async () => {
  const h = harness({ REDIS_ADDR: "10.0.0.9:6379" }, {
    "/etc/default/resec": "REDIS_ADDR=10.0.0.1:6379\nCONSUL_LOCK_KEY=team/.lock\n# comment\n",
  });
  assert.equal(await runCli(["--env-file", "/etc/default/resec"], h.io), EXIT_OK);
  assert.equal(h.started[0]?.redis.host, "10.0.0.9");
  assert.equal(h.started[0]?.lock.key, "team/.lock");
});

Deno.test("every command-line flag of the Go resec sets its variable, and wins over the environment as there", async () => {
  const h = harness({ CONSUL_LOCK_TTL: "20s", REDIS_ADDR: "10.0.0.9:6379", LOG_LEVEL: "debug" });
  const args = [
    "--announce-addr=10.0.0.5:7000",
    "--consul-deregister-service-after",
    "1h",
    "--consul-lock-key=team/.lock",
    "--consul-lock-monitor-retries",
    "5",
    "--consul-lock-monitor-retry-interval=2s",
    "--consul-lock-session-name",
    "team",
    "--consul-lock-ttl=30s",
    "--consul-service-name",
    "cache",
    "--consul-service-prefix=ignored",
    "--consul-master-tags",
    "primary,a",
    "--consul-slave-tags=secondary",
    "--healthcheck-interval",
    "4s",
    "--healthcheck-timeout=3s",
    // The Go flag package also takes one dash.
    "-log-level",
    "WARNING",
    "-log-format=json",
    "--redis-addr",
    "10.0.0.5:6380",
    "--redis-password=hunter2",
  ];
  assert.equal(await runCli(args, h.io), EXIT_OK, h.err.join("\n"));
  const config = h.started[0]!;
  assert.deepEqual(config.announce, { host: "10.0.0.5", port: 7000 });
  assert.equal(config.deregisterServiceAfterMs, 3_600_000);
  assert.equal(config.lock.key, "team/.lock");
  assert.equal(config.lock.monitorRetries, 5);
  assert.equal(config.lock.monitorRetryIntervalMs, 2_000);
  assert.equal(config.lock.sessionName, "team");
  assert.equal(config.lock.ttlMs, 30_000, "the flag wins over CONSUL_LOCK_TTL");
  assert.deepEqual(config.service, {
    mode: "tags",
    name: "cache",
    masterTags: ["primary", "a"],
    slaveTags: ["secondary"],
  });
  assert.equal(config.healthcheckIntervalMs, 4_000);
  assert.equal(config.healthcheckTimeoutMs, 3_000);
  assert.equal(config.logLevel, "warn");
  assert.equal(config.logFormat, "json");
  assert.deepEqual([config.redis.host, config.redis.port], ["10.0.0.5", 6380]);
  assert.equal(config.redis.password, "hunter2");
});

Deno.test("a Go flag's value is checked like its variable, and -v prints the version as the Go resec's did", async () => {
  const bad = harness();
  assert.equal(await runCli(["--consul-lock-ttl", "soon"], bad.io), EXIT_USAGE);
  assert.match(bad.err.join(), /CONSUL_LOCK_TTL "soon"/);
  const version = harness();
  assert.equal(await runCli(["-v"], version.io), EXIT_OK);
  assert.match(version.out.join(), /^resec \d+\.\d+\.\d+/);
  const missing = harness();
  assert.equal(await runCli(["--consul-lock-key"], missing.io), EXIT_USAGE);
});

Deno.test("a missing env file exits 2 naming the file", async () => {
  const h = harness();
  assert.equal(await runCli(["--env-file", "/nope/.env"], h.io), EXIT_USAGE);
  assert.match(h.err.join(), /Cannot read env file "\/nope\/\.env"/);
});

Deno.test("the USR1 dump keeps the Consul and Redis state, the USR2 dump everything", async () => {
  const { formatDump } = await import("../../lib/agent/process.ts");
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
