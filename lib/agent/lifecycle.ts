/**
 * A running agent: its wired parts (lib/agent/wiring.ts), started in order and stopped in the reverse,
 * the lock given up and Redis handed over before the connections close.
 */
import type { Clock } from "../clock.ts";
import type { Config } from "../config.ts";
import type { Logger } from "../log.ts";
import { type HttpServer, startHttpServer } from "../http/server.ts";
import type { StatusSource } from "../http/status.ts";
import { endEarlierRunSessions } from "./earlier_run.ts";
import { FAILSAFE_PATH } from "../failsafe/call.ts";
import { failsafeApiAddress } from "./failsafe_wiring.ts";
import { handOver } from "./apply/hand_over.ts";
import type { RedisActuator } from "./apply/redis_actuator.ts";
import { inspectRedis } from "./redis_ports.ts";
import { EARLIER_RUN_DEADLINE_MS } from "./timings.ts";
import { type AgentParts, wireAgent, type WiringOptions } from "./wiring.ts";

/** A running agent and everything it owns. */
export class AgentLifecycle implements AsyncDisposable {
  readonly #parts: AgentParts;
  #http: HttpServer | undefined;
  #stopped: Promise<void> | undefined;

  constructor(readonly config: Config, options: WiringOptions) {
    this.#parts = wireAgent(config, options);
  }

  /** What the HTTP endpoints answer from. */
  get status(): StatusSource {
    return this.#parts.status;
  }

  /**
   * Starts observing and deciding, and the HTTP endpoints when HTTP_ADDR is set.
   *
   * @throws {RedisVersionError} when Redis answers and is older than 6.2; nothing was started.
   */
  async start(): Promise<void> {
    const { clients, watches, logger, agent, clock, node } = this.#parts;
    const role = await inspectRedis(clients.commander, clients.actuator, logger, clock.now());
    const failsafe = clients.failsafe;
    if (this.config.httpAddress) {
      this.#http = await startHttpServer({
        address: this.config.httpAddress,
        status: this.#parts.status,
        metrics: this.#parts.metrics,
        logger: logger.child("http"),
        ...(failsafe
          ? { routes: { [FAILSAFE_PATH]: (request) => failsafe.peer.handle(request) } }
          : {}),
      });
      logger.info("HTTP endpoints listening", { url: this.#http.url });
      if (failsafe) {
        failsafe.api.current = failsafeApiAddress(this.#http.address, this.config.announce);
        logger.info("failsafe mode on: peers call this agent", { api: failsafe.api.current });
      }
    }
    // This run holds no lock yet, and ending an earlier run's session frees any lock it holds: a
    // master-role Redis refuses writes from the first moment, as the loop would have it do without a
    // confirmed lock, or a client that still follows it could write there while another node takes
    // over (simulator seeds 71 and 143; the second a master back with its data, whose sessions
    // Consul had already ended).
    if (role === "master") await fenceAtStart(clients.actuator, clock, logger);
    // Before this run makes any session of its own, so none of them can be mistaken for old ones.
    await endEarlierRunSessions({
      client: clients.consul,
      node,
      sessionName: this.config.lock.sessionName,
      agentCheckId: clients.presence.checkId,
      logger: logger.child("lock"),
      deadlineMs: EARLIER_RUN_DEADLINE_MS,
      clock,
    });
    await clients.presence.start();
    watches.holderWatch.start();
    watches.leaderOffset.start();
    if (this.#parts.config.fastTakeover) {
      watches.holderReach.start();
      watches.replicaAcks.start();
      watches.formerMasterWatch.start();
    }
    failsafe?.master.start();
    clients.observer.start();
    agent.start();
  }

  /** Stops gracefully (releases the lock, deregisters) and closes every connection. */
  stop(): Promise<void> {
    const { clients, watches, agent, recorder } = this.#parts;
    this.#stopped ??= (async () => {
      await watches.holderWatch.stop();
      await watches.leaderOffset.stop();
      await watches.holderReach.stop();
      await watches.replicaAcks.stop();
      await watches.formerMasterWatch.stop();
      await clients.failsafe?.master.stop();
      watches.offsetReader.close();
      watches.ackReader.close();
      await agent.stop();
      // No longer a candidate: its entry goes at once (its session ends), or peers would wait for a
      // live, well-placed candidate that never competes, while the hand-over waits for them.
      await watches.board.close();
      await handOver({ ...this.#parts, ...clients, leaderSource: watches.leaderSource });
      // After the lock is released: deregistering the check would end the session anyway.
      await clients.presence.stop();
      await recorder.settled();
      await this.#http?.close();
      await watches.control.close();
      await watches.leaderSource.close();
      await watches.keys.close();
      await clients.observer.close();
      await clients.commander.close();
      clients.consul.close();
    })();
    return this.#stopped;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}

/**
 * Fences the local Redis (CLIENT PAUSE WRITE) through the actuator, so the loop knows it is fenced. A
 * failure is logged: the loop fences again on its first evaluation.
 */
async function fenceAtStart(actuator: RedisActuator, clock: Clock, logger: Logger): Promise<void> {
  try {
    await actuator.apply({ kind: "fence" }, clock.now());
  } catch (error) {
    logger.child("redis").warn(
      "cannot refuse writes on the master at start; the loop tries again",
      {
        error,
      },
    );
  }
}
