/**
 * Builds failsafe mode's two sides for an agent (FAILSAFE_MODE, docs/failsafe.md) and connects them
 * to the lock, the leader watch and the candidacies; nothing is started here.
 */
import { formatHostPort, type HostPort, isUnspecifiedHost, parseHostPort } from "../address.ts";
import type { Clock } from "../clock.ts";
import type { Config } from "../config.ts";
import type { Milliseconds } from "../duration.ts";
import { type CallSigner, FailsafeKey } from "../failsafe/call.ts";
import { type CallSender, FailsafeMaster, type FailsafeTarget } from "../failsafe/master.ts";
import { FailsafePeer } from "../failsafe/peer.ts";
import type { Logger } from "../log.ts";
import type { SeenCandidacy } from "../reconciler/election.ts";
import { grantReliedMs } from "../reconciler/failsafe.ts";
import type { LeaderView, LockView } from "../reconciler/model.ts";
import type { FailsafePort } from "./loop.ts";

/** One round of calls per second at most: a round per missed second of Consul is plenty. */
const CALL_INTERVAL_MAX_MS = 1_000;

/**
 * Rounds per fence bound at least (short test timings): a grant counts for 0.6 of it, so about five
 * rounds fall within each grant and one slow or lost round costs nothing.
 */
const ROUNDS_PER_FENCE_BOUND = 8;

/** Rounds of calls made before the fence bound runs out, so the grants are in by then. */
const ROUNDS_BEFORE_FENCE = 2;

export interface FailsafeWiringOptions {
  config: Config;
  /** The fence bound: how long a grant lasts. */
  fenceAfterMs: Milliseconds;
  /** Our lock, as the loop sees it (the agent check's confirmation included). */
  lock: () => LockView;
  leader: () => LeaderView | null | undefined;
  /** The peers' candidacies, released ones included (the candidacy board). */
  peers: () => readonly SeenCandidacy[];
  clock: Clock;
  logger: Logger;
  onChange: () => void;
  /** Signs and checks calls: the group's key (FAILSAFE_KEY_FILE) unless given (the simulator). */
  signer?: CallSigner;
  /** Carries a call to a peer: HTTP (`sendCall`) unless given (the simulator). */
  send?: CallSender;
}

/** Failsafe mode's parts: the port the loop reads, and what the lifecycle starts and serves. */
export interface FailsafeParts {
  readonly port: FailsafePort;
  readonly master: FailsafeMaster;
  readonly peer: FailsafePeer;
  /** Where this agent answers calls, once its HTTP API listens (set by the lifecycle). */
  readonly api: { current: string | undefined };
}

/** Builds failsafe mode's parts, or undefined when FAILSAFE_MODE is off. */
export function wireFailsafe(options: FailsafeWiringOptions): FailsafeParts | undefined {
  const { config, fenceAfterMs, clock, logger } = options;
  if (!config.failsafe) return undefined;
  const key = options.signer ?? new FailsafeKey(config.failsafe.key);
  const self = config.announce;
  const intervalMs = Math.max(
    10,
    Math.min(CALL_INTERVAL_MAX_MS, Math.floor(fenceAfterMs / ROUNDS_PER_FENCE_BOUND)),
  );
  const peer = new FailsafePeer({
    key,
    self,
    view: () => ({ lock: options.lock(), leader: options.leader() }),
    leaseMs: fenceAfterMs,
    clock,
    logger,
    onPromise: options.onChange,
  });
  const master = new FailsafeMaster({
    key,
    self,
    lock: options.lock,
    peers: () => failsafeTargets(options.peers(), self),
    leaseMs: fenceAfterMs,
    startAfterMs: Math.max(0, fenceAfterMs - ROUNDS_BEFORE_FENCE * intervalMs),
    intervalMs,
    // A grant that arrives after a third of its time is still worth most of it.
    callTimeoutMs: Math.max(intervalMs, Math.floor(grantReliedMs(fenceAfterMs) / 3)),
    clock,
    logger,
    onChange: options.onChange,
    ...(options.send ? { send: options.send } : {}),
  });
  const port: FailsafePort = {
    until: () => master.until(),
    promisedUntil: () => peer.promisedUntil(),
  };
  return { port, master, peer, api: { current: undefined } };
}

/**
 * Every peer that could take over: every candidacy the board holds but our own, live or released
 * (the board forgets released ones after ten minutes). A released peer may be alive and cut off
 * from Consul only for now, and a peer that publishes no address can never grant: either keeps
 * failsafe mode off for the group, which is the safe side.
 */
export function failsafeTargets(peers: readonly SeenCandidacy[], self: HostPort): FailsafeTarget[] {
  const own = formatHostPort(self);
  return peers
    .filter((peer) => peer.candidacy.address !== own)
    .map((peer) => ({
      address: peer.candidacy.address,
      api: peer.candidacy.failsafeApi ? parseHostPort(peer.candidacy.failsafeApi) : undefined,
    }));
}

/**
 * Where peers reach this agent's API: the address it listens on, or the announce host when it
 * listens on every interface.
 */
export function failsafeApiAddress(listening: HostPort, announce: HostPort): string {
  const host = isUnspecifiedHost(listening.host) ? announce.host : listening.host;
  return formatHostPort({ host, port: listening.port });
}
