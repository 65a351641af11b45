/**
 * The Redis side of resec: what the agent learns from its local Redis (`RedisObserver`, `parseInfo`)
 * and what it does to it (`RedisCommander`), configured from `REDIS_*` (`parseRedisEnv`).
 *
 * @example
 * ```ts
 * const config = parseRedisEnv(new EnvReader(Deno.env.toObject()), Deno.readTextFileSync);
 * await using observer = new RedisObserver({ connection: config });
 * observer.start();
 * ```
 */
export * from "./errors.ts";
export * from "./info.ts";
export * from "./connection.ts";
export * from "./client.ts";
export * from "./observer.ts";
export * from "./commander.ts";
