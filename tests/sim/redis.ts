/**
 * A simulated Redis: role, a replication log of write ids (the offset is its length), replication and
 * run ids, CLIENT PAUSE WRITE with a deadline, REPLICAOF, crashes and restarts with or without data.
 * Replication is pulled by the replica (see `World`), partial when the histories allow it as Redis's
 * PSYNC does, else a full sync that replaces the replica's data with the master's.
 */
import { formatHostPort, type HostPort, sameHostPort } from "../../lib/address.ts";
import type { RedisView } from "../../lib/reconciler/model.ts";
import type { Random } from "./scheduler.ts";

const NO_ID = "0".repeat(40);

/**
 * How long a full sync takes from the master's acceptance to the replica's data being replaced.
 * Redis waits `repl-diskless-sync-delay` (5 s by default) before it sends the dataset, and the
 * replica keeps its old data until the whole transfer has arrived; aborted meanwhile (the master
 * restarts, or turns replica and drops its replicas), the old data stays. 2 s: tighter than the
 * users' default, so the agents win the race with less room than they have in production.
 */
export const FULL_SYNC_DELAY_MS = 2_000;

/** A client write held by a pause: it runs when the pause ends, as Redis runs blocked clients. */
interface HeldWrite {
  readonly id: number;
  readonly settle: (acknowledged: boolean) => void;
}

export class SimRedis {
  up = true;
  runId: string;
  role: "master" | "replica" = "master";
  master: HostPort | undefined;
  linkUp = false;
  /** True time the link went down, or "never" when it never came up since REPLICAOF. */
  linkDownSince: number | "never" = "never";
  /** Write ids in replication order: the offset is the length. */
  log: number[] = [];
  replid: string;
  replid2 = NO_ID;
  /** Up to where the history under replid2 is shared (Redis's second_replid_offset). */
  replid2Offset = -1;
  /** CLIENT PAUSE WRITE deadline (true time); Redis measures it on its own monotonic clock. */
  pausedUntil = 0;
  /** True time this process started. */
  startedAt: number;
  /** True time of the last full sync (data replaced by a master's). */
  lastFullSyncAt = -1;
  /**
   * On a master: true time each replica (`host:port`) last acknowledged it, as its INFO `lag` counts
   * (a new process starts with none).
   */
  acknowledgedAt = new Map<string, number>();
  /** The master process the link is up to: a restarted master breaks the link. */
  #linkedRunId = "";
  /** A full sync under way: from which master process, and when its data will have arrived. */
  #fullSync: { readonly runId: string; readonly readyAt: number } | undefined;
  readonly #held: HeldWrite[] = [];
  /** Called with the write ids that enter this Redis's data (acknowledged here, or replicated). */
  onReceive: (ids: readonly number[]) => void = () => {};

  constructor(readonly address: HostPort, readonly rng: Random, now: number) {
    this.runId = rng.hex(40);
    this.replid = rng.hex(40);
    this.startedAt = now;
  }

  get name(): string {
    return formatHostPort(this.address);
  }

  /** Takes writes now: up, master and not paused. */
  writable(now: number): boolean {
    return this.up && this.role === "master" && now >= this.pausedUntil;
  }

  /** What INFO (and CONFIG GET replica-priority) would show, as the agent's view. */
  view(now: number, connectedReplicas: number): RedisView {
    if (!this.up) return { kind: "down", reason: "connection refused" };
    return {
      kind: "up",
      role: this.role,
      loading: false,
      ...(this.master ? { master: this.master } : {}),
      // As lib/redis/self_loop.ts: a replica pointed at its own address.
      detached: this.role === "replica" && this.master !== undefined &&
        sameHostPort(this.master, this.address),
      linkUp: this.role === "replica" && this.linkUp,
      ...(this.role === "replica" && !this.linkUp
        ? {
          linkDownMs: this.linkDownSince === "never" ? "never" as const : now - this.linkDownSince,
        }
        : {}),
      syncInProgress: this.role === "replica" && this.#fullSync !== undefined,
      offset: this.log.length,
      replicationId: this.replid,
      replicationId2: this.replid2,
      connectedReplicas,
      datasetEmpty: this.log.length === 0,
      priority: 100,
      runId: this.runId,
    };
  }

  crash(): void {
    this.up = false;
    this.acknowledgedAt = new Map();
    this.linkUp = false;
    this.#fullSync = undefined;
    this.#failHeld();
  }

  /** Starts again as a master (REPLICAOF is not persisted), unpaused, with a new run id. */
  restart(now: number, empty: boolean): void {
    this.up = true;
    this.runId = this.rng.hex(40);
    this.role = "master";
    this.master = undefined;
    this.linkUp = false;
    this.#fullSync = undefined;
    this.linkDownSince = "never";
    this.pausedUntil = 0;
    this.startedAt = now;
    this.acknowledgedAt = new Map();
    if (empty) {
      this.log = [];
      this.replid = this.rng.hex(40);
      this.replid2 = NO_ID;
      this.replid2Offset = -1;
    }
  }

  /** REPLICAOF NO ONE: a new history that remembers the old one for PSYNC. */
  promote(): void {
    if (this.role === "master") return;
    this.replid2 = this.replid;
    this.replid2Offset = this.log.length;
    this.replid = this.rng.hex(40);
    this.role = "master";
    this.master = undefined;
    this.linkUp = false;
    this.#fullSync = undefined;
  }

  /**
   * REPLICAOF host port. A replica that changes masters reports its link down since the change (or
   * since it went down before), as Redis does; a master turned replica, never up.
   */
  replicaOf(master: HostPort, now: number): void {
    if (this.role === "replica" && this.master && sameHostPort(this.master, master)) return;
    this.linkDownSince = this.role !== "replica" ? "never" : this.linkUp ? now : this.linkDownSince;
    this.role = "replica";
    this.master = master;
    this.linkUp = false;
    this.#fullSync = undefined;
    // Writes held by a pause now fail as READONLY when it ends.
    this.#settleHeld(now);
  }

  /** CLIENT PAUSE ms WRITE: the longer of two pauses wins. */
  pause(ms: number, now: number): void {
    this.pausedUntil = Math.max(this.pausedUntil, now + ms);
  }

  unpause(now: number): void {
    this.pausedUntil = 0;
    this.#settleHeld(now);
  }

  /** Runs held writes once the pause is over (called at the deadline too). */
  settleHeld(now: number): void {
    if (now >= this.pausedUntil) this.#settleHeld(now);
  }

  /** A client write: acknowledged now, refused, or held by a pause until it ends. */
  write(id: number, now: number, settle: (acknowledged: boolean) => void): void {
    if (!this.up || this.role !== "master") return settle(false);
    if (now < this.pausedUntil) {
      this.#held.push({ id, settle });
      return;
    }
    this.log.push(id);
    this.onReceive([id]);
    settle(true);
  }

  /**
   * One replication step from `source` (the master this replica follows): partial resync when the
   * histories allow it, else full sync. Returns true when the link is up afterwards.
   */
  pullFrom(source: SimRedis, now: number): void {
    // A replica serves a sync only while its own link is up (Redis answers -NOMASTERLINK otherwise).
    const serves = source.up && (source.role === "master" || source.linkUp);
    if (!serves || (this.linkUp && source.runId !== this.#linkedRunId)) {
      this.#linkDown(now);
      if (!serves) {
        this.#fullSync = undefined; // the transfer breaks off: the old data stays
        return;
      }
    }
    if (!this.linkUp) {
      const offset = this.log.length;
      const partial = offset <= source.log.length &&
        (this.replid === source.replid ||
          (this.replid === source.replid2 && offset <= source.replid2Offset));
      if (!partial) {
        if (this.#fullSync?.runId !== source.runId) {
          this.#fullSync = { runId: source.runId, readyAt: now + FULL_SYNC_DELAY_MS };
        }
        if (now < this.#fullSync.readyAt) return;
        this.#fullSync = undefined;
        this.log = [...source.log];
        this.lastFullSyncAt = now;
        this.onReceive(this.log);
        this.replid2 = NO_ID;
        this.replid2Offset = -1;
      } else if (this.replid !== source.replid) {
        // "+CONTINUE <new id>": the old id is kept as the second one, as Redis does.
        this.replid2 = this.replid;
        this.replid2Offset = offset;
      }
      this.replid = source.replid;
      this.linkUp = true;
      this.#linkedRunId = source.runId;
    }
    if (this.log.length < source.log.length) {
      const received = source.log.slice(this.log.length);
      for (const id of received) this.log.push(id);
      this.onReceive(received);
    }
    if (this.replid !== source.replid) {
      // The master was promoted (new history continuing ours): follow its new id, as PSYNC does.
      this.replid2 = this.replid;
      this.replid2Offset = this.log.length;
      this.replid = source.replid;
    }
  }

  /**
   * The replicas acknowledging this master as its INFO lists them: `lag` (whole seconds since the last
   * acknowledgement, on Redis's second-resolution clock) of at most one.
   */
  acknowledging(now: number): Set<string> {
    const second = Math.floor(now / 1_000);
    const keys = new Set<string>();
    for (const [address, at] of this.acknowledgedAt) {
      if (second - Math.floor(at / 1_000) <= 1) keys.add(address);
    }
    return keys;
  }

  linkBroken(now: number): void {
    this.#linkDown(now);
  }

  #linkDown(now: number): void {
    if (this.linkUp) {
      this.linkUp = false;
      this.linkDownSince = now;
    }
  }

  #settleHeld(now: number): void {
    for (const write of this.#held.splice(0)) {
      if (this.up && this.role === "master" && now >= this.pausedUntil) {
        this.log.push(write.id);
        this.onReceive([write.id]);
        write.settle(true);
      } else {
        write.settle(false);
      }
    }
  }

  #failHeld(): void {
    for (const write of this.#held.splice(0)) write.settle(false);
  }
}
