/**
 * Test helpers for code built on the Consul client: a fetch that answers from a script (pair it with
 * the ManualClock of lib/clock.ts). No server, no real waiting.
 */
import type { FetchLike } from "./client.ts";

/** One request the scripted fetch received. */
export interface RecordedRequest {
  method: string;
  url: URL;
  headers: Headers;
  body: string | undefined;
  signal: AbortSignal | undefined;
}

/** An answer: a Response, an error to throw, or a function of the request. */
export type ScriptedAnswer =
  | Response
  | Error
  | ((request: RecordedRequest) => Response | Promise<Response>);

/** A JSON answer with Consul's headers. */
export function consulJson(
  body: unknown,
  options: { status?: number; index?: number; headers?: Record<string, string> } = {},
): Response {
  const headers: Record<string, string> = {
    "Content-Type": "application/json",
    ...options.headers,
  };
  if (options.index !== undefined) headers["X-Consul-Index"] = String(options.index);
  return new Response(JSON.stringify(body), { status: options.status ?? 200, headers });
}

/** A plain-text error answer, as Consul sends them. */
export function consulText(status: number, text: string, headers: Record<string, string> = {}) {
  return new Response(text, { status, headers: { "Content-Type": "text/plain", ...headers } });
}

/**
 * A fetch that answers each request with the next scripted answer (or the fallback), recording what it
 * was asked.
 *
 * @example
 * ```ts
 * const fetch = new ScriptedFetch([consulJson(true)]);
 * const client = new ConsulClient({ connection: { baseUrl: "http://consul" }, fetch: fetch.fetch });
 * ```
 */
export class ScriptedFetch {
  readonly requests: RecordedRequest[] = [];
  readonly #answers: ScriptedAnswer[];

  constructor(answers: ScriptedAnswer[] = [], readonly fallback?: ScriptedAnswer) {
    this.#answers = [...answers];
  }

  /** Adds answers to the end of the script. */
  push(...answers: ScriptedAnswer[]): void {
    this.#answers.push(...answers);
  }

  get remaining(): number {
    return this.#answers.length;
  }

  readonly fetch: FetchLike = async (input, init) => {
    const body = init.body === undefined || init.body === null
      ? undefined
      : typeof init.body === "string"
      ? init.body
      : new TextDecoder().decode(init.body as Uint8Array);
    const request: RecordedRequest = {
      method: init.method ?? "GET",
      url: new URL(input),
      headers: new Headers(init.headers),
      body,
      signal: init.signal ?? undefined,
    };
    this.requests.push(request);
    const answer = this.#answers.shift() ?? this.fallback;
    if (answer === undefined) {
      throw new Error(`ScriptedFetch has no answer for ${request.method} ${input}`);
    }
    if (answer instanceof Error) throw answer;
    if (answer instanceof Response) return answer;
    return await answer(request);
  };
}

/** An answer that never comes: it only ends when the request's signal aborts. */
export function hangingAnswer(request: RecordedRequest): Promise<Response> {
  return new Promise((_resolve, reject) => {
    const signal = request.signal;
    if (signal?.aborted) return reject(signal.reason);
    signal?.addEventListener("abort", () => reject(signal.reason), { once: true });
  });
}
