/**
 * Keeps this node's Consul service registration in line with the reconciler's intent: registers on a
 * role change (with the check already in the right status, so a promotion never flaps through
 * "warning"), heartbeats the TTL check well inside its TTL, re-registers when the Consul agent forgot
 * us, and deregisters when asked.
 */
import type { ServiceDefinition } from "../../consul/service.ts";
import type { Milliseconds } from "../../duration.ts";
import type { Logger } from "../../log.ts";
import type { CheckStatus, Registration, Role } from "../../reconciler/model.ts";
import type { ServiceIntent } from "../../reconciler/model.ts";

/**
 * A refresh falls due this share of the heartbeat early. The loop's ticks come every heartbeat, a few
 * ms early or late: without the slack one refresh in two would wait a whole tick more, and a check
 * refreshed at half its TTL would lapse.
 */
const HEARTBEAT_SLACK = 0.1;

/** The Consul agent's service endpoints, as the registrar needs them. */
export interface CatalogPort {
  register(service: ServiceDefinition): Promise<void>;
  /** Rejects with an error for which `isUnknownCheck` is true when the agent does not know the check. */
  updateCheck(checkId: string, status: CheckStatus, output: string): Promise<void>;
  deregister(serviceId: string): Promise<void>;
  isUnknownCheck(error: unknown): boolean;
}

export interface RegistrarOptions {
  catalog: CatalogPort;
  /** The service definition for a role (name, tags, ID and check ID follow from the config). */
  definitionFor: (role: Role, status: CheckStatus, output: string) => ServiceDefinition;
  /** Refresh the check this often (well inside its TTL); evaluations come at least as often. */
  heartbeatMs: Milliseconds;
  logger: Logger;
  /** Called after each accepted registration or check update (metrics). */
  onCheckUpdated?: (status: CheckStatus) => void;
}

/** Owns this node's registration. */
export class ServiceRegistrar {
  readonly #options: RegistrarOptions;
  #current: (Registration & { readonly serviceId: string; readonly checkId: string }) | undefined;
  #lastOutput = "";
  #lastBeatAt = 0;

  constructor(options: RegistrarOptions) {
    this.#options = options;
  }

  /** What is registered now, as far as this agent knows. */
  registration(): Registration | undefined {
    return this.#current ? { role: this.#current.role, status: this.#current.status } : undefined;
  }

  /**
   * Moves the registration towards `intent`. Throws what Consul threw; the caller retries on its next
   * evaluation.
   */
  async apply(intent: ServiceIntent, now: number): Promise<void> {
    if (intent.kind === "unchanged") {
      if (this.#current && this.#beatDue(now)) {
        await this.#beat(this.#current.status, this.#lastOutput, now);
      }
      return;
    }
    if (intent.kind === "absent") {
      await this.deregister();
      return;
    }
    const current = this.#current;
    if (!current || current.role !== intent.role) {
      await this.#register(intent.role, intent.status, intent.output, now);
      return;
    }
    if (
      current.status !== intent.status || intent.output !== this.#lastOutput || this.#beatDue(now)
    ) {
      await this.#beat(intent.status, intent.output, now);
    }
  }

  #beatDue(now: number): boolean {
    return now - this.#lastBeatAt >= this.#options.heartbeatMs * (1 - HEARTBEAT_SLACK);
  }

  /** Removes the registration (shutdown, or a master that lost its lock). */
  async deregister(): Promise<void> {
    const current = this.#current;
    if (!current) return;
    await this.#options.catalog.deregister(current.serviceId);
    this.#current = undefined;
    this.#options.logger.info("service deregistered", { id: current.serviceId });
  }

  async #register(role: Role, status: CheckStatus, output: string, now: number): Promise<void> {
    const definition = this.#options.definitionFor(role, status, output);
    const previous = this.#current;
    if (previous && previous.serviceId !== definition.id) {
      await this.#options.catalog.deregister(previous.serviceId);
    }
    await this.#options.catalog.register(definition);
    this.#current = { role, status, serviceId: definition.id, checkId: definition.check.id };
    this.#options.onCheckUpdated?.(status);
    this.#lastOutput = output;
    this.#lastBeatAt = now;
    this.#options.logger.info("service registered", {
      id: definition.id,
      name: definition.name,
      role,
      status,
      tags: definition.tags.join(","),
    });
  }

  async #beat(status: CheckStatus, output: string, now: number): Promise<void> {
    const current = this.#current!;
    try {
      await this.#options.catalog.updateCheck(current.checkId, status, output);
    } catch (error) {
      if (!this.#options.catalog.isUnknownCheck(error)) throw error;
      // The Consul agent forgot us (restarted without state): register again.
      this.#options.logger.warn("Consul no longer knows our check; registering again", {
        check: current.checkId,
      });
      await this.#register(current.role, status, output, now);
      return;
    }
    if (status !== current.status) {
      this.#options.logger.info("check status changed", {
        from: current.status,
        to: status,
        output,
      });
    }
    this.#current = { ...current, status };
    this.#options.onCheckUpdated?.(status);
    this.#lastOutput = output;
    this.#lastBeatAt = now;
  }
}
