/**
 * The Consul HTTP API over an injected `fetch`: one `request()` that adds the token, datacenter and
 * namespace, puts a deadline on every call, reads Consul's index headers and turns failures into the
 * typed errors of errors.ts.
 */
import { readBoundedText } from "../http/body.ts";
import { type Clock, systemClock } from "../clock.ts";
import type { Milliseconds } from "../duration.ts";
import { type Logger, silentLogger } from "../log.ts";
import type { ConsulConnectionConfig } from "./connection.ts";
import {
  ConsulMalformedResponseError,
  ConsulResponseTooLargeError,
  ConsulTimeoutError,
  ConsulUnreachableError,
  httpErrorFor,
} from "./errors.ts";

/** The part of `fetch` the client uses; tests pass a function that answers from memory. */
export type FetchLike = (
  input: string,
  init: RequestInit & { client?: Deno.HttpClient },
) => Promise<Response>;

/** One finished request, for metrics. Carries no URL, query or token. */
export interface ConsulRequestEvent {
  /** A low-cardinality label: `kv.read`, `session.renew`, `health.service` … */
  endpoint: string;
  method: string;
  /** The HTTP status, or 0 when no answer came (unreachable, timeout, cancelled). */
  status: number;
  outcome: "ok" | "http_error" | "unreachable" | "timeout" | "cancelled" | "malformed";
  durationMs: Milliseconds;
}

/** What Consul says about the freshness of an answer. */
export interface ResponseMeta {
  /** X-Consul-Index: the blocking-query index of the answer. */
  index?: number;
  /** X-Consul-KnownLeader: false when the answering server knows of no leader. */
  knownLeader?: boolean;
  /** X-Consul-LastContact: ms since the answering server last heard from the leader. */
  lastContactMs?: number;
}

/** A query-string value; `true` adds a bare flag (`?consistent`), `false`/`undefined` nothing. */
export type QueryValue = string | number | bigint | boolean | undefined;

export interface ConsulRequest<T> {
  method: "GET" | "PUT" | "POST" | "DELETE";
  /** Starting with `/v1/`, each segment already encoded (see `encodePath`). */
  path: string;
  /** Metrics label (see ConsulRequestEvent). */
  endpoint: string;
  query?: Record<string, QueryValue>;
  /** A string or bytes go as they are; anything else is sent as JSON. */
  body?: unknown;
  /** Decodes a 2xx JSON answer (undefined when the body is empty); throw TypeError on a bad shape. */
  decode?: (json: unknown) => T;
  /** What the request attempts, for a 403 message: `writing key "resec/.lock"`. */
  action?: string;
  /** Makes this a blocking query; its deadline becomes wait + wait/16 + the blocking margin. */
  blocking?: { index: number; waitMs: Milliseconds };
  consistency?: "consistent" | "stale";
  /** Deadline of this request, overriding the client's default (not for blocking queries). */
  timeoutMs?: Milliseconds;
  /** Cancels the request; the promise then rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Non-2xx statuses answered to the caller instead of thrown, e.g. `[404]` for a KV read. */
  acceptStatus?: readonly number[];
  /** Add `?dc=` (default true; agent endpoints take no datacenter). */
  datacenter?: boolean;
}

export interface ConsulResponse<T> {
  status: number;
  /** The decoded body of a 2xx answer; undefined for an accepted non-2xx status. */
  value: T | undefined;
  meta: ResponseMeta;
}

export interface ConsulClientOptions {
  connection: ConsulConnectionConfig;
  /** Default: the platform's fetch. */
  fetch?: FetchLike;
  clock?: Clock;
  logger?: Logger;
  /** Called after every request, for metrics. Must not throw. */
  onRequest?: (event: ConsulRequestEvent) => void;
  /** Deadline of a non-blocking request (default 10 s). */
  requestTimeoutMs?: Milliseconds;
  /** Added to a blocking query's wait and Consul's wait/16 jitter (default 5 s). */
  blockingMarginMs?: Milliseconds;
  /** The most bytes read of one answer (default MAX_RESPONSE_BYTES). */
  maxResponseBytes?: number;
}

/** Consul caps `wait` at 10 minutes. */
export const MAX_BLOCKING_WAIT_MS = 600_000;

/** Consul's own default blocking wait (5 minutes), for reads whose caller names none. */
export const DEFAULT_BLOCKING_WAIT_MS = 300_000;

/** Deadline of a non-blocking request: a healthy local agent answers in milliseconds. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;

/** Added to a blocking query's deadline so a slow answer at the end of the wait is not cut off. */
export const DEFAULT_BLOCKING_MARGIN_MS = 5_000;

/** Consul adds up to wait/16 of random jitter to a blocking query's wait; the deadline allows it. */
const BLOCKING_JITTER_DIVISOR = 16;

/** The most characters of an error answer kept in the error's message. */
const ERROR_MESSAGE_MAX_CHARS = 1_000;

/** The most characters of an answer that is not JSON quoted in the error. */
const NOT_JSON_QUOTE_CHARS = 80;

/**
 * The most bytes read of one answer, error answers included. One instance in a health answer is about
 * 3 KiB (node, service and two checks, measured on Consul 1.x), 11 KiB with both check outputs at
 * Consul's 4 KiB cap: 32 MiB holds thousands of instances even then. A KV value is capped at 512 KiB.
 * Past this an answer is broken or hostile, and reading on would only exhaust the agent's memory
 * (the systemd unit allows 256 MB).
 */
export const MAX_RESPONSE_BYTES = 32 * 1024 * 1024;

/**
 * A client of one Consul agent. Owns the TLS/socket HTTP client when the connection needs one: close it
 * with `close()` or `using`.
 *
 * @example
 * ```ts
 * using client = new ConsulClient({ connection: { baseUrl: "http://127.0.0.1:8500" } });
 * const leader = await client.request({ method: "GET", path: "/v1/status/leader", endpoint: "status" });
 * ```
 */
export class ConsulClient {
  readonly connection: ConsulConnectionConfig;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly requestTimeoutMs: Milliseconds;
  readonly blockingMarginMs: Milliseconds;
  readonly maxResponseBytes: number;
  readonly #fetch: FetchLike;
  readonly #onRequest: ((event: ConsulRequestEvent) => void) | undefined;
  readonly #httpClient: Deno.HttpClient | undefined;
  /** Where requests go: baseUrl without a trailing slash. */
  readonly #origin: string;
  readonly #headers: Record<string, string>;

  constructor(options: ConsulClientOptions) {
    this.connection = options.connection;
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger ?? silentLogger;
    this.requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.blockingMarginMs = options.blockingMarginMs ?? DEFAULT_BLOCKING_MARGIN_MS;
    this.maxResponseBytes = options.maxResponseBytes ?? MAX_RESPONSE_BYTES;
    this.#fetch = options.fetch ?? ((input, init) => fetch(input, init));
    this.#onRequest = options.onRequest;
    const transport = buildTransport(this.connection, this.logger);
    this.#httpClient = transport.httpClient;
    this.#origin = transport.origin;
    this.#headers = {};
    if (this.connection.token !== undefined) {
      this.#headers["X-Consul-Token"] = this.connection.token;
    }
    if (this.connection.basicAuth !== undefined) {
      const { user, password } = this.connection.basicAuth;
      this.#headers["Authorization"] = `Basic ${encodeBase64(`${user}:${password}`)}`;
    }
  }

  /**
   * Sends one request and decodes the answer. Rejects with a ConsulError subclass, or with the
   * caller's abort reason when `signal` aborts.
   */
  async request<T = unknown>(request: ConsulRequest<T>): Promise<ConsulResponse<T>> {
    const { method, path, endpoint } = request;
    const url = this.#url(request);
    const timeoutMs = this.deadlineFor(request);
    const deadline = AbortSignal.timeout(timeoutMs);
    const signal = request.signal ? AbortSignal.any([request.signal, deadline]) : deadline;
    const started = this.clock.now();
    const report = (status: number, outcome: ConsulRequestEvent["outcome"]) =>
      this.#onRequest?.({
        endpoint,
        method,
        status,
        outcome,
        durationMs: this.clock.now() - started,
      });

    const init: RequestInit & { client?: Deno.HttpClient } = {
      method,
      headers: { ...this.#headers },
      signal,
    };
    if (request.body !== undefined) {
      if (typeof request.body === "string" || request.body instanceof Uint8Array) {
        init.body = request.body as BodyInit;
      } else {
        init.body = JSON.stringify(request.body);
        (init.headers as Record<string, string>)["Content-Type"] = "application/json";
      }
    }
    if (this.#httpClient) init.client = this.#httpClient;

    let response: Response;
    let text: string | undefined;
    try {
      response = await this.#fetch(url, init);
      text = await readBoundedText(response, this.maxResponseBytes);
    } catch (error) {
      if (request.signal?.aborted) {
        report(0, "cancelled");
        throw request.signal.reason;
      }
      if (deadline.aborted || isTimeoutError(error)) {
        report(0, "timeout");
        throw new ConsulTimeoutError(method, path, timeoutMs, { cause: error });
      }
      report(0, "unreachable");
      throw new ConsulUnreachableError(this.connection.baseUrl, this.#describe(error), {
        cause: error,
      });
    }
    if (text === undefined) {
      report(response.status, "malformed");
      throw new ConsulResponseTooLargeError(method, path, this.maxResponseBytes);
    }

    let meta: ResponseMeta;
    try {
      meta = readMeta(response.headers);
    } catch (error) {
      report(response.status, "malformed");
      throw new ConsulMalformedResponseError(method, path, (error as Error).message);
    }
    const ok = response.status >= 200 && response.status < 300;
    if (!ok) {
      const message = this.#redact(text.trim()).slice(0, ERROR_MESSAGE_MAX_CHARS);
      if (request.acceptStatus?.includes(response.status)) {
        report(response.status, "ok");
        return { status: response.status, value: undefined, meta };
      }
      report(response.status, "http_error");
      throw httpErrorFor(
        response.status,
        message,
        method,
        path,
        request.action ?? `for ${method} ${path}`,
      );
    }

    let value: T;
    try {
      const json = text === "" ? undefined : JSON.parse(text);
      value = request.decode ? request.decode(json) : json as T;
    } catch (error) {
      report(response.status, "malformed");
      const detail = error instanceof SyntaxError
        ? `not JSON (${JSON.stringify(text.slice(0, NOT_JSON_QUOTE_CHARS))})`
        : (error as Error).message;
      throw new ConsulMalformedResponseError(method, path, detail, { cause: error });
    }
    report(response.status, "ok");
    return { status: response.status, value, meta };
  }

  /** Closes the TLS/socket HTTP client, if one was made. */
  close(): void {
    this.#httpClient?.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  /** The deadline a request gets: its own or the default, or for a blocking query wait + wait/16 + margin. */
  deadlineFor(request: Pick<ConsulRequest<unknown>, "blocking" | "timeoutMs">): Milliseconds {
    if (request.blocking && request.blocking.index > 0) {
      const wait = clampWait(request.blocking.waitMs);
      return Math.ceil(wait + wait / BLOCKING_JITTER_DIVISOR) + this.blockingMarginMs;
    }
    return request.timeoutMs ?? this.requestTimeoutMs;
  }

  #url(request: ConsulRequest<unknown>): string {
    const parts: string[] = [];
    const add = (key: string, value: QueryValue) => {
      if (value === undefined || value === false) return;
      parts.push(value === true ? key : `${key}=${encodeURIComponent(String(value))}`);
    };
    for (const [key, value] of Object.entries(request.query ?? {})) add(key, value);
    if (request.consistency) add(request.consistency, true);
    if (request.blocking && request.blocking.index > 0) {
      add("index", request.blocking.index);
      add("wait", `${clampWait(request.blocking.waitMs)}ms`);
    }
    if (request.datacenter !== false) add("dc", this.connection.datacenter);
    add("ns", this.connection.namespace);
    return `${this.#origin}${request.path}${parts.length > 0 ? `?${parts.join("&")}` : ""}`;
  }

  /**
   * Deno says "fetch failed" and puts the reason in `cause`, whose message repeats the URL: keep only
   * the reason, e.g. "client error (Connect): tcp connect error: Connection refused (os error 111)".
   */
  #describe(error: unknown): string {
    let message = error instanceof Error ? error.message : String(error);
    let cause = error instanceof Error ? error.cause : undefined;
    for (let depth = 0; cause instanceof Error && depth < 5; depth++) {
      message = cause.message;
      cause = cause.cause;
    }
    return this.#redact(message.replace(/^error sending request for url \([^)]*\): /, ""));
  }

  #redact(text: string): string {
    const { token, basicAuth } = this.connection;
    let out = text;
    if (token) out = out.replaceAll(token, "<token>");
    if (basicAuth?.password) out = out.replaceAll(basicAuth.password, "<password>");
    return out;
  }
}

/**
 * Encodes a KV key or an ID as URL path segments, keeping `/` between segments.
 *
 * @example
 * ```ts
 * encodePath("resec/.lock.candidates/[::1]:6379"); // "resec/.lock.candidates/%5B%3A%3A1%5D%3A6379"
 * ```
 */
export function encodePath(key: string): string {
  return key.split("/").map(encodeURIComponent).join("/");
}

function clampWait(waitMs: Milliseconds): Milliseconds {
  return Math.max(1, Math.min(MAX_BLOCKING_WAIT_MS, Math.round(waitMs)));
}

function isTimeoutError(error: unknown): boolean {
  return error instanceof DOMException && error.name === "TimeoutError";
}

function readMeta(headers: Headers): ResponseMeta {
  const meta: ResponseMeta = {};
  const index = headers.get("X-Consul-Index");
  if (index !== null) {
    if (!/^\d+$/.test(index.trim())) {
      throw new TypeError(`X-Consul-Index "${index}" is not a number`);
    }
    meta.index = Number(index.trim());
  }
  const knownLeader = headers.get("X-Consul-KnownLeader");
  if (knownLeader !== null) meta.knownLeader = knownLeader.trim() === "true";
  const lastContact = headers.get("X-Consul-LastContact");
  if (lastContact !== null && /^\d+$/.test(lastContact.trim())) {
    meta.lastContactMs = Number(lastContact.trim());
  }
  return meta;
}

function encodeBase64(text: string): string {
  const bytes = new TextEncoder().encode(text);
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}

/**
 * The HTTP client for a CA, a client certificate (mTLS) or a unix socket; none for plain http.
 */
function buildTransport(
  connection: ConsulConnectionConfig,
  logger: Logger,
): { httpClient: Deno.HttpClient | undefined; origin: string } {
  const origin = connection.baseUrl.replace(/\/+$/, "");
  if (connection.socketPath !== undefined) {
    return {
      httpClient: Deno.createHttpClient({
        proxy: { transport: "unix", path: connection.socketPath },
      }),
      origin,
    };
  }
  const tls = connection.tls;
  if (!tls || !origin.startsWith("https:")) return { httpClient: undefined, origin };
  const options: Deno.CreateHttpClientOptions & Partial<Deno.TlsCertifiedKeyPem> = {};
  if (tls.caCertPem) options.caCerts = [tls.caCertPem];
  if (tls.certPem && tls.keyPem) {
    options.cert = tls.certPem;
    options.key = tls.keyPem;
  }
  if (tls.serverName) {
    logger.warn(
      "CONSUL_TLS_SERVER_NAME cannot be honoured: Deno's fetch verifies Consul's certificate " +
        "against the host of the address",
    );
  }
  return { httpClient: Deno.createHttpClient(options as Deno.CreateHttpClientOptions), origin };
}
