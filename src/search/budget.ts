// Budgets checked before any training. A candidate's parameters and multiply-adds come from its
// configuration alone (src/models/cost.ts: no tensor is allocated, thousands a second); families
// without an analytic form are built once and measured with summary(). Latency, when budgeted
// or an objective, is the batch-1 forward through the fused inference plan on this machine
// (src/perf/plan.ts), measured only for candidates that already fit the other budgets.
//
// An impossible point (the family's own checks refuse it, e.g. a pool larger than the last
// feature map) is repaired where the fix is unambiguous (the pool is lowered to the largest of
// the space's pool choices that fits) and otherwise rejected; both are counted.
import { summary } from "../analysis/summary";
import { analyticCost, createModel, getModelEntry, type ModelOptions } from "../models/registry";
import { randn } from "../ops/creation";
import { compileInference } from "../perf/plan";
import { ArgumentError } from "../tensor/errors";
import { scope } from "../tensor/scope";
import { noGrad } from "../tensor/tensor";
import { type Point, pointOptions, type SearchSpace } from "./space";

export interface Budgets {
  maxParams?: number;
  maxMacs?: number;
  maxLatencyMs?: number;
  /**
   * Floors: a candidate must use at least this much of the budget (a search under equal wall
   * time otherwise drifts to small, quickly trained networks). Checked like the budgets.
   */
  minParams?: number;
  minMacs?: number;
}

export interface CandidateCost {
  params: number;
  macs: number;
  /** Batch-1 latency through the inference plan (ms); absent when not measured. */
  latencyMs?: number;
  /** "analytic" (from the configuration) or "built" (the family has no analytic form). */
  method: "analytic" | "built";
}

export type Verdict =
  | { ok: true; point: Point; cost: CandidateCost; repaired: boolean }
  | { ok: false; reason: "invalid" | "over-budget"; message: string; cost?: CandidateCost };

export interface DataShape {
  channels: number;
  size: number;
  numClasses: number;
}

/** The options a trial builds its model with: the point, the space's fixed options, the data's shape. */
export function trialModelOptions(space: SearchSpace, p: Point, data: DataShape): ModelOptions {
  const o: ModelOptions = { numClasses: data.numClasses, inChannels: data.channels, ...pointOptions(space, p) };
  // families that size their pool and classifier from the input take the data's image size
  const entry = getModelEntry(space.model);
  if (entry?.options.specs.imageSize !== undefined && o.imageSize === undefined) o.imageSize = data.size;
  return o;
}

export class BudgetChecker {
  private readonly latencyCache = new Map<string, number>();
  /** Counts over the checker's life: what was proposed and what became of it. */
  readonly counts = { checked: 0, invalid: 0, repaired: 0, overBudget: 0, accepted: 0, built: 0, latencyMeasured: 0 };

  constructor(
    readonly space: SearchSpace,
    readonly data: DataShape,
    readonly budgets: Budgets,
    private readonly opts: { measureLatency: boolean; latencyRepeats?: number } = { measureLatency: false },
  ) {}

  /** The options the model is built with for a point. */
  modelOptions(p: Point): ModelOptions {
    return trialModelOptions(this.space, p, this.data);
  }

  /** Parameters and MACs, analytically where the family allows (throws ArgumentError for an impossible point). */
  cost(p: Point): CandidateCost {
    const options = this.modelOptions(p);
    const shape: [number, number, number] = [this.data.channels, this.data.size, this.data.size];
    const analytic = analyticCost(this.space.model, options, shape);
    if (analytic !== undefined) return { params: analytic.params, macs: analytic.macs, method: "analytic" };
    this.counts.built++;
    const model = createModel(this.space.model, options);
    try {
      const s = summary(model, { inputShape: shape });
      return { params: s.params, macs: s.macs, method: "built" };
    } finally {
      model.dispose();
    }
  }

  /** The point, or its repair, with its cost; or why it cannot be trained. */
  check(p: Point): Verdict {
    this.counts.checked++;
    let point = p;
    let cost: CandidateCost | undefined;
    let repaired = false;
    try {
      cost = this.cost(point);
    } catch (e) {
      if (!(e instanceof ArgumentError)) throw e;
      const fixed = this.repair(point);
      if (fixed === undefined) {
        this.counts.invalid++;
        return { ok: false, reason: "invalid", message: e.message };
      }
      ({ point, cost } = fixed);
      repaired = true;
      this.counts.repaired++;
    }
    const over = this.overBudget(cost);
    if (over !== undefined) {
      this.counts.overBudget++;
      return { ok: false, reason: "over-budget", message: over, cost };
    }
    if (this.opts.measureLatency) {
      cost = { ...cost, latencyMs: this.latency(point) };
      const slow = this.overBudget(cost);
      if (slow !== undefined) {
        this.counts.overBudget++;
        return { ok: false, reason: "over-budget", message: slow, cost };
      }
    }
    this.counts.accepted++;
    return { ok: true, point, cost, repaired };
  }

  overBudget(c: CandidateCost): string | undefined {
    const b = this.budgets;
    if (b.maxParams !== undefined && c.params > b.maxParams)
      return `${c.params} parameters > --max-params ${b.maxParams}`;
    if (b.maxMacs !== undefined && c.macs > b.maxMacs) return `${c.macs} MACs > --max-macs ${b.maxMacs}`;
    if (b.minParams !== undefined && c.params < b.minParams)
      return `${c.params} parameters < --min-params ${b.minParams}`;
    if (b.minMacs !== undefined && c.macs < b.minMacs) return `${c.macs} MACs < --min-macs ${b.minMacs}`;
    if (b.maxLatencyMs !== undefined && c.latencyMs !== undefined && c.latencyMs > b.maxLatencyMs)
      return `${c.latencyMs.toFixed(3)} ms > --max-latency-ms ${b.maxLatencyMs}`;
    return undefined;
  }

  /** Lowers poolSize to the largest of the space's choices that makes the point valid. */
  private repair(p: Point): { point: Point; cost: CandidateCost } | undefined {
    const pool = this.space.options.poolSize;
    if (pool === undefined || pool.perStage || typeof p.poolSize !== "number") return undefined;
    const values =
      pool.domain.kind === "choices"
        ? (pool.domain.values as number[])
        : Array.from({ length: pool.domain.hi - pool.domain.lo + 1 }, (_, i) => (pool.domain as { lo: number }).lo + i);
    const lower = values.filter((v) => v < (p.poolSize as number) && v > 0).sort((a, b) => b - a);
    for (const v of lower) {
      const q = { ...p, poolSize: v };
      try {
        return { point: q, cost: this.cost(q) };
      } catch (e) {
        if (!(e instanceof ArgumentError)) throw e;
      }
    }
    return undefined;
  }

  /** Median batch-1 forward time through the fused plan (cached per point). */
  latency(p: Point): number {
    const key = JSON.stringify(this.modelOptions(p));
    const cached = this.latencyCache.get(key);
    if (cached !== undefined) return cached;
    const ms = measureLatencyMs(this.space.model, this.modelOptions(p), this.data, this.opts.latencyRepeats ?? 20);
    this.latencyCache.set(key, ms);
    this.counts.latencyMeasured++;
    return ms;
  }

  /** A latency measured earlier (a resumed study's journal), so it is not measured again. */
  rememberLatency(p: Point, ms: number): void {
    this.latencyCache.set(JSON.stringify(this.modelOptions(p)), ms);
  }
}

/** Median of `repeats` batch-1 forwards through a freshly compiled plan of a randomly initialized model. */
export function measureLatencyMs(model: string, options: ModelOptions, data: DataShape, repeats = 20): number {
  const m = createModel(model, options);
  try {
    m.eval();
    const plan = compileInference(m, { inputShape: [1, data.channels, data.size, data.size], precision: "fp32" });
    try {
      return scope(() => {
        const x = randn([1, data.channels, data.size, data.size]);
        noGrad(() => plan.forward(x));
        noGrad(() => plan.forward(x));
        const times: number[] = [];
        for (let i = 0; i < repeats; i++) {
          const t0 = process.hrtime.bigint();
          scope(() => noGrad(() => plan.forward(x)));
          times.push(Number(process.hrtime.bigint() - t0) / 1e6);
        }
        times.sort((a, b) => a - b);
        return times[Math.floor(times.length / 2)] as number;
      });
    } finally {
      plan.dispose();
    }
  } finally {
    m.dispose();
  }
}
