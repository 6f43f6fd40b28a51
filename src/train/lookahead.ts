// Lookahead (Zhang, Lucas, Hinton & Ba 2019, "Lookahead Optimizer: k steps forward, 1 step back"),
// as used in Efficient ResNets: the inner optimizer moves the fast weights; every k steps the slow
// weights move a fraction alpha towards them and the fast weights restart from the slow ones.
//   slow ← slow + alpha·(fast − slow);   fast ← slow
import { copyInPlace, lerpInPlace } from "../ops/inplace";
import { clone } from "../ops/shape";
import { ArgumentError, describe } from "../tensor/errors";
import { keep } from "../tensor/scope";
import { noGrad, type Tensor } from "../tensor/tensor";
import {
  checkOption,
  checkStateTensors,
  Optimizer,
  type OptimizerStateDict,
  ownedCopy,
  parseStateKey,
  type ResolvedGroup,
} from "./optim";

export interface LookaheadOptions {
  /** Inner steps between synchronizations. */
  k?: number;
  /** Step size of the slow weights towards the fast ones. */
  alpha?: number;
}

const SLOW = "slow_weight";

export class Lookahead extends Optimizer {
  readonly paramGroups: ResolvedGroup[];
  readonly k: number;
  readonly alpha: number;
  /** Steps taken so far; the slow weights synchronize when it reaches a multiple of k. */
  stepCount = 0;
  private slow: Tensor[];

  /** Wraps inner, which Lookahead then owns (dispose() frees the inner state too). */
  constructor(
    readonly inner: Optimizer,
    opts: LookaheadOptions = {},
  ) {
    super();
    if (!(inner instanceof Optimizer))
      throw new ArgumentError(
        `Lookahead: inner must be an Optimizer (e.g. new SGD(...)). Received: inner=${describe(inner)}`,
      );
    this.k = opts.k ?? 5;
    this.alpha = opts.alpha ?? 0.5;
    checkOption(Number.isInteger(this.k) && this.k >= 1, "Lookahead", "must be an integer >= 1", "k", this.k);
    checkOption(this.alpha >= 0 && this.alpha <= 1, "Lookahead", "must be in [0, 1]", "alpha", this.alpha);
    this.paramGroups = inner.paramGroups;
    // The slow weights start at the initial parameters (Algorithm 1 of the paper).
    this.slow = noGrad(() => this.params().map((p) => keep(clone(p))));
  }

  step(): void {
    this.inner.step();
    this.stepCount += 1;
    if (this.stepCount % this.k !== 0) return;
    noGrad(() => {
      this.params().forEach((p, i) => {
        lerpInPlace(this.slow[i], p, this.alpha);
        copyInPlace(p, this.slow[i]);
      });
    });
  }

  override zeroGrad(): void {
    this.inner.zeroGrad();
  }

  override setLr(lr: number): void {
    this.inner.setLr(lr);
  }

  /** The inner optimizer's state plus "<index>.slow_weight" tensors; live tensors, not copies. */
  stateDict(): OptimizerStateDict {
    const innerSd = this.inner.stateDict();
    const state = new Map(innerSd.state);
    for (const [i, t] of this.slow.entries()) state.set(`${i}.${SLOW}`, t);
    return {
      state,
      meta: {
        type: "Lookahead",
        paramGroups: innerSd.meta.paramGroups,
        k: this.k,
        alpha: this.alpha,
        stepCount: this.stepCount,
        inner: innerSd.meta,
      },
    };
  }

  loadStateDict(sd: OptimizerStateDict): void {
    const fn = "Lookahead.loadStateDict";
    if (sd === null || typeof sd !== "object" || !(sd.state instanceof Map) || sd.meta?.type !== "Lookahead")
      throw new ArgumentError(
        `${fn}: expected the stateDict() of a Lookahead optimizer. Received: type=${describe(sd?.meta?.type)}`,
      );
    const stepCount = sd.meta.stepCount;
    checkOption(
      Number.isInteger(stepCount) && (stepCount as number) >= 0,
      fn,
      "must be an integer >= 0",
      "stepCount",
      stepCount,
    );
    const params = this.params();
    const own = new Map<string, Tensor>();
    const inner = new Map<string, Tensor>();
    for (const [key, t] of sd.state) (parseStateKey(key)?.name === SLOW ? own : inner).set(key, t);
    checkStateTensors(fn, params, own, [SLOW]);
    const missing = params.map((_, i) => `${i}.${SLOW}`).filter((k) => !own.has(k));
    if (missing.length > 0)
      throw new ArgumentError(
        `${fn}: slow weights are missing for some parameters. Received: missing=${describe(missing)}`,
      );
    this.inner.loadStateDict({ state: inner, meta: sd.meta.inner as OptimizerStateDict["meta"] });
    for (const t of this.slow) t.dispose();
    this.slow = params.map((p, i) => ownedCopy(own.get(`${i}.${SLOW}`)!, p));
    this.stepCount = stepCount as number;
  }

  dispose(): void {
    this.inner.dispose();
    for (const t of this.slow) t.dispose();
    this.slow = [];
  }
}
