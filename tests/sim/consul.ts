/**
 * A simulated Consul server: KV entries with raft-style indexes, sessions with TTLs, `?acquire=` and
 * `?release=`, and lock-delay after a session is invalidated. Consul checks TTLs lazily: a session
 * expires somewhere between TTL and 2 × TTL after its last renewal, drawn from the seed. An outage
 * (quorum lost) stops its timers; the new leader gives every session and TTL check a full TTL again.
 */
import type { EventHandle, Random, Scheduler } from "./scheduler.ts";

export interface KvEntry {
  readonly key: string;
  readonly value: string;
  readonly session: string | undefined;
  readonly modifyIndex: number;
  readonly lockIndex: number;
}

interface Session {
  readonly id: string;
  readonly node: string;
  readonly ttlMs: number;
  /** Health checks the session is tied to: it is invalidated when one turns critical. */
  readonly checks: readonly string[];
  expiry: EventHandle;
}

interface Check {
  passing: boolean;
  expiry: EventHandle | undefined;
  /** The TTL of a TTL check (the agent's own), undefined for the others. */
  ttlMs: number | undefined;
}

export class SimConsul {
  index = 1;
  readonly kv = new Map<string, KvEntry>();
  readonly #sessions = new Map<string, Session>();
  readonly #lockDelayUntil = new Map<string, number>();
  readonly #checks = new Map<string, Check>();
  #sessionSeq = 0;
  /** Quorum lost: nobody reaches Consul, and its timers stand still. */
  #down = false;
  /** World changes (gossip verdicts, operators' writes) made while down, applied once back. */
  #deferred: (() => void)[] = [];

  constructor(
    readonly sched: Scheduler,
    readonly rng: Random,
    readonly lockDelayMs: number,
    /** Called after every change of the KV (watches fire). */
    readonly onChange: () => void,
    readonly trace: (line: string) => void,
  ) {}

  /** True while Consul is out (no leader): every request fails. */
  get down(): boolean {
    return this.#down;
  }

  /**
   * Quorum lost: no request is served and no TTL runs out, since only a leader expires sessions and
   * checks.
   */
  outage(): void {
    this.#down = true;
    for (const session of this.#sessions.values()) session.expiry.cancel();
    for (const check of this.#checks.values()) {
      check.expiry?.cancel();
      check.expiry = undefined;
    }
  }

  /**
   * A leader again: as Consul's new leader does, every session's TTL starts afresh (so none expires
   * for the outage) and every TTL check gets a full TTL; changes made meanwhile apply now.
   */
  recover(): void {
    this.#down = false;
    for (const session of this.#sessions.values()) this.#armExpiry(session);
    for (const [id, check] of this.#checks) {
      if (check.passing && check.ttlMs !== undefined) this.#armCheckExpiry(id, check, check.ttlMs);
    }
    const deferred = this.#deferred;
    this.#deferred = [];
    for (const action of deferred) action();
  }

  /** Runs `action` now, or once Consul is back when it is out (a change the servers must apply). */
  whenUp(action: () => void): void {
    if (this.#down) this.#deferred.push(action);
    else action();
  }

  /** Throws, as Consul refuses, when a check to tie the session to is not passing. */
  createSession(node: string, ttlMs: number, checks: readonly string[] = []): string {
    const failing = checks.find((check) => !this.#checks.get(check)?.passing);
    if (failing) throw new Error(`Check "${failing}" is not passing`);
    const id = `s${++this.#sessionSeq}-${node}`;
    const session: Session = { id, node, ttlMs, checks, expiry: { cancel() {} } };
    this.#sessions.set(id, session);
    this.#armExpiry(session);
    return id;
  }

  /** Sets a check's status; a critical check invalidates the sessions tied to it. */
  setCheck(id: string, passing: boolean): void {
    const check = this.#checks.get(id) ?? { passing, expiry: undefined, ttlMs: undefined };
    check.expiry?.cancel();
    check.expiry = undefined;
    check.passing = passing;
    this.#checks.set(id, check);
    if (passing) return;
    for (const session of [...this.#sessions.values()]) {
      if (session.checks.includes(id)) this.#invalidate(session.id, `invalidated by check ${id}`);
    }
  }

  /** A TTL check's heartbeat: passing, and critical `ttlMs` later unless beaten again. */
  passTtlCheck(id: string, ttlMs: number): void {
    this.setCheck(id, true);
    const check = this.#checks.get(id)!;
    check.ttlMs = ttlMs;
    this.#armCheckExpiry(id, check, ttlMs);
  }

  #armCheckExpiry(id: string, check: Check, ttlMs: number): void {
    check.expiry = this.sched.after(ttlMs, "check ttl", () => {
      this.trace(`consul: check ${id} missed its TTL`);
      this.setCheck(id, false);
    });
  }

  /** False when the session is gone (expired or destroyed). */
  renew(id: string): boolean {
    const session = this.#sessions.get(id);
    if (!session) return false;
    session.expiry.cancel();
    this.#armExpiry(session);
    return true;
  }

  hasSession(id: string): boolean {
    return this.#sessions.has(id);
  }

  destroy(id: string): void {
    this.#invalidate(id, "destroyed");
  }

  /** How many sessions `node` has (`/v1/session/list`, as a restarted agent reads it). */
  nodeSessionCount(node: string): number {
    return [...this.#sessions.values()].filter((session) => session.node === node).length;
  }

  /** Destroys every session of `node` (a restarted agent ending its earlier run's); how many. */
  destroyNodeSessions(node: string): number {
    const ids = [...this.#sessions.values()].filter((session) => session.node === node);
    for (const session of ids) this.#invalidate(session.id, "ended by a restarted agent");
    return ids.length;
  }

  /** `PUT ?acquire=`: false when another session holds it, or lock-delay is in force. */
  acquire(key: string, session: string, value: string): boolean {
    if (!this.#sessions.has(session)) return false;
    const entry = this.kv.get(key);
    if (entry?.session === session) {
      this.#set(key, value, session, entry.lockIndex);
      return true;
    }
    if (entry?.session !== undefined) return false;
    if (this.sched.now < (this.#lockDelayUntil.get(key) ?? 0)) return false;
    this.#set(key, value, session, (entry?.lockIndex ?? 0) + 1);
    return true;
  }

  /** `PUT ?release=` with the value the holder leaves (its release note): no lock-delay. */
  release(key: string, session: string, value?: string): boolean {
    const entry = this.kv.get(key);
    if (entry?.session !== session) return false;
    this.#set(key, value ?? entry.value, undefined, entry.lockIndex);
    return true;
  }

  /** A plain PUT: the holder, if any, keeps the key. */
  put(key: string, value: string): void {
    const entry = this.kv.get(key);
    this.#set(key, value, entry?.session, entry?.lockIndex ?? 0);
  }

  delete(key: string): void {
    if (!this.kv.delete(key)) return;
    this.index++;
    this.onChange();
  }

  #set(key: string, value: string, session: string | undefined, lockIndex: number): void {
    this.kv.set(key, { key, value, session, modifyIndex: ++this.index, lockIndex });
    this.onChange();
  }

  #armExpiry(session: Session): void {
    if (session.ttlMs === 0) return; // No TTL: it lives as long as its checks pass.
    // Never before TTL after the last renewal; up to 2 × TTL.
    const after = session.ttlMs + Math.floor(this.rng.next() * session.ttlMs);
    session.expiry = this.sched.after(after, "session expiry", () => {
      this.#invalidate(session.id, "expired");
    });
  }

  #invalidate(id: string, why: string): void {
    const session = this.#sessions.get(id);
    if (!session) return;
    session.expiry.cancel();
    this.#sessions.delete(id);
    for (const entry of [...this.kv.values()]) {
      if (entry.session !== id) continue;
      this.trace(
        `consul: session ${id} ${why}; ${entry.key} freed, lock-delay ${this.lockDelayMs}ms`,
      );
      this.#lockDelayUntil.set(entry.key, this.sched.now + this.lockDelayMs);
      this.#set(entry.key, entry.value, undefined, entry.lockIndex);
    }
  }
}
