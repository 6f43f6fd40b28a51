// Stochastic gradient descent with momentum, PyTorch's rule exactly (torch.optim.SGD, 1.13):
//   g ← grad + weightDecay·p
//   buf ← g on the first step, else momentum·buf + (1 − dampening)·g
//   g ← g + momentum·buf (nesterov) or buf
//   p ← p − lr·g
// A group steps in one native call (sgdStep: PyTorch's foreach form, multi-tensor kernels on CUDA).
import { ArgumentError } from "../tensor/errors";
import { sgdStep } from "../tensor/native_calls";
import type { Tensor } from "../tensor/tensor";
import {
  checkOption,
  type GroupItem,
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
    this.updateGroup(g, [{ p, grad, state }]);
  }

  protected override updateGroup(g: ResolvedGroup<SGDGroupOptions>, items: readonly GroupItem[]): void {
    // parameters with a momentum buffer step together; those without (their first step) get one
    const withBuffer: GroupItem[] = [];
    const fresh: GroupItem[] = [];
    for (const it of items) (g.momentum !== 0 && it.state.tensors.has("momentum_buffer") ? withBuffer : fresh).push(it);
    const opts = {
      lr: g.lr,
      momentum: g.momentum,
      dampening: g.dampening,
      weightDecay: g.weightDecay,
      nesterov: g.nesterov,
    };
    if (withBuffer.length > 0)
      sgdStep(
        withBuffer.map((it) => it.p),
        withBuffer.map((it) => it.grad),
        withBuffer.map((it) => it.state.tensors.get("momentum_buffer")!),
        opts,
      );
    if (fresh.length === 0) return;
    const made = sgdStep(
      fresh.map((it) => it.p),
      fresh.map((it) => it.grad),
      undefined,
      opts,
    );
    if (made !== undefined) for (const [k, it] of fresh.entries()) this.setState(it.state, "momentum_buffer", made[k]);
  }
}
