// Stochastic gradient descent with momentum, PyTorch's rule exactly (torch.optim.SGD, 1.13):
//   g ← grad + weightDecay·p
//   buf ← g on the first step, else momentum·buf + (1 − dampening)·g
//   g ← g + momentum·buf (nesterov) or buf
//   p ← p − lr·g
import { addScaledInPlace, mulInPlace } from "../ops/inplace";
import { add } from "../ops/math";
import { clone } from "../ops/shape";
import { ArgumentError } from "../tensor/errors";
import type { Tensor } from "../tensor/tensor";
import {
  checkOption,
  type ParamGroup,
  type ParamState,
  ParamwiseOptimizer,
  type ResolvedGroup,
  withDefaults,
} from "./optim";

export interface SGDOptions {
  /** Learning rate (required, as in PyTorch). */
  lr: number;
  /** Momentum factor; 0 is plain SGD. */
  momentum?: number;
  /** Dampening of the gradient's share in the momentum buffer. */
  dampening?: number;
  /** L2 penalty added to the gradient (coupled decay). */
  weightDecay?: number;
  /** Nesterov momentum (Sutskever et al. 2013); needs momentum > 0 and dampening 0. */
  nesterov?: boolean;
}

type SGDGroupOptions = Required<Omit<SGDOptions, "lr" | "weightDecay">>;

export class SGD extends ParamwiseOptimizer<SGDGroupOptions> {
  constructor(params: readonly Tensor[] | readonly ParamGroup[], opts: SGDOptions) {
    if (opts === null || typeof opts !== "object" || opts.lr === undefined)
      throw new ArgumentError(
        "SGD: lr is required, e.g. new SGD(params, { lr: 0.1, momentum: 0.9 }). Received: lr=undefined",
      );
    const defaults = withDefaults({ lr: opts.lr, momentum: 0, dampening: 0, weightDecay: 0, nesterov: false }, opts);
    super("SGD", params, defaults, ["momentum_buffer"], false);
    for (const g of this.paramGroups) this.validateGroup(g);
  }

  protected validateGroup(g: ResolvedGroup<SGDGroupOptions>): void {
    checkOption(Number.isFinite(g.lr) && g.lr >= 0, "SGD", "must be a finite number >= 0", "lr", g.lr);
    checkOption(Number.isFinite(g.momentum) && g.momentum >= 0, "SGD", "must be >= 0", "momentum", g.momentum);
    checkOption(Number.isFinite(g.dampening), "SGD", "must be a finite number", "dampening", g.dampening);
    checkOption(
      Number.isFinite(g.weightDecay) && g.weightDecay >= 0,
      "SGD",
      "must be >= 0",
      "weightDecay",
      g.weightDecay,
    );
    checkOption(typeof g.nesterov === "boolean", "SGD", "must be a boolean", "nesterov", g.nesterov);
    if (g.nesterov && (g.momentum <= 0 || g.dampening !== 0))
      throw new ArgumentError(
        `SGD: nesterov momentum requires momentum > 0 and dampening = 0; set momentum (e.g. 0.9) and dampening 0, or nesterov false. Received: momentum=${g.momentum}, dampening=${g.dampening}`,
      );
  }

  protected updateParam(p: Tensor, grad: Tensor, g: ResolvedGroup<SGDGroupOptions>, state: ParamState): void {
    let d = g.weightDecay !== 0 ? add(grad, p, g.weightDecay) : grad;
    if (g.momentum !== 0) {
      let buf = state.tensors.get("momentum_buffer");
      if (buf === undefined) {
        buf = this.setState(state, "momentum_buffer", clone(d));
      } else {
        mulInPlace(buf, g.momentum);
        addScaledInPlace(buf, d, 1 - g.dampening);
      }
      d = g.nesterov ? add(d, buf, g.momentum) : buf;
    }
    addScaledInPlace(p, d, -g.lr);
  }
}
