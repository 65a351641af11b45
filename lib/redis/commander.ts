/**
 * Changes the local Redis's role: promote, replicate from a master, hand over with FAILOVER, and fence
 * writes. One connection of its own (never the observer's), reopened on demand, a deadline on every
 * command.
 */
import { formatHostPort, type HostPort, sameHostPort } from "../address.ts";
import { type Clock, systemClock } from "../clock.ts";
import type { Milliseconds } from "../duration.ts";
import { type Logger, silentLogger } from "../log.ts";
import { DEFAULT_REDIS_TIMEOUT_MS, type RedisArgument, RedisClient } from "./client.ts";
import { redisAddress, type RedisConnectionConfig } from "./connection.ts";
import { isPermissionDenied, RedisCommandError, RedisError, RedisTimeoutError } from "./errors.ts";
import { type FailoverState, parseInfo, type RedisInfo } from "./info.ts";
import { selfLoopTarget } from "./self_loop.ts";

/** How often a failover's progress is read: often, as writes are held until it ends. */
const FAILOVER_POLL_MS = 50;

export interface RedisCommanderOptions {
  connection: RedisConnectionConfig;
  /** Deadline of the connection and of each command (HEALTHCHECK_TIMEOUT, default 2s). */
  timeoutMs?: Milliseconds;
  /** How often failoverTo reads `master_failover_state` (default 50 ms). */
  failoverPollMs?: Milliseconds;
  /** `CLIENT SETNAME` of the commander's connection (default `resec-commander`). */
  connectionName?: string;
  clock?: Clock;
  logger?: Logger;
}

/**
 * The commands the agent needs beyond `INFO`, as the ACL names them: the fence and its lifting, the
 * role changes, the switchover, and the disconnection of clients after a demotion.
 */
export const CHECKED_COMMANDS = [
  "client|pause",
  "client|unpause",
  "replicaof",
  "failover",
  "client|list",
  "client|kill",
] as const;

/** One of CHECKED_COMMANDS. */
export type CheckedCommand = typeof CHECKED_COMMANDS[number];

/**
 * A value no Redis accepts where the permission probes put it: Redis checks the ACL first, then
 * refuses the command for its arguments, so the probe learns the one without changing anything.
 */
const PROBE_ARGUMENT = "resec-permission-check";

/** Which of CHECKED_COMMANDS the connection's ACL user may not run. */
export interface PermissionCheck {
  /** Refused with NOPERM. */
  denied: CheckedCommand[];
  /** Not checked: no probe could tell without changing Redis. */
  unchecked: CheckedCommand[];
}

/** What replicateFrom did. */
export interface ReplicateResult {
  /** Normal clients disconnected so they look the master up again. */
  clientsKilled: number;
}

/** How a FAILOVER ended. */
export type FailoverResult =
  | { outcome: "completed"; durationMs: Milliseconds }
  | {
    outcome: "aborted";
    /** Why: Redis gave up on its own (target lagging or refusing), or our deadline passed. */
    reason: string;
    /** The last `master_failover_state` seen before giving up. */
    lastState: FailoverState | undefined;
    durationMs: Milliseconds;
  };

/**
 * Issues role changes to one Redis.
 *
 * @example
 * ```ts
 * await using commander = new RedisCommander({ connection: config, timeoutMs: 2_000 });
 * await commander.replicateFrom({ host: "10.0.0.7", port: 6379 });
 * await commander.promote();
 * ```
 */
export class RedisCommander {
  readonly address: string;
  /** The ACL user (REDIS_USERNAME), if one is configured. */
  readonly username: string | undefined;
  readonly #config: RedisConnectionConfig;
  readonly #timeoutMs: Milliseconds;
  readonly #failoverPollMs: Milliseconds;
  readonly #connectionName: string;
  readonly #clock: Clock;
  readonly #logger: Logger;
  #client: Promise<RedisClient> | undefined;
  #closed = false;

  constructor(options: RedisCommanderOptions) {
    this.#config = options.connection;
    this.address = redisAddress(options.connection);
    this.username = options.connection.username;
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_REDIS_TIMEOUT_MS;
    this.#failoverPollMs = options.failoverPollMs ?? FAILOVER_POLL_MS;
    this.#connectionName = options.connectionName ?? "resec-commander";
    this.#clock = options.clock ?? systemClock;
    this.#logger = options.logger ?? silentLogger;
  }

  /** Makes Redis a master: `REPLICAOF NO ONE`. Keeps its data and replication ID history. */
  async promote(): Promise<void> {
    await this.#call("REPLICAOF", ["NO", "ONE"]);
    this.#logger.info("redis promoted to master", { address: this.address });
  }

  /**
   * Stops replicating, keeping the data, the replication ID and the offset: points Redis at itself
   * (lib/redis/self_loop.ts), where it takes no writes and serves no sync. A master loses its
   * replicas' links too, as in `replicateFrom`. Reports whether the replica had ever completed a sync,
   * read from Redis just before: its link is up, or down since a known time (Redis ≥ 6.2 says -1 for a
   * link that never came up).
   */
  async detach(): Promise<{ synced: boolean }> {
    const replication = parseInfo(String(await this.#call("INFO", ["replication"])));
    const server = parseInfo(String(await this.#call("INFO", ["server"])));
    const synced = replication.role === "replica" &&
      (replication.masterLinkUp || typeof replication.masterLinkDownSinceSeconds === "number");
    const target = selfLoopTarget(server.tcpPort, this.#config.port);
    await this.#call("REPLICAOF", [target.host, target.port]);
    if (replication.role === "master") await this.#call("CLIENT", ["KILL", "TYPE", "replica"]);
    this.#logger.info("redis detached: a replica of itself, keeping its data", {
      address: this.address,
      synced,
    });
    return { synced };
  }

  /**
   * Makes Redis replicate from `master` (`REPLICAOF host port`), then disconnects its normal clients
   * (`CLIENT KILL TYPE normal SKIPME yes`) so they look the master up again. A Redis that was a
   * master also loses its replicas' links (`CLIENT KILL TYPE replica`): a master turned replica keeps
   * them and finishes a full sync already under way, so a restarted, empty one would still wipe
   * them. Dropped, they reconnect and get -NOMASTERLINK until this node's own link is up, then
   * resync from the history they share. A replica's links, its own link to the master and this
   * commander's connection survive.
   */
  async replicateFrom(master: HostPort): Promise<ReplicateResult> {
    const wasMaster =
      parseInfo(String(await this.#call("INFO", ["replication"]))).role === "master";
    await this.#call("REPLICAOF", [master.host, master.port]);
    if (wasMaster) await this.#call("CLIENT", ["KILL", "TYPE", "replica"]);
    const clientsKilled = await this.#killApplicationClients();
    this.#logger.info("redis now replicates from master", {
      address: this.address,
      master: formatHostPort(master),
      clientsKilled,
    });
    return { clientsKilled };
  }

  /**
   * Disconnects the applications' connections so they look the master up again. resec's own
   * connections (named `resec-…`) are spared: killing the observer's would read as an outage and
   * make this node look unhealthy in the middle of an election.
   */
  async #killApplicationClients(): Promise<number> {
    const list = String(await this.#call("CLIENT", ["LIST", "TYPE", "normal"]));
    const ids = list.split("\n").flatMap((line) => {
      const id = /(?:^|\s)id=(\d+)/.exec(line)?.[1];
      const name = /(?:^|\s)name=(\S*)/.exec(line)?.[1] ?? "";
      return id !== undefined && !name.startsWith("resec-") ? [id] : [];
    });
    let killed = 0;
    for (const id of ids) {
      const reply = await this.#call("CLIENT", ["KILL", "ID", id]).catch(() => 0);
      if (typeof reply === "number") killed += reply;
      else if (reply === "OK") killed++;
    }
    return killed;
  }

  /**
   * Hands the master role to one of this master's replicas with no write lost: `FAILOVER TO host port
   * TIMEOUT ms` (Redis ≥ 6.2) pauses writes, waits for the target to catch up, then swaps roles. Follows
   * `master_failover_state` until it ends; if it has not ended `timeoutMs` after it began, sends
   * `FAILOVER ABORT` and reports it aborted. Throws a `RedisCommandError` when Redis refuses to start
   * (not a master, target not one of its replicas, a failover already running).
   */
  async failoverTo(target: HostPort, timeoutMs: Milliseconds): Promise<FailoverResult> {
    const started = this.#clock.now();
    await this.#call("FAILOVER", ["TO", target.host, target.port, "TIMEOUT", timeoutMs]);
    this.#logger.info("redis failover started", {
      address: this.address,
      target: formatHostPort(target),
      timeoutMs,
    });
    // Redis enforces TIMEOUT only while waiting for the target to catch up; our deadline also covers
    // a target that never answers the PSYNC FAILOVER handshake.
    const deadline = started + timeoutMs + this.#timeoutMs;
    let lastState: FailoverState | undefined;
    while (true) {
      const info = parseInfo(String(await this.#call("INFO", ["replication"])));
      lastState = info.masterFailoverState;
      const durationMs = this.#clock.now() - started;
      if (lastState === "no-failover" || lastState === undefined) {
        if (
          info.role === "replica" && info.masterHost !== undefined &&
          info.masterPort !== undefined &&
          sameHostPort({ host: info.masterHost, port: info.masterPort }, target)
        ) {
          this.#logger.info("redis failover completed", {
            address: this.address,
            target: formatHostPort(target),
            durationMs,
          });
          return { outcome: "completed", durationMs };
        }
        const reason = "Redis ended the failover and is still master (the target did not catch " +
          "up in time or refused)";
        this.#logger.warn("redis failover aborted", { address: this.address, reason });
        return { outcome: "aborted", reason, lastState, durationMs };
      }
      if (this.#clock.now() >= deadline) {
        await this.#abortFailover();
        const reason = `The failover did not finish within ${timeoutMs} ms; sent FAILOVER ABORT`;
        this.#logger.warn("redis failover aborted", { address: this.address, reason, lastState });
        return { outcome: "aborted", reason, lastState, durationMs };
      }
      await this.#clock.sleep(this.#failoverPollMs);
    }
  }

  /**
   * Fences: holds every write command for `ms` (`CLIENT PAUSE ms WRITE`, Redis ≥ 6.2); reads and
   * replication go on. Call again before it lapses to extend it.
   */
  async pauseWrites(ms: Milliseconds): Promise<void> {
    await this.#call("CLIENT", ["PAUSE", Math.max(1, Math.round(ms)), "WRITE"]);
    this.#logger.debug("redis writes paused", { address: this.address, ms });
  }

  /** Ends a pause begun by pauseWrites (`CLIENT UNPAUSE`). */
  async unpauseWrites(): Promise<void> {
    await this.#call("CLIENT", ["UNPAUSE"]);
    this.#logger.debug("redis writes unpaused", { address: this.address });
  }

  /**
   * Finds which of CHECKED_COMMANDS the ACL user may not run, without changing Redis: each is sent
   * with an argument Redis refuses after its ACL check, but for `CLIENT UNPAUSE`, which takes none:
   * it is queued in a `MULTI` that is discarded, as Redis checks a command's ACL when it queues it.
   * A user that may not run `MULTI` leaves `CLIENT UNPAUSE` unchecked.
   *
   * @throws {RedisError} when Redis does not answer (not for NOPERM, which is the answer)
   */
  async checkPermissions(): Promise<PermissionCheck> {
    const check: PermissionCheck = { denied: [], unchecked: [] };
    const probes: [CheckedCommand, string, RedisArgument[]][] = [
      ["client|pause", "CLIENT", ["PAUSE", 0, PROBE_ARGUMENT]],
      ["replicaof", "REPLICAOF", [PROBE_ARGUMENT, PROBE_ARGUMENT]],
      ["failover", "FAILOVER", [PROBE_ARGUMENT]],
      ["client|list", "CLIENT", ["LIST", "TYPE", PROBE_ARGUMENT]],
      ["client|kill", "CLIENT", ["KILL", "ID", PROBE_ARGUMENT]],
    ];
    for (const [name, command, args] of probes) {
      if (!await this.#mayRun(command, args)) check.denied.push(name);
    }
    const unpause = await this.#mayQueue("CLIENT", ["UNPAUSE"]);
    if (unpause === undefined) check.unchecked.push("client|unpause");
    else if (!unpause) check.denied.push("client|unpause");
    return check;
  }

  /** `INFO` (the default sections), parsed. */
  async info(): Promise<RedisInfo> {
    return parseInfo(String(await this.#call("INFO", [])));
  }

  /** Closes the connection. Commands after this throw. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#dropConnection();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  async #abortFailover(): Promise<void> {
    try {
      await this.#call("FAILOVER", ["ABORT"]);
    } catch (error) {
      // "No failover in progress": it ended between our last look and the abort.
      if (!(error instanceof RedisCommandError)) throw error;
    }
  }

  /** Whether the ACL lets us run `command`: any answer but NOPERM says it does. */
  async #mayRun(command: string, args: readonly RedisArgument[]): Promise<boolean> {
    try {
      await this.#call(command, args);
      return true;
    } catch (error) {
      if (isPermissionDenied(error)) return false;
      if (error instanceof RedisCommandError) return true;
      throw error;
    }
  }

  /** Whether the ACL lets us queue `command` in a transaction; undefined when MULTI is denied. */
  async #mayQueue(command: string, args: readonly RedisArgument[]): Promise<boolean | undefined> {
    if (!await this.#mayRun("MULTI", [])) return undefined;
    try {
      return await this.#mayRun(command, args);
    } finally {
      // A connection left inside MULTI would queue every later command: drop it if DISCARD fails
      // (Redis discards the transaction of a closed connection).
      await this.#call("DISCARD", []).catch(() => this.#dropConnection());
    }
  }

  /** Closes the connection; the next command opens a new one. */
  async #dropConnection(): Promise<void> {
    const client = this.#client;
    this.#client = undefined;
    (await client?.catch(() => undefined))?.close();
  }

  /** One command on our connection, opening (or reopening) it first when needed. */
  async #call(command: string, args: readonly RedisArgument[]): Promise<unknown> {
    if (this.#closed) throw new RedisError(`The commander for ${this.address} is closed`);
    const client = await this.#connection();
    try {
      return await client.call(command, args);
    } catch (error) {
      // A connection that let a command time out may be stuck behind a frozen server or a dead peer:
      // start afresh next time.
      if (error instanceof RedisTimeoutError) client.close();
      throw error;
    }
  }

  #connection(): Promise<RedisClient> {
    const existing = this.#client;
    if (existing !== undefined) {
      return existing.then((client) => client.isOpen ? client : this.#reconnect(existing));
    }
    return this.#reconnect(undefined);
  }

  #reconnect(stale: Promise<RedisClient> | undefined): Promise<RedisClient> {
    // Concurrent callers share one connection attempt.
    if (this.#client !== stale) return this.#connection();
    const attempt = RedisClient.connect(this.#config, {
      timeoutMs: this.#timeoutMs,
      connectionName: this.#connectionName,
      clock: this.#clock,
    }).then((client) => {
      // close() ran while we were connecting: do not leave this connection behind.
      if (this.#closed) {
        client.close();
        throw new RedisError(`The commander for ${this.address} is closed`);
      }
      return client;
    });
    this.#client = attempt;
    attempt.catch(() => {
      if (this.#client === attempt) this.#client = undefined;
    });
    return attempt;
  }
}
