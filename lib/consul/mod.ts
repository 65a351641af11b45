/**
 * The Consul HTTP API over the platform's fetch: connection settings, a typed client, sessions, KV,
 * the leader lock, services and checks, health, and blocking watches.
 *
 * @example
 * ```ts
 * const reader = new EnvReader(Deno.env.toObject());
 * using client = new ConsulClient({ connection: parseConsulEnv(reader, Deno.readTextFileSync) });
 * ```
 */
export * from "./errors.ts";
export * from "./connection.ts";
export * from "./client.ts";
export * from "./session.ts";
export * from "./kv.ts";
export * from "./lock.ts";
export * from "./service.ts";
export * from "./health.ts";
export * from "./watch.ts";
