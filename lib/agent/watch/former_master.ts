/**
 * After a fast takeover (lib/reconciler/takeover.ts) the new master may lead seconds before Consul's
 * gossip has noticed that the old master's host is gone, and until it does, the catalog still lists
 * the old master as a passing master: the old host's agent, dead or cut off, cannot mark it otherwise.
 * This watch tells the new master whether the catalog still does, so it registers itself only once
 * clients can no longer find two, and removes that entry from the catalog itself (the old master has
 * fenced itself by then, lib/reconciler/takeover.ts); a token without `node:write` on the old node
 * may not, and then the wait lasts until gossip notices. It watches only while asked to (`former()`
 * names an address).
 */
import { BackgroundLoop } from "../../background_loop.ts";
import { formatHostPort, type HostPort, sameHostPort } from "../../address.ts";
import type { Clock } from "../../clock.ts";
import type { ConsulClient } from "../../consul/client.ts";
import { type HealthEntry, watchHealthService } from "../../consul/health.ts";
import type { Milliseconds } from "../../duration.ts";
import type { Logger } from "../../log.ts";
import { deregisterFromCatalog } from "../../consul/service.ts";

/** How often the watch checks whether it is wanted. */
const WANTED_CHECK_MS = 100;

export interface FormerMasterWatchOptions {
  client: ConsulClient;
  /** The master service, as clients query it. */
  masterService: { name: string; tag?: string };
  /** The former master to look for, while the new master waits on it; undefined otherwise. */
  former: () => HostPort | undefined;
  /** Longest blocking read. */
  waitMs: Milliseconds;
  clock: Clock;
  logger: Logger;
  onChange: () => void;
}

/** Watches the passing master instances while a former master is to be looked for. */
export class FormerMasterWatch {
  readonly #options: FormerMasterWatchOptions;
  readonly #loop = new BackgroundLoop(() => this.#run());
  #entries: HealthEntry[] | undefined;
  /** Catalog entries already asked to be removed (`node/serviceId`). */
  readonly #removed = new Set<string>();

  constructor(options: FormerMasterWatchOptions) {
    this.#options = options;
  }

  /**
   * Whether the catalog lists `address` as a passing master instance; undefined before an answer
   * (or while not watching).
   */
  listed(address: HostPort): boolean | undefined {
    const entries = this.#entries;
    if (entries === undefined) return undefined;
    return entries.some((entry) =>
      entry.status === "passing" && sameHostPort({ host: entry.address, port: entry.port }, address)
    );
  }

  start(): void {
    this.#loop.start();
  }

  stop(): Promise<void> {
    return this.#loop.stop();
  }

  /** Removes the former master's passing entries from the catalog, once each. */
  async #remove(entries: readonly HealthEntry[], former: HostPort): Promise<void> {
    for (const entry of entries) {
      const key = `${entry.node}/${entry.serviceId}`;
      const listed = entry.status === "passing" &&
        sameHostPort({ host: entry.address, port: entry.port }, former);
      if (!listed || this.#removed.has(key)) continue;
      this.#removed.add(key);
      try {
        await deregisterFromCatalog(this.#options.client, entry.node, entry.serviceId, {
          signal: this.#loop.signal,
        });
        this.#options.logger.info("removed the former master's entry from the catalog", {
          node: entry.node,
          service: entry.serviceId,
        });
      } catch (error) {
        this.#options.logger.warn(
          "cannot remove the former master's entry from the catalog; registering once gossip " +
            "marks its node failed",
          { node: entry.node, service: entry.serviceId, error },
        );
      }
    }
  }

  async #run(): Promise<void> {
    const { clock, client, masterService, waitMs } = this.#options;
    const signal = this.#loop.signal;
    while (!signal.aborted) {
      const former = this.#options.former();
      if (former) {
        this.#options.logger.info(
          "waiting for the catalog to stop listing the former master before registering",
          { former: formatHostPort(former) },
        );
        const watch = watchHealthService(client, masterService.name, {
          ...(masterService.tag !== undefined ? { tag: masterService.tag } : {}),
          passing: true,
          waitMs,
          minIntervalMs: 20,
          backoff: { initialMs: 100, maxMs: 1_000 },
        });
        const stopWatch = () => watch.close();
        signal.addEventListener("abort", stopWatch, { once: true });
        const stillWanted = (async () => {
          while (!signal.aborted && this.#options.former() !== undefined) {
            try {
              await clock.sleep(WANTED_CHECK_MS, signal);
            } catch {
              break;
            }
          }
          watch.close();
        })();
        try {
          for await (const entries of watch) {
            this.#entries = entries;
            this.#options.onChange();
            const current = this.#options.former();
            if (current) await this.#remove(entries, current);
          }
        } catch (error) {
          this.#options.logger.debug("watching the master service failed", { error });
        } finally {
          signal.removeEventListener("abort", stopWatch);
          watch.close();
          await stillWanted;
          this.#entries = undefined;
        }
        continue;
      }
      try {
        await clock.sleep(WANTED_CHECK_MS, signal);
      } catch {
        return;
      }
    }
  }
}
