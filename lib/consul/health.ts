/**
 * Service discovery through `/v1/health/service/<name>`: which instances exist, where, and how healthy.
 * Needs `service:read` on the service and `node:read` on the nodes (the Go resec's policy lacked it).
 */
import type { Milliseconds } from "../duration.ts";
import {
  type ConsulClient,
  DEFAULT_BLOCKING_WAIT_MS,
  encodePath,
  type ResponseMeta,
} from "./client.ts";
import {
  asArray,
  asObject,
  type JsonObject,
  optionalStringField,
  portField,
  stringField,
  stringListField,
} from "./decode.ts";
import { BlockingWatch, type WatchOptions } from "./watch.ts";

export type CheckStatus = "passing" | "warning" | "critical";

/**
 * One instance of a service with its health. Check output is left out unless asked for: it changes on
 * every heartbeat, and a watch compares whole answers.
 */
export interface HealthEntry {
  node: string;
  /** Service.Address, or Node.Address when the service registered none. */
  address: string;
  port: number;
  serviceId: string;
  serviceName: string;
  tags: string[];
  /** Service.Meta (empty when none). */
  meta: Record<string, string>;
  /** The worst status of the instance's checks (node checks included). */
  status: CheckStatus;
  checks: { id: string; name: string; status: CheckStatus; serviceId?: string; output?: string }[];
}

export interface HealthServiceOptions {
  /** Only instances carrying this tag. */
  tag?: string;
  /** Only instances whose checks all pass (`?passing`). */
  passing?: boolean;
  /** Keep each check's `Output` (for a one-off read, such as `resec list`; never for a watch). */
  checkOutput?: boolean;
  index?: number;
  waitMs?: Milliseconds;
  signal?: AbortSignal;
}

export interface HealthServiceResult {
  entries: HealthEntry[];
  index: number;
  meta: ResponseMeta;
}

/** A node-health read's default wait: its one caller's (the holder watch), not Consul's 5 minutes. */
const NODE_HEALTH_WAIT_MS = 10_000;

const STATUS_RANK: Record<CheckStatus, number> = {
  passing: 0,
  warning: 1,
  critical: 2,
};

/**
 * Lists the instances of a service with their health.
 *
 * @example
 * ```ts
 * const { entries } = await healthService(client, "redis", { tag: "master", passing: true });
 * ```
 */
export async function healthService(
  client: ConsulClient,
  name: string,
  options: HealthServiceOptions = {},
): Promise<HealthServiceResult> {
  const response = await client.request({
    method: "GET",
    path: `/v1/health/service/${encodePath(name)}`,
    endpoint: "health.service",
    query: { tag: options.tag, passing: options.passing },
    action: `reading the health of service "${name}"`,
    signal: options.signal,
    blocking: options.index !== undefined && options.index > 0
      ? { index: options.index, waitMs: options.waitMs ?? DEFAULT_BLOCKING_WAIT_MS }
      : undefined,
    decode: (json) =>
      asArray(json, "the answer").map((entry, position) =>
        decodeHealthEntry(entry, position, { checkOutput: options.checkOutput })
      ),
  });
  return { entries: response.value ?? [], index: response.meta.index ?? 0, meta: response.meta };
}

/**
 * Watches the instances of a service, yielding the list when it first arrives and when it changes.
 *
 * @example
 * ```ts
 * await using watch = watchHealthService(client, "redis", { tag: "master", passing: true });
 * for await (const entries of watch) console.log(entries.map((entry) => entry.address));
 * ```
 */
export function watchHealthService(
  client: ConsulClient,
  name: string,
  options: { tag?: string; passing?: boolean } & Omit<WatchOptions<HealthEntry[]>, "fetch"> = {},
): BlockingWatch<HealthEntry[]> {
  const { tag, passing, ...watchOptions } = options;
  return new BlockingWatch({
    name: `health ${name}`,
    clock: client.clock,
    logger: client.logger,
    ...watchOptions,
    fetch: async ({ index, waitMs, signal }) => {
      const result = await healthService(client, name, { tag, passing, index, waitMs, signal });
      return { value: result.entries, index: result.index };
    },
  });
}

/** A check's `Status`, refused unless it is one Consul documents. */
function checkStatusField(fields: JsonObject, what: string): CheckStatus {
  const status = stringField(fields, "Status", what);
  // Own keys only: `in` would take "toString" or "__proto__" for a status.
  if (!Object.hasOwn(STATUS_RANK, status)) {
    throw new TypeError(`expected ${what}.Status to be a check status, got "${status}"`);
  }
  return status as CheckStatus;
}

/**
 * Decodes one element of `/v1/health/service/<name>`; check outputs only with `checkOutput`.
 *
 * @example
 * ```ts
 * const { entries } = await healthService(client, "redis-master", { passing: true });
 * // each entry came through decodeHealthEntry: entries[0]?.address, entries[0]?.status
 * ```
 */
export function decodeHealthEntry(
  json: unknown,
  position = 0,
  options: { checkOutput?: boolean } = {},
): HealthEntry {
  const what = `entry ${position}`;
  const object = asObject(json, what);
  const node = asObject(object.Node, `${what}.Node`);
  const service = asObject(object.Service, `${what}.Service`);
  const checks = asArray(object.Checks, `${what}.Checks`).map((check, index) => {
    const checkWhat = `${what}.Checks[${index}]`;
    const fields = asObject(check, checkWhat);
    const status = checkStatusField(fields, checkWhat);
    const serviceId = optionalStringField(fields, "ServiceID", checkWhat);
    const output = options.checkOutput
      ? optionalStringField(fields, "Output", checkWhat)
      : undefined;
    return {
      id: stringField(fields, "CheckID", checkWhat),
      name: optionalStringField(fields, "Name", checkWhat) ?? "",
      status,
      ...(serviceId ? { serviceId } : {}),
      ...(output !== undefined ? { output } : {}),
    };
  });
  const status = checks.reduce<CheckStatus>(
    (worst, check) => STATUS_RANK[check.status] > STATUS_RANK[worst] ? check.status : worst,
    "passing",
  );
  return {
    node: stringField(node, "Node", `${what}.Node`),
    address: optionalStringField(service, "Address", `${what}.Service`) ??
      stringField(node, "Address", `${what}.Node`),
    port: portField(service, "Port", `${what}.Service`),
    serviceId: stringField(service, "ID", `${what}.Service`),
    serviceName: stringField(service, "Service", `${what}.Service`),
    tags: stringListField(service, "Tags", `${what}.Service`),
    meta: serviceMeta(service.Meta, `${what}.Service.Meta`),
    status,
    checks,
  };
}

/** Service.Meta: null or an object of strings (Consul refuses any other value at registration). */
function serviceMeta(value: unknown, what: string): Record<string, string> {
  if (value === null || value === undefined) return {};
  const meta: Record<string, string> = {};
  for (const [key, item] of Object.entries(asObject(value, what))) {
    if (typeof item === "string") meta[key] = item;
  }
  return meta;
}

/**
 * The status of a node's `serfHealth` check: whether Consul's gossip still reaches the node's agent.
 * `status` is undefined when the node or the check is unknown (a node that left is deregistered).
 * With `index`, a blocking read that returns when the node's health changes or `waitMs` passed.
 *
 * @example
 * ```ts
 * const { status } = await nodeGossipHealth(client, "redis-2"); // "critical" once gossip gave up
 * ```
 */
export async function nodeGossipHealth(
  client: ConsulClient,
  node: string,
  options: { index?: number; waitMs?: Milliseconds; signal?: AbortSignal } = {},
): Promise<{ status: CheckStatus | undefined; index: number }> {
  const response = await client.request({
    method: "GET",
    path: `/v1/health/node/${encodePath(node)}`,
    endpoint: "health.node",
    action: `reading the health of node "${node}"`,
    signal: options.signal,
    blocking: options.index !== undefined && options.index > 0
      ? { index: options.index, waitMs: options.waitMs ?? NODE_HEALTH_WAIT_MS }
      : undefined,
    decode: (json) =>
      asArray(json, "the answer").map((check, index) => {
        const what = `check ${index}`;
        const fields = asObject(check, what);
        return { id: stringField(fields, "CheckID", what), status: checkStatusField(fields, what) };
      }),
  });
  return {
    status: response.value?.find((check) => check.id === "serfHealth")?.status,
    index: response.meta.index ?? 0,
  };
}
