/**
 * The agent: watches Redis and Consul, asks the reconciler what to do on every change and on a ticker,
 * and applies its answer through the lock driver, the Redis actuator and the service registrar.
 * Everything it talks to comes in through small ports, so the loop itself has no I/O of its own.
 */
import type { Clock } from "../clock.ts";
import type { Config } from "../config.ts";
import type { Milliseconds } from "../duration.ts";
import type { Logger } from "../log.ts";
import type { LeaderView, RedisView } from "../model.ts";
import { decide, type Decision, type DecisionSettings, type Observed } from "../reconciler.ts";
import type { LockDriver } from "./lock_driver.ts";
import type { RedisActuator } from "./redis_actuator.ts";
import type { ServiceRegistrar } from "./registrar.ts";
import { diffState } from "./state_diff.ts";

/** The local Redis as the agent observes it. */
export interface RedisObserverPort {
  current(): RedisView;
  /** Calls `listener` on every change; returns an unsubscribe function. */
  onChange(listener: () => void): () => void;
  /** Observes again now (after a command changed Redis). */
  refresh(): Promise<void>;
}

/** Who leads, as read from the lock key (and the catalog as a fallback). */
export interface LeaderSourcePort {
  /** null: nobody holds the lock; undefined: not known yet. */
  leader(): LeaderView | null | undefined;
  /** false while Consul cannot be reached; undefined before the first answer. */
  reachable(): boolean | undefined;
  onChange(listener: () => void): () => void;
}

export interface AgentOptions {
  config: Config;
  clock: Clock;
  logger: Logger;
  redis: RedisObserverPort;
  leaderSource: LeaderSourcePort;
  lock: LockDriver;
  actuator: RedisActuator;
  registrar: ServiceRegistrar;
  /** Maintenance mode flag (Consul KV); false when not wired. */
  paused?: () => boolean;
  settings: DecisionSettings;
  /** Evaluate at least this often: the check heartbeat rides on it. */
  tickMs: Milliseconds;
}

/** A snapshot of the agent for SIGUSR2 and /state. Never holds a secret. */
export interface AgentSnapshot {
  readonly decision: Decision | undefined;
  readonly observed: Omit<Observed, "settings"> | undefined;
  readonly evaluations: number;
  readonly startedAt: string;
}

/** The control loop. Create, `start()`, and `stop()` (or dispose) to shut down gracefully. */
export class Agent implements AsyncDisposable {
  readonly #options: AgentOptions;
  readonly #log: Logger;
  readonly #startedAt: number;
  readonly #unsubscribe: (() => void)[] = [];
  #decision: Decision | undefined;
  #observed: Observed | undefined;
  #evaluations = 0;
  #running: Promise<void> | undefined;
  #dirty = false;
  #stopping = false;
  #ticker: ReturnType<typeof setInterval> | undefined;
  #wakeTimer: ReturnType<typeof setTimeout> | undefined;
  /** Last error message per step, so a failure repeating every tick is logged once. */
  readonly #failing = new Map<string, string>();
  readonly #listeners = new Set<(decision: Decision) => void>();

  constructor(options: AgentOptions) {
    this.#options = options;
    this.#log = options.logger.child("agent");
    this.#startedAt = options.clock.now();
  }

  /** Starts the loop. */
  start(): void {
    const wake = () => this.requestEvaluation();
    this.#unsubscribe.push(this.#options.redis.onChange(wake));
    this.#unsubscribe.push(this.#options.leaderSource.onChange(wake));
    this.#ticker = setInterval(wake, this.#options.tickMs);
    this.requestEvaluation();
  }

  /** The latest decision and what it was made from. */
  snapshot(): AgentSnapshot {
    const observed = this.#observed;
    return {
      decision: this.#decision,
      observed: observed ? withoutSettings(observed) : undefined,
      evaluations: this.#evaluations,
      startedAt: new Date(this.#startedAt).toISOString(),
    };
  }

  /** Calls `listener` after each evaluation that changed the decision. */
  onDecision(listener: (decision: Decision) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Asks for an evaluation soon; evaluations never overlap. */
  requestEvaluation(): void {
    if (this.#stopping) return;
    this.#dirty = true;
    if (!this.#running) this.#running = this.#drain();
  }

  /** Waits for the evaluation in progress, if any (tests). */
  async settled(): Promise<void> {
    while (this.#running) await this.#running;
  }

  /**
   * Shuts down: stops evaluating, fences a Redis that was master so late clients cannot write to a
   * node that is about to be replaced, releases the lock (no lock-delay on a release) and deregisters.
   */
  async stop(): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    clearInterval(this.#ticker);
    clearTimeout(this.#wakeTimer);
    for (const unsubscribe of this.#unsubscribe.splice(0)) unsubscribe();
    await this.settled();
    const { lock, actuator, registrar, clock } = this.#options;
    const redis = this.#options.redis.current();
    if (lock.view().phase === "held" && redis.kind === "up" && redis.role === "master") {
      await this.#attempt("fence", () => actuator.apply({ kind: "fence" }, clock.now()));
    }
    await this.#attempt("lock", () => lock.close());
    await this.#attempt("service", () => registrar.deregister());
    this.#log.info("agent stopped");
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  async #drain(): Promise<void> {
    try {
      while (this.#dirty && !this.#stopping) {
        this.#dirty = false;
        await this.#evaluate();
      }
    } finally {
      this.#running = undefined;
    }
  }

  async #evaluate(): Promise<void> {
    const { clock, lock, actuator, registrar, redis, leaderSource, config } = this.#options;
    const now = clock.now();
    const observed: Observed = {
      now,
      self: config.announce,
      redis: redis.current(),
      consulReachable: leaderSource.reachable(),
      leader: leaderSource.leader(),
      lock: lock.view(),
      registration: registrar.registration(),
      fenced: actuator.isFenced(now),
      paused: this.#options.paused?.() ?? false,
      settings: this.#options.settings,
    };
    this.#logStateChanges(observed);
    const decision = decide(observed);
    this.#evaluations++;
    this.#observed = observed;
    const previous = this.#decision;
    this.#decision = decision;
    if (previous?.name !== decision.name) {
      this.#log.info(`decision changed from '${previous?.name ?? "none"}' to '${decision.name}'`, {
        reason: decision.reason,
      });
      for (const listener of this.#listeners) listener(decision);
    }

    // Redis first: a fence must be in force before anything else happens, and a promotion must be
    // done before we tell Consul we are master.
    if (decision.redis.kind !== "none") {
      const applied = await this.#attempt("redis", () => actuator.apply(decision.redis, now));
      if (applied) {
        await this.#attempt("observe", () => redis.refresh());
        this.#dirty = true;
      }
    }
    await this.#attempt("lock", () => lock.apply(decision.lock));
    await this.#attempt("service", () => registrar.apply(decision.service, clock.now()));

    clearTimeout(this.#wakeTimer);
    if (decision.wakeAt !== undefined && !this.#stopping) {
      this.#wakeTimer = setTimeout(
        () => this.requestEvaluation(),
        Math.max(0, decision.wakeAt - clock.now()) + 1,
      );
    }
  }

  /** Runs one step; logs a failure once per distinct message and a recovery once. */
  async #attempt(step: string, action: () => Promise<unknown>): Promise<boolean> {
    try {
      await action();
      if (this.#failing.delete(step)) this.#log.info(`${step} step recovered`);
      return true;
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      if (this.#failing.get(step) !== message) {
        this.#failing.set(step, message);
        this.#log.warn(`${step} step failed; retrying on the next evaluation`, { error: message });
      }
      return false;
    }
  }

  #logStateChanges(observed: Observed): void {
    const previous = this.#observed;
    const changes = diffState(
      previous ? stateForDiff(previous) : {},
      stateForDiff(observed),
    );
    for (const change of changes) this.#log.debug(`modified: ${change.path} = ${change.value}`);
  }
}

/** The observed state without the parts that change on every evaluation. */
function stateForDiff(observed: Observed): Record<string, unknown> {
  const { now: _now, settings: _settings, ...rest } = observed;
  if (rest.lock.phase === "held") {
    const { confirmedAt: _confirmedAt, ...lock } = rest.lock;
    return { ...rest, lock };
  }
  return rest;
}

function withoutSettings(observed: Observed): Omit<Observed, "settings"> {
  const { settings: _settings, ...rest } = observed;
  return rest;
}
