/**
 * The HTTP API for load balancers and operators (off unless HTTP_ADDR is set).
 *
 * @example
 * ```ts
 * import { parseHttpAddr, startHttpServer } from "./lib/http/mod.ts";
 * await using server = await startHttpServer({ address: parseHttpAddr(":8008"), status, metrics });
 * ```
 */
export * from "./addr.ts";
export * from "./handler.ts";
export * from "./lag.ts";
export * from "./server.ts";
export * from "./status.ts";
