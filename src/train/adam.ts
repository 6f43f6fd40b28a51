// Adam (Kingma & Ba 2015) and AdamW (Loshchilov & Hutter 2019), PyTorch 1.13's rules exactly:
//   t ← t + 1 (per parameter)
//   Adam: g ← grad + weightDecay·p            AdamW: p ← p·(1 − lr·weightDecay)
//   m ← β1·m + (1 − β1)·g;   v ← β2·v + (1 − β2)·g²;   (amsgrad: v̂ ← max(v̂, v), used for v)
//   p ← p − lr/(1 − β1ᵗ) · m / (√v / √(1 − β2ᵗ) + eps)
import {
  addcdivInPlace,
  addcmulInPlace,
  addInPlace,
  addScaledInPlace,
  divInPlace,
  maximumInPlace,
  mulInPlace,
  zeroInPlace,
} from "../ops/inplace";
import { add, sqrt } from "../ops/math";
import { clone } from "../ops/shape";
import type { Tensor } from "../tensor/tensor";
import {
  checkOption,
  type ParamGroup,
  type ParamState,
  ParamwiseOptimizer,
  type ResolvedGroup,
  withDefaults,
} from "./optim";

export interface AdamOptions {
  lr?: number;
  /** Decay rates of the first and second moment estimates. */
  betas?: [number, number];
  /** Added to the denominator for numerical stability. */
  eps?: number;
  /** Adam: L2 penalty added to the gradient. AdamW: decoupled decay rate (default 1e-2). */
  weightDecay?: number;
  /** AMSGrad (Reddi et al. 2018): normalize by the running maximum of v. */
  amsgrad?: boolean;
}

type AdamGroupOptions = Required<Omit<AdamOptions, "lr" | "weightDecay">>;

/** Adam and AdamW share everything but where the weight decay goes. */
abstract class AdamFamily extends ParamwiseOptimizer<AdamGroupOptions> {
  protected constructor(
    name: "Adam" | "AdamW",
    /** AdamW decays the weights directly instead of adding the decay to the gradient. */
    private readonly decoupled: boolean,
    params: readonly Tensor[] | readonly ParamGroup[],
    opts: AdamOptions,
  ) {
    const defaults = withDefaults(
      {
        lr: 1e-3,
        betas: [0.9, 0.999] as [number, number],
        eps: 1e-8,
        weightDecay: decoupled ? 1e-2 : 0,
        amsgrad: false,
      },
      opts,
    );
    super(name, params, defaults, ["exp_avg", "exp_avg_sq", "max_exp_avg_sq"], true);
    for (const g of this.paramGroups) this.validateGroup(g);
  }

  protected validateGroup(g: ResolvedGroup<AdamGroupOptions>): void {
    const fn = this.name;
    checkOption(Number.isFinite(g.lr) && g.lr >= 0, fn, "must be a finite number >= 0", "lr", g.lr);
    checkOption(Number.isFinite(g.eps) && g.eps >= 0, fn, "must be >= 0", "eps", g.eps);
    checkOption(
      Array.isArray(g.betas) && g.betas.length === 2 && g.betas.every((b) => b >= 0 && b < 1),
      fn,
      "must be two numbers in [0, 1)",
      "betas",
      g.betas,
    );
    checkOption(Number.isFinite(g.weightDecay) && g.weightDecay >= 0, fn, "must be >= 0", "weightDecay", g.weightDecay);
    checkOption(typeof g.amsgrad === "boolean", fn, "must be a boolean", "amsgrad", g.amsgrad);
  }

  /** A zero tensor like p (same dtype, device and memory format), kept in the state. */
  private zeroState(state: ParamState, name: string, p: Tensor): Tensor {
    const existing = state.tensors.get(name);
    if (existing !== undefined) return existing;
    const t = clone(p);
    zeroInPlace(t);
    return this.setState(state, name, t);
  }

  protected updateParam(p: Tensor, grad: Tensor, g: ResolvedGroup<AdamGroupOptions>, state: ParamState): void {
    const [beta1, beta2] = g.betas;
    state.step += 1;
    if (this.decoupled) mulInPlace(p, 1 - g.lr * g.weightDecay);
    else if (g.weightDecay !== 0) grad = add(grad, p, g.weightDecay);
    const expAvg = this.zeroState(state, "exp_avg", p);
    const expAvgSq = this.zeroState(state, "exp_avg_sq", p);
    mulInPlace(expAvg, beta1);
    addScaledInPlace(expAvg, grad, 1 - beta1);
    mulInPlace(expAvgSq, beta2);
    addcmulInPlace(expAvgSq, grad, grad, 1 - beta2);
    const biasCorrection1 = 1 - beta1 ** state.step;
    const biasCorrection2 = 1 - beta2 ** state.step;
    const stepSize = g.lr / biasCorrection1;
    let second = expAvgSq;
    if (g.amsgrad) {
      second = this.zeroState(state, "max_exp_avg_sq", p);
      maximumInPlace(second, expAvgSq);
    }
    const denom = sqrt(second);
    divInPlace(denom, Math.sqrt(biasCorrection2));
    addInPlace(denom, g.eps);
    addcdivInPlace(p, expAvg, denom, -stepSize);
  }
}

export class Adam extends AdamFamily {
  constructor(params: readonly Tensor[] | readonly ParamGroup[], opts: AdamOptions = {}) {
    super("Adam", false, params, opts);
  }
}

/** Adam with decoupled weight decay (default 1e-2, as in PyTorch). */
export class AdamW extends AdamFamily {
  constructor(params: readonly Tensor[] | readonly ParamGroup[], opts: AdamOptions = {}) {
    super("AdamW", true, params, opts);
  }
}
