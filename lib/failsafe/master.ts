/**
 * The master's side of failsafe mode: once Consul has not confirmed the lock for a while, call every
 * peer's agent once per interval and keep the send time of each granted call. `until()` is how long
 * those grants let the master take writes (lib/reconciler/failsafe.ts); the reconciler keeps the
 * master writable that long past Consul's fence bound, and fences it as soon as one grant runs out.
 */
import { BackgroundLoop } from "../background_loop.ts";
import { readBoundedText } from "../http/body.ts";
import { formatHostPort, type HostPort } from "../address.ts";
import type { Clock } from "../clock.ts";
import type { Milliseconds } from "../duration.ts";
import type { Logger } from "../log.ts";
import { writesAllowedUntil } from "../reconciler/failsafe.ts";
import type { LockView } from "../reconciler/model.ts";
import {
  type CallSigner,
  encodeCall,
  FAILSAFE_PATH,
  type FailsafeAnswer,
  parseAnswer,
  SIGNATURE_HEADER,
} from "./call.ts";

/** A peer that could take over, and where its agent answers failsafe calls (unknown: never granted). */
export interface FailsafeTarget {
  /** The peer's announce address, as its candidacy names it. */
  readonly address: string;
  readonly api: HostPort | undefined;
}

/** Sends one signed call and returns the peer's answer; rejects when there is none. */
export type CallSender = (
  api: HostPort,
  body: string,
  signature: string,
  signal: AbortSignal,
) => Promise<FailsafeAnswer>;

export interface FailsafeMasterOptions {
  key: CallSigner;
  self: HostPort;
  /** Our part in the lock: calls go out only while we hold it. */
  lock: () => LockView;
  /** Every peer that could take over (the live candidacies). */
  peers: () => readonly FailsafeTarget[];
  /** How long a grant lasts (the peers' lease, the fence bound). */
  leaseMs: Milliseconds;
  /** Calls start once the lock has gone unconfirmed this long (a missed renewal). */
  startAfterMs: Milliseconds;
  /** One round of calls per interval while needed. */
  intervalMs: Milliseconds;
  /** How long one call may take. */
  callTimeoutMs: Milliseconds;
  clock: Clock;
  logger: Logger;
  /** A round changed what `until()` answers. */
  onChange?: () => void;
  send?: CallSender;
}

/** Calls the peers while the lock is unconfirmed; `until()` answers from the grants. */
export class FailsafeMaster {
  readonly #options: FailsafeMasterOptions;
  readonly #loop = new BackgroundLoop(() => this.#run());
  /** Send time of each peer's last granted call, in the term `#term`. */
  #grants = new Map<string, number>();
  #term: number | undefined;
  #peers: readonly string[] = [];
  #active = false;

  constructor(options: FailsafeMasterOptions) {
    this.#options = options;
  }

  /** Until when the grants let this node take writes; undefined when they do not. */
  until(): number | undefined {
    return writesAllowedUntil(this.#grants, this.#peers, this.#options.leaseMs);
  }

  start(): void {
    this.#loop.start();
  }

  stop(): Promise<void> {
    return this.#loop.stop();
  }

  async #run(): Promise<void> {
    const { clock, intervalMs } = this.#options;
    while (!this.#loop.signal.aborted) {
      try {
        await this.#round();
      } catch (error) {
        this.#options.logger.warn("a round of failsafe calls failed", { error });
      }
      try {
        await clock.sleep(intervalMs, this.#loop.signal);
      } catch {
        return; // stopped
      }
    }
  }

  /** One round: forget grants when not needed, else call every peer at once. */
  async #round(): Promise<void> {
    const { clock, logger } = this.#options;
    const lock = this.#options.lock();
    const now = clock.now();
    if (lock.phase !== "held" || now - lock.confirmedAt < this.#options.startAfterMs) {
      if (this.#active) logger.info("Consul confirms the lock again; failsafe calls stop");
      this.#active = false;
      // Grants outlive a confirmation: they stay valid for their lease, whatever Consul says next.
      if (lock.phase !== "held") this.#forget(undefined);
      return;
    }
    if (this.#term !== lock.lockIndex) this.#forget(lock.lockIndex);
    if (!this.#active) {
      logger.warn("Consul has not confirmed the lock; asking every peer to confirm it follows us", {
        unconfirmedForMs: now - lock.confirmedAt,
      });
      this.#active = true;
    }
    const peers = this.#options.peers();
    this.#peers = peers.map((peer) => peer.address);
    const before = this.until();
    await Promise.all(peers.map((peer) => this.#call(peer, lock.lockIndex)));
    if (this.until() !== before) this.#options.onChange?.();
  }

  async #call(peer: FailsafeTarget, lockIndex: number): Promise<void> {
    const { clock, logger, key, callTimeoutMs } = this.#options;
    if (!peer.api) {
      logger.debug("a peer publishes no failsafe address; it cannot confirm", {
        peer: peer.address,
      });
      return;
    }
    const body = encodeCall({ leader: this.#options.self, lockIndex, sentAt: clock.wallNow() });
    const sentAt = clock.now();
    const [finished, expired] = [new AbortController(), new AbortController()];
    clock.sleep(callTimeoutMs, finished.signal).then(() => expired.abort(), () => {});
    const deadline = AbortSignal.any([this.#loop.signal, expired.signal]);
    try {
      const send = this.#options.send ?? sendCall;
      const answer = await send(peer.api, body, await key.sign(body), deadline);
      if (answer.granted && this.#term === lockIndex) {
        this.#grants.set(peer.address, Math.max(this.#grants.get(peer.address) ?? 0, sentAt));
      } else if (!answer.granted) {
        logger.warn("a peer refused to confirm it follows us", {
          peer: peer.address,
          reason: answer.reason,
        });
      }
    } catch (error) {
      logger.debug("a failsafe call got no answer", { peer: formatHostPort(peer.api), error });
    } finally {
      finished.abort();
    }
  }

  #forget(term: number | undefined): void {
    this.#grants = new Map();
    this.#term = term;
  }
}

/** The longest answer read: an answer is under 200 bytes. */
const MAX_ANSWER_BYTES = 4_096;

/** Sends a call with `fetch`: HTTP, as the agents' API is served. */
export const sendCall: CallSender = async (api, body, signature, signal) => {
  const response = await fetch(`http://${formatHostPort(api)}${FAILSAFE_PATH}`, {
    method: "POST",
    body,
    headers: { "Content-Type": "application/json", [SIGNATURE_HEADER]: signature },
    signal,
  });
  const text = await readBoundedText(response, MAX_ANSWER_BYTES);
  if (text === undefined) {
    throw new Error(`a failsafe answer is longer than ${MAX_ANSWER_BYTES} bytes`);
  }
  if (response.status !== 200) {
    throw new Error(`failsafe call answered ${response.status}: ${text.slice(0, 200)}`);
  }
  return parseAnswer(text);
};
