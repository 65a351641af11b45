/**
 * The pure half of the chaos suite: turn what a round observed (Consul samples, acknowledged writes,
 * what each Redis holds) into numbers, and judge them against what the design promises for a fault.
 * No I/O, so every rule is a table-driven test in analysis_test.ts.
 */

/** One poll of Consul's passing masters. */
export interface MasterSample {
  /** When the answer arrived (or the poll gave up), ms since the epoch. */
  readonly at: number;
  /** Ports of the passing masters; null when Consul did not answer in time. */
  readonly masters: readonly number[] | null;
}

/** What the master timeline of a round shows. */
export interface TimelineSummary {
  /** Distinct single masters, in the order Consul named them. */
  readonly sequence: readonly number[];
  /** Times the single passing master changed to another node: one per failover. */
  readonly roleChanges: number;
  /** Longest stretch in which a client could not find a master (none passing, or no answer). */
  readonly maxNoMasterMs: number;
  /** Total time Consul did not answer the monitor. */
  readonly unansweredMs: number;
  /** Polls in which Consul named two or more passing masters. */
  readonly multiMasterSamples: number;
}

/**
 * Summarises the samples of a round.
 *
 * @example
 * ```ts
 * summarizeTimeline([{ at: 0, masters: [1] }, { at: 50, masters: [] }, { at: 900, masters: [2] }]);
 * // → { sequence: [1, 2], roleChanges: 1, maxNoMasterMs: 850, … }
 * ```
 */
export function summarizeTimeline(samples: readonly MasterSample[]): TimelineSummary {
  const sequence: number[] = [];
  let maxNoMasterMs = 0;
  let unansweredMs = 0;
  let multiMasterSamples = 0;
  let noMasterSince: number | undefined;
  for (const [index, sample] of samples.entries()) {
    const masters = sample.masters;
    if (masters === null) {
      const next = samples[index + 1];
      if (next) unansweredMs += next.at - sample.at;
    }
    if (masters === null || masters.length === 0) {
      noMasterSince ??= sample.at;
      continue;
    }
    if (noMasterSince !== undefined) {
      maxNoMasterMs = Math.max(maxNoMasterMs, sample.at - noMasterSince);
      noMasterSince = undefined;
    }
    if (masters.length > 1) {
      multiMasterSamples++;
      continue;
    }
    const master = masters[0]!;
    if (sequence.at(-1) !== master) sequence.push(master);
  }
  const last = samples.at(-1);
  if (noMasterSince !== undefined && last) {
    maxNoMasterMs = Math.max(maxNoMasterMs, last.at - noMasterSince);
  }
  return {
    sequence,
    roleChanges: Math.max(0, sequence.length - 1),
    maxNoMasterMs,
    unansweredMs,
    multiMasterSamples,
  };
}

/** One probe round: which Redis servers acknowledged a write. */
export interface ProbeRound {
  /** When the round started, ms since the epoch. */
  readonly at: number;
  /** Ports of the Redis servers that acknowledged the probe write. */
  readonly writable: readonly number[];
}

/** A Redis server that came back from a fault (thawed, or restarted) at `at`. */
export interface Comeback {
  readonly port: number;
  readonly at: number;
}

/** What the writability probe saw. */
export interface ProbeSummary {
  readonly rounds: number;
  /** Rounds in which two or more Redis took a write that no comeback explains: split brain. */
  readonly splitBrain: readonly ProbeRound[];
  /** Rounds in which a Redis that had just come back took a write beside the master. */
  readonly comebackRounds: readonly ProbeRound[];
  /** Longest time from a comeback to the last write that Redis took (undefined: it took none). */
  readonly comebackWritableMs: number | undefined;
}

/**
 * Sorts the probe rounds with several writable Redis into split brain and comebacks. A Redis that
 * resumes from SIGSTOP runs the commands already waiting in its sockets before anyone can reach it,
 * and a Redis that starts is a master until its agent sees it: until then it is not under any agent's
 * control, so its writes are measured as a comeback window (which the agent must keep short) instead
 * of split brain. `inFlightMs` reaches back to probe writes sent just before the comeback (but not
 * before the fault, when that Redis was still the legitimate master).
 */
export function summarizeProbes(
  rounds: readonly ProbeRound[],
  comebacks: readonly Comeback[],
  options: { inFlightMs: number; faultAt: number },
): ProbeSummary {
  const windows = comebacks.map((comeback) => {
    const from = Math.max(options.faultAt, comeback.at - options.inFlightMs);
    const writes = rounds.filter((round) =>
      round.at >= from && round.writable.includes(comeback.port)
    );
    const last = writes.at(-1)?.at;
    return {
      port: comeback.port,
      from,
      until: last,
      writableMs: last === undefined ? undefined : Math.max(0, last - comeback.at),
    };
  });
  const splitBrain: ProbeRound[] = [];
  const comebackRounds: ProbeRound[] = [];
  for (const round of rounds) {
    if (round.writable.length < 2) continue;
    const managed = round.writable.filter((port) =>
      !windows.some((window) =>
        window.port === port && window.until !== undefined && round.at >= window.from &&
        round.at <= window.until
      )
    );
    if (managed.length > 1) splitBrain.push(round);
    else comebackRounds.push(round);
  }
  const spans = windows.map((window) => window.writableMs).filter((ms): ms is number =>
    ms !== undefined
  );
  return {
    rounds: rounds.length,
    splitBrain,
    comebackRounds,
    comebackWritableMs: spans.length > 0 ? Math.max(...spans) : undefined,
  };
}

/** What the final read-back says about acknowledged writes. */
export interface LossSummary {
  /** Acknowledged values missing from the final master, in acknowledgement order. */
  readonly lost: readonly string[];
  /** Separate stretches of consecutive acknowledged writes among the lost ones. */
  readonly lostRuns: number;
  /** Lost values that every node held before the fault: never explained by replication lag. */
  readonly lostAfterReplication: readonly string[];
}

/**
 * Relates the lost writes to the order they were acknowledged in. Redis replicates one ordered stream,
 * so what a replica lacks is always the newest part of what its master acknowledged: loss from
 * replication lag is a single run of consecutive writes, none of which had reached every node.
 */
export function summarizeLoss(options: {
  acknowledged: readonly string[];
  lost: readonly string[];
  /** Values every node held before the fault was injected. */
  replicatedBeforeFault: ReadonlySet<string>;
}): LossSummary {
  const lostSet = new Set(options.lost);
  const lost: string[] = [];
  let lostRuns = 0;
  let inRun = false;
  for (const value of options.acknowledged) {
    if (lostSet.has(value)) {
      lost.push(value);
      if (!inRun) lostRuns++;
      inRun = true;
    } else {
      inRun = false;
    }
  }
  return {
    lost,
    lostRuns,
    lostAfterReplication: lost.filter((value) => options.replicatedBeforeFault.has(value)),
  };
}

/**
 * What a promoted Redis holds of the checkpoint (the writes every node held before the fault): the
 * length of the common prefix. A data-safe promotion keeps all of it.
 */
export function checkpointPrefixKept(
  checkpoint: readonly string[],
  head: readonly string[],
): number {
  let kept = 0;
  while (kept < checkpoint.length && head[kept] === checkpoint[kept]) kept++;
  return kept;
}

/** A node Consul named as the single master after the fault, and what it held at that moment. */
export interface PromotionCheck {
  readonly port: number;
  readonly at: number;
  /** Checkpoint writes it held, as a prefix of its list; undefined when it could not be read. */
  readonly kept: number | undefined;
  readonly checkpoint: number;
}

/** True when a promotion lost writes every node held before the fault (empty or lagging). */
export function isWrongPromotion(check: PromotionCheck): boolean {
  return check.kept !== undefined && check.kept < check.checkpoint;
}

/** How much acknowledged data a fault may cost, by the design. */
export type LossBound =
  /** The fault leaves the old master alive and fenced: nothing acknowledged may be lost. */
  | { readonly kind: "none" }
  /** Async replication: only the unreplicated newest writes of the failed master, `max` at most. */
  | { readonly kind: "tail"; readonly max?: number };

/** What the design promises for one fault. */
export interface Expectation {
  /** Allowed number of master changes in Consul (1: one failover, 0: the master stays). */
  readonly roleChanges: { readonly min: number; readonly max: number };
  readonly loss: LossBound;
}

/** Everything one round measured. */
export interface RoundResult {
  readonly fault: string;
  readonly round: number;
  readonly startedAt: string;
  readonly acknowledged: number;
  readonly failedAttempts: number;
  readonly lost: number;
  readonly lostRuns: number;
  readonly lostAfterReplication: number;
  /** Lost acknowledged writes per node address (every live node is read back). */
  readonly lostByNode: Readonly<Record<string, number>>;
  /** Nodes whose list did not match the master's after the writer stopped. */
  readonly divergentNodes: readonly string[];
  /** ContinuousWriter's probe: rounds, and rounds in which two or more Redis took a write. */
  readonly writerProbeRounds: number;
  readonly writerSplitBrainRounds: number;
  /** The suite's own probe rounds. */
  readonly probeRounds: number;
  /** Split-brain rounds of the suite's probe: when (ms after the fault) and which ports. */
  readonly splitBrain: readonly {
    readonly afterMs: number;
    readonly writable: readonly number[];
  }[];
  /** Redis servers that came back (thawed or restarted) during the round, by port. */
  readonly comebacks: readonly number[];
  /** Rounds in which a comeback Redis took a write beside the master, before its agent acted. */
  readonly comebackRounds: number;
  /** Longest time a comeback Redis kept taking writes. */
  readonly comebackWritableMs: number | undefined;
  /** The longest the agents may take to demote a comeback Redis. */
  readonly comebackGraceMs: number;
  readonly multiMasterSamples: number;
  readonly maxNoMasterMs: number;
  readonly unansweredMs: number;
  readonly roleChanges: number;
  /** Master ports as Consul named them, first to last. */
  readonly masterSequence: readonly number[];
  /** Writes every node held before the fault. */
  readonly checkpoint: number;
  readonly promotions: readonly PromotionCheck[];
  readonly wrongPromotions: number;
  /** From the fault to the first single passing master other than the old one. */
  readonly newMasterAfterMs: number | undefined;
  readonly converged: boolean;
  /** From the fault to full convergence. */
  readonly convergedAfterMs: number | undefined;
  /** The round itself broke (a helper timed out before the measurements were complete). */
  readonly error?: string;
}

/** The promises a round broke; empty when it kept them all. */
export function violations(result: RoundResult, expectation: Expectation): string[] {
  if (result.error) return [`the round did not complete: ${result.error}`];
  const found: string[] = [];
  if (result.splitBrain.length > 0) {
    const seen = result.splitBrain.slice(0, 5).map((round) =>
      `${round.writable.join("+")} at +${round.afterMs} ms`
    );
    found.push(
      `split brain: ${result.splitBrain.length} of ${result.probeRounds} probe rounds found ` +
        `several writable Redis (${seen.join(", ")})`,
    );
  }
  // The writer's probe cannot say which Redis took a write: trust it only without comebacks.
  if (result.comebacks.length === 0 && result.writerSplitBrainRounds > 0) {
    found.push(
      `split brain: ${result.writerSplitBrainRounds} of ${result.writerProbeRounds} writer probe ` +
        "rounds found several writable Redis",
    );
  }
  if (
    result.comebackWritableMs !== undefined && result.comebackWritableMs > result.comebackGraceMs
  ) {
    found.push(
      `a Redis that came back took writes for ${result.comebackWritableMs} ms (its agent must ` +
        `demote it within ${result.comebackGraceMs} ms)`,
    );
  }
  if (result.multiMasterSamples > 0) {
    found.push(`Consul named two passing masters in ${result.multiMasterSamples} polls`);
  }
  if (result.wrongPromotions > 0) {
    const wrong = result.promotions.filter(isWrongPromotion).map((check) =>
      `${check.port} (held ${check.kept} of ${check.checkpoint})`
    );
    found.push(`a master without the replicated data was named: ${wrong.join(", ")}`);
  }
  if (!result.converged) found.push("the cluster did not converge on one master");
  const { min, max } = expectation.roleChanges;
  if (result.roleChanges < min || result.roleChanges > max) {
    const wanted = min === max ? `${min}` : `${min}–${max}`;
    found.push(
      `${result.roleChanges} master changes (expected ${wanted}): ${
        result.masterSequence.join(" → ")
      }`,
    );
  }
  if (result.divergentNodes.length > 0) {
    found.push(`replicas differ from the master: ${result.divergentNodes.join(", ")}`);
  }
  if (result.lostAfterReplication > 0) {
    found.push(
      `${result.lostAfterReplication} lost writes had reached every node before the fault`,
    );
  }
  const bound = expectation.loss;
  if (bound.kind === "none" && result.lost > 0) {
    found.push(`${result.lost} acknowledged writes lost where the design promises none`);
  }
  if (bound.kind === "tail" && result.lost > 0) {
    if (result.lostRuns > 1) {
      found.push(`lost writes form ${result.lostRuns} separate runs, not one unreplicated tail`);
    }
    if (bound.max !== undefined && result.lost > bound.max) {
      found.push(`${result.lost} acknowledged writes lost (at most ${bound.max} allowed)`);
    }
  }
  return found;
}

/** From the fault to the first poll naming one master other than `old`. */
export function firstOtherMaster(
  samples: readonly MasterSample[],
  old: number,
  faultAt: number,
): number | undefined {
  const first = samples.find((sample) =>
    sample.at >= faultAt && sample.masters?.length === 1 && sample.masters[0] !== old
  );
  return first ? first.at - faultAt : undefined;
}

/** The result of a round that broke before its measurements were complete. */
export function emptyResult(
  fault: string,
  round: number,
  startedAt: string,
  error: string,
): RoundResult {
  return {
    fault,
    round,
    startedAt,
    acknowledged: 0,
    failedAttempts: 0,
    lost: 0,
    lostRuns: 0,
    lostAfterReplication: 0,
    lostByNode: {},
    divergentNodes: [],
    writerProbeRounds: 0,
    writerSplitBrainRounds: 0,
    probeRounds: 0,
    splitBrain: [],
    comebacks: [],
    comebackRounds: 0,
    comebackWritableMs: undefined,
    comebackGraceMs: 0,
    multiMasterSamples: 0,
    maxNoMasterMs: 0,
    unansweredMs: 0,
    roleChanges: 0,
    masterSequence: [],
    checkpoint: 0,
    promotions: [],
    wrongPromotions: 0,
    newMasterAfterMs: undefined,
    converged: false,
    convergedAfterMs: undefined,
    error,
  };
}
