/**
 * The HTTP API's server: `Deno.serve` running the handler of handler.ts, owned by one object that
 * closes it.
 */
import { ResecError } from "../errors.ts";
import type { HostPort } from "../address.ts";
import { formatHostPort } from "../address.ts";
import { type Logger, silentLogger } from "../log.ts";
import { createHttpHandler } from "./handler.ts";
import type { MetricsSource, StatusSource } from "./status.ts";

export interface HttpServerOptions {
  /** Where to listen (see parseHttpAddr); port 0 picks a free port (tests). */
  address: HostPort;
  status: StatusSource;
  metrics: MetricsSource;
  logger?: Logger;
  /** Stops the server when aborted (as `close()` does). */
  signal?: AbortSignal;
  /** Paths answered by their own handler instead (the failsafe call, lib/failsafe/peer.ts). */
  routes?: Readonly<Record<string, (request: Request) => Promise<Response>>>;
}

/** A running HTTP API. `close()` or `await using` stops it. */
export interface HttpServer extends AsyncDisposable {
  /** The address actually bound (the real port when 0 was asked for). */
  readonly address: HostPort;
  /** `http://host:port`, for tests and log lines. */
  readonly url: string;
  /** Settles when the server has stopped. */
  readonly finished: Promise<void>;
  /** Stops accepting connections, lets requests in flight finish, and resolves when stopped. */
  close(): Promise<void>;
}

/** Thrown when the server cannot listen (address in use, not permitted, no such host). */
export class HttpListenError extends ResecError {
  override name = "HttpListenError";
  constructor(readonly address: HostPort, cause: unknown) {
    super(
      `Cannot listen for HTTP on ${formatHostPort(address)}: ${
        cause instanceof Error ? cause.message : String(cause)
      }`,
      { cause },
    );
  }
}

/**
 * Starts the HTTP API.
 *
 * @example
 * ```ts
 * await using server = await startHttpServer({
 *   address: parseHttpAddr("127.0.0.1:8008"),
 *   status: agentStatus,
 *   metrics,
 *   logger,
 * });
 * ```
 */
export function startHttpServer(options: HttpServerOptions): Promise<HttpServer> {
  const logger = (options.logger ?? silentLogger).child("http");
  const handler = createHttpHandler({
    status: options.status,
    metrics: options.metrics,
    logger,
  });
  const stop = new AbortController();
  const signal = options.signal ? AbortSignal.any([stop.signal, options.signal]) : stop.signal;

  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    server = Deno.serve({
      hostname: options.address.host,
      port: options.address.port,
      signal,
      // Without onListen Deno prints its own line to stdout.
      onListen: () => {},
      // The handler never throws; this is the last guard should that ever change.
      onError: (error) => {
        logger.error("http request failed", {
          error: error instanceof Error ? error.message : String(error),
        });
        return new Response('{"error":"Internal error"}\n', {
          status: 500,
          headers: { "Content-Type": "application/json; charset=utf-8" },
        });
      },
    }, (request) => {
      const path = new URL(request.url).pathname;
      const route = options.routes && Object.hasOwn(options.routes, path)
        ? options.routes[path]
        : undefined;
      return route ? route(request) : handler(request);
    });
  } catch (error) {
    return Promise.reject(new HttpListenError(options.address, error));
  }

  const address: HostPort = { host: server.addr.hostname, port: server.addr.port };
  const url = `http://${formatHostPort(address)}`;
  logger.info("http api listening", { address: formatHostPort(address) });
  const finished = server.finished.then(() => logger.info("http api stopped"));
  const close = async () => {
    stop.abort();
    await finished;
  };
  return Promise.resolve({ address, url, finished, close, [Symbol.asyncDispose]: close });
}
