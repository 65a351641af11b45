/**
 * The fast takeover beside the agent's loop (lib/reconciler/takeover.ts holds its rules;
 * docs/failure-detection.md its protocol): what it observes for `decide()`, the fields it adds to our
 * candidacy, and the actions of a decision: publishing a leader we cannot reach, ending its session,
 * renewing our own lock's session while guarded.
 */
import { type HostPort, sameHostPort } from "../../address.ts";
import type { Clock } from "../../clock.ts";
import type { Logger } from "../../log.ts";
import {
  type Candidacy,
  type ElectionSettings,
  isLive,
  type SeenCandidacy,
} from "../../reconciler/election.ts";
import {
  acknowledgedInTerm,
  holderEnded,
  holderEndStarted,
  type Memory,
} from "../../reconciler/memory.ts";
import type { Decision, LeaderView, LockView, Observed } from "../../reconciler/model.ts";
import {
  peersLostHolder,
  sessionRenewedAt,
  type TakeoverSettings,
} from "../../reconciler/takeover.ts";
import type { LockDriver } from "./lock_driver.ts";

/**
 * The fast takeover's observations and its one Consul action: the watches in lib/agent/watch/
 * (holder_reach.ts, leader_offset.ts, replica_acks.ts, former_master.ts).
 */
export interface TakeoverPort {
  /** How long the Redis at `leader` has been out of reach from this host (0: reached). */
  unreachableForMs(leader: HostPort, now: number): number;
  /** When a read of `leader`'s Redis last listed ours as an acknowledging replica. */
  acknowledgedAt(leader: HostPort): number | undefined;
  /** While we hold the lock: the replicas acknowledging our Redis now (`ip:port`). */
  replicaAcks(now: number): ReadonlySet<string> | undefined;
  /** Ends a leader's session; resolves once Consul confirmed it. */
  endSession(session: string): Promise<void>;
  /**
   * Asks to watch whether the catalog lists `former` as a passing master (undefined: stop), and
   * answers from what was seen so far (undefined: no answer yet).
   */
  formerMasterListed(former: HostPort | undefined): boolean | undefined;
}

/** Spacing of a guarded master's renewals when one fails. */
const CONFIRM_RETRY_MS = 200;

/** What the coordinator needs from the agent that owns it. */
export interface TakeoverHost {
  port: TakeoverPort;
  settings: TakeoverSettings | undefined;
  self: HostPort;
  clock: Clock;
  logger: Logger;
  lock: Pick<LockDriver, "confirm">;
  /** The candidacies, when elections are on. */
  peers?: () => readonly SeenCandidacy[];
  election?: Pick<ElectionSettings, "staleAfterMs">;
  /** The lock key's ModifyIndex while it is free (0 otherwise). */
  vacancy: () => number;
  /** The agent's memory (lib/reconciler/memory.ts), read and replaced. */
  memory: { get(): Memory; set(memory: Memory): void };
  /** The last publication of our candidacy, until written. */
  publication: () => Promise<void>;
  background: (step: string, action: () => Promise<unknown>) => void;
  requestEvaluation: () => void;
}

/** One per agent with the fast takeover on. */
export class TakeoverCoordinator {
  readonly #host: TakeoverHost;
  /** The leader session whose Redis we last decided we cannot reach (published in the candidacy). */
  #unreachableHolder: string | undefined;

  constructor(host: TakeoverHost) {
    this.#host = host;
  }

  /** What the fast takeover observes now, for `decide()`. */
  observe(
    leader: LeaderView | null | undefined,
    lockView: LockView,
    now: number,
  ): Pick<
    Observed,
    "replicaGuard" | "holderReach" | "peersLostHolder" | "endedHolder" | "formerMasterListed"
  > {
    const { port, self } = this.#host;
    const memory = this.#host.memory.get();
    const guard = memory.termAcks?.guard;
    const ended = memory.endedHolder?.session;
    const other = leader && !sameHostPort(leader.address, self) ? leader : undefined;
    const peers = this.#host.peers;
    const election = this.#host.election;
    return {
      ...(guard ? { replicaGuard: guard } : {}),
      ...(ended !== undefined ? { endedHolder: ended } : {}),
      ...this.#formerMasterListed(memory, lockView),
      ...(other
        ? {
          holderReach: {
            unreachableForMs: port.unreachableForMs(other.address, now),
            acknowledged: acknowledgedInTerm(memory, other, port.acknowledgedAt(other.address)),
          },
          ...(peers && election
            ? { peersLostHolder: peersLostHolder(peers(), other, self, now, election) }
            : {}),
        }
        : {}),
    };
  }

  /** The replicas acknowledging our Redis now, for the memory (termAcks). */
  replicaAcks(now: number): ReadonlySet<string> | undefined {
    return this.#host.port.replicaAcks(now);
  }

  /**
   * Whether a live peer published that it ended the last leader's session in a write Consul applied
   * before the lock went free (its ModifyIndex is below the vacancy's).
   */
  endedByPeerBeforeVacancy(now: number): boolean {
    const session = this.#host.memory.get().lastLeader?.session;
    const vacancy = this.#host.vacancy();
    if (session === undefined || vacancy <= 0) return false;
    return this.#livePeers(now).some((peer) =>
      peer.candidacy.endsHolder === session && peer.modifyIndex !== undefined &&
      peer.modifyIndex < vacancy
    );
  }

  /**
   * Whether the last leader's term ended in a fast takeover: we, or a live peer, ended its session
   * because no peer could reach its Redis.
   */
  lastLeaderLost(now: number): boolean {
    const memory = this.#host.memory.get();
    const session = memory.lastLeader?.session;
    if (session === undefined) return false;
    if (memory.endedHolder?.session === session) return true;
    return this.#livePeers(now).some((peer) => peer.candidacy.endsHolder === session);
  }

  /** The fast takeover's fields of our candidacy. */
  candidacyFields(): Pick<Candidacy, "unreachableHolder" | "endsHolder"> {
    const ends = this.#host.memory.get().endedHolder?.session;
    return {
      ...(this.#unreachableHolder !== undefined
        ? { unreachableHolder: this.#unreachableHolder }
        : {}),
      ...(ends !== undefined ? { endsHolder: ends } : {}),
    };
  }

  /**
   * Carries out the fast takeover's part of a decision. Returns true when the candidacy changed and
   * the loop must evaluate again to publish it.
   */
  apply(decision: Decision, lockView: LockView, now: number): boolean {
    const host = this.#host;
    let again = false;
    if (decision.unreachableHolder !== this.#unreachableHolder) {
      this.#unreachableHolder = decision.unreachableHolder;
      again = true;
    }
    const session = decision.endHolderSession;
    const memory = host.memory.get();
    if (session !== undefined) {
      if (memory.endedHolder?.session !== session) {
        // Our candidacy says so first (the next evaluation publishes it): a peer that leads next
        // counts the guard bound only from an end Consul ordered after that word.
        host.memory.set(holderEndStarted(memory, session));
        again = true;
      } else if (memory.endedHolder.at === undefined) {
        const published = host.publication();
        host.background("end-holder", async () => {
          const before = host.memory.get().endedHolder;
          if (before?.session !== session || before.at !== undefined) return;
          await published;
          await host.port.endSession(session);
          host.memory.set(holderEnded(host.memory.get(), session, host.clock.now()));
          host.logger.warn("ended the session of a leader that no peer can reach", { session });
          host.requestEvaluation();
        });
      }
    }
    const after = decision.confirmLockAfterMs;
    if (after !== undefined && lockView.phase === "held") {
      if (now - sessionRenewedAt(lockView) >= after) {
        const timeoutMs = host.settings?.guardConfirmEveryMs ?? CONFIRM_RETRY_MS;
        host.background("confirm-lock", async () => {
          try {
            await host.lock.confirm(timeoutMs);
          } catch (error) {
            await host.clock.sleep(CONFIRM_RETRY_MS).catch(() => {});
            throw error;
          } finally {
            host.requestEvaluation();
          }
        });
      }
    }
    return again;
  }

  /** After a fast takeover, while we hold the lock: whether Consul still lists the former master. */
  #formerMasterListed(
    memory: Memory,
    lockView: LockView,
  ): Pick<Observed, "formerMasterListed"> {
    const peer = memory.peerToFence;
    const former = lockView.phase === "held" && peer?.endedAt !== undefined
      ? peer.address
      : undefined;
    const listed = this.#host.port.formerMasterListed(former);
    return former && listed !== undefined ? { formerMasterListed: listed } : {};
  }

  #livePeers(now: number): readonly SeenCandidacy[] {
    const { peers, election } = this.#host;
    if (!peers || !election) return [];
    return peers().filter((peer) => isLive(peer, now, election));
  }
}
