/**
 * A restarted agent's first act in Consul: end the lock sessions its previous run left behind.
 *
 * Those sessions are tied to this node's agent check. A restart registers that check as passing again
 * before it could lapse, so nothing would end them but their TTL, up to 2 × CONSUL_LOCK_TTL with
 * nobody renewing: a lock held by a dead process, and a master fenced for all that time. They are
 * recognised by the node, the session name and the agent check. The node matters: session names and
 * check IDs are the same on every host (`redis-agent@:6379:alive`), and only this node's are ours.
 */
import { type Clock, systemClock } from "../clock.ts";
import type { ConsulClient } from "../consul/client.ts";
import { isTransientConsulError } from "../consul/errors.ts";
import { destroySession, listSessions, type SessionInfo } from "../consul/session.ts";
import type { Milliseconds } from "../duration.ts";
import type { Logger } from "../log.ts";

export interface EarlierRunOptions {
  client: ConsulClient;
  /** The Consul node this agent runs on; sessions of other nodes are never touched. */
  node: string;
  sessionName: string;
  agentCheckId: string;
  logger: Logger;
  /** Give up after this long (Consul unreachable): the sessions then end by their TTL. */
  deadlineMs: Milliseconds;
  clock?: Clock;
}

/** Identifies this agent's sessions: its node, its session name and its agent check. */
export interface SessionOwner {
  node: string;
  sessionName: string;
  agentCheckId: string;
}

/** The sessions of an earlier run of this agent, among all of the datacenter's. */
export function earlierRunSessions(
  sessions: readonly SessionInfo[],
  owner: SessionOwner,
): SessionInfo[] {
  return sessions.filter((session) =>
    session.node === owner.node && session.name === owner.sessionName &&
    session.serviceChecks.includes(owner.agentCheckId)
  );
}

/**
 * Destroys the sessions of an earlier run (releasing any lock they hold, subject to the lock delay).
 * Returns how many it destroyed; never throws for Consul trouble, only logs it.
 */
export async function endEarlierRunSessions(options: EarlierRunOptions): Promise<number> {
  const { client, logger } = options;
  const clock = options.clock ?? systemClock;
  const giveUpAt = clock.now() + options.deadlineMs;
  let attempt = 0;
  while (true) {
    attempt++;
    try {
      const stale = earlierRunSessions(await listSessions(client), options);
      for (const session of stale) {
        await destroySession(client, session.id);
        logger.warn("ended a lock session left by an earlier run of this agent", {
          session: session.id,
          node: session.node,
          check: options.agentCheckId,
        });
      }
      return stale.length;
    } catch (error) {
      const retryInMs = Math.min(500, giveUpAt - clock.now());
      if (!isTransientConsulError(error) || retryInMs <= 0) {
        logger.warn(
          "cannot look for lock sessions of an earlier run; any such session ends by its TTL",
          { attempts: attempt, error },
        );
        return 0;
      }
      await clock.sleep(retryInMs);
    }
  }
}
