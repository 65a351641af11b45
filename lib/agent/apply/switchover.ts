/**
 * Planned switchover bookkeeping, beside the agent's loop: the master answers a request (target
 * chosen on fresh positions, or refused), every agent follows an in-progress handover until it ends
 * or times out, the old master runs Redis FAILOVER once, and reports the outcome in Consul KV.
 */
import { formatHostPort, type HostPort, parseHostPort, sameHostPort } from "../../address.ts";
import { chooseSwitchoverTarget } from "../../reconciler/election.ts";
import type { Clock } from "../../clock.ts";
import { advance, handoverOf, isFinished, type SwitchoverRecord } from "../../cluster/controls.ts";
import type { Milliseconds } from "../../duration.ts";
import type { Logger } from "../../log.ts";
import type { LeaderView } from "../../reconciler/model.ts";
import type { ElectionView } from "../../reconciler/model.ts";
import type { LockDriver } from "./lock_driver.ts";

/** Operator controls from Consul KV (lib/agent/watch/control_source.ts). */
export interface ControlPort {
  paused(): boolean;
  switchover(): { record: SwitchoverRecord; modifyIndex: number } | undefined;
  updateSwitchover(record: SwitchoverRecord, modifyIndex: number): Promise<boolean>;
}

/** How a Redis FAILOVER ended. */
export type FailoverOutcome = { ok: true; durationMs: number } | { ok: false; reason: string };

/** What the coordinator needs from the agent that owns it. */
export interface SwitchoverHost {
  control?: ControlPort;
  /** Runs Redis FAILOVER TO `target` on the local Redis. */
  failover?: (target: HostPort, timeoutMs: Milliseconds) => Promise<FailoverOutcome>;
  self: HostPort;
  lockTtlMs: Milliseconds;
  redis: { refresh(): Promise<void>; observedAt(): number | undefined };
  clock: Clock;
  logger: Logger;
  /** Runs a step beside the loop (the agent's single-flight background steps). */
  background: (step: string, action: () => Promise<unknown>) => void;
  requestEvaluation: () => void;
}

/** Where this agent stands in a switchover, as the reconciler sees it. */
export interface HandoverView {
  readonly target: HostPort;
  readonly failover: "pending" | "running" | "completed" | "failed";
}

/** Follows switchover requests for one agent. */
export class SwitchoverCoordinator {
  readonly #host: SwitchoverHost;
  /** The switchover this agent takes part in, and how far its FAILOVER got. */
  #handover:
    | {
      id: string;
      target: HostPort;
      from: HostPort;
      failover: "pending" | "running" | "completed" | "failed";
      until: number;
      startedAt: number;
      detail?: string;
    }
    | undefined;
  readonly #answeredRequests = new Set<string>();
  /**
   * Handovers that ran out of time. Only the old master marks its record failed, so a record whose
   * old master is gone stays in progress: following it again would hold elections up for good.
   */
  readonly #expiredHandovers = new Set<string>();
  /** The request this agent has seen, and when: positions settle before the choice. */
  #requestSeen: { id: string; at: number } | undefined;
  #requestTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(host: SwitchoverHost) {
    this.#host = host;
  }

  /** The handover in progress, if this agent takes part in one. */
  handover(): HandoverView | undefined {
    const handover = this.#handover;
    return handover ? { target: handover.target, failover: handover.failover } : undefined;
  }

  /** Stops the pending timer (shutdown). */
  close(): void {
    clearTimeout(this.#requestTimer);
  }

  /**
   * Planned switchover bookkeeping: the master answers a new request (target chosen, or refused),
   * every agent follows an in-progress one until it ends or times out, and the old master reports
   * the outcome.
   */
  follow(
    election: ElectionView | undefined,
    lock: ReturnType<LockDriver["view"]>,
    leader: LeaderView | null | undefined,
    now: number,
  ): void {
    const control = this.#host.control;
    if (!control) return;
    const entry = control.switchover();
    const self = this.#host.self;
    const record = entry?.record;

    if (entry && record?.state === "requested" && this.#requestSeen?.id !== record.id) {
      // Every agent looks at its Redis again, so the master chooses on fresh positions, not on
      // ones from before the request (a replica that just synced still shows its old history).
      this.#requestSeen = { id: record.id, at: now };
      this.#host.background("observe-request", () => this.#host.redis.refresh());
      const settleMs = election?.settings.collectMs ?? 0;
      clearTimeout(this.#requestTimer);
      this.#requestTimer = setTimeout(() => this.#host.requestEvaluation(), settleMs + 1);
      return;
    }
    const settled = this.#requestSeen !== undefined && election !== undefined &&
      now >= this.#requestSeen.at + election.settings.collectMs &&
      (this.#host.redis.observedAt() ?? 0) >= this.#requestSeen.at;
    if (
      entry && record?.state === "requested" && lock.phase === "held" && election && settled &&
      !this.#answeredRequests.has(record.id)
    ) {
      this.#answeredRequests.add(record.id);
      const choice = chooseSwitchoverTarget({
        self: election.self,
        peers: election.peers,
        now,
        settings: election.settings,
        ...(record.to !== undefined ? { requested: formatHostPort(record.to) } : {}),
      });
      const next = choice.ok
        ? advance(record, "in-progress", { to: parseHostPort(choice.target), from: self })
        : advance(record, "refused", { detail: choice.reason });
      this.#host.logger[choice.ok ? "info" : "warn"](
        choice.ok ? "switchover requested: handing over" : "switchover refused",
        choice.ok ? { to: choice.target } : { reason: choice.reason },
      );
      this.#host.background(
        "switchover-record",
        () => control.updateSwitchover(next, entry.modifyIndex),
      );
      return;
    }

    const announced = handoverOf(record);
    const handover = announced && !this.#expiredHandovers.has(announced.id) ? announced : undefined;
    if (!handover || !entry) {
      if (!this.#stillTakingOver(record, lock, leader, now)) this.#handover = undefined;
      return;
    }
    if (this.#handover?.id !== handover.id) {
      this.#handover = {
        ...handover,
        failover: "pending",
        startedAt: now,
        until: now + record!.timeoutMs + 2 * this.#host.lockTtlMs,
      };
    }
    const mine = this.#handover!;
    const isFrom = sameHostPort(mine.from, self);
    if (now > mine.until) {
      this.#handover = undefined;
      this.#expiredHandovers.add(mine.id);
      this.#host.logger.warn("switchover handover timed out; ignoring its record from now on", {
        id: mine.id,
      });
      if (isFrom && !isFinished(record!)) {
        this.#host.background("switchover-record", () =>
          control.updateSwitchover(
            advance(record!, "failed", { detail: "the handover did not finish in time" }),
            entry.modifyIndex,
          ));
      }
      return;
    }
    if (!isFrom) return;
    if (mine.failover === "failed") {
      this.#handover = undefined;
      this.#host.background("switchover-record", () =>
        control.updateSwitchover(
          advance(record!, "failed", { detail: mine.detail ?? "Redis FAILOVER did not complete" }),
          entry.modifyIndex,
        ));
      return;
    }
    if (leader && sameHostPort(leader.address, mine.target)) {
      const detail = `${formatHostPort(mine.target)} leads after ${now - mine.startedAt} ms`;
      this.#host.logger.info("switchover done", {
        to: formatHostPort(mine.target),
        ms: now - mine.startedAt,
      });
      this.#handover = undefined;
      this.#host.background(
        "switchover-record",
        () => control.updateSwitchover(advance(record!, "done", { detail }), entry.modifyIndex),
      );
    }
  }

  /**
   * The old master records "done" as soon as Consul names the target as leader, which can reach the
   * target before its own acquisition returns. Ending the handover then would make the target step
   * aside and hand back a lock it has just won (and the election could pick another node). So the
   * target keeps taking over until its lock driver holds the lock, another node leads, or time is up.
   */
  #stillTakingOver(
    record: SwitchoverRecord | undefined,
    lock: ReturnType<LockDriver["view"]>,
    leader: LeaderView | null | undefined,
    now: number,
  ): boolean {
    const mine = this.#handover;
    if (!mine || record?.id !== mine.id || record.state !== "done") return false;
    if (!sameHostPort(mine.target, this.#host.self) || now > mine.until) return false;
    if (lock.phase === "held") return false;
    return leader === undefined || leader === null || sameHostPort(leader.address, this.#host.self);
  }

  /** Runs the planned switchover's Redis FAILOVER beside the loop, once per request. */
  startFailover(target: HostPort): void {
    const handover = this.#handover;
    const failover = this.#host.failover;
    if (!handover || handover.failover !== "pending" || !failover) return;
    handover.failover = "running";
    const timeoutMs = Math.max(
      1_000,
      handover.until - this.#host.clock.now() - 2 * this.#host.lockTtlMs,
    );
    this.#host.background("failover", async () => {
      let outcome: FailoverOutcome;
      try {
        outcome = await failover(target, timeoutMs);
      } catch (error) {
        outcome = { ok: false, reason: error instanceof Error ? error.message : String(error) };
      }
      if (this.#handover !== handover) return;
      handover.failover = outcome.ok ? "completed" : "failed";
      if (!outcome.ok) handover.detail = outcome.reason;
      // Decide on what Redis is now (a replica of the target), not on the poll before the FAILOVER.
      await this.#host.redis.refresh().catch(() => {});
      this.#host.requestEvaluation();
    });
  }
}
