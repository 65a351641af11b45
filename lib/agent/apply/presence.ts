/**
 * The agent's own presence in Consul: a `<name>-agent` service beside the Redis roles, with one TTL
 * check this process heartbeats on its own timer.
 *
 * Lock sessions are tied to that check. A session alone lives up to 2 × its TTL after the last
 * renewal; the check lapses exactly one check TTL after the last heartbeat, and Consul then ends the
 * session at once. So a dead agent frees its lock within the check TTL, and a peer takes it one lock
 * delay later. The roles' services cannot carry the check: a candidate has none while it competes.
 * The check's TTL runs in the local Consul agent, so it does not help when that agent dies too (a
 * whole host): then the session TTL, or a `serfHealth` node check, decides.
 */
import { backoffDelay } from "../../backoff.ts";
import type { Clock } from "../../clock.ts";
import type { ServiceDefinition } from "../../consul/service.ts";
import type { Milliseconds } from "../../duration.ts";
import type { Logger } from "../../log.ts";

/** The Consul agent's endpoints, as the presence needs them. */
export interface PresencePort {
  register(definition: ServiceDefinition): Promise<void>;
  /** Sets the check passing; rejects so that `isUnknownCheck` is true when the agent forgot it. */
  beat(checkId: string, output: string): Promise<void>;
  deregister(serviceId: string): Promise<void>;
  isUnknownCheck(error: unknown): boolean;
  isPermissionDenied(error: unknown): boolean;
}

export interface AgentPresenceOptions {
  port: PresencePort;
  definition: ServiceDefinition;
  /** Heartbeat period: a third of the check TTL or less. */
  heartbeatMs: Milliseconds;
  /** The output of each heartbeat (default: the definition's check output). */
  output?: () => string;
  /** After a refusal by ACL, ask again this rarely (a token may gain the permission). */
  deniedRetryMs?: Milliseconds;
  clock: Clock;
  logger: Logger;
}

/** Registers the presence, keeps its check passing while this process runs, removes it at the end. */
export class AgentPresence {
  readonly #options: AgentPresenceOptions;
  readonly #stop = new AbortController();
  #registered = false;
  #confirmedAt: number | undefined;
  #denied = false;
  #failures = 0;
  #loop: Promise<void> | undefined;

  constructor(options: AgentPresenceOptions) {
    this.#options = options;
  }

  /** The agent check's ID, registered or not. */
  get checkId(): string {
    return this.#options.definition.check.id;
  }

  /** The checks a new lock session is tied to: the agent check, once Consul has it. */
  tiedChecks(): string[] {
    return this.#registered ? [this.#options.definition.check.id] : [];
  }

  /** When the last accepted registration or heartbeat was sent; undefined while not registered. */
  confirmedAt(): number | undefined {
    return this.#registered ? this.#confirmedAt : undefined;
  }

  /**
   * Heartbeats now, outside the timer: a session is about to be tied to the check, which may have
   * lapsed while Consul was out of reach. Never rejects; does nothing before registration.
   */
  async beatNow(): Promise<void> {
    if (this.#registered && !this.#stop.signal.aborted) await this.#step();
  }

  /** Registers once (so the first lock session can be tied), then heartbeats in the background. */
  async start(): Promise<void> {
    await this.#step();
    this.#loop ??= this.#run();
  }

  /** Stops the heartbeat and deregisters (after the lock was released). */
  async stop(): Promise<void> {
    this.#stop.abort();
    await this.#loop;
    if (!this.#registered) return;
    this.#registered = false;
    try {
      await this.#options.port.deregister(this.#options.definition.id);
    } catch (error) {
      this.#options.logger.warn("cannot deregister the agent's presence; its check lapses", {
        error,
      });
    }
  }

  async #run(): Promise<void> {
    const { clock, heartbeatMs } = this.#options;
    while (!this.#stop.signal.aborted) {
      // After a failure, retry soon (as the session keeper does): a lock holder's fence counts the
      // last accepted heartbeat.
      const pause = this.#denied
        ? this.#options.deniedRetryMs ?? 60_000
        : this.#failures > 0
        ? backoffDelay(
          { initialMs: Math.min(100, heartbeatMs), maxMs: heartbeatMs },
          this.#failures,
        )
        : heartbeatMs;
      try {
        await clock.sleep(pause, this.#stop.signal);
      } catch {
        return; // stopped
      }
      await this.#step();
    }
  }

  async #step(): Promise<void> {
    const { port, definition, clock, logger } = this.#options;
    const sentAt = clock.now();
    try {
      if (this.#registered) {
        const output = this.#options.output?.() ?? definition.check.output ?? "";
        await port.beat(definition.check.id, output);
      } else {
        await port.register(definition);
        this.#registered = true;
        logger.info("agent presence registered; lock sessions are tied to its check", {
          service: definition.name,
          check: definition.check.id,
          ttlMs: definition.check.ttlMs,
        });
      }
      this.#confirmedAt = sentAt;
      this.#failures = 0;
      if (this.#denied) logger.info("the ACL token may now register the agent's presence");
      this.#denied = false;
    } catch (error) {
      if (this.#registered && port.isUnknownCheck(error)) {
        // The Consul agent forgot us (restarted without state): register again right away.
        logger.warn("Consul no longer knows the agent check; registering again", {
          check: definition.check.id,
        });
        this.#registered = false;
        await this.#step();
        return;
      }
      if (port.isPermissionDenied(error)) {
        if (!this.#denied) {
          logger.warn(
            `the ACL token may not register the "${definition.name}" service: lock sessions are ` +
              "not tied to an agent check, so a dead agent frees the lock only when its session " +
              "expires (up to 2 × CONSUL_LOCK_TTL)",
            { error },
          );
        }
        this.#denied = true;
        return;
      }
      this.#failures++;
      logger[this.#failures === 1 ? "warn" : "debug"]("heartbeating the agent check failed", {
        failures: this.#failures,
        error,
      });
    }
  }
}
