/**
 * Which Consul node this agent talks to, and the address the cluster knows that node by.
 *
 * `/v1/agent/self` answers both, but needs `agent:read`, which Go-era resec tokens lack. Without it,
 * a throwaway session reveals the node's name (Consul creates a session on the node of the agent that
 * receives the request) and the catalog its address, using only the session and node permissions the
 * lock already needs.
 */
import { type ConsulClient, encodePath } from "./client.ts";
import { asObject, stringField } from "./decode.ts";
import { ConsulPermissionDeniedError } from "./errors.ts";
import { createSession, destroySession, sessionInfo } from "./session.ts";
import type { Milliseconds } from "../duration.ts";

/** A Consul node: its name and the address it advertises to the cluster. */
export interface ConsulNode {
  readonly name: string;
  /** The LAN address other nodes reach it at (the catalog's `Node.Address`). */
  readonly address: string;
}

export interface LocalNodeOptions {
  /** Name and TTL of the throwaway session used when the token may not read the agent. */
  probeSession: { name: string; ttlMs: Milliseconds };
  signal?: AbortSignal;
}

/**
 * Returns the node of the Consul agent the client talks to.
 *
 * @throws {ConsulPermissionDeniedError} when the token may neither read the agent nor create a session
 * and read the node.
 * @example
 * ```ts
 * const node = await localNode(client, { probeSession: { name: "resec", ttlMs: 15_000 } });
 * node.address; // "10.0.0.5"
 * ```
 */
export async function localNode(
  client: ConsulClient,
  options: LocalNodeOptions,
): Promise<ConsulNode> {
  try {
    return await agentSelf(client, options.signal);
  } catch (error) {
    if (!(error instanceof ConsulPermissionDeniedError)) throw error;
  }
  const name = await nodeNameBySession(client, options);
  return await catalogNode(client, name, options.signal);
}

/** `/v1/agent/self`: the agent's node name and its advertised LAN address. */
export async function agentSelf(client: ConsulClient, signal?: AbortSignal): Promise<ConsulNode> {
  const response = await client.request({
    method: "GET",
    path: "/v1/agent/self",
    endpoint: "agent.self",
    action: "reading the local agent (agent:read)",
    datacenter: false,
    signal,
    decode: decodeAgentSelf,
  });
  return response.value!;
}

/** Decodes the two fields of `/v1/agent/self` this module needs. */
export function decodeAgentSelf(json: unknown): ConsulNode {
  const object = asObject(json, "the answer");
  const config = asObject(object.Config, "the answer.Config");
  const member = asObject(object.Member, "the answer.Member");
  return {
    name: stringField(config, "NodeName", "the answer.Config"),
    address: stringField(member, "Addr", "the answer.Member"),
  };
}

/** `/v1/catalog/node/<name>`: the node's address as the catalog holds it. */
export async function catalogNode(
  client: ConsulClient,
  name: string,
  signal?: AbortSignal,
): Promise<ConsulNode> {
  const response = await client.request({
    method: "GET",
    path: `/v1/catalog/node/${encodePath(name)}`,
    endpoint: "catalog.node",
    action: `reading node "${name}"`,
    signal,
    // Consul answers `null` for a node it does not know.
    decode: (json): ConsulNode | undefined => {
      if (json === null || json === undefined) return undefined;
      const node = asObject(asObject(json, "the answer").Node, "the answer.Node");
      return {
        name: stringField(node, "Node", "the answer.Node"),
        address: stringField(node, "Address", "the answer.Node"),
      };
    },
  });
  if (response.value === undefined) {
    throw new TypeError(`Consul's catalog has no node "${name}"`);
  }
  return response.value;
}

async function nodeNameBySession(client: ConsulClient, options: LocalNodeOptions): Promise<string> {
  const id = await createSession(client, {
    name: options.probeSession.name,
    ttlMs: options.probeSession.ttlMs,
    lockDelayMs: 0,
    behavior: "delete",
    nodeChecks: [],
    signal: options.signal,
  });
  try {
    const info = await sessionInfo(client, id, { signal: options.signal });
    if (!info) throw new TypeError(`the session "${id}" vanished right after it was created`);
    return info.node;
  } finally {
    await destroySession(client, id).catch(() => undefined);
  }
}
