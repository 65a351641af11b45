/**
 * The HTTP API as one function from Request to Response: load-balancer checks (`/master`, `/replica`,
 * `/health` …), `/state` and `/metrics`. No I/O here, so tests call it with `new Request(...)`.
 *
 * Role endpoints answer 200 or 503 (what HAProxy and Consul HTTP checks read) with a short JSON body
 * saying why; HEAD gets the same status and headers with no body.
 */
import { type Logger, silentLogger } from "../log.ts";
import { PROMETHEUS_CONTENT_TYPE } from "../metrics/registry.ts";
import { LagSyntaxError, parseLagBound } from "./lag.ts";
import type { MetricsSource, NodeStatus, StatusSource } from "./status.ts";

/** Whether a node passes an endpoint's check, and if not, why (one sentence for the body). */
export type CheckResult = { readonly ok: true } | { readonly ok: false; readonly reason: string };

const PASS: CheckResult = { ok: true };
const fail = (reason: string): CheckResult => ({ ok: false, reason });

/** `/master`, `/primary`: the node clients should write to. */
export function checkMaster(status: NodeStatus): CheckResult {
  if (status.role !== "master") return fail(`Redis is ${status.role}, not master`);
  if (!status.holdsLock) return fail("this node does not hold the lock");
  if (!status.redisHealthy) return fail("Redis is not healthy");
  return PASS;
}

/** `/replica`: a replica clients may read from, optionally within `maxLagBytes` of its master. */
export function checkReplica(status: NodeStatus, maxLagBytes?: number): CheckResult {
  if (status.role !== "replica") return fail(`Redis is ${status.role}, not replica`);
  if (!status.redisHealthy) return fail("Redis is not healthy");
  if (!status.linkUp) return fail("the replication link to the master is down");
  if (maxLagBytes !== undefined) {
    if (status.lagBytes === undefined) return fail("the replication lag is not known");
    if (status.lagBytes > maxLagBytes) {
      return fail(`the replication lag of ${status.lagBytes} bytes exceeds ${maxLagBytes}`);
    }
  }
  return PASS;
}

/** `/health`: the agent and its Redis both work, whatever the role. */
export function checkHealth(status: NodeStatus): CheckResult {
  if (!status.agentHealthy) return fail("the agent is not healthy");
  if (!status.redisHealthy) return fail("Redis is not healthy");
  return PASS;
}

/** `/readiness`: the agent knows its Redis's role. */
export function checkReadiness(status: NodeStatus): CheckResult {
  return status.role === "unknown" ? fail("the role of Redis is not known yet") : PASS;
}

/** Every path and the methods it takes. */
export const ROUTES: Readonly<Record<string, readonly string[]>> = {
  "/master": ["GET", "HEAD"],
  "/primary": ["GET", "HEAD"],
  "/replica": ["GET", "HEAD"],
  "/health": ["GET", "HEAD"],
  "/liveness": ["GET", "HEAD"],
  "/readiness": ["GET", "HEAD"],
  "/state": ["GET", "HEAD"],
  "/metrics": ["GET", "HEAD"],
};

export interface HttpHandlerOptions {
  status: StatusSource;
  metrics: MetricsSource;
  logger?: Logger;
}

/** Answers one request; never throws. */
export type HttpHandler = (request: Request) => Response;

const JSON_TYPE = "application/json; charset=utf-8";

/**
 * Creates the request handler the server runs (exported for tests).
 *
 * @example
 * ```ts
 * const handle = createHttpHandler({ status, metrics });
 * handle(new Request("http://localhost/master")).status; // 200 or 503
 * ```
 */
export function createHttpHandler(options: HttpHandlerOptions): HttpHandler {
  const logger = options.logger ?? silentLogger;
  const { status: source, metrics } = options;

  const roleCheck = (check: (status: NodeStatus) => CheckResult) => () => {
    const status = source.status();
    return checkResponse(status, check(status));
  };
  const routes: Record<string, (url: URL) => Response> = {
    "/master": roleCheck(checkMaster),
    "/primary": roleCheck(checkMaster),
    "/replica": (url) => {
      const bounds = url.searchParams.getAll("lag");
      if (bounds.length > 1) return errorResponse(400, "Give the lag parameter once");
      let maxLagBytes: number | undefined;
      if (bounds.length === 1) {
        try {
          maxLagBytes = parseLagBound(bounds[0]!);
        } catch (error) {
          if (error instanceof LagSyntaxError) return errorResponse(400, error.message);
          throw error;
        }
      }
      const status = source.status();
      return checkResponse(status, checkReplica(status, maxLagBytes));
    },
    "/health": roleCheck(checkHealth),
    "/liveness": () => jsonResponse(200, { alive: true }),
    "/readiness": roleCheck(checkReadiness),
    "/state": () => new Response(`${toJson(source.state())}\n`, { headers: headers(JSON_TYPE) }),
    "/metrics": () => new Response(metrics.render(), { headers: headers(PROMETHEUS_CONTENT_TYPE) }),
  };

  return (request) => {
    let path = "?";
    let response: Response;
    try {
      const url = new URL(request.url);
      path = url.pathname;
      const allowed = Object.hasOwn(ROUTES, path) ? ROUTES[path]! : undefined;
      if (allowed === undefined) {
        response = errorResponse(404, "Not found");
      } else if (!allowed.includes(request.method)) {
        response = errorResponse(405, "Method not allowed");
        response.headers.set("Allow", allowed.join(", "));
      } else {
        response = routes[path]!(url);
      }
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      logger.error("http request failed", { path: shorten(path), error: message });
      response = errorResponse(500, "Internal error");
    }
    logger.debug("http request", {
      method: shorten(request.method),
      path: shorten(path),
      status: response.status,
    });
    if (request.method === "HEAD") {
      // Same status and headers as GET; the body's stream is cancelled, never sent.
      void response.body?.cancel();
      return new Response(null, { status: response.status, headers: response.headers });
    }
    return response;
  };
}

function checkResponse(status: NodeStatus, result: CheckResult): Response {
  return jsonResponse(result.ok ? 200 : 503, {
    role: status.role,
    holdsLock: status.holdsLock,
    redisHealthy: status.redisHealthy,
    agentHealthy: status.agentHealthy,
    linkUp: status.linkUp,
    lagBytes: status.lagBytes ?? null,
    paused: status.paused,
    ...(result.ok ? {} : { reason: result.reason }),
  });
}

function jsonResponse(status: number, body: Record<string, unknown>): Response {
  return new Response(`${JSON.stringify(body)}\n`, { status, headers: headers(JSON_TYPE) });
}

function errorResponse(status: number, message: string): Response {
  return jsonResponse(status, { error: message });
}

function headers(contentType: string): Headers {
  // Checks must see the live answer, never a cached one.
  return new Headers({ "Content-Type": contentType, "Cache-Control": "no-store" });
}

/** JSON for /state: errors as {name, message}, bigints as strings; pretty, for people with curl. */
function toJson(value: unknown): string {
  return JSON.stringify(value ?? null, (_key, each: unknown) => {
    if (each instanceof Error) return { name: each.name, message: each.message };
    if (typeof each === "bigint") return each.toString();
    return each;
  }, 2);
}

/** Request text in a log line is cut short: paths and methods come from anyone who can connect. */
const LOGGED_REQUEST_MAX_CHARS = 120;

function shorten(text: string): string {
  return text.length > LOGGED_REQUEST_MAX_CHARS
    ? `${text.slice(0, LOGGED_REQUEST_MAX_CHARS)}…`
    : text;
}
