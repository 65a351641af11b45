/**
 * Linux network namespaces through iproute2's `ip`: create, list, run in, empty and delete. Nothing
 * here touches the root namespace's addresses or routes.
 */
import { type CommandResult, runCommand } from "../process.ts";

/** Every namespace a bed creates starts with this, so a clean-up can find the leftovers. */
export const BED_NAMESPACE_PREFIX = "rsbed-";

/** Where iproute2 installs `ip` on Debian and friends; PATH may lack /usr/sbin for a non-login shell. */
const IP_CANDIDATES = ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"];

/** `ip` commands configure the kernel and return at once; a longer one is stuck. */
const IP_TIMEOUT_MS = 15_000;

/** The multi-host bed cannot run on this machine; the message says what is missing. */
export class BedUnavailableError extends Error {
  override name = "BedUnavailableError";
}

/** The absolute path of iproute2's `ip`; throws BedUnavailableError when it is not installed. */
export function ipBinary(): string {
  for (const candidate of IP_CANDIDATES) {
    try {
      if (Deno.statSync(candidate).isFile) return candidate;
    } catch { /* not there */ }
  }
  throw new BedUnavailableError(
    `The multi-host bed needs iproute2's "ip" command, found in none of ${
      IP_CANDIDATES.join(", ")
    }: ` +
      "install iproute2 (scripts/provision-debian.sh does)",
  );
}

/**
 * Throws BedUnavailableError unless this process can create network namespaces: it must be root (or
 * hold CAP_SYS_ADMIN and CAP_NET_ADMIN) and have iproute2.
 */
export function requireNamespaceSupport(): void {
  ipBinary();
  const uid = Deno.uid();
  if (uid !== 0) {
    throw new BedUnavailableError(
      `The multi-host bed needs root to create network namespaces, but runs as uid ${uid}: ` +
        "run the multi-host tests as root",
    );
  }
}

/** Runs `ip <args>` and throws with its stderr when it fails. */
export async function ip(...args: string[]): Promise<string> {
  const result = await runCommand(ipBinary(), { args, timeoutMs: IP_TIMEOUT_MS });
  if (result.code !== 0) {
    throw new Error(
      `Command "ip ${args.join(" ")}" failed (exit ${result.code}): ${result.stderr.trim()}`,
    );
  }
  return result.stdout;
}

/** Runs a command inside a namespace to completion, with its output captured. */
export async function execIn(
  namespace: string,
  command: string,
  args: string[],
  timeoutMs = IP_TIMEOUT_MS,
): Promise<CommandResult> {
  return await runCommand(ipBinary(), {
    args: ["netns", "exec", namespace, command, ...args],
    timeoutMs,
  });
}

/** The names of all network namespaces `ip netns` knows. */
export async function listNamespaces(): Promise<string[]> {
  const output = await ip("netns", "list");
  // Lines look like "rsbed-1a2b-h0 (id: 3)" or just "rsbed-1a2b-h0".
  return output.split("\n").map((line) => line.trim().split(" ")[0] ?? "").filter((name) => name);
}

/**
 * Creates a namespace with its loopback up; throws BedUnavailableError when the kernel refuses (no
 * privilege to create namespaces).
 */
export async function createNamespace(name: string): Promise<void> {
  try {
    await ip("netns", "add", name);
  } catch (error) {
    throw new BedUnavailableError(
      `Cannot create network namespace "${name}": the multi-host bed needs root with ` +
        `CAP_SYS_ADMIN and CAP_NET_ADMIN: ${(error as Error).message}`,
      { cause: error },
    );
  }
  await ip("-n", name, "link", "set", "lo", "up");
}

/** The pids of every process whose network namespace is `name`. */
export async function namespacePids(name: string): Promise<number[]> {
  const output = await ip("netns", "pids", name);
  return output.split("\n").map((line) => Number(line.trim())).filter((pid) => pid > 0);
}

/** SIGKILLs every process in the namespace, all in one go; returns the pids it signalled. */
export async function killNamespaceProcesses(name: string): Promise<number[]> {
  const pids = await namespacePids(name);
  for (const pid of pids) {
    try {
      Deno.kill(pid, "SIGKILL");
    } catch { /* exited meanwhile */ }
  }
  return pids;
}

/** Kills what runs in the namespace, then deletes it. A namespace already gone is fine. */
export async function deleteNamespace(name: string): Promise<void> {
  try {
    await killNamespaceProcesses(name);
  } catch {
    return; // `ip netns pids` fails only when the namespace no longer exists
  }
  try {
    await ip("netns", "del", name);
  } catch (error) {
    if (!(await listNamespaces()).includes(name)) return; // deleted by someone else meanwhile
    throw error;
  }
}

/** The synchronous twin of deleteNamespace, for an `unload` handler, where nothing can be awaited. */
export function deleteNamespaceSync(name: string): void {
  const run = (args: string[]) =>
    new Deno.Command(ipBinary(), { args, stdout: "piped", stderr: "null" }).outputSync();
  const pids = new TextDecoder().decode(run(["netns", "pids", name]).stdout);
  for (const pid of pids.split("\n").map(Number).filter((pid) => pid > 0)) {
    try {
      Deno.kill(pid, "SIGKILL");
    } catch { /* exited meanwhile */ }
  }
  run(["netns", "del", name]);
}
