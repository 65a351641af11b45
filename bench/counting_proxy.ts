/**
 * An HTTP proxy between one agent and Consul that counts the agent's requests, so we can say how many
 * Consul requests per minute an agent makes at steady state. Bodies are passed through untouched;
 * blocking queries simply stay open until Consul answers.
 */

/** Headers that belong to one hop, not to the request or response. */
const HOP_HEADERS = [
  "connection",
  "keep-alive",
  "transfer-encoding",
  "content-length",
  "host",
  "upgrade",
];

/** Request counts by `METHOD /endpoint` (query string left out, IDs folded). */
export type RequestCounts = Map<string, number>;

export class CountingProxy implements AsyncDisposable {
  readonly #server: Deno.HttpServer<Deno.NetAddr>;
  readonly #counts: RequestCounts = new Map();
  readonly #pending = new Set<AbortController>();

  private constructor(readonly target: string) {
    this.#server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {} },
      (request) => this.#forward(request),
    );
  }

  /** Starts a proxy to `target` (`host:port` of the Consul HTTP API). */
  static start(target: string): CountingProxy {
    return new CountingProxy(target);
  }

  /** host:port the agent should use as CONSUL_HTTP_ADDR. */
  get address(): string {
    return `127.0.0.1:${this.#server.addr.port}`;
  }

  /** Total requests seen so far. */
  total(): number {
    let sum = 0;
    for (const count of this.#counts.values()) sum += count;
    return sum;
  }

  /** A copy of the counts by `METHOD /path`. */
  counts(): RequestCounts {
    return new Map(this.#counts);
  }

  async close(): Promise<void> {
    for (const controller of this.#pending) controller.abort();
    await this.#server.shutdown();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #forward(request: Request): Promise<Response> {
    const url = new URL(request.url);
    const key = `${request.method} ${endpointOf(url.pathname)}`;
    this.#counts.set(key, (this.#counts.get(key) ?? 0) + 1);
    const headers = new Headers(request.headers);
    for (const name of HOP_HEADERS) headers.delete(name);
    // Aborted only by close(): an agent that hangs up simply stops reading the answer.
    const controller = new AbortController();
    this.#pending.add(controller);
    try {
      const body = request.body ? await request.arrayBuffer() : undefined;
      const upstream = await fetch(`http://${this.target}${url.pathname}${url.search}`, {
        method: request.method,
        headers,
        body,
        redirect: "manual",
        signal: controller.signal,
      });
      // fetch already decoded any compressed body, so its length and encoding no longer apply.
      const responseHeaders = new Headers(upstream.headers);
      for (const name of [...HOP_HEADERS, "content-encoding"]) responseHeaders.delete(name);
      const payload = await upstream.arrayBuffer();
      return new Response(payload, { status: upstream.status, headers: responseHeaders });
    } catch (error) {
      return new Response(`counting proxy: ${(error as Error).message}`, { status: 502 });
    } finally {
      this.#pending.delete(controller);
    }
  }
}

/** Endpoints whose last path segment is an ID (session, check, service): folded to ":id". */
const ID_ENDPOINTS = [
  "/v1/session/renew/",
  "/v1/session/destroy/",
  "/v1/session/info/",
  "/v1/agent/check/update/",
  "/v1/agent/check/pass/",
  "/v1/agent/check/warn/",
  "/v1/agent/check/fail/",
  "/v1/agent/service/deregister/",
];

/**
 * The path with per-node parts folded, so counts of several agents line up:
 * `/v1/session/renew/<uuid>` → `/v1/session/renew/:id`, `/v1/kv/x/127.0.0.1%3A6379` → `/v1/kv/x/:node`.
 */
export function endpointOf(path: string): string {
  const prefix = ID_ENDPOINTS.find((candidate) => path.startsWith(candidate));
  if (prefix) return `${prefix}:id`;
  return path.split("/").map((segment) => /%3A\d+$/i.test(segment) ? ":node" : segment).join("/");
}
