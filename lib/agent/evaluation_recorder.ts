/**
 * What each evaluation of the loop leaves behind besides its actions: the metrics, the ON_ROLE_CHANGE
 * hook, and the time a failover took from the free lock to this node leading.
 */
import { formatHostPort } from "../address.ts";
import { type HookRole, RoleChangeHook, type RoleChangeHookOptions } from "../hooks.ts";
import type { Logger } from "../log.ts";
import type { ResecMetrics } from "../metrics/resec.ts";
import { actsAsMaster, type Decision, type Observed } from "../reconciler/model.ts";
import { replicationLag } from "./node_status.ts";
import type { AgentPresence } from "./apply/presence.ts";

export interface EvaluationRecorderOptions {
  metrics: ResecMetrics;
  /** ON_ROLE_CHANGE; undefined when none is configured. */
  hook: Omit<RoleChangeHookOptions, "logger"> | undefined;
  /** The agent check the lock sessions are tied to, registered or not (a metric). */
  presence: Pick<AgentPresence, "tiedChecks">;
  /** The offset of the leader this node follows, as last read from its Redis. */
  leaderOffsetNow: () => number | undefined;
  logger: Logger;
}

/** Records every evaluation of the loop (its `onEvaluated`). */
export class EvaluationRecorder {
  readonly #options: EvaluationRecorderOptions;
  readonly #hook: RoleChangeHook | undefined;
  /** When the lock was last seen free, until this node leads. */
  #freeSinceSeen: number | undefined;
  #hookRole: HookRole = "none";

  constructor(options: EvaluationRecorderOptions) {
    this.#options = options;
    this.#hook = options.hook
      ? new RoleChangeHook({ ...options.hook, logger: options.logger.child("hook") })
      : undefined;
  }

  /** Resolves once the hook runs started so far have ended. */
  async settled(): Promise<void> {
    await this.#hook?.settled();
  }

  /** Records one evaluation: what was observed, what was decided, and what was decided before. */
  record(observed: Observed, decision: Decision, previous: Decision | undefined): void {
    const metrics = this.#options.metrics;
    metrics.redisObserved(observed.redis);
    metrics.setLockHeld(observed.lock.phase === "held");
    metrics.setConsulReachable(observed.consulReachable);
    metrics.setPaused(observed.paused);
    metrics.setAgentCheckRegistered(this.#options.presence.tiedChecks().length > 0);
    metrics.decisionChanged(decision.name);
    metrics.setReplicationLag(replicationLag(observed, this.#options.leaderOffsetNow()));
    this.#runHook(observed, decision);
    const freeSince = observed.election?.freeSince;
    if (freeSince !== undefined) this.#freeSinceSeen = freeSince;
    if (actsAsMaster(decision.name) && !actsAsMaster(previous?.name)) {
      metrics.electionWon();
      if (this.#freeSinceSeen !== undefined) {
        metrics.failoverCompleted(observed.now - this.#freeSinceSeen);
        this.#options.logger.child("agent").info("this node leads now", {
          msSinceLockFree: observed.now - this.#freeSinceSeen,
        });
      }
      this.#freeSinceSeen = undefined;
    }
  }

  /** Calls ON_ROLE_CHANGE when this node becomes master, or a replica following a leader. */
  #runHook(observed: Observed, decision: Decision): void {
    const role: HookRole | undefined = actsAsMaster(decision.name)
      ? "master"
      : decision.name === "replica"
      ? "slave"
      : undefined;
    if (!role || role === this.#hookRole) return;
    const master = role === "master" ? observed.self : observed.leader?.address;
    const previous = this.#hookRole;
    this.#hookRole = role;
    void this.#hook?.run({ role, previous, master: master ? formatHostPort(master) : "" });
  }
}
