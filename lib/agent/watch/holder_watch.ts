/**
 * Ends the lock session of a leader whose host is gone.
 *
 * When a host dies with its Consul agent, nothing lapses the agent check its session is tied to (that
 * TTL ran in the dead agent), and Consul keeps the session for up to 2 × TTL. Gossip does notice:
 * the node's `serfHealth` turns critical within seconds. Tying the session to `serfHealth` would end
 * it at once, but also on every short crash of that Consul agent. So the other agents watch the
 * leader's node instead, and end its session once `serfHealth` has stayed critical as long as its
 * agent check would take to lapse (TTL − lock delay); the lock delay follows. A leader that is alive
 * but cut off has fenced itself at the fence bound (0.6 × TTL), with the margin it keeps before a
 * session that expires: no peer can lead before the old master stopped taking writes.
 */
import { BackgroundLoop } from "../../background_loop.ts";
import type { Clock } from "../../clock.ts";
import type { CheckStatus } from "../../consul/health.ts";
import type { Milliseconds } from "../../duration.ts";
import type { Logger } from "../../log.ts";
import type { LeaderView } from "../../reconciler/model.ts";

/** The Consul calls the watch makes. */
export interface HolderHostPort {
  /** The node a session was created on; undefined when the session is gone. */
  sessionNode(session: string, signal: AbortSignal): Promise<string | undefined>;
  /** The node's `serfHealth`; with an index, blocks up to `waitMs` for a change. */
  gossipHealth(
    node: string,
    options: { index: number; waitMs: Milliseconds; signal: AbortSignal },
  ): Promise<{ status: CheckStatus | undefined; index: number }>;
  endSession(session: string): Promise<void>;
}

export interface HolderHostWatchOptions {
  port: HolderHostPort;
  /** The current lock holder, as the leader watch sees it. */
  leader: () => LeaderView | null | undefined;
  /** Our own lock session, if we hold the lock: never judged. */
  ownSession: () => string | undefined;
  /** Maintenance mode: a host may be rebooting on purpose, so nothing is ended. */
  paused: () => boolean;
  /** How long `serfHealth` must stay critical: the agent check's TTL (see timings.ts). */
  graceMs: Milliseconds;
  /** Pause while there is nothing to watch, and after a failed request. */
  idleMs?: Milliseconds;
  /** Longest blocking read while the node is healthy. */
  waitMs?: Milliseconds;
  clock: Clock;
  logger: Logger;
}

interface Target {
  readonly session: string;
  readonly node: string | undefined;
  index: number;
  criticalSince: number | undefined;
  ended: boolean;
}

/** Watches the leader's node and ends the leader's session once its host has been gone long enough. */
export class HolderHostWatch {
  readonly #options: HolderHostWatchOptions;
  readonly #loop = new BackgroundLoop(() => this.#run());
  #target: Target | undefined;

  constructor(options: HolderHostWatchOptions) {
    this.#options = options;
  }

  start(): void {
    this.#loop.start();
  }

  stop(): Promise<void> {
    return this.#loop.stop();
  }

  async #run(): Promise<void> {
    const signal = this.#loop.signal;
    while (!signal.aborted) {
      try {
        if (!(await this.#step(signal))) await this.#sleep(this.#options.idleMs ?? 1_000);
      } catch (error) {
        if (signal.aborted) return;
        this.#options.logger.debug("watching the leader's host failed; trying again", { error });
        await this.#sleep(this.#options.idleMs ?? 1_000);
      }
    }
  }

  /** One look at the leader's host; false when there was nothing to wait on (the caller idles). */
  async #step(signal: AbortSignal): Promise<boolean> {
    const { port, clock, graceMs } = this.#options;
    const leader = this.#options.leader();
    if (!leader || leader.session === this.#options.ownSession() || this.#options.paused()) {
      this.#target = undefined;
      return false;
    }
    if (this.#target?.session !== leader.session) {
      const node = await port.sessionNode(leader.session, signal);
      this.#target = {
        session: leader.session,
        node,
        index: 0,
        criticalSince: undefined,
        ended: false,
      };
    }
    const target = this.#target;
    if (target.node === undefined || target.ended) return false;
    const waitMs = target.criticalSince === undefined
      ? this.#options.waitMs ?? 10_000
      : Math.max(10, target.criticalSince + graceMs - clock.now());
    const startedAt = clock.now();
    const { status, index } = await port.gossipHealth(target.node, {
      index: target.index,
      waitMs,
      signal,
    });
    // A lower index means Consul's state was reset: start over with a plain read.
    target.index = index < target.index ? 0 : index;
    const now = clock.now();
    if (status !== "critical") {
      target.criticalSince = undefined;
      // Never spin on a server that answers a blocking read at once.
      return now - startedAt >= 100;
    }
    target.criticalSince ??= now;
    if (now - target.criticalSince < graceMs) return true;
    if (this.#options.leader()?.session !== target.session || this.#options.paused()) return true;
    this.#options.logger.warn(
      "the leader's host has been unreachable by Consul's gossip as long as its agent check's TTL; " +
        "ending its lock session",
      { node: target.node, session: target.session, criticalForMs: now - target.criticalSince },
    );
    await port.endSession(target.session);
    target.ended = true;
    return true;
  }

  async #sleep(ms: Milliseconds): Promise<void> {
    try {
      await this.#options.clock.sleep(ms, this.#loop.signal);
    } catch {
      // stopped
    }
  }
}
