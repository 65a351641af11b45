/**
 * The systemd units and the settings example that ship with resec: their key settings, read from the
 * files, and systemd's own verdict (`systemd-analyze verify` and `security`). systemd-analyze is
 * required, not optional: on Debian it comes with the `systemd` package.
 */
import assert from "node:assert/strict";
import { EXIT_USAGE } from "../../lib/cli.ts";
import { ENVIRONMENT_VARIABLES, parseConfig } from "../../lib/config.ts";
import { makeServerDir, runCommand } from "../support/mod.ts";
import { HARD_EXIT_AFTER_MS } from "../../lib/agent/process.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const SERVICE = `${ROOT}systemd/resec.service`;
const TEMPLATE = `${ROOT}systemd/resec@.service`;
const ENV_EXAMPLE = `${ROOT}systemd/resec.env.example`;
const CREDENTIALS_DROP_IN = `${ROOT}systemd/resec.service.d/credentials.conf`;
/** lib/agent/process.ts ends a graceful stop that takes longer than this; systemd must wait longer. */
const AGENT_HARD_EXIT_SECONDS = HARD_EXIT_AFTER_MS / 1_000;
/** `systemd-analyze security` exposure (0 safest … 10 unsafe) the units must stay below. */
const MAX_EXPOSURE = 2.0;

/** A unit file as section → key → values (a key may repeat; an empty assignment resets it). */
type Unit = Map<string, Map<string, string[]>>;

function parseUnit(text: string): Unit {
  const unit: Unit = new Map();
  let section: Map<string, string[]> | undefined;
  for (const rawLine of text.split("\n")) {
    const line = rawLine.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      section = new Map();
      unit.set(header[1]!, section);
      continue;
    }
    const equals = line.indexOf("=");
    assert.ok(section && equals > 0, `unparsable unit line: ${rawLine}`);
    const key = line.slice(0, equals).trim();
    const value = line.slice(equals + 1).trim();
    section.set(key, value === "" ? [] : [...(section.get(key) ?? []), value]);
  }
  return unit;
}

/** The values of a key, or undefined when the key is absent. */
function values(unit: Unit, section: string, key: string): string[] | undefined {
  return unit.get(section)?.get(key);
}

/** The single value of a key; fails when it is absent or repeated. */
function value(unit: Unit, section: string, key: string): string {
  const found = values(unit, section, key);
  assert.ok(found !== undefined, `[${section}] ${key}= is missing`);
  assert.equal(found.length, 1, `[${section}] ${key}= is set ${found.length} times: ${found}`);
  return found[0]!;
}

function seconds(text: string): number {
  const match = /^(\d+)(s|min)?$/.exec(text);
  assert.ok(match, `not a duration in seconds or minutes: ${text}`);
  return Number(match[1]) * (match[2] === "min" ? 60 : 1);
}

function readUnit(path: string): Unit {
  return parseUnit(Deno.readTextFileSync(path));
}

/** Finds systemd-analyze, failing with what to install when it is missing. */
function systemdAnalyze(): string {
  for (const dir of ["/usr/bin", "/bin", "/usr/local/bin"]) {
    try {
      if (Deno.statSync(`${dir}/systemd-analyze`).isFile) return `${dir}/systemd-analyze`;
    } catch { /* not here */ }
  }
  assert.fail("systemd-analyze is not installed: apt-get install systemd (CI must install it)");
}

/**
 * A file system root for systemd-analyze: systemd's own units (it resolves sysinit.target and friends),
 * our units in /etc/systemd/system, and a stand-in /usr/local/bin/resec (verify checks ExecStart exists).
 */
function analysisRoot(options: { credentials?: boolean } = {}): string {
  const root = makeServerDir("systemd-root");
  Deno.mkdirSync(`${root}/usr/lib/systemd`, { recursive: true });
  Deno.mkdirSync(`${root}/etc/systemd/system`, { recursive: true });
  Deno.mkdirSync(`${root}/usr/local/bin`, { recursive: true });
  copyTree("/usr/lib/systemd/system", `${root}/usr/lib/systemd/system`);
  Deno.copyFileSync(SERVICE, `${root}/etc/systemd/system/resec.service`);
  Deno.copyFileSync(TEMPLATE, `${root}/etc/systemd/system/resec@.service`);
  Deno.writeTextFileSync(`${root}/usr/local/bin/resec`, "#!/bin/sh\n", { mode: 0o755 });
  if (options.credentials) {
    Deno.mkdirSync(`${root}/etc/systemd/system/resec.service.d`);
    Deno.copyFileSync(
      CREDENTIALS_DROP_IN,
      `${root}/etc/systemd/system/resec.service.d/credentials.conf`,
    );
  }
  return root;
}

function copyTree(from: string, to: string): void {
  Deno.mkdirSync(to, { recursive: true });
  for (const entry of Deno.readDirSync(from)) {
    const source = `${from}/${entry.name}`;
    const target = `${to}/${entry.name}`;
    if (entry.isSymlink) Deno.symlinkSync(Deno.readLinkSync(source), target);
    else if (entry.isDirectory) copyTree(source, target);
    else Deno.copyFileSync(source, target);
  }
}

async function run(command: string, args: string[]): Promise<{ code: number; output: string }> {
  const result = await runCommand(command, {
    args,
    env: { SYSTEMD_COLORS: "0", SYSTEMD_PAGER: "", LC_ALL: "C.UTF-8" },
    timeoutMs: 60_000,
  });
  return { code: result.code, output: (result.stdout + result.stderr).trim() };
}

Deno.test("resec.service runs /usr/local/bin/resec with /etc/default/resec, restarts on failure and stops with SIGTERM", () => {
  const unit = readUnit(SERVICE);
  assert.equal(value(unit, "Service", "EnvironmentFile"), "-/etc/default/resec");
  assert.equal(value(unit, "Service", "ExecStart"), "/usr/local/bin/resec");
  assert.equal(value(unit, "Service", "KillSignal"), "SIGTERM");
  assert.ok(
    seconds(value(unit, "Service", "TimeoutStopSec")) > AGENT_HARD_EXIT_SECONDS,
    "systemd must give the agent longer than its own stop deadline before SIGKILL",
  );
  assert.equal(value(unit, "Service", "Restart"), "on-failure");
  assert.deepEqual(values(unit, "Service", "RestartPreventExitStatus"), [String(EXIT_USAGE)]);
  assert.equal(value(unit, "Install", "WantedBy"), "multi-user.target");
  assert.ok(values(unit, "Unit", "After")?.join(" ").includes("network-online.target"));
  assert.ok(values(unit, "Unit", "Wants")?.join(" ").includes("network-online.target"));
});

for (const path of [SERVICE, TEMPLATE]) {
  const name = path.slice(path.lastIndexOf("/") + 1);
  Deno.test(`${name} runs the agent unprivileged, read-only, without capabilities, on IP and unix sockets only`, () => {
    const unit = readUnit(path);
    const dynamic = values(unit, "Service", "DynamicUser")?.[0] === "yes";
    const user = values(unit, "Service", "User")?.[0];
    assert.ok(dynamic || (user !== undefined && user !== "root" && user !== "0"), "no root user");
    for (
      const key of [
        "NoNewPrivileges",
        "ProtectHome",
        "PrivateTmp",
        "PrivateDevices",
        "ProtectKernelTunables",
        "ProtectKernelModules",
        "ProtectControlGroups",
        "RestrictNamespaces",
        "RestrictSUIDSGID",
        "LockPersonality",
      ]
    ) {
      assert.equal(value(unit, "Service", key), "yes", `${key}=yes`);
    }
    assert.equal(value(unit, "Service", "ProtectSystem"), "strict");
    assert.deepEqual(values(unit, "Service", "CapabilityBoundingSet"), []);
    assert.deepEqual(values(unit, "Service", "AmbientCapabilities"), []);
    assert.deepEqual(
      value(unit, "Service", "RestrictAddressFamilies").split(/\s+/).sort(),
      ["AF_INET", "AF_INET6", "AF_UNIX"],
    );
    assert.match(value(unit, "Service", "MemoryMax"), /^\d+[KMG]$/);
    assert.ok(values(unit, "Service", "SystemCallFilter")?.[0]?.startsWith("@system-service"));
    // V8 compiles JavaScript to machine code at run time: W^X would kill it at start.
    assert.notEqual(values(unit, "Service", "MemoryDenyWriteExecute")?.[0], "yes");
    assert.match(
      Deno.readTextFileSync(path),
      /#[^\n]*MemoryDenyWriteExecute[^\n]*(\n#[^\n]*)?JIT/,
      "a comment must say why MemoryDenyWriteExecute stays off",
    );
    assert.equal(value(unit, "Service", "ExecStart"), "/usr/local/bin/resec");
    assert.equal(value(unit, "Service", "KillSignal"), "SIGTERM");
  });
}

Deno.test("resec@.service reads /etc/resec/%i.env and otherwise runs like resec.service", () => {
  const service = readUnit(SERVICE);
  const template = readUnit(TEMPLATE);
  assert.equal(value(template, "Service", "EnvironmentFile"), "/etc/resec/%i.env");
  assert.match(value(template, "Unit", "Description"), /%i/);
  const instanceOnly = new Set(["EnvironmentFile", "SyslogIdentifier"]);
  const settings = (unit: Unit) =>
    [...unit.get("Service")!.entries()].filter(([key]) => !instanceOnly.has(key)).sort();
  assert.deepEqual(settings(template), settings(service));
  assert.deepEqual(template.get("Install"), service.get("Install"));
});

Deno.test("systemd-analyze verify accepts resec.service and an instance of resec@.service without a warning", async () => {
  const analyze = systemdAnalyze();
  const root = analysisRoot();
  try {
    for (const unit of ["resec.service", "resec@6380.service"]) {
      const result = await run(analyze, [
        "verify",
        `--root=${root}`,
        `/etc/systemd/system/${unit}`,
      ]);
      assert.equal(result.code, 0, `verify ${unit} failed:\n${result.output}`);
      // verify exits 0 on unknown keys and bad values, which it only prints: any output is a finding.
      assert.equal(result.output, "", `verify ${unit} found problems:\n${result.output}`);
    }
  } finally {
    Deno.removeSync(root, { recursive: true });
  }
});

Deno.test("the credentials drop-in hands the Redis password over as a systemd credential that REDIS_PASSWORD_FILE names, and verify accepts it", async () => {
  const text = Deno.readTextFileSync(CREDENTIALS_DROP_IN);
  const dropIn = parseUnit(text);
  assert.equal(
    value(dropIn, "Service", "LoadCredential"),
    "redis-password:/etc/resec/redis-password",
  );
  assert.equal(
    value(dropIn, "Service", "Environment"),
    "REDIS_PASSWORD_FILE=/run/credentials/resec.service/redis-password",
  );
  // The token's lines, commented out, follow the same pattern.
  assert.match(text, /^#LoadCredential=consul-token:\/etc\/resec\/consul-token$/m);
  assert.match(
    text,
    /^#Environment=CONSUL_HTTP_TOKEN_FILE=\/run\/credentials\/resec\.service\/consul-token$/m,
  );
  // What the agent makes of it: the credential's content, without the line break printf added.
  const credential = "/run/credentials/resec.service/redis-password";
  const result = parseConfig({ REDIS_PASSWORD_FILE: credential }, {
    readTextFile: (path) => path === credential ? "s3cret\n" : "",
  });
  assert.ok(result.ok, JSON.stringify(result));
  assert.equal(result.config.redis.password, "s3cret");

  const analyze = systemdAnalyze();
  const root = analysisRoot({ credentials: true });
  try {
    const result = await run(analyze, [
      "verify",
      `--root=${root}`,
      "/etc/systemd/system/resec.service",
    ]);
    assert.equal(result.code, 0, `verify failed:\n${result.output}`);
    assert.equal(result.output, "", `verify found problems in the drop-in:\n${result.output}`);
  } finally {
    Deno.removeSync(root, { recursive: true });
  }
});

Deno.test(`systemd-analyze security rates both units' exposure below ${MAX_EXPOSURE}`, async () => {
  const analyze = systemdAnalyze();
  const root = analysisRoot();
  try {
    for (const unit of ["resec.service", "resec@6380.service"]) {
      const result = await run(analyze, [
        "security",
        "--offline=yes",
        `--root=${root}`,
        `/etc/systemd/system/${unit}`,
      ]);
      const exposure = /Overall exposure level for \S+: ([\d.]+)/.exec(result.output)?.[1];
      assert.ok(exposure !== undefined, `no exposure level for ${unit}:\n${result.output}`);
      assert.ok(Number(exposure) < MAX_EXPOSURE, `${unit} exposure ${exposure}:\n${result.output}`);
    }
  } finally {
    Deno.removeSync(root, { recursive: true });
  }
});

Deno.test("resec.env.example lists every variable the agent reads once, with a one-line meaning and its default", () => {
  const lines = Deno.readTextFileSync(ENV_EXAMPLE).split("\n");
  const listed = new Map<string, string>();
  lines.forEach((line, index) => {
    const assignment = /^#?([A-Z][A-Z0-9_]*)=(.*)$/.exec(line);
    if (!assignment) return;
    const [, name, defaultValue] = assignment;
    assert.ok(!listed.has(name!), `${name} is listed twice`);
    listed.set(name!, defaultValue!);
    const meaning = lines[index - 1] ?? "";
    assert.match(meaning, /^# \S/, `${name} needs a one-line meaning on the line above it`);
    assert.doesNotMatch(
      meaning,
      /^#?[A-Z][A-Z0-9_]*=/,
      `${name} needs a meaning, not another variable`,
    );
  });
  assert.deepEqual([...listed.keys()].sort(), [...ENVIRONMENT_VARIABLES].sort());

  // The values shown are the defaults: setting them all changes nothing.
  const withDefaults = parseConfig(Object.fromEntries(listed), { readTextFile: () => "" });
  const unset = parseConfig({}, { readTextFile: () => "" });
  assert.ok(withDefaults.ok, JSON.stringify(withDefaults));
  assert.deepEqual(withDefaults, unset);
});
