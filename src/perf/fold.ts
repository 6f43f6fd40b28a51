// An inference copy of a model with every Conv2d → BatchNorm2d pair folded into one conv
// (math in src/nn/fold.ts). Models are straight-line TypeScript, not graphs, so the pairs are
// found by running one probe forward and watching the native calls: a BN folds into the conv
// before it when its input is that conv's output and nothing else reads that output (a
// pre-activation block's shortcut reads it too; that pair is left alone).

import { createModel, modelSpec } from "../models/registry";
import { foldConvBatchNorm } from "../nn/fold";
import { BatchNorm2d, Conv2d } from "../nn/layers";
import type { Module } from "../nn/module";
import { randn } from "../ops/creation";
import { copyInPlace } from "../ops/inplace";
import { abs, maxAbsDiff } from "../ops/math";
import * as F from "../ops/nn";
import { max } from "../ops/reduce";
import { ArgumentError } from "../tensor/errors";
import { keep, scope } from "../tensor/scope";
import { getRngState, type NativeHandle, noGrad, setRngState, type Tensor } from "../tensor/tensor";
import { handleArgs, INFO_FUNCTIONS, traceNative } from "../tensor/trace";

export interface FoldOptions {
  /** Shape of the probe batch used to find the pairs. Default [2, 3, 32, 32] (CIFAR). */
  inputShape?: number[];
  /** Fold a copy (default; needs a model made by createModel) or, with false, the model itself. */
  copy?: boolean;
}

export interface FoldResult {
  /** The inference model (eval mode, no parameter requires grad). */
  model: Module;
  /** [conv path, bn path] of each folded pair. */
  pairs: [string, string][];
  /**
   * Largest |folded − unfolded| over the probe batch, relative to the largest |output| (NaN when
   * the unfolded output is not finite). Informational: each pair is checked layer by layer.
   */
  probeRelativeError: number;
}

// Models folded by foldBatchNorm (copies, and models folded in place): folding one again would
// fold each BatchNorm a second time (its β already holds the folded bias).
const foldedModels = new WeakSet<Module>();

/** Whether the model is a result of foldBatchNorm (or was folded in place): compile it as it is. */
export function isFolded(model: Module): boolean {
  return foldedModels.has(model);
}

function copyModel(model: Module): Module {
  const spec = modelSpec(model);
  if (spec === undefined)
    throw new ArgumentError(
      "foldBatchNorm: the model was not made by createModel, so it cannot be copied. Pass { copy: false } to fold it in place (it becomes inference-only).",
    );
  // createModel initializes with random draws; put the generator back so folding has no side effects.
  const rng = getRngState();
  try {
    const out = createModel(spec.name, spec.options);
    out.loadStateDict(model.stateDict());
    return out;
  } finally {
    setRngState(rng);
    rng.dispose();
  }
}

interface Found {
  pairs: [Conv2d, BatchNorm2d][];
  reference: Tensor;
  /** Per pair, from the probe forward: the conv's input and the BN's output (clones). */
  convIn: Map<Conv2d, Tensor>;
  bnOut: Map<BatchNorm2d, Tensor>;
}

function findPairs(model: Module, probe: Tensor): Found {
  const convOut = new Map<NativeHandle, Conv2d>();
  const bnIn = new Map<BatchNorm2d, NativeHandle>();
  const uses = new Map<NativeHandle, number>();
  const calls = new Map<Module, number>();
  const convIn = new Map<Conv2d, Tensor>();
  const bnOut = new Map<BatchNorm2d, Tensor>();
  const removers: (() => void)[] = [];
  let capturing = false;
  const capture = (t: Tensor): Tensor => {
    capturing = true;
    try {
      return keep(t.clone());
    } finally {
      capturing = false;
    }
  };
  for (const [, m] of model.namedModules()) {
    if (m instanceof Conv2d)
      removers.push(
        m.registerForwardHook((_, x, y) => {
          convOut.set(y.handle, m);
          calls.set(m, (calls.get(m) ?? 0) + 1);
          convIn.get(m)?.dispose();
          convIn.set(m, capture(x));
        }),
      );
    if (m instanceof BatchNorm2d)
      removers.push(
        m.registerForwardHook((_, x, y) => {
          bnIn.set(m, x.handle);
          calls.set(m, (calls.get(m) ?? 0) + 1);
          bnOut.get(m)?.dispose();
          bnOut.set(m, capture(y)); // before an in-place ReLU after it changes y
        }),
      );
  }
  let reference: Tensor;
  try {
    reference = traceNative(
      () => model.forward(probe),
      (call) => {
        if (capturing || INFO_FUNCTIONS.has(call.name)) return;
        for (const h of handleArgs(call.args)) uses.set(h, (uses.get(h) ?? 0) + 1);
      },
    );
  } catch (err) {
    for (const t of [...convIn.values(), ...bnOut.values()]) t.dispose();
    throw err;
  } finally {
    for (const r of removers) r();
  }
  const pairs: [Conv2d, BatchNorm2d][] = [];
  const taken = new Set<Conv2d>();
  for (const [bn, h] of bnIn) {
    const conv = convOut.get(h);
    if (conv === undefined || uses.get(h) !== 1 || taken.has(conv) || bn.bias === undefined) continue;
    if (bn.runningMean === undefined || bn.runningVar === undefined) continue;
    // a module that runs more than once per forward (shared) cannot become one folded conv
    if (calls.get(conv) !== 1 || calls.get(bn) !== 1) continue;
    taken.add(conv);
    pairs.push([conv, bn]);
  }
  return { pairs, reference, convIn, bnOut };
}

function foldPair(conv: Conv2d, bn: BatchNorm2d): void {
  const bias = bn.bias as Tensor;
  scope(() => {
    const folded = foldConvBatchNorm(conv.weight, conv.bias, {
      weight: bn.weight,
      bias: bn.bias,
      runningMean: bn.runningMean as Tensor,
      runningVar: bn.runningVar as Tensor,
      eps: bn.options.eps,
    });
    copyInPlace(conv.weight, folded.weight);
    // The BN's β has the folded bias's shape: it holds b' so no tensor outside the model is needed.
    copyInPlace(bias, folded.bias);
  });
  const o = conv.options;
  const opts = { stride: o.stride, padding: o.padding, dilation: o.dilation, groups: o.groups };
  conv.forward = (x: Tensor): Tensor => F.conv2d(x, conv.weight, bias, opts);
  bn.forward = (x: Tensor): Tensor => x;
}

/**
 * Folds every Conv2d → BatchNorm2d pair of model (in eval mode) and checks the result on a
 * random probe batch against the unfolded output; throws if they differ by more than 1e-3
 * relative (a pairing the trace got wrong), so a returned model is always a faithful one.
 */
export function foldBatchNorm(model: Module, opts: FoldOptions = {}): FoldResult {
  const shape = opts.inputShape ?? [2, 3, 32, 32];
  if (!Array.isArray(shape) || shape.length !== 4 || !shape.every((d) => Number.isInteger(d) && d >= 1))
    throw new ArgumentError(
      `foldBatchNorm: inputShape must be 4 positive integers [N, C, H, W]. Received: inputShape=${JSON.stringify(shape)}`,
    );
  if (foldedModels.has(model))
    throw new ArgumentError(
      "foldBatchNorm: this model is already folded (a result of foldBatchNorm, or folded in place); fold the original model instead.",
    );
  const target = opts.copy === false ? model : copyModel(model);
  target.eval();
  for (const p of target.parameters()) p.requiresGrad = false;
  const names = new Map<Module, string>(target.namedModules().map(([n, m]) => [m, n]));
  const rng = getRngState();
  try {
    return noGrad(() =>
      scope(() => {
        const probe = randn(shape);
        const { pairs, reference, convIn, bnOut } = findPairs(target, probe);
        try {
          for (const [conv, bn] of pairs) foldPair(conv, bn);
          foldedModels.add(target);
          // Each folded conv, on the input its conv saw in the probe forward, against what its
          // BatchNorm put out there: checks the arithmetic and that the BN really read that
          // conv's output, layer by layer, so rounding cannot compound through a deep net.
          for (const [conv, bn] of pairs) {
            const want = bnOut.get(bn) as Tensor;
            // an untrained very deep net can overflow to inf on the probe: nothing to compare there
            if (!Number.isFinite(abs(want).sum().item() as number)) continue;
            const got = conv.forward(convIn.get(conv) as Tensor);
            const rel = maxAbsDiff(got, want) / Math.max(1e-6, max(abs(want)).item() as number);
            if (!(rel <= 1e-3))
              throw new Error(
                `foldBatchNorm: the folded ${names.get(conv) ?? "conv"} differs from ${names.get(bn) ?? "its BatchNorm"}'s output by ${rel} (relative) on the probe batch. This is a bug; please report the model.`,
              );
          }
        } finally {
          for (const t of [...convIn.values(), ...bnOut.values()]) t.dispose();
        }
        // End to end, for the record: an untrained very deep net (e.g. resnet1202) can amplify
        // float rounding without bound, so this is reported, not gated (the per-layer check is).
        const out = target.forward(probe);
        const scale = Math.max(1e-6, max(abs(reference)).item() as number);
        const err = maxAbsDiff(out, reference) / scale;
        return {
          model: target,
          pairs: pairs.map(([c, b]): [string, string] => [names.get(c) ?? "?", names.get(b) ?? "?"]),
          probeRelativeError: err,
        };
      }),
    );
  } finally {
    setRngState(rng);
    rng.dispose();
  }
}
