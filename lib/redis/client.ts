/**
 * One ioredis connection with a deadline on everything: connecting, authenticating, every command.
 * The observer and the commander each own one; neither shares it.
 */
import { Redis } from "ioredis";
import { type Clock, systemClock } from "../clock.ts";
import type { Milliseconds } from "../duration.ts";
import { ioredisOptions, redisAddress, type RedisConnectionConfig } from "./connection.ts";
import {
  classifyRedisError,
  type RedisError,
  RedisTimeoutError,
  RedisUnavailableError,
} from "./errors.ts";

/**
 * A Redis connection's and command's deadline when the caller gives none: HEALTHCHECK_TIMEOUT's
 * default, as the Go resec had it.
 */
export const DEFAULT_REDIS_TIMEOUT_MS = 2_000;

/** A value a command takes. */
export type RedisArgument = string | number;

export interface RedisClientOptions {
  /** Deadline of the connection and of each command (unless a call gives its own). */
  timeoutMs: Milliseconds;
  /** `CLIENT SETNAME`, shown in `CLIENT LIST`. */
  connectionName: string;
  clock?: Clock;
  /** Aborts a connection attempt in progress (connect only). */
  signal?: AbortSignal;
}

/**
 * An authenticated connection to one Redis. Open it with `RedisClient.connect`; `closed` settles when
 * the server or the network ends it (never when we call `close()`).
 *
 * @example
 * ```ts
 * await using client = await RedisClient.connect(config, {
 *   timeoutMs: 2_000,
 *   connectionName: "resec-observer",
 * });
 * const info = await client.call("INFO") as string;
 * ```
 */
export class RedisClient {
  readonly address: string;
  /** Resolves, with the reason, when the connection ends without our asking. */
  readonly closed: Promise<RedisUnavailableError>;
  readonly #redis: Redis;
  readonly #config: RedisConnectionConfig;
  readonly #options: RedisClientOptions;
  readonly #clock: Clock;
  #open = true;
  #closing = false;
  #lastError: unknown;

  private constructor(config: RedisConnectionConfig, options: RedisClientOptions) {
    this.#config = config;
    this.#options = options;
    this.#clock = options.clock ?? systemClock;
    this.address = redisAddress(config);
    const redisOptions = ioredisOptions(config, { timeoutMs: options.timeoutMs });
    // We authenticate and name the connection ourselves: ioredis reports a failed AUTH only as an
    // 'error' event and still resolves connect(), which would hide a wrong password.
    delete redisOptions.username;
    delete redisOptions.password;
    delete redisOptions.connectionName;
    this.#redis = new Redis(redisOptions);
    this.#redis.on("error", (error: unknown) => {
      this.#lastError = error;
    });
    this.closed = new Promise((resolve) => {
      this.#redis.once("close", () => {
        this.#open = false;
        const cause = this.#lastError;
        const reason = cause === undefined
          ? new RedisUnavailableError(`Redis at ${this.address} closed the connection`)
          : classifyRedisError(cause, { command: "connection", address: this.address });
        if (!this.#closing) {
          resolve(
            reason instanceof RedisUnavailableError
              ? reason
              : new RedisUnavailableError(reason.message, { cause: reason }),
          );
        }
      });
    });
  }

  /**
   * Connects, authenticates (`AUTH`) and names the connection (`CLIENT SETNAME`), each within the
   * deadline. The SETNAME round trip also proves the server answers: a frozen Redis accepts TCP
   * connections but never replies.
   */
  static async connect(
    config: RedisConnectionConfig,
    options: RedisClientOptions,
  ): Promise<RedisClient> {
    const client = new RedisClient(config, options);
    const onAbort = () => client.close();
    options.signal?.addEventListener("abort", onAbort, { once: true });
    try {
      options.signal?.throwIfAborted();
      await client.#withDeadline("connect", options.timeoutMs, client.#redis.connect());
      if (config.password !== undefined) {
        const args = config.username === undefined
          ? [config.password]
          : [config.username, config.password];
        await client.call("AUTH", args);
      }
      await client.call("CLIENT", ["SETNAME", options.connectionName]);
    } catch (error) {
      client.close();
      throw client.#classify(error, "connect", options.timeoutMs);
    } finally {
      options.signal?.removeEventListener("abort", onAbort);
    }
    return client;
  }

  /** False once the connection has ended, for whatever reason. */
  get isOpen(): boolean {
    return this.#open;
  }

  /**
   * Sends one command and waits for its reply, at most `timeoutMs` (default: the client's). Error
   * replies and failures become `RedisError`s; the command name (never its arguments) goes in messages.
   */
  async call(
    command: string,
    args: readonly RedisArgument[] = [],
    options: { timeoutMs?: Milliseconds } = {},
  ): Promise<unknown> {
    const timeoutMs = options.timeoutMs ?? this.#options.timeoutMs;
    const label = describeCommand(command, args);
    if (!this.#open) {
      throw new RedisUnavailableError(`Redis at ${this.address} is not connected`);
    }
    try {
      return await this.#withDeadline(label, timeoutMs, this.#redis.call(command, ...args));
    } catch (error) {
      throw this.#classify(error, label, timeoutMs);
    }
  }

  /** Closes the connection at once; pending commands fail. Safe to call twice. */
  close(): void {
    this.#closing = true;
    this.#open = false;
    // disconnect() only half-closes and waits up to 2 s for the peer (a timer that outlives us when the
    // socket is already gone); a frozen or vanished server never answers, so drop the socket now.
    if (this.#redis.status !== "end") this.#redis.disconnect();
    this.#redis.stream?.destroy();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    this.close();
    return Promise.resolve();
  }

  #classify(error: unknown, command: string, timeoutMs: Milliseconds): RedisError {
    // ioredis rejects with a bare "Connection is closed." and reports the socket's reason (refused,
    // reset, TLS) only as an 'error' event: prefer that reason.
    if (
      error instanceof Error && /Connection is closed/.test(error.message) &&
      this.#lastError !== undefined
    ) {
      error = this.#lastError;
    }
    return classifyRedisError(error, {
      command,
      address: this.address,
      username: this.#config.username,
      timeoutMs,
    });
  }

  /** Races `promise` against a timer from the injected clock; the loser is cancelled or ignored. */
  async #withDeadline<T>(label: string, timeoutMs: Milliseconds, promise: Promise<T>): Promise<T> {
    const timer = new AbortController();
    // A late rejection of the abandoned promise must not become an unhandled rejection.
    promise.catch(() => {});
    const deadline = this.#clock.sleep(timeoutMs, timer.signal).then(() => {
      throw new RedisTimeoutError(label, timeoutMs);
    }, () => undefined as never);
    try {
      return await Promise.race([promise, deadline]);
    } finally {
      // A plain reason: abort() without one builds a DOMException and its stack on every command.
      timer.abort(DEADLINE_NOT_NEEDED);
    }
  }
}

/** Why a command's deadline timer is cancelled: it answered (or failed) in time. */
const DEADLINE_NOT_NEEDED = "the command settled before its deadline";

/** `INFO`, `CONFIG GET`, `CLIENT KILL`: the command and, for container commands, its subcommand. */
function describeCommand(command: string, args: readonly RedisArgument[]): string {
  const name = command.toUpperCase();
  const first = args[0];
  if (["CLIENT", "CONFIG", "ACL"].includes(name) && typeof first === "string") {
    return `${name} ${first.toUpperCase()}`;
  }
  return name;
}
