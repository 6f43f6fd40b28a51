// BatchNorm folding: in eval, BN(conv(x)) = conv'(x) with
//   s  = γ / sqrt(running_var + ε)            (per output channel)
//   W' = W · s  (each output channel's filter scaled)
//   b' = (b − running_mean) · s + β
// Exact in real arithmetic; computed here in float64 and rounded once to the weights' dtype.
// The ONNX exporter's graph folding and src/perf/fold.ts (module folding) share this math.

import { add, mul, rsqrt, sub } from "../ops/math";
import { reshape, to } from "../ops/shape";
import { ArgumentError } from "../tensor/errors";
import { scope } from "../tensor/scope";
import type { Tensor } from "../tensor/tensor";

export interface BatchNormStats {
  weight?: Tensor;
  bias?: Tensor;
  runningMean: Tensor;
  runningVar: Tensor;
  eps: number;
}

/** The folded convolution weight and bias, new tensors in convWeight's dtype. */
export function foldConvBatchNorm(
  convWeight: Tensor,
  convBias: Tensor | undefined,
  bn: BatchNormStats,
): { weight: Tensor; bias: Tensor } {
  const outChannels = convWeight.shape[0] as number;
  const c = bn.runningMean.shape;
  if (c.length !== 1 || c[0] !== outChannels)
    throw new ArgumentError(
      `foldConvBatchNorm: the BatchNorm must have one statistic per conv output channel (${outChannels}). Received: runningMean.shape=[${c.join(", ")}]`,
    );
  if (!(bn.eps >= 0)) throw new ArgumentError(`foldConvBatchNorm: eps must be >= 0. Received: eps=${bn.eps}`);
  const dtype = convWeight.dtype;
  return scope(() => {
    const f64 = (t: Tensor) => to(t, "float64");
    let scale = rsqrt(add(f64(bn.runningVar), bn.eps));
    if (bn.weight !== undefined) scale = mul(scale, f64(bn.weight));
    const broadcast = [outChannels, ...convWeight.shape.slice(1).map(() => 1)];
    const weight = to(mul(f64(convWeight), reshape(scale, broadcast)), dtype);
    const centered = convBias === undefined ? mul(f64(bn.runningMean), -1) : sub(f64(convBias), f64(bn.runningMean));
    let bias = mul(centered, scale);
    if (bn.bias !== undefined) bias = add(bias, f64(bn.bias));
    return { weight, bias: to(bias, dtype) };
  });
}
