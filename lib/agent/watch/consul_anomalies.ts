/**
 * Invalid records and malformed Consul answers this agent has met since it started, told in its agent
 * check's output: Consul's UI and `/v1/health` show them where operators look first, not only in the
 * log and the metrics.
 */
import type { ConsulRequestEvent } from "../../consul/client.ts";

/** Counts the anomalies; one per agent, fed by the Consul client and the record readers. */
export class ConsulAnomalies {
  #invalidRecords = 0;
  #lastInvalidKey: string | undefined;
  #malformedAnswers = 0;
  #lastMalformedEndpoint: string | undefined;

  /** Call once per distinct invalid value read from `key` (InvalidRecordReporter's `onInvalid`). */
  invalidRecord(key: string): void {
    this.#invalidRecords += 1;
    this.#lastInvalidKey = key;
  }

  /** Pass every Consul request's event (the client's `onRequest`); counts the malformed answers. */
  requestDone(event: ConsulRequestEvent): void {
    if (event.outcome !== "malformed") return;
    this.#malformedAnswers += 1;
    this.#lastMalformedEndpoint = event.endpoint;
  }

  /**
   * The agent check's output: `base`, followed by the anomalies met since start, if any.
   *
   * @example
   * ```ts
   * const anomalies = new ConsulAnomalies();
   * anomalies.invalidRecord("resec/.lock.paused");
   * anomalies.checkOutput("resec 1.0.0 manages the Redis at 10.0.0.5:6379");
   * // "resec 1.0.0 manages the Redis at 10.0.0.5:6379; since start: 1 invalid record in Consul
   * //  (last: resec/.lock.paused); the agent log has the details"
   * ```
   */
  checkOutput(base: string): string {
    const parts: string[] = [];
    if (this.#invalidRecords > 0) {
      parts.push(
        `${
          counted(this.#invalidRecords, "invalid record")
        } in Consul (last: ${this.#lastInvalidKey})`,
      );
    }
    if (this.#malformedAnswers > 0) {
      parts.push(
        `${counted(this.#malformedAnswers, "malformed Consul answer")} (last: ` +
          `${this.#lastMalformedEndpoint})`,
      );
    }
    if (parts.length === 0) return base;
    return `${base}; since start: ${parts.join(", ")}; the agent log has the details`;
  }
}

function counted(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? "" : "s"}`;
}
