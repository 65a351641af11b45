/**
 * What the HTTP API reads from the agent: plain data, asked for on every request, so the endpoints
 * always answer from the agent's latest view and never do I/O of their own.
 */

/** The local Redis's role as the agent last observed it; "unknown" while it cannot be read. */
export type NodeRole = "master" | "replica" | "unknown";

/** The facts the load-balancer endpoints decide from. */
export interface NodeStatus {
  readonly role: NodeRole;
  /** This agent holds the Consul lock and acts as master: its Redis is the one clients should write to. */
  readonly holdsLock: boolean;
  /** The local Redis answers and is not loading its dataset. */
  readonly redisHealthy: boolean;
  /** The agent's own loop is running and reaching Consul well enough to do its job. */
  readonly agentHealthy: boolean;
  /** A replica's replication link to its master is up (false on a master). */
  readonly linkUp: boolean;
  /** How many bytes a replica is behind its master; undefined when not known. */
  readonly lagBytes: number | undefined;
  /** The cluster is in maintenance mode. */
  readonly paused: boolean;
}

/** Implemented by the agent's wiring. Both methods must be cheap and must not throw in normal use. */
export interface StatusSource {
  status(): NodeStatus;
  /** The agent's state for `GET /state`, JSON-able (the SIGUSR2 dump). Never holds a secret. */
  state(): unknown;
}

/** Renders the Prometheus text for `GET /metrics` (ResecMetrics is one). */
export interface MetricsSource {
  render(): string;
}
