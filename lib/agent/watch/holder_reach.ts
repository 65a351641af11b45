/**
 * Whether the leader's Redis can be reached from this host: a TCP connection to its address every
 * REACH_PROBE_INTERVAL_MS. Only the connection is made (the kernel of the leader's host answers it
 * even while Redis is busy with a slow command), so a refused or unanswered connection means the
 * leader's host, or the network to it, is gone: the input of a fast takeover
 * (lib/reconciler/takeover.ts).
 */
import { BackgroundLoop } from "../../background_loop.ts";
import { formatHostPort, type HostPort, sameHostPort } from "../../address.ts";
import type { Clock } from "../../clock.ts";
import type { Milliseconds } from "../../duration.ts";
import type { Logger } from "../../log.ts";

/** How often the leader's address is tried. */
export const REACH_PROBE_INTERVAL_MS = 200;

/**
 * How long one attempt may take: a connection within one network answers in a millisecond or two, and
 * a lost SYN is not resent before a second, so an attempt that needs longer counts as failed.
 */
export const REACH_PROBE_TIMEOUT_MS = 300;

/** Opens a TCP connection to `address` and closes it; rejects when it fails or takes too long. */
export type ConnectProbe = (address: HostPort, timeoutMs: Milliseconds) => Promise<void>;

export interface HolderReachWatchOptions {
  /** The lock holder's Redis address when another node holds the lock; undefined otherwise. */
  leader: () => HostPort | undefined;
  connect: ConnectProbe;
  clock: Clock;
  logger: Logger;
  /** Called after every failed attempt, and when the leader is reached again. */
  onChange: () => void;
  intervalMs?: Milliseconds;
  timeoutMs?: Milliseconds;
}

/** Tries the leader's address on a timer; `unreachableForMs()` answers from the attempts so far. */
export class HolderReachWatch {
  readonly #options: HolderReachWatchOptions;
  readonly #loop = new BackgroundLoop(() => this.#run());
  #state: { address: HostPort; failingSince: number | undefined } | undefined;

  constructor(options: HolderReachWatchOptions) {
    this.#options = options;
  }

  /**
   * How long every attempt on `leader` has failed, counted from the start of the first failed one;
   * 0 while the last attempt succeeded or none was made yet.
   */
  unreachableForMs(leader: HostPort, now: number): number {
    const state = this.#state;
    if (!state || !sameHostPort(state.address, leader) || state.failingSince === undefined) {
      return 0;
    }
    return Math.max(0, now - state.failingSince);
  }

  start(): void {
    this.#loop.start();
  }

  stop(): Promise<void> {
    return this.#loop.stop();
  }

  async #run(): Promise<void> {
    const { clock, logger } = this.#options;
    const intervalMs = this.#options.intervalMs ?? REACH_PROBE_INTERVAL_MS;
    const timeoutMs = this.#options.timeoutMs ?? REACH_PROBE_TIMEOUT_MS;
    const signal = this.#loop.signal;
    while (!signal.aborted) {
      const leader = this.#options.leader();
      const startedAt = clock.now();
      if (!leader) {
        this.#state = undefined;
      } else {
        if (!this.#state || !sameHostPort(this.#state.address, leader)) {
          this.#state = { address: leader, failingSince: undefined };
        }
        const state = this.#state;
        try {
          await this.#options.connect(leader, timeoutMs);
          if (state.failingSince !== undefined) {
            logger.info("the leader's Redis can be reached again", {
              leader: formatHostPort(leader),
              afterMs: clock.now() - state.failingSince,
            });
            state.failingSince = undefined;
            this.#options.onChange();
          }
        } catch (error) {
          if (signal.aborted) return;
          if (state.failingSince === undefined) {
            logger.warn("cannot reach the leader's Redis", {
              leader: formatHostPort(leader),
              error,
            });
            state.failingSince = startedAt;
          }
          this.#options.onChange();
        }
      }
      try {
        await clock.sleep(Math.max(0, startedAt + intervalMs - clock.now()), signal);
      } catch {
        return; // stopped
      }
    }
  }
}

/**
 * A ConnectProbe over Deno's TCP: the connection is closed as soon as it is made, or whenever it is
 * made after the try timed out. A try that timed out may still be pending in the kernel (a SYN is
 * retried for about two minutes): while it is, the next tries fail at once without opening another
 * socket, so an unanswered address costs one socket, not five a second.
 */
export function tcpConnectProbe(
  connect: (options: { hostname: string; port: number }) => Promise<{ close(): void }> =
    Deno.connect,
): ConnectProbe {
  let pending: Promise<unknown> | undefined;
  return (address, timeoutMs) => {
    if (pending) {
      return Promise.reject(
        new Error(`the last TCP connection to ${formatHostPort(address)} is still pending`),
      );
    }
    const attempt = connect({ hostname: address.host, port: address.port });
    const current = attempt.then((connection) => connection.close(), () => {}).finally(() => {
      if (pending === current) pending = undefined;
    });
    pending = current;
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const timer = setTimeout(() => {
        settled = true;
        reject(new Error(`no TCP connection to ${formatHostPort(address)} within ${timeoutMs}ms`));
      }, timeoutMs);
      attempt.then(
        () => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          resolve();
        },
        (error) => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          reject(error);
        },
      );
    });
  };
}
