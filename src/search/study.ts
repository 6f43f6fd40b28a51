// A study: a folder holding study.json (space, budgets, strategy, seed, recipe, versions), the
// append-only journal.jsonl (journal.ts) and trials/ (one run folder per trial). The coordinator
// proposes trials (strategies.ts) under the budgets (budget.ts), runs them through an executor
// (local child processes, or the Redis queue), and records every launch and result in the
// journal before acting on it. `--resume` rebuilds the strategy's state from the journal, keeps
// every finished trial, and starts the interrupted ones again (from their checkpoints where the
// trial folder is local).
//
// Validation accuracy is the only score: the trials train on the training split and choose on
// its held-out validation part; the test set is never read during a search.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { CounterRng } from "../data/rng";
import { writeFileAtomic } from "../export/atomic";
import { packageVersion } from "../paths";
import { ArgumentError } from "../tensor/errors";
import { buildInfo } from "../tensor/tensor";
import { type TrainConfig, validate } from "../train/config";
import { lockRunFolder, RunFolderBusyError } from "../train/run_lock";
import { BudgetChecker, type Budgets, type CandidateCost, type DataShape } from "./budget";
import { Journal, type JournalEvent, readJournal } from "./journal";
import { formatPoint, mutatePoint, type Point, parseSpace, pointKey, type SearchSpace, samplePoint } from "./space";
import {
  type ObjectiveKey,
  type Proposal,
  type Candidate as ProposedCandidate,
  rankTrials,
  SearchStrategy,
  type StrategyName,
  type TrialRecord,
} from "./strategies";
import type { TrialOutcome, TrialPayload } from "./trial";

export const STUDY_FILE = "study.json";
export const JOURNAL_FILE = "journal.jsonl";
const STUDY_VERSION = 1;
/** Stream id of the search's random numbers (src/data/rng.ts Stream ids go up to 4). */
const SEARCH_STREAM = 17;

export interface StudySpec {
  version: number;
  name: string;
  created: string;
  budgetnet: string;
  libtorch: string;
  /** The space as written, and where it came from. */
  space: { name: string; model: string } & Record<string, unknown>;
  spaceOrigin: string;
  recipe: TrainConfig;
  data: DataShape & { trainImages: number };
  budgets: Budgets;
  strategy: StrategyName;
  objectives: ObjectiveKey[];
  fidelity: "epochs" | "data";
  /** Epochs (fidelity "epochs") or fractions of the training part (fidelity "data") per rung. */
  rungs: number[];
  eta: number;
  population: number;
  sample: number;
  seed: number;
  /** Stop launching after this many trials (promotions count); null = no limit. */
  maxTrials: number | null;
  /** Stop after this many seconds of search (summed over sessions); null = no limit. */
  timeLimitSeconds: number | null;
}

/** The study's identity on a shared Redis and in workers' folders: its name and creation time. */
export function studyId(spec: Pick<StudySpec, "name" | "created">): string {
  return `${spec.name}@${spec.created}`;
}

/** The study's space, parsed again from what study.json holds. */
export function studySpace(spec: StudySpec): SearchSpace {
  return parseSpace(spec.space, spec.spaceOrigin);
}

export function readStudy(dir: string): StudySpec {
  const file = path.join(dir, STUDY_FILE);
  if (!fs.existsSync(file))
    throw new ArgumentError(
      `${dir} is not a study folder (no ${STUDY_FILE}). Start one with budgetnet search --space NAME --out ${dir}.`,
    );
  let spec: StudySpec;
  try {
    spec = JSON.parse(fs.readFileSync(file, "utf8")) as StudySpec;
  } catch (e) {
    throw new ArgumentError(`${file} is not valid JSON (${(e as Error).message}); the study cannot be read.`);
  }
  if (spec.version !== STUDY_VERSION)
    throw new ArgumentError(
      `${file} has study version ${String(spec.version)}; this budgetnet reads version ${STUDY_VERSION}.`,
    );
  return spec;
}

export function writeStudy(dir: string, spec: StudySpec): void {
  fs.mkdirSync(dir, { recursive: true });
  writeFileAtomic(path.join(dir, STUDY_FILE), [`${JSON.stringify(spec, null, 2)}\n`]);
}

export function createStudySpec(args: Omit<StudySpec, "version" | "created" | "budgetnet" | "libtorch">): StudySpec {
  return {
    version: STUDY_VERSION,
    created: new Date().toISOString(),
    budgetnet: packageVersion(),
    libtorch: buildInfo().torchVersion,
    ...args,
  };
}

/** The study's trials as the journal records them, with their outcomes. */
export interface StudyState {
  trials: Map<number, TrialRecord & { outcome?: TrialOutcome; error?: string }>;
  /** Journal order of "trial" and "result"/"failure" events, for replaying the strategy. */
  order: { kind: "launch" | "finish"; id: number }[];
  sessions: number;
  elapsed: number;
  rejected: { invalid: number; repaired: number; overBudget: number; duplicate: number };
  damaged: string[];
  stopped?: string;
}

export function loadState(dir: string): StudyState {
  const { events, damaged } = readJournal(path.join(dir, JOURNAL_FILE));
  const state: StudyState = {
    trials: new Map(),
    order: [],
    sessions: 0,
    elapsed: 0,
    rejected: { invalid: 0, repaired: 0, overBudget: 0, duplicate: 0 },
    damaged,
  };
  for (const e of events) {
    if (typeof e.elapsed === "number") state.elapsed = Math.max(state.elapsed, e.elapsed);
    if (e.event === "session") {
      state.sessions++;
      state.stopped = undefined;
    } else if (e.event === "trial") applyTrial(state, e);
    else if (e.event === "result" || e.event === "failure") {
      const t = state.trials.get(e.trial as number);
      if (t === undefined || t.status !== "running") continue; // a duplicate report is counted once
      if (e.event === "result") {
        t.status = "done";
        t.valAccuracy = e.valAccuracy as number;
        t.outcome = e as unknown as TrialOutcome;
      } else {
        t.status = "failed";
        t.error = String(e.error);
      }
      state.order.push({ kind: "finish", id: t.id });
    } else if (e.event === "stop") state.stopped = String(e.reason);
  }
  return state;
}

function applyTrial(state: StudyState, e: JournalEvent): void {
  const id = e.trial as number;
  if (state.trials.has(id)) return;
  state.trials.set(id, {
    id,
    point: e.point as Point,
    key: e.key as string,
    rung: e.rung as number,
    resource: e.resource as number,
    parent: e.parent as number | undefined,
    promotes: e.promotes as number | undefined,
    cost: e.cost as CandidateCost,
    status: "running",
  });
  state.order.push({ kind: "launch", id });
  const r = e.rejected as Partial<StudyState["rejected"]> | undefined;
  for (const k of ["invalid", "repaired", "overBudget", "duplicate"] as const) state.rejected[k] += r?.[k] ?? 0;
}

/** What runs trials: local child processes or the Redis queue. */
export interface Executor {
  readonly description: string;
  /** How many trials may run at once. */
  readonly slots: number;
  run(payload: TrialPayload, runDir: string): Promise<TrialOutcome>;
  /** Stops every running trial (their records stay "running": a resume starts them again). */
  cancelAll(): Promise<void>;
  close(): Promise<void>;
}

export function trialDir(studyDir: string, t: Pick<TrialRecord, "id" | "rung">): string {
  return path.join(studyDir, "trials", `t${String(t.id).padStart(4, "0")}-r${t.rung}`);
}

/** The training config of a trial: the study's recipe, the point's model options, the rung's resource. */
export function trialConfig(spec: StudySpec, checker: BudgetChecker, t: TrialRecord): TrainConfig {
  const base = spec.recipe;
  const cfg: TrainConfig = {
    ...base,
    name: `${spec.name}-t${t.id}`,
    source: `budgetnet search ${spec.name}: trial ${t.id}, rung ${t.rung} (${formatPoint(t.point)})`,
    model: spec.space.model,
    modelOptions: checker.modelOptions(t.point),
  };
  if (spec.fidelity === "epochs") cfg.epochs = t.resource;
  else if (t.resource < 1) cfg.trainSubset = Math.max(cfg.batchSize, Math.round(t.resource * spec.data.trainImages));
  return validate(cfg);
}

export interface SearchEvents {
  /** Called after each journal event (for the progress line). */
  onEvent?(e: JournalEvent, state: StudyState): void;
}

const MAX_DRAWS = 20_000;

/** Budget-checked, never-seen points for the strategy; counts what it turned down. */
class StudyProposer {
  readonly rejected = { invalid: 0, repaired: 0, overBudget: 0, duplicate: 0 };
  readonly seen = new Set<string>();

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

  sample(): ProposedCandidate | undefined {
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
  for (const p of draws) {
    const v = probe.check(p);
    if (v.ok) return;
    if (v.reason === "invalid") invalid++;
    else if (v.cost !== undefined && (smallest === undefined || v.cost.params < smallest.params)) smallest = v.cost;
  }
  if (smallest === undefined)
    throw new ArgumentError(
      `no point of the space ${space.name} can be built for ${checker.data.channels}x${checker.data.size}x${checker.data.size} inputs (${invalid} of ${draws.length} drawn were invalid). Check the space's ranges.`,
    );
  const b = checker.budgets;
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
  let lock: ReturnType<typeof lockRunFolder>;
  try {
    lock = lockRunFolder(dir);
  } catch (e) {
    if (e instanceof RunFolderBusyError)
      throw new Error(`the study ${dir} is already being run by another budgetnet search (its run.lock is held).`);
    throw e;
  }
  const journal = new Journal(path.join(dir, JOURNAL_FILE));
  try {
    return await coordinate(dir, spec, journal, opts);
  } finally {
    journal.close();
    lock.release();
  }
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

/** The best finished trial on the highest rung any trial finished on (the leaderboard's first row). */
export function bestTrial(done: readonly TrialRecord[], spec: Pick<StudySpec, "objectives">): TrialRecord | undefined {
  if (done.length === 0) return undefined;
  const top = Math.max(...done.map((t) => t.rung));
  return rankTrials(
    done.filter((t) => t.rung === top),
    spec.objectives.includes("accuracy") ? ["accuracy"] : spec.objectives,
  )[0];
}
