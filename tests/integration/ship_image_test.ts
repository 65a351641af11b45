/**
 * The container image (scripts/build-image.sh, Debian's umoci; the Dockerfile describes the same image):
 * built, unpacked as a container runtime would, and run from its root file system with chroot as the
 * image's non-root user, with a fresh /proc, against a real Consul and Redis.
 *
 * The image is built from the compiled binary named by RESEC_IMAGE_BINARY (e.g. dist/resec from
 * scripts/compile.sh). Without it (our machines cannot download denort) it is the labelled stand-in:
 * the deno binary and the bundle dist/resec.js in the same FROM scratch layout.
 *
 * Needs root (chroot, mounting /proc in a private mount namespace) and umoci.
 */
import assert from "node:assert/strict";
import {
  type CommandResult,
  ConsulServer,
  FAST_AGENT_ENV,
  makeServerDir,
  ManagedProcess,
  RedisServer,
  runCommand,
  waitFor,
} from "../support/mod.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const IMAGE_USER = { uid: 10001, gid: 10001 };

/** The parts of an OCI image config these tests read. */
interface ImageConfig {
  architecture: string;
  os: string;
  config: {
    User?: string;
    Entrypoint?: string[];
    Env?: string[];
    WorkingDir?: string;
    StopSignal?: string;
    Labels?: Record<string, string>;
  };
}

/** A built and unpacked image in a scratch directory, removed on dispose. */
interface UnpackedImage extends Disposable {
  readonly dir: string;
  readonly rootfs: string;
  readonly artifact: "binary" | "bundle-stand-in";
  readonly config: ImageConfig;
  /** The executable the entrypoint starts (inside the rootfs). */
  readonly executable: string;
  /** The build script's closing lines, with the size. */
  readonly buildLog: string;
}

function findTool(name: string, hint: string): string {
  for (const dir of ["/usr/bin", "/usr/sbin", "/bin", "/sbin", "/usr/local/bin"]) {
    try {
      if (Deno.statSync(`${dir}/${name}`).isFile) return `${dir}/${name}`;
    } catch { /* not here */ }
  }
  assert.fail(`${name} is not installed: ${hint}`);
}

function requireRoot(): void {
  assert.equal(
    Deno.uid(),
    0,
    "running the image needs root (chroot and a private /proc mount); run the tests as root",
  );
}

async function run(command: string, args: string[]): Promise<string> {
  const result = await runCommand(command, { args, timeoutMs: 300_000 });
  const output = result.stdout + result.stderr;
  assert.equal(result.code, 0, `${command} ${args.join(" ")} failed:\n${output}`);
  return output;
}

/** Builds the image into an OCI layout with scripts/build-image.sh and unpacks it with umoci. */
async function buildAndUnpackImage(): Promise<UnpackedImage> {
  const umoci = findTool("umoci", "apt-get install umoci (CI must install it)");
  const dir = makeServerDir("image");
  const dispose = () => Deno.removeSync(dir, { recursive: true });
  try {
    const binary = Deno.env.get("RESEC_IMAGE_BINARY");
    const source = binary
      ? ["--from", "binary", "--binary", binary]
      : ["--from", "bundle", "--bundle", `${dir}/resec.js`];
    if (!binary) {
      await run(`${ROOT}scripts/bundle.sh`, ["--no-check", "--output", `${dir}/resec.js`]);
    }
    const buildLog = await run(`${ROOT}scripts/build-image.sh`, [
      ...source,
      "--layout",
      `${dir}/oci`,
      "--tag",
      "test",
    ]);
    const tag = binary ? "test" : "test-bundle";
    await run(umoci, ["unpack", "--image", `${dir}/oci:${tag}`, `${dir}/bundle`]);
    const config = readImageConfig(`${dir}/oci`, tag);
    const artifact = config.config.Labels?.["io.resec.artifact"];
    assert.ok(artifact === "binary" || artifact === "bundle-stand-in", `label: ${artifact}`);
    assert.equal(artifact, binary ? "binary" : "bundle-stand-in");
    return {
      dir,
      rootfs: `${dir}/bundle/rootfs`,
      artifact,
      config,
      executable: config.config.Entrypoint?.[0] ?? "",
      buildLog,
      [Symbol.dispose]: dispose,
    };
  } catch (error) {
    dispose();
    throw error;
  }
}

function readImageConfig(layout: string, tag: string): ImageConfig {
  const blob = (digest: string) =>
    JSON.parse(Deno.readTextFileSync(`${layout}/blobs/${digest.replace(":", "/")}`));
  const index = JSON.parse(Deno.readTextFileSync(`${layout}/index.json`)) as {
    manifests: { digest: string; annotations?: Record<string, string> }[];
  };
  const entry = index.manifests.find((manifest) =>
    manifest.annotations?.["org.opencontainers.image.ref.name"] === tag
  );
  assert.ok(entry, `no manifest tagged ${tag}`);
  return blob(blob(entry.digest).config.digest) as ImageConfig;
}

/** Every file and symlink below `dir`, as absolute paths inside it. */
function listFiles(dir: string, prefix = ""): string[] {
  const files: string[] = [];
  for (const entry of Deno.readDirSync(`${dir}${prefix}`)) {
    const path = `${prefix}/${entry.name}`;
    if (entry.isDirectory) files.push(...listFiles(dir, path));
    else files.push(path);
  }
  return files.sort();
}

/** The libraries `ldd` says an executable links, as absolute paths. */
async function linkedLibraries(executable: string): Promise<string[]> {
  const output = await run(findTool("ldd", "apt-get install libc-bin"), [executable]);
  return [...new Set([...output.matchAll(/(\/[^\s]+)/g)].map((match) => match[1]!))].sort();
}

/** The environment a runtime gives the entrypoint: the image's Env, then the caller's. */
function imageEnv(image: UnpackedImage, extra: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = { PATH: "/usr/local/bin:/usr/bin:/bin" };
  for (const pair of image.config.config.Env ?? []) {
    const equals = pair.indexOf("=");
    env[pair.slice(0, equals)] = pair.slice(equals + 1);
  }
  return { ...env, ...extra };
}

/**
 * The command that runs the image's entrypoint the way a container runtime does: in its root file
 * system, as its user, with a /proc of its own (mounted in a private mount namespace, so it goes away
 * with the process). unshare and chroot exec in turn, so the pid is the agent's and signals reach it.
 */
function containerCommand(
  image: UnpackedImage,
  args: string[],
): { command: string; args: string[] } {
  Deno.mkdirSync(`${image.rootfs}/proc`, { recursive: true });
  const [uid, gid] = (image.config.config.User ?? "").split(":");
  return {
    command: findTool("unshare", "apt-get install util-linux"),
    args: [
      `--mount-proc=${image.rootfs}/proc`,
      findTool("chroot", "apt-get install coreutils"),
      `--userspec=${uid}:${gid}`,
      image.rootfs,
      ...(image.config.config.Entrypoint ?? []),
      ...args,
    ],
  };
}

async function runInImage(
  image: UnpackedImage,
  args: string[],
  env: Record<string, string> = {},
): Promise<CommandResult> {
  const { command, args: fullArgs } = containerCommand(image, args);
  return await runCommand(command, {
    args: fullArgs,
    clearEnv: true,
    env: imageEnv(image, env),
    timeoutMs: 60_000,
  });
}

Deno.test("the image holds only the agent, the libraries it links, /etc/passwd and /etc/hosts, and runs as a non-root user", async () => {
  using image = await buildAndUnpackImage();
  console.log(image.buildLog.trim().split("\n").slice(-2).join("\n"));

  const config = image.config.config;
  assert.equal(config.User, `${IMAGE_USER.uid}:${IMAGE_USER.gid}`);
  assert.equal(config.StopSignal, "SIGTERM");
  assert.equal(image.config.os, "linux");
  const entry = image.artifact === "binary" ? "/usr/local/bin/resec" : "/usr/local/bin/deno";
  assert.equal(image.executable, entry);

  const onHost = image.artifact === "binary"
    ? Deno.env.get("RESEC_IMAGE_BINARY")!
    : Deno.realPathSync(Deno.execPath());
  const expected = [
    "/etc/hosts",
    "/etc/passwd",
    entry,
    ...(image.artifact === "binary" ? [] : ["/usr/local/lib/resec/resec.js"]),
    ...await linkedLibraries(onHost),
  ].sort();
  assert.deepEqual(listFiles(image.rootfs), expected);

  const passwd = Deno.readTextFileSync(`${image.rootfs}/etc/passwd`).trim().split("\n");
  assert.deepEqual(passwd, [
    `resec:x:${IMAGE_USER.uid}:${IMAGE_USER.gid}:resec:/nonexistent:/nonexistent`,
  ]);
  assert.match(Deno.readTextFileSync(`${image.rootfs}/etc/hosts`), /^127\.0\.0\.1\s+localhost$/m);
  // Root owns everything; the agent's user can run it but not change it.
  const stat = Deno.statSync(`${image.rootfs}${entry}`);
  assert.equal(stat.uid, 0);
  assert.equal((stat.mode ?? 0) & 0o777, 0o755);
});

Deno.test("the Dockerfile's final stage is FROM scratch with the same user, stop signal and entrypoint as the umoci image", () => {
  const dockerfile = Deno.readTextFileSync(`${ROOT}Dockerfile`);
  const lines = dockerfile.split("\n").map((line) => line.trim()).filter((line) =>
    line !== "" && !line.startsWith("#")
  );
  const lastFrom = lines.findLastIndex((line) => /^FROM\s/i.test(line));
  const finalStage = lines.slice(lastFrom);
  assert.match(finalStage[0]!, /^FROM scratch$/);
  assert.deepEqual(finalStage.slice(1), [
    "COPY --from=build /rootfs/ /",
    `USER ${IMAGE_USER.uid}:${IMAGE_USER.gid}`,
    "STOPSIGNAL SIGTERM",
    'ENTRYPOINT ["/usr/local/bin/resec"]',
  ]);
  // The build stage fills /rootfs with the same script the umoci image uses.
  assert.match(dockerfile, /scripts\/build-image\.sh --from binary .*--rootfs-only \/rootfs/);
});

Deno.test("the agent in the unpacked image prints its version as uid 10001 from a chroot", async () => {
  requireRoot();
  using image = await buildAndUnpackImage();
  const result = await runInImage(image, ["--version"]);
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /^resec \d+\.\d+\.\d+ \(deno /);

  const refused = await runInImage(image, [], { REDIS_ADDR: "nope" });
  assert.equal(refused.code, 2, refused.stderr);
  assert.match(refused.stderr, /Cannot parse REDIS_ADDR "nope"/);
});

Deno.test("the agent in the unpacked image registers its Redis as master in a real Consul and releases the lock on SIGTERM", async () => {
  requireRoot();
  using image = await buildAndUnpackImage();
  await using consul = await ConsulServer.start();
  await using redis = await RedisServer.start();

  const { command, args } = containerCommand(image, []);
  const agentDir = makeServerDir("image-agent");
  await using agent = new ManagedProcess(command, {
    args,
    logPath: `${agentDir}/agent.log`,
    clearEnv: true,
    env: imageEnv(image, {
      ...FAST_AGENT_ENV,
      CONSUL_HTTP_ADDR: consul.address,
      REDIS_ADDR: redis.address,
    }),
  });

  const master = await waitFor(async () => {
    if (!(await agent.isRunning())) throw new Error(`agent exited:\n${agent.readLog()}`);
    const entries = await consul.api<{ Service: { ID: string; Port: number } }[]>(
      "GET",
      "/v1/health/service/redis-master?passing=1",
    );
    return entries.length === 1 ? entries[0] : undefined;
  }, {
    timeoutMs: 30_000,
    message: `the agent to register redis-master; its log:\n${agent.readLog()}`,
  });
  assert.equal(master.Service.Port, redis.port);
  assert.equal((await redis.info()).role, "master");
  // The process we signal is the agent itself, running as the image's user.
  const status = Deno.readTextFileSync(`/proc/${agent.pid}/status`);
  assert.match(status, new RegExp(`^Uid:\\s+${IMAGE_USER.uid}\\s`, "m"));

  const stopped = await agent.stop(20_000);
  assert.equal(stopped.code, 0, agent.readLog());
  assert.match(agent.readLog(), /lock released/);
  const lock = await fetch(`${consul.url}/v1/kv/resec/.lock`, {
    signal: AbortSignal.timeout(5_000),
  });
  const held = lock.status === 200 && (await lock.json())[0]?.Session !== undefined;
  if (lock.status !== 200) await lock.body?.cancel();
  assert.equal(held, false, "the lock is free after a graceful stop");
  const remaining = await consul.api<unknown[]>("GET", "/v1/health/service/redis-master");
  assert.deepEqual(remaining, []);
});
