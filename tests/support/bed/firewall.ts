/**
 * The Consul cut: nftables rules inside one machine's namespace that drop Consul's server RPC and
 * gossip (TCP and UDP 8300–8302, both directions) while everything else, Redis included, flows.
 */
import type { BedNetwork, Machine } from "./network.ts";
import { BedUnavailableError } from "./netns.ts";

/** Consul's server RPC (8300), LAN gossip (8301) and WAN gossip (8302), with their defaults. */
export const CONSUL_CLUSTER_PORTS = "8300-8302";

/** One table of our own, so healing deletes exactly what cutting added. */
const CUT_TABLE = "resec_bed_consul_cut";

/**
 * The ruleset of the cut. Loopback stays open: the local agent's HTTP API (8500) and anything else on
 * 127.0.0.1 is not part of the cut.
 */
export function consulCutRuleset(): string {
  const drops = [
    `meta l4proto { tcp, udp } th dport ${CONSUL_CLUSTER_PORTS} drop`,
    `meta l4proto { tcp, udp } th sport ${CONSUL_CLUSTER_PORTS} drop`,
  ];
  const chain = (name: string, hook: string, loopback: string) =>
    [
      `  chain ${name} {`,
      `    type filter hook ${hook} priority filter; policy accept;`,
      `    ${loopback} "lo" accept`,
      ...drops.map((rule) => `    ${rule}`),
      "  }",
    ].join("\n");
  return [
    `table inet ${CUT_TABLE} {`,
    chain("input", "input", "iifname"),
    chain("output", "output", "oifname"),
    "}",
    "",
  ].join("\n");
}

/**
 * Cuts the machine off from Consul's servers and gossip; `rulesPath` is a scratch file for the
 * ruleset (nft reads it inside the namespace).
 */
export async function cutConsul(
  network: BedNetwork,
  machine: Machine,
  rulesPath: string,
): Promise<void> {
  await healConsul(network, machine); // cutting twice must not stack two tables
  Deno.writeTextFileSync(rulesPath, consulCutRuleset());
  await nft(network, machine, ["-f", rulesPath]);
}

/** Removes the cut; a machine that was not cut is left as it is. */
export async function healConsul(network: BedNetwork, machine: Machine): Promise<void> {
  const tables = await nft(network, machine, ["list", "tables"]);
  if (tables.includes(CUT_TABLE)) {
    await nft(network, machine, ["delete", "table", "inet", CUT_TABLE]);
  }
}

/** Whether the cut is in place on the machine. */
export async function isConsulCut(network: BedNetwork, machine: Machine): Promise<boolean> {
  return (await nft(network, machine, ["list", "tables"])).includes(CUT_TABLE);
}

async function nft(network: BedNetwork, machine: Machine, args: string[]): Promise<string> {
  let result;
  try {
    result = await network.exec(machine, "nft", args);
  } catch (error) {
    throw new Error(`Cannot run nft in ${machine.namespace}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  if (result.code !== 0) {
    if (/exec of "nft" failed|No such file/.test(result.stderr)) {
      throw new BedUnavailableError(
        "The bed's Consul cut needs nftables' \"nft\" command: " +
          "install nftables (scripts/provision-debian.sh does)",
      );
    }
    throw new Error(
      `nft ${
        args.join(" ")
      } in ${machine.namespace} failed (exit ${result.code}): ${result.stderr.trim()}`,
    );
  }
  return result.stdout;
}
