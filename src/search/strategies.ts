// Search strategies. A strategy proposes trials and learns from finished ones; it never trains
// anything itself, so each is tested against a cheap synthetic objective (test/search/).
//
//   random      every trial a fresh point drawn uniformly from the space, under the budgets
//   evolution   regularized (aging) evolution, Real et al. 2019 (arXiv 1802.01548): the first
//               `population` trials are random; then each proposal samples `sample` members of
//               the population, mutates the best of them, and the oldest member leaves
//   asha        asynchronous successive halving, Li et al. 2018 (arXiv 1810.05934): trials start
//               on the lowest rung (least resource: epochs or data fraction); whenever a worker is
//               free, a trial in the top 1/eta of its rung that was not yet promoted runs again on
//               the next rung (eta times the resource); otherwise a new point starts on rung 0
//   evolution-asha  evolution proposes the new points, ASHA promotes them
//
// Ranking is by validation accuracy alone, or with several objectives (accuracy against params,
// MACs or latency) by non-dominated sorting and crowding distance (Deb et al. 2002, NSGA-II), so
// promotion and selection work the same way for one objective and for a Pareto front.
import type { CounterRng } from "../data/rng";
import { ArgumentError } from "../tensor/errors";
import type { CandidateCost } from "./budget";
import type { Point } from "./space";

export const STRATEGIES = ["random", "evolution", "asha", "evolution-asha"] as const;
export type StrategyName = (typeof STRATEGIES)[number];

export const OBJECTIVE_KEYS = ["accuracy", "params", "macs", "latency"] as const;
export type ObjectiveKey = (typeof OBJECTIVE_KEYS)[number];

export interface TrialRecord {
  id: number;
  point: Point;
  key: string;
  rung: number;
  /** Epochs or data fraction the trial trains with. */
  resource: number;
  /** The trial this one promotes (same point, lower rung) or mutates (evolution). */
  parent?: number;
  promotes?: number;
  cost: CandidateCost;
  status: "running" | "done" | "failed";
  valAccuracy?: number;
}

export interface Candidate {
  point: Point;
  cost: CandidateCost;
}

export interface Proposal {
  point: Point;
  cost: CandidateCost;
  rung: number;
  /** Evolution: the trial whose point was mutated. */
  parent?: number;
  /** ASHA: the trial (one rung lower) this one promotes. */
  promotes?: number;
}

/** What a strategy may ask of the study: budget-checked candidates, never seen before. */
export interface Proposer {
  rng: CounterRng;
  /** A new point drawn uniformly under the budgets; undefined when the space seems exhausted. */
  sample(): Candidate | undefined;
  /** A mutation of `parent` under the budgets; undefined when no unseen mutation was found. */
  mutate(parent: Point): Candidate | undefined;
}

export interface StrategyOptions {
  strategy: StrategyName;
  objectives: ObjectiveKey[];
  /** ASHA: the resource of each rung, lowest first (one rung for random and evolution). */
  rungs: number[];
  eta: number;
  population: number;
  sample: number;
}

/** The objective values of a finished trial, each to be maximized (costs negated). */
export function objectiveVector(t: TrialRecord, objectives: readonly ObjectiveKey[]): number[] {
  const value: Record<ObjectiveKey, () => number> = {
    accuracy: () => t.valAccuracy ?? Number.NEGATIVE_INFINITY,
    params: () => -t.cost.params,
    macs: () => -t.cost.macs,
    latency: () => -(t.cost.latencyMs ?? Number.POSITIVE_INFINITY),
  };
  return objectives.map((o) => value[o]());
}

function dominates(a: number[], b: number[]): boolean {
  let better = false;
  for (let i = 0; i < a.length; i++) {
    if ((a[i] as number) < (b[i] as number)) return false;
    if ((a[i] as number) > (b[i] as number)) better = true;
  }
  return better;
}

/**
 * Trials ordered best first: by accuracy for one objective; otherwise by non-dominated front,
 * then by crowding distance within a front (larger first), then by accuracy. Ties keep id order.
 */
export function rankTrials(trials: readonly TrialRecord[], objectives: readonly ObjectiveKey[]): TrialRecord[] {
  const byAcc = (a: TrialRecord, b: TrialRecord): number =>
    (b.valAccuracy ?? Number.NEGATIVE_INFINITY) - (a.valAccuracy ?? Number.NEGATIVE_INFINITY) || a.id - b.id;
  if (objectives.length === 1 && objectives[0] === "accuracy") return [...trials].sort(byAcc);
  const vectors = trials.map((t) => objectiveVector(t, objectives));
  let remaining = trials.map((_, i) => i);
  const out: TrialRecord[] = [];
  while (remaining.length > 0) {
    const front = remaining.filter(
      (i) => !remaining.some((j) => j !== i && dominates(vectors[j] as number[], vectors[i] as number[])),
    );
    const crowd = crowding(front.map((i) => vectors[i] as number[]));
    const order = front
      .map((i, k) => ({ i, c: crowd[k] as number }))
      .sort((a, b) => b.c - a.c || byAcc(trials[a.i] as TrialRecord, trials[b.i] as TrialRecord));
    for (const { i } of order) out.push(trials[i] as TrialRecord);
    const inFront = new Set(front);
    remaining = remaining.filter((i) => !inFront.has(i));
  }
  return out;
}

/** NSGA-II crowding distance of each point of one front (boundary points: infinity). */
function crowding(points: number[][]): number[] {
  const n = points.length;
  const d = new Array<number>(n).fill(0);
  if (n <= 2) return d.fill(Number.POSITIVE_INFINITY);
  const m = (points[0] as number[]).length;
  for (let k = 0; k < m; k++) {
    const idx = points.map((_, i) => i).sort((a, b) => (points[a] as number[])[k]! - (points[b] as number[])[k]!);
    const lo = (points[idx[0] as number] as number[])[k] as number;
    const hi = (points[idx[n - 1] as number] as number[])[k] as number;
    d[idx[0] as number] = Number.POSITIVE_INFINITY;
    d[idx[n - 1] as number] = Number.POSITIVE_INFINITY;
    if (hi === lo || !Number.isFinite(hi - lo)) continue;
    for (let r = 1; r < n - 1; r++) {
      const prev = (points[idx[r - 1] as number] as number[])[k] as number;
      const next = (points[idx[r + 1] as number] as number[])[k] as number;
      d[idx[r] as number] = (d[idx[r] as number] as number) + (next - prev) / (hi - lo);
    }
  }
  return d;
}

/**
 * One strategy object serves all four names: `rungs.length > 1` turns on ASHA promotion,
 * `strategy` starting with "evolution" turns on the evolutionary proposer.
 */
export class SearchStrategy {
  private readonly trials: TrialRecord[] = [];
  private readonly promoted = new Set<number>();
  /** Rung-0 trials in the order they finished: the evolution population's history. */
  private readonly history: TrialRecord[] = [];
  readonly evolutionary: boolean;

  constructor(
    readonly options: StrategyOptions,
    private readonly proposer: Proposer,
  ) {
    if (options.rungs.length < 1) throw new ArgumentError("a search needs at least one rung (resource level)");
    if ((options.strategy === "random" || options.strategy === "evolution") && options.rungs.length !== 1)
      throw new ArgumentError(
        `--strategy ${options.strategy} trains every trial on one resource level; use asha or evolution-asha for rungs`,
      );
    this.evolutionary = options.strategy.startsWith("evolution");
  }

  /** A trial was started (now, or earlier in a resumed study's journal). */
  launched(t: TrialRecord): void {
    this.trials.push(t);
    if (t.promotes !== undefined) this.promoted.add(t.promotes);
  }

  /** A trial finished (or failed: it then never counts for promotion or selection). */
  finished(t: TrialRecord): void {
    const own = this.trials.find((x) => x.id === t.id);
    if (own !== undefined && own !== t) Object.assign(own, t);
    if (t.status === "done" && t.rung === 0) this.history.push(own ?? t);
  }

  /** The next trial to run, or undefined when nothing new can be proposed now. */
  next(): Proposal | undefined {
    const promotion = this.promotion();
    if (promotion !== undefined) return promotion;
    const c = this.propose();
    if (c === undefined) return undefined;
    return { point: c.candidate.point, cost: c.candidate.cost, rung: 0, parent: c.parent };
  }

  private done(rung: number): TrialRecord[] {
    return this.trials.filter((t) => t.rung === rung && t.status === "done");
  }

  /** ASHA: the highest rung with a promotable trial (top 1/eta of its rung, not yet promoted). */
  private promotion(): Proposal | undefined {
    const { rungs, eta, objectives } = this.options;
    for (let k = rungs.length - 2; k >= 0; k--) {
      const done = this.done(k);
      const top = rankTrials(done, objectives).slice(0, Math.floor(done.length / eta));
      const t = top.find((x) => !this.promoted.has(x.id));
      if (t !== undefined) {
        this.promoted.add(t.id);
        return { point: t.point, cost: t.cost, rung: k + 1, promotes: t.id };
      }
    }
    return undefined;
  }

  private propose(): { candidate: Candidate; parent?: number } | undefined {
    const { population, sample, objectives } = this.options;
    if (!this.evolutionary || this.history.length < population) {
      const candidate = this.proposer.sample();
      return candidate === undefined ? undefined : { candidate };
    }
    const alive = this.history.slice(-population); // aging: only the newest `population` count
    const rng = this.proposer.rng;
    const picked: TrialRecord[] = [];
    for (let i = 0; i < sample; i++) picked.push(alive[rng.int(alive.length)] as TrialRecord);
    const parent = rankTrials(picked, objectives)[0] as TrialRecord;
    const candidate = this.proposer.mutate(parent.point) ?? this.proposer.sample();
    return candidate === undefined ? undefined : { candidate, parent: parent.id };
  }
}

/** Resources of the rungs: min, min*eta, ... up to max (the last rung is max itself). */
export function rungResources(min: number, max: number, eta: number, integral: boolean): number[] {
  if (!(min > 0) || !(max >= min))
    throw new ArgumentError(`rung resources need 0 < min <= max. Received: min=${min}, max=${max}`);
  if (!(eta >= 2)) throw new ArgumentError(`--eta must be >= 2 (3 is usual). Received: ${eta}`);
  const out: number[] = [];
  for (let r = min; r < max * (1 - 1e-9); r *= eta) out.push(integral ? Math.round(r) : Number(r.toPrecision(6)));
  out.push(max);
  return [...new Set(out)];
}
