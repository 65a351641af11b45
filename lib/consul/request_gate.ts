/**
 * Keeps an agent's connections to Consul few. HTTP/1.1 carries one request at a time per connection,
 * so a client needs as many connections as it has requests in flight. A blocking query holds its
 * connection for the whole wait and goes straight through; every other request waits for ONE slot.
 * An agent with two blocking queries then needs three connections, and keeps reusing them.
 *
 * Session renewals and check updates, the heartbeats a lock and a registration live by, go before
 * other waiting requests. Both record when they were sent before they queue, so a wait here only
 * makes what they confirm older, never newer than it is.
 */
import type { FetchLike } from "./client.ts";

/** True for a request that blocks for a change (it carries a positive `index`). */
export function isBlockingRequest(url: URL): boolean {
  return Number(url.searchParams.get("index") ?? "0") > 0;
}

/** True for the heartbeats that jump the queue: session renewals and TTL check updates. */
export function isHeartbeatRequest(url: URL): boolean {
  return url.pathname.startsWith("/v1/session/renew/") ||
    url.pathname.startsWith("/v1/agent/check/");
}

interface Waiter {
  readonly go: () => void;
}

/**
 * Wraps a fetch so that at most one non-blocking request is in flight at a time.
 *
 * @example
 * ```ts
 * const gate = new RequestGate((input, init) => fetch(input, init));
 * const client = new ConsulClient({ connection, fetch: gate.fetch });
 * ```
 */
export class RequestGate {
  /** How many non-blocking requests are in flight now (0 or 1), for tests. */
  inFlight = 0;
  readonly #fetch: FetchLike;
  readonly #heartbeats: Waiter[] = [];
  readonly #others: Waiter[] = [];

  constructor(fetch: FetchLike) {
    this.#fetch = fetch;
  }

  /** The gated fetch. */
  readonly fetch: FetchLike = async (input, init) => {
    const url = new URL(input);
    if (isBlockingRequest(url)) return await this.#fetch(input, init);
    await this.#turn(isHeartbeatRequest(url) ? this.#heartbeats : this.#others, init.signal);
    try {
      const response = await this.#fetch(input, init);
      // Read the body while holding the slot: the connection is free for the next request only then.
      const body = await response.arrayBuffer();
      return new Response(response.status === 204 || response.status === 304 ? null : body, {
        status: response.status,
        statusText: response.statusText,
        headers: response.headers,
      });
    } finally {
      this.inFlight--;
      this.#next();
    }
  };

  /**
   * Waits until the slot is ours (taken for us before we resume, so nobody slips in between);
   * rejects with the signal's reason if it aborts first.
   */
  #turn(queue: Waiter[], signal: AbortSignal | null | undefined): Promise<void> {
    if (this.inFlight === 0 && this.#heartbeats.length === 0 && this.#others.length === 0) {
      this.inFlight++;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const onAbort = () => {
        const at = queue.indexOf(waiter);
        if (at >= 0) queue.splice(at, 1);
        reject(signal!.reason);
      };
      const waiter: Waiter = {
        go: () => {
          signal?.removeEventListener("abort", onAbort);
          this.inFlight++;
          resolve();
        },
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      queue.push(waiter);
    });
  }

  #next(): void {
    if (this.inFlight > 0) return;
    const waiter = this.#heartbeats.shift() ?? this.#others.shift();
    waiter?.go();
  }
}
