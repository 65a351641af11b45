/**
 * A graceful stop of the master: once another node leads, make our fenced Redis its replica, as that
 * node's agent would.
 */
import { formatHostPort, sameHostPort } from "../../address.ts";
import type { Clock } from "../../clock.ts";
import {
  masterServiceQuery,
  presenceDefinition,
  slaveServiceQuery,
} from "../../cluster/services.ts";
import type { Config } from "../../config.ts";
import type { ConsulClient } from "../../consul/client.ts";
import { ConsulError } from "../../consul/errors.ts";
import { healthService } from "../../consul/health.ts";
import type { Logger } from "../../log.ts";
import type { RedisCommander } from "../../redis/commander.ts";
import { RedisError } from "../../redis/errors.ts";
import type { LeaderSource } from "../watch/leader_source.ts";
import type { RedisActuator } from "./redis_actuator.ts";
import { type AgentTimings, HAND_OVER_WAIT_MS } from "../timings.ts";

export interface HandOverOptions {
  config: Config;
  timings: Pick<AgentTimings, "agentCheckTtlMs">;
  /** The Consul node this agent runs on. */
  node: string;
  consul: ConsulClient;
  commander: RedisCommander;
  actuator: RedisActuator;
  leaderSource: LeaderSource;
  clock: Clock;
  logger: Logger;
}

/**
 * After a graceful stop fenced our master Redis and gave the lock up: once another node leads (a
 * bounded wait), make our Redis its replica and lift the fence, as its agent would. Without this,
 * the Redis keeps the fence for its whole minute when a Go resec (or nobody) takes over. It gives
 * up at once when no peer is left that could lead (every agent stopping together), and a Redis
 * with no replica hands over to nobody: no peer holds its data.
 */
export async function handOver(options: HandOverOptions): Promise<void> {
  const { clock, actuator } = options;
  if (!actuator.isFenced(clock.now())) return;
  const logger = options.logger.child("agent");
  try {
    const info = await options.commander.info();
    if (info.role !== "master" || info.connectedReplicas === 0) return;
    const self = options.config.announce;
    const source = options.leaderSource;
    const other = () => {
      const leader = source.leader();
      return leader && !sameHostPort(leader.address, self) ? leader : undefined;
    };
    const wake = new AbortController();
    const unsubscribe = source.onChange(() => other() && wake.abort());
    const deadline = clock.now() + HAND_OVER_WAIT_MS;
    try {
      while (!other()) {
        if (clock.now() >= deadline) {
          logger.warn("no other node leads yet; Redis stays fenced until its pause lapses", {
            waitedMs: HAND_OVER_WAIT_MS,
          });
          return;
        }
        if (!(await peerMayLead(options))) {
          logger.info(
            "no other agent is left to lead; Redis stays fenced until its pause lapses",
          );
          return;
        }
        await clock.sleep(Math.min(250, deadline - clock.now()), wake.signal).catch(() => {});
      }
    } finally {
      unsubscribe();
    }
    const leader = other()!;
    await actuator.apply({ kind: "replicate", master: leader.address }, clock.now());
    logger.info("handed over: Redis replicates from the new leader", {
      leader: formatHostPort(leader.address),
    });
  } catch (error) {
    if (!(error instanceof RedisError) && !(error instanceof ConsulError)) throw error;
    logger.warn("cannot hand Redis over to the new leader", { error });
  }
}

/**
 * Whether another agent could still take the lock: a passing agent service of ours other than
 * this one, or a passing slave (a Go resec registers nothing else).
 */
async function peerMayLead(
  options: Pick<HandOverOptions, "config" | "timings" | "consul" | "node">,
): Promise<boolean> {
  const { config, consul } = options;
  const presence = presenceDefinition(config, options.timings);
  const slaves = slaveServiceQuery(config);
  const [agents, replicas] = await Promise.all([
    healthService(consul, presence.name, { passing: true }),
    healthService(consul, slaves.name, {
      passing: true,
      ...(slaves.tag !== undefined ? { tag: slaves.tag } : {}),
    }),
  ]);
  const otherAgent = agents.entries.some((entry) =>
    entry.serviceId !== presence.id || entry.node !== options.node
  );
  const masterTag = masterServiceQuery(config).tag;
  const replica = replicas.entries.some((entry) =>
    masterTag === undefined || !entry.tags.includes(masterTag)
  );
  return otherAgent || replica;
}
