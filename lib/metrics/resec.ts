/**
 * Every metric resec exposes, defined in one place, with the methods the agent calls when something
 * happens. Names are prefixed `resec_`; units are in the name (`_seconds`, `_bytes`).
 */
import { type Clock, systemClock } from "../clock.ts";
import type { ConsulRequestEvent } from "../consul/client.ts";
import type { Milliseconds } from "../duration.ts";
import type { CheckStatus, RedisView } from "../reconciler/model.ts";
import type { DecisionName } from "../reconciler/model.ts";
import { VERSION } from "../version.ts";
import { type Counter, type Gauge, MetricsRegistry } from "./registry.ts";

/** The local Redis's role as a metric label. */
export type RoleLabel = "master" | "replica" | "unknown";
const ROLES: readonly RoleLabel[] = ["master", "replica", "unknown"];
const CHECK_STATUSES: readonly CheckStatus[] = ["passing", "warning", "critical"];

export interface ResecMetricsOptions {
  /** Default: a new registry of its own. */
  registry?: MetricsRegistry;
  /** For the failover timestamp (default: the system clock). */
  clock?: Clock;
  /** Reported by `resec_build_info` (default: this build's version). */
  version?: string;
}

/**
 * resec's metrics. One instance per agent; pass it to the HTTP server for `/metrics`.
 *
 * @example
 * ```ts
 * const metrics = new ResecMetrics();
 * const client = new ConsulClient({ connection, onRequest: (event) => metrics.recordConsulRequest(event) });
 * metrics.setRole("replica");
 * metrics.render(); // Prometheus text
 * ```
 */
export class ResecMetrics {
  readonly registry: MetricsRegistry;
  readonly #clock: Clock;
  readonly #role: Gauge<"role">;
  readonly #lockHeld: Gauge;
  readonly #electionsWon: Counter;
  readonly #lockAcquireBackoffs: Counter;
  readonly #failovers: Counter;
  readonly #lastFailoverDuration: Gauge;
  readonly #lastFailoverTimestamp: Gauge;
  readonly #redisHealthy: Gauge;
  readonly #linkUp: Gauge;
  readonly #offset: Gauge;
  readonly #lag: Gauge;
  readonly #consulReachable: Gauge;
  readonly #consulRequests: Counter<"endpoint" | "code">;
  readonly #consulErrors: Counter<"endpoint" | "outcome">;
  readonly #checkUpdates: Counter<"status">;
  readonly #checkStatus: Gauge<"status">;
  readonly #decisionChanges: Counter<"decision">;
  readonly #decision: Gauge<"decision">;
  readonly #paused: Gauge;
  readonly #agentCheck: Gauge;
  readonly #invalidRecords: Counter<"key">;
  readonly #evaluationErrors: Counter;
  #currentDecision: DecisionName | undefined;

  constructor(options: ResecMetricsOptions = {}) {
    const registry = options.registry ?? new MetricsRegistry();
    this.registry = registry;
    this.#clock = options.clock ?? systemClock;

    registry.gauge<"version">({
      name: "resec_build_info",
      help: "Always 1; the version label tells which resec build runs.",
      labelNames: ["version"],
    }).set({ version: options.version ?? VERSION }, 1);

    this.#role = registry.gauge({
      name: "resec_role",
      help: "1 for the role the local Redis reports (master, replica, or unknown while it cannot " +
        "be read), 0 for the others.",
      labelNames: ["role"],
    });
    this.#lockHeld = registry.gauge({
      name: "resec_lock_held",
      help: "1 while this agent holds the Consul lock that makes its Redis the master.",
    });
    this.#electionsWon = registry.counter({
      name: "resec_elections_won_total",
      help: "Times this agent acquired the Consul lock.",
    });
    this.#lockAcquireBackoffs = registry.counter({
      name: "resec_lock_acquire_backoffs_total",
      help:
        "Times competing for the lock failed with an error retrying does not mend (e.g. a 403 " +
        "from Consul) and the agent waited before competing again. The agent log has the error.",
    });
    this.#failovers = registry.counter({
      name: "resec_failovers_total",
      help: "Times this agent promoted its Redis to master after winning the lock.",
    });
    this.#lastFailoverDuration = registry.gauge({
      name: "resec_last_failover_duration_seconds",
      help: "How long the last promotion by this agent took, from the lock becoming free to its " +
        "Redis answering as master. Absent until the first one.",
    });
    this.#lastFailoverTimestamp = registry.gauge({
      name: "resec_last_failover_timestamp_seconds",
      help: "Unix time when this agent's last promotion completed. Absent until the first one.",
    });
    this.#redisHealthy = registry.gauge({
      name: "resec_redis_healthy",
      help: "1 while the local Redis answers and is not loading its dataset.",
    });
    this.#linkUp = registry.gauge({
      name: "resec_redis_master_link_up",
      help: "1 while the local Redis, a replica, has its replication link to the master up. " +
        "Absent on a master.",
    });
    this.#offset = registry.gauge({
      name: "resec_redis_replication_offset",
      help: "The local Redis's replication offset in bytes. Absent while Redis cannot be read.",
    });
    this.#lag = registry.gauge({
      name: "resec_redis_replication_lag_bytes",
      help: "How many bytes the local Redis, a replica, is behind its master. Absent when unknown.",
    });
    this.#consulReachable = registry.gauge({
      name: "resec_consul_reachable",
      help: "1 while the agent can reach Consul to learn who leads, 0 while it cannot. Absent " +
        "before the first answer.",
    });
    this.#consulRequests = registry.counter({
      name: "resec_consul_requests_total",
      help: 'Consul HTTP requests by endpoint and HTTP status code ("none" when no answer came).',
      labelNames: ["endpoint", "code"],
    });
    this.#consulErrors = registry.counter({
      name: "resec_consul_request_errors_total",
      help: "Consul HTTP requests that failed, by endpoint and outcome (http_error, unreachable, " +
        "timeout, malformed). Cancellations by resec itself are not errors.",
      labelNames: ["endpoint", "outcome"],
    });
    this.#checkUpdates = registry.counter({
      name: "resec_check_updates_total",
      help: "Updates of this node's Consul TTL check, by the status sent.",
      labelNames: ["status"],
    });
    this.#checkStatus = registry.gauge({
      name: "resec_check_status",
      help: "1 for the status last sent to this node's Consul TTL check, 0 for the others.",
      labelNames: ["status"],
    });
    this.#decisionChanges = registry.counter({
      name: "resec_decision_changes_total",
      help: "Times the agent's decision changed, by the decision it changed to.",
      labelNames: ["decision"],
    });
    this.#decision = registry.gauge({
      name: "resec_decision",
      help: "1 for the agent's current decision (master, replica, promoting, no_leader …).",
      labelNames: ["decision"],
    });
    this.#paused = registry.gauge({
      name: "resec_paused",
      help: "1 while the cluster is in maintenance mode: no agent promotes or demotes.",
    });
    this.#agentCheck = registry.gauge({
      name: "resec_agent_check_registered",
      help:
        "1 while the agent's own check, which its lock sessions are tied to, is registered in " +
        "Consul; 0 when it is not (e.g. refused by ACL): a dead agent then frees the lock only " +
        "when its session expires.",
    });

    this.#invalidRecords = registry.counter({
      name: "resec_invalid_records_total",
      help: "Invalid values read from resec's Consul keys (each distinct value once), by key; " +
        "candidacies count under their prefix. The agent log names the key and the reason.",
      labelNames: ["key"],
    });
    this.#evaluationErrors = registry.counter({
      name: "resec_evaluation_errors_total",
      help: "Evaluations of the control loop that failed with an error; the loop went on. The " +
        "agent log has the error.",
    });

    for (const status of CHECK_STATUSES) {
      this.#checkUpdates.touch({ status });
      this.#checkStatus.set({ status }, 0);
    }
    this.setRole("unknown");
    for (const gauge of [this.#lastFailoverDuration, this.#lastFailoverTimestamp]) gauge.remove();
    for (const gauge of [this.#linkUp, this.#offset, this.#lag, this.#consulReachable]) {
      gauge.remove();
    }
  }

  /** Call on every change of the local Redis's role ("unknown" while it cannot be read). */
  setRole(role: RoleLabel): void {
    for (const each of ROLES) this.#role.set({ role: each }, each === role ? 1 : 0);
  }

  /** Call when the lock is acquired (true) and when it is released or lost (false). */
  setLockHeld(held: boolean): void {
    this.#lockHeld.set(held ? 1 : 0);
  }

  /** Call when this agent acquires the lock (each acquisition, not each renewal). */
  electionWon(): void {
    this.#electionsWon.inc();
  }

  /** Call when a failed acquire makes the agent wait before competing for the lock again. */
  lockAcquireBackoff(): void {
    this.#lockAcquireBackoffs.inc();
  }

  /**
   * Call when this agent's Redis answers as master after a promotion, with the time since the lock
   * became free (or since the agent started competing, if it never saw it held).
   */
  failoverCompleted(durationMs: Milliseconds): void {
    this.#failovers.inc();
    this.#lastFailoverDuration.set(Math.max(0, durationMs) / 1_000);
    this.#lastFailoverTimestamp.set(this.#clock.wallNow() / 1_000);
  }

  /** Call when the health of the local Redis changes. */
  setRedisHealthy(healthy: boolean): void {
    this.#redisHealthy.set(healthy ? 1 : 0);
  }

  /** Call with a replica's link state; undefined on a master or while Redis cannot be read. */
  setMasterLinkUp(up: boolean | undefined): void {
    if (up === undefined) this.#linkUp.remove();
    else this.#linkUp.set(up ? 1 : 0);
  }

  /** Call with the local Redis's replication offset; undefined while it cannot be read. */
  setReplicationOffset(offset: number | undefined): void {
    if (offset === undefined) this.#offset.remove();
    else this.#offset.set(offset);
  }

  /** Call with how far a replica is behind, in bytes; undefined when not known (or on a master). */
  setReplicationLag(bytes: number | undefined): void {
    if (bytes === undefined) this.#lag.remove();
    else this.#lag.set(Math.max(0, bytes));
  }

  /**
   * Sets role, health, link and offset from one observation of the local Redis. Call after every
   * observation (cheap); lag is separate because it needs the master's offset.
   */
  redisObserved(view: RedisView): void {
    if (view.kind !== "up") {
      this.setRole("unknown");
      this.setRedisHealthy(false);
      this.setMasterLinkUp(undefined);
      this.setReplicationOffset(undefined);
      return;
    }
    this.setRole(view.role);
    this.setRedisHealthy(!view.loading);
    this.setMasterLinkUp(view.role === "replica" ? view.linkUp : undefined);
    this.setReplicationOffset(view.offset);
  }

  /** Pass as the Consul client's `onRequest`: counts the request and, unless it succeeded, the error. */
  recordConsulRequest(event: ConsulRequestEvent): void {
    const code = event.status > 0 ? String(event.status) : "none";
    this.#consulRequests.inc({ endpoint: event.endpoint, code });
    if (event.outcome !== "ok" && event.outcome !== "cancelled") {
      this.#consulErrors.inc({ endpoint: event.endpoint, outcome: event.outcome });
    }
  }

  /** Call when the answer about who leads changes between reachable and unreachable. */
  setConsulReachable(reachable: boolean | undefined): void {
    if (reachable === undefined) this.#consulReachable.remove();
    else this.#consulReachable.set(reachable ? 1 : 0);
  }

  /** Call after each accepted update of this node's TTL check. */
  checkUpdated(status: CheckStatus): void {
    this.#checkUpdates.inc({ status });
    for (const each of CHECK_STATUSES) {
      this.#checkStatus.set({ status: each }, each === status ? 1 : 0);
    }
  }

  /**
   * Call from Agent.onDecision with the decision's name; a repeat of the current name (only the reason
   * changed) is not counted.
   */
  decisionChanged(name: DecisionName): void {
    if (name === this.#currentDecision) return;
    if (this.#currentDecision !== undefined) {
      this.#decision.set({ decision: this.#currentDecision }, 0);
    }
    this.#currentDecision = name;
    this.#decision.set({ decision: name }, 1);
    this.#decisionChanges.inc({ decision: name });
  }

  /** Call when maintenance mode is switched on or off. */
  setPaused(paused: boolean): void {
    this.#paused.set(paused ? 1 : 0);
  }

  /** Call with whether the agent check (see lib/agent/apply/presence.ts) is registered. */
  setAgentCheckRegistered(registered: boolean): void {
    this.#agentCheck.set(registered ? 1 : 0);
  }

  /**
   * Call when a record read from Consul is invalid (once per distinct value), with its key, or the
   * candidates prefix for a candidacy.
   */
  invalidRecord(key: string): void {
    this.#invalidRecords.inc({ key });
  }

  /** Call when an evaluation of the control loop fails. */
  evaluationFailed(): void {
    this.#evaluationErrors.inc();
  }

  /** Every metric in the Prometheus text format. */
  render(): string {
    return this.registry.render();
  }
}
