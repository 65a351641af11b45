/**
 * Seeds that break an invariant because of a bug the simulator found and that is not fixed yet. The
 * main run skips them; `sim_test.ts` checks each still fails the way it is described, so a fix shows
 * up as a failing known seed: then move it back into the main run. Details in README.md.
 */
import type { SimOptions } from "./world.ts";

export interface KnownFailure {
  readonly options: SimOptions;
  /** A part of the violation message. */
  readonly violation: string;
  readonly finding: string;
}

export const KNOWN_FAILURES: readonly KnownFailure[] = [
  {
    options: { seed: 982 },
    violation: "leads without 1 acknowledged write(s) (ids 151)",
    finding: "a host cut off from Consul long enough for its agent check to lapse has its " +
      "candidacy released; once back, it cannot publish again until a heartbeat passed the check, " +
      "and the released entry already counts as stale, so an election in that window ignores it",
  },
  {
    options: { seed: 663, legacyBoard: true },
    violation: "leads without 1 acknowledged write(s)",
    finding:
      "a lock won just after the agent stopped competing is given straight back; a replica " +
      "that followed that node for an instant detaches twice, the second REPLICAOF NO ONE drops " +
      "the replication ID it shared with the best node, and the election then ranks them by address",
  },
  {
    options: { seed: 10912, legacyBoard: true },
    violation: "a sync has wiped them",
    finding:
      "empty-restart trap: the master's lock release failed while Consul was unreachable and " +
      "is not retried, its Redis restarts empty under the abandoned session, and the replicas that " +
      "still follow the lock holder full-sync the empty dataset",
  },
  {
    options: { seed: 35, faultKinds: ["node-crash"], maxFaultMs: 3_000, legacyBoard: true },
    violation: "leads without 19 acknowledged write(s)",
    finding: "a master restarted empty takes a write from a client that still follows it, then " +
      "counts as synced with data in a history of its own, and wins the address tie-break over " +
      "replicas holding the real history",
  },
  {
    options: { seed: 71, faultKinds: ["agent-crash"], legacyBoard: true },
    violation: "leads without 1 acknowledged write(s) (ids 167)",
    finding:
      "a restarted agent ends its earlier run's session, freeing the lock, while its Redis " +
      "is still an unfenced master: a write acknowledged there before the first fence is lost " +
      "when a replica wins the election",
  },
  {
    options: {
      seed: 100,
      faults: 4,
      faultKinds: ["clock-step", "host-isolated"],
      backwardClockSteps: true,
      legacyBoard: true,
    },
    violation: "two Redis take writes at once",
    finding: "the fence bound is measured on the wall clock: a backward step on a cut-off master " +
      "lifts its fence while another node leads",
  },
];

/** Seeds of the default run that are known failures. */
export const KNOWN_DEFAULT_SEEDS: ReadonlySet<number> = new Set(
  KNOWN_FAILURES.filter((known) => Object.keys(known.options).length === 1).map((known) =>
    known.options.seed
  ),
);
