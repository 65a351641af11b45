/**
 * A TCP proxy a test controls, to cut one agent off from Consul while everything else still reaches it.
 * `cut()` behaves like a network partition: open connections stop carrying bytes and new ones are
 * accepted but never answered, so the agent sees timeouts, not quick refusals; `refuse()` gives it
 * the quick failures instead.
 */
import { freePort } from "./ports.ts";

export class TcpProxy implements AsyncDisposable {
  readonly port: number;
  readonly #listener: Deno.TcpListener;
  readonly #connections = new Set<Deno.Conn>();
  readonly #accepting: Promise<void>;
  #cut = false;
  #refusing = false;

  private constructor(readonly target: { hostname: string; port: number }) {
    this.port = freePort();
    this.#listener = Deno.listen({ hostname: "127.0.0.1", port: this.port });
    this.#accepting = this.#accept();
  }

  /** Starts forwarding 127.0.0.1:<port> to `target`. */
  static start(target: { hostname: string; port: number }): TcpProxy {
    return new TcpProxy(target);
  }

  /** host:port clients connect to. */
  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** Partitions: stalls every open connection and every new one. */
  cut(): void {
    this.#cut = true;
  }

  /**
   * Refuses: closes every open connection and each new one at once, so every request fails fast
   * (as a Consul without quorum answers each one with an error), until `heal()`.
   */
  refuse(): void {
    this.#refusing = true;
    for (const connection of this.#connections) this.#closeQuietly(connection);
    this.#connections.clear();
  }

  /** Heals the partition: stalled connections are closed (as a timeout would), new ones forward. */
  heal(): void {
    this.#cut = false;
    this.#refusing = false;
    for (const connection of this.#connections) this.#closeQuietly(connection);
    this.#connections.clear();
  }

  async close(): Promise<void> {
    this.#listener.close();
    for (const connection of this.#connections) this.#closeQuietly(connection);
    await this.#accepting;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async #accept(): Promise<void> {
    try {
      for await (const client of this.#listener) {
        if (this.#refusing) {
          this.#closeQuietly(client);
          continue;
        }
        this.#connections.add(client);
        if (this.#cut) continue; // accepted, never answered
        void this.#forward(client);
      }
    } catch { /* listener closed */ }
  }

  async #forward(client: Deno.Conn): Promise<void> {
    let upstream: Deno.Conn;
    try {
      upstream = await Deno.connect(this.target);
    } catch {
      this.#closeQuietly(client);
      return;
    }
    this.#connections.add(upstream);
    const pump = async (from: Deno.Conn, to: Deno.Conn) => {
      const buffer = new Uint8Array(16 * 1024);
      try {
        while (true) {
          const read = await from.read(buffer);
          if (read === null) break;
          // While cut, bytes are swallowed: the peer waits as on a dead network.
          if (this.#cut) continue;
          let written = 0;
          while (written < read) written += await to.write(buffer.subarray(written, read));
        }
      } catch { /* closed */ }
      if (!this.#cut) {
        this.#closeQuietly(from);
        this.#closeQuietly(to);
      }
    };
    await Promise.all([pump(client, upstream), pump(upstream, client)]);
    this.#connections.delete(client);
    this.#connections.delete(upstream);
  }

  #closeQuietly(connection: Deno.Conn): void {
    try {
      connection.close();
    } catch { /* already closed */ }
  }
}
