// A study: a folder holding study.json (space, budgets, strategy, seed, recipe, versions), the
// append-only journal.jsonl (journal.ts) and trials/ (one run folder per trial). This file reads
// and writes them and folds the journal into the study's state; coordinator.ts runs the study.
//
// Validation accuracy is the only score: the trials train on the training split and choose on
// its held-out validation part; the test set is never read during a search.
import * as fs from "node:fs";
import * as path from "node:path";
import { writeFileAtomic } from "../export/atomic";
import { packageVersion } from "../paths";
import { ArgumentError } from "../tensor/errors";
import { buildInfo } from "../tensor/tensor";
import { type TrainConfig, validate } from "../train/config";
import type { BudgetChecker, Budgets, CandidateCost, DataShape } from "./budget";
import { type JournalEvent, readJournal } from "./journal";
import { formatPoint, type Point, parseSpace, type SearchSpace } from "./space";
import { type ObjectiveKey, rankTrials, type StrategyName, type TrialRecord } from "./strategies";
import type { TrialOutcome, TrialPayload } from "./trial";

export const STUDY_FILE = "study.json";
export const JOURNAL_FILE = "journal.jsonl";
const STUDY_VERSION = 1;
/** Stream id of the search's random numbers (src/data/rng.ts Stream ids go up to 4). */
export const SEARCH_STREAM = 17;

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

/** The best finished trial on the highest rung any trial finished on (the leaderboard's first row). */
export function bestTrial(done: readonly TrialRecord[], spec: Pick<StudySpec, "objectives">): TrialRecord | undefined {
  if (done.length === 0) return undefined;
  const top = Math.max(...done.map((t) => t.rung));
  return rankTrials(
    done.filter((t) => t.rung === top),
    spec.objectives.includes("accuracy") ? ["accuracy"] : spec.objectives,
  )[0];
}
