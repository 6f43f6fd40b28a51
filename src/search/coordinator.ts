// The coordinator of a study (study.ts holds its files and state): proposes trials through the
// strategy (strategies.ts) under the budgets (budget.ts), runs them through an executor (local
// child processes, or the Redis queue), and records every launch and result in the journal
// before acting on it. On --resume the journal is replayed into the strategy first (launches and
// results in their order), and the interrupted trials start again.
import * as os from "node:os";
import * as path from "node:path";
import { CounterRng } from "../data/rng";
import { ArgumentError } from "../tensor/errors";
import { BudgetChecker, type CandidateCost } from "./budget";
import { type Journal, type JournalEvent, withStudyJournal } from "./journal";
import { mutatePoint, type Point, pointKey, type SearchSpace, samplePoint } from "./space";
import { type Proposal, type Candidate as ProposedCandidate, SearchStrategy, type TrialRecord } from "./strategies";
import {
  bestTrial,
  type Executor,
  JOURNAL_FILE,
  loadState,
  readStudy,
  SEARCH_STREAM,
  type StudySpec,
  type StudyState,
  studySpace,
  trialConfig,
  trialDir,
} from "./study";
import type { TrialOutcome, TrialPayload } from "./trial";

export interface SearchEvents {
  /** Called after each journal event (for the progress line). */
  onEvent?(e: JournalEvent, state: StudyState): void;
}

const MAX_DRAWS = 20_000;

/** Budget-checked, never-seen points for the strategy; counts what it turned down. */
class StudyProposer {
  readonly rejected = { invalid: 0, repaired: 0, overBudget: 0, duplicate: 0 };
  readonly seen = new Set<string>();
  private nextSeed = 0;

  constructor(
    readonly space: SearchSpace,
    readonly checker: BudgetChecker,
    readonly rng: CounterRng,
  ) {}

  takeRejected(): StudyProposer["rejected"] {
    const r = { ...this.rejected };
    for (const k of Object.keys(this.rejected) as (keyof typeof r)[]) this.rejected[k] = 0;
    return r;
  }

  private accept(p: Point): ProposedCandidate | undefined {
    const v = this.checker.check(p);
    if (!v.ok) {
      if (v.reason === "invalid") this.rejected.invalid++;
      else this.rejected.overBudget++;
      return undefined;
    }
    const key = pointKey(v.point);
    if (this.seen.has(key)) {
      this.rejected.duplicate++;
      return undefined;
    }
    if (v.repaired) this.rejected.repaired++;
    this.seen.add(key);
    return { point: v.point, cost: v.cost };
  }

  /** The space's seeds first (each once, where it fits the budgets and is unseen), then uniform draws. */
  sample(): ProposedCandidate | undefined {
    while (this.nextSeed < this.space.seeds.length) {
      const seed = this.space.seeds[this.nextSeed++] as Point;
      // a resumed study has launched it already: not a candidate turned down again
      if (this.seen.has(pointKey(seed))) continue;
      const c = this.accept(seed);
      if (c !== undefined) return c;
    }
    for (let i = 0; i < MAX_DRAWS; i++) {
      const c = this.accept(samplePoint(this.space, this.rng));
      if (c !== undefined) return c;
    }
    return undefined;
  }

  mutate(parent: Point): ProposedCandidate | undefined {
    for (let i = 0; i < 200; i++) {
      const c = this.accept(mutatePoint(this.space, parent, this.rng));
      if (c !== undefined) return c;
    }
    return undefined;
  }
}

/**
 * Before anything runs: a budget below every candidate is an error that names the smallest
 * candidate seen (the space's minimal point and 2,000 random draws).
 */
export function checkBudgetsReachable(space: SearchSpace, checker: BudgetChecker, seed: number): void {
  const rng = new CounterRng(seed, 0, 1, SEARCH_STREAM);
  let smallest: CandidateCost | undefined;
  let invalid = 0;
  const draws = [minimalPoint(space), ...Array.from({ length: 2000 }, () => samplePoint(space, rng))];
  const probe = new BudgetChecker(space, checker.data, { ...checker.budgets, maxLatencyMs: undefined });
  let largest: CandidateCost | undefined;
  let underFloor = 0;
  for (const p of draws) {
    const v = probe.check(p);
    if (v.ok) return;
    if (v.reason === "invalid") invalid++;
    else if (v.cost !== undefined) {
      if (v.message.includes("--min-")) underFloor++;
      if (smallest === undefined || v.cost.params < smallest.params) smallest = v.cost;
      if (largest === undefined || v.cost.params > largest.params) largest = v.cost;
    }
  }
  const b = checker.budgets;
  if (underFloor > 0 && smallest !== undefined && largest !== undefined)
    throw new ArgumentError(
      `no candidate of the space ${space.name} falls between the floors and the budgets in ${draws.length} draws ` +
        `(--min-params ${b.minParams ?? "none"}, --min-macs ${b.minMacs ?? "none"}, --max-params ${b.maxParams ?? "none"}, --max-macs ${b.maxMacs ?? "none"}; ` +
        `drawn: ${smallest.params.toLocaleString("en-US")} to ${largest.params.toLocaleString("en-US")} parameters, ${underFloor} below a floor). Lower the floors or widen the space.`,
    );
  if (smallest === undefined)
    throw new ArgumentError(
      `no point of the space ${space.name} can be built for ${checker.data.channels}x${checker.data.size}x${checker.data.size} inputs (${invalid} of ${draws.length} drawn were invalid). Check the space's ranges.`,
    );
  throw new ArgumentError(
    `the budget is below every candidate of the space ${space.name}: the smallest of ${draws.length} drawn has ${smallest.params.toLocaleString("en-US")} parameters and ${smallest.macs.toLocaleString("en-US")} MACs ` +
      `(--max-params ${b.maxParams ?? "none"}, --max-macs ${b.maxMacs ?? "none"}). Raise the budget or narrow the space to smaller values.`,
  );
}

/** Every option at the low end of its domain (the usual smallest network), one stage if stages are drawn. */
function minimalPoint(space: SearchSpace): Point {
  const low = (d: SearchSpace["options"][string]["domain"]): unknown => {
    if (d.kind !== "choices") return d.lo;
    const nums = d.values.filter((v): v is number => typeof v === "number");
    return nums.length === d.values.length ? Math.min(...nums) : d.values[0];
  };
  const n = space.stages === undefined ? 0 : (low(space.stages) as number);
  const p: Point = {};
  for (const [k, o] of Object.entries(space.options))
    p[k] = o.perStage ? new Array(n).fill(low(o.domain)) : low(o.domain);
  return p;
}

export interface RunStudyOptions {
  executor: Executor;
  /** Poll for "stop" (Ctrl-C): the coordinator stops launching and cancels running trials. */
  shouldStop?: () => boolean;
  events?: SearchEvents;
  /** Latency measurement repeats (tests lower it). */
  latencyRepeats?: number;
}

export interface StudySummary {
  trials: number;
  done: number;
  failed: number;
  interrupted: number;
  best?: TrialRecord;
  stopReason: string;
  elapsed: number;
}

/** Runs (or resumes) the study in `dir` until its trial or time limit, or until stopped. */
export async function runStudy(dir: string, opts: RunStudyOptions): Promise<StudySummary> {
  const spec = readStudy(dir);
  return withStudyJournal(dir, JOURNAL_FILE, "budgetnet search", (journal) => coordinate(dir, spec, journal, opts));
}

async function coordinate(
  dir: string,
  spec: StudySpec,
  journal: Journal,
  opts: RunStudyOptions,
): Promise<StudySummary> {
  const space = studySpace(spec);
  const state = loadState(dir);
  for (const d of state.damaged)
    process.stderr.write(`budgetnet: ${path.join(dir, JOURNAL_FILE)} ${d} (skipped; the rest is kept)\n`);
  const measureLatency = spec.budgets.maxLatencyMs !== undefined || spec.objectives.includes("latency");
  const checker = new BudgetChecker(space, spec.data, spec.budgets, {
    measureLatency,
    latencyRepeats: opts.latencyRepeats,
  });
  const session = state.sessions;
  // one random stream per session: a fresh study with one worker is reproducible from its seed
  const rng = new CounterRng(spec.seed, session, 0, SEARCH_STREAM);
  const proposer = new StudyProposer(space, checker, rng);
  const strategy = new SearchStrategy(
    {
      strategy: spec.strategy,
      objectives: spec.objectives,
      rungs: spec.rungs,
      eta: spec.eta,
      population: spec.population,
      sample: spec.sample,
    },
    proposer,
  );
  // replay the journal: the strategy sees the launches and results in the order they happened
  for (const step of state.order) {
    const t = state.trials.get(step.id) as TrialRecord;
    if (step.kind === "launch") {
      strategy.launched(t);
      if (t.rung === 0) proposer.seen.add(t.key);
      if (t.cost.latencyMs !== undefined) checker.rememberLatency(t.point, t.cost.latencyMs);
    } else strategy.finished(t);
  }
  const sessionStart = Date.now();
  const elapsedNow = (): number => state.elapsed + (Date.now() - sessionStart) / 1000;
  const write = (e: JournalEvent): void => {
    const full = { ...e, elapsed: Number(elapsedNow().toFixed(3)) };
    journal.append(full);
    opts.events?.onEvent?.(full, state);
  };
  write({ event: "session", session, pid: process.pid, host: os.hostname(), executor: opts.executor.description });

  const running = new Map<number, Promise<void>>();
  let stopReason = "";
  const deadline = spec.timeLimitSeconds;
  const launchedCount = (): number => state.trials.size;

  const finish = (
    t: TrialRecord & { outcome?: TrialOutcome; error?: string },
    outcome?: TrialOutcome,
    error?: string,
  ): void => {
    if (t.status !== "running") return; // counted once
    if (outcome !== undefined) {
      t.status = "done";
      t.valAccuracy = outcome.valAccuracy;
      t.outcome = outcome;
      write({ event: "result", trial: t.id, rung: t.rung, ...outcome });
    } else {
      t.status = "failed";
      t.error = error;
      write({ event: "failure", trial: t.id, rung: t.rung, error });
    }
    strategy.finished(t);
  };

  // every trial failing from the start means the recipe or the data is wrong: stop, do not burn the budget
  let failuresInARow = 0;
  let lastError = "";
  let cancelled = false;
  const launch = (t: TrialRecord & { outcome?: TrialOutcome; error?: string }): void => {
    const payload: TrialPayload = {
      study: spec.name,
      trial: t.id,
      rung: t.rung,
      config: trialConfig(spec, checker, t),
    };
    const p = opts.executor
      .run(payload, trialDir(dir, t))
      .then(
        (outcome) => {
          failuresInARow = 0;
          finish(t, outcome);
        },
        (e: unknown) => {
          // a trial cancelled at the deadline or on Ctrl-C stays "running" in the journal: resumable
          if (cancelled) return;
          failuresInARow++;
          lastError = e instanceof Error ? e.message : String(e);
          finish(t, undefined, lastError);
        },
      )
      .finally(() => running.delete(t.id));
    running.set(t.id, p);
  };

  // interrupted trials of an earlier session first
  for (const t of state.trials.values()) if (t.status === "running") launch(t);

  const timeUp = (): boolean => deadline !== null && elapsedNow() >= deadline;
  const trialsUp = (): boolean => spec.maxTrials !== null && launchedCount() >= spec.maxTrials;
  for (;;) {
    const noneDone = ![...state.trials.values()].some((t) => t.status === "done");
    if (opts.shouldStop?.()) stopReason = "stopped";
    else if (timeUp()) stopReason = "time limit";
    else if (noneDone && failuresInARow >= Math.max(3, opts.executor.slots))
      stopReason = `every trial failed (${failuresInARow} in a row); the last said: ${lastError}`;
    if (stopReason !== "") break;
    let nothingToPropose = false;
    while (running.size < opts.executor.slots && !trialsUp()) {
      const proposal: Proposal | undefined = strategy.next();
      if (proposal === undefined) {
        nothingToPropose = true; // with trials running, their results may still bring promotions
        break;
      }
      const id = launchedCount();
      const t = {
        id,
        point: proposal.point,
        key: pointKey(proposal.point),
        rung: proposal.rung,
        resource: spec.rungs[proposal.rung] as number,
        parent: proposal.parent,
        promotes: proposal.promotes,
        cost: proposal.cost,
        status: "running" as const,
      };
      state.trials.set(id, t);
      strategy.launched(t);
      write({
        event: "trial",
        trial: id,
        point: t.point,
        key: t.key,
        rung: t.rung,
        resource: t.resource,
        cost: t.cost,
        ...(t.parent !== undefined ? { parent: t.parent } : {}),
        ...(t.promotes !== undefined ? { promotes: t.promotes } : {}),
        rejected: proposer.takeRejected(),
      });
      launch(t);
    }
    if (running.size === 0) {
      stopReason = trialsUp() ? "trial limit" : nothingToPropose ? "space exhausted" : "stopped";
      break;
    }
    // wake on the first trial to finish, or every half second to check the clock and Ctrl-C
    await Promise.race([...running.values(), new Promise((r) => setTimeout(r, 500))]);
  }
  if (running.size > 0) {
    cancelled = true;
    await opts.executor.cancelAll();
    await Promise.allSettled([...running.values()]);
  }
  write({ event: "stop", reason: stopReason, rejected: proposer.takeRejected() });
  const all = [...state.trials.values()];
  const done = all.filter((t) => t.status === "done");
  return {
    trials: all.length,
    done: done.length,
    failed: all.filter((t) => t.status === "failed").length,
    interrupted: all.filter((t) => t.status === "running").length,
    best: bestTrial(done, spec),
    stopReason,
    elapsed: elapsedNow(),
  };
}
