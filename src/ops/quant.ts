// Fake quantization: x quantized to integers in [qmin, qmax] with an affine scale and zero point,
// then dequantized back to float (real = scale * (q - zeroPoint)), so a float forward computes
// what an int8 one would. The gradient is the straight-through estimator (Bengio et al. 2013):
// 1 where x fell inside the clamp range, 0 outside, as torch.fake_quantize_* give it.
import { native } from "../tensor/binding";
import type { Tensor } from "../tensor/tensor";
import { check, handleOf, isInt, tensorArg, wrap } from "./util";

function checkRange(qmin: number, qmax: number, fn: string): void {
  check(
    isInt(qmin) && isInt(qmax) && qmin < qmax && qmin >= -(2 ** 31) && qmax < 2 ** 31,
    fn,
    "qmin and qmax must be integers with qmin < qmax",
    "qmin",
    [qmin, qmax],
  );
}

/** Per-tensor fake quantization: one scale and zero point for all of x. */
export function fakeQuantizePerTensor(x: Tensor, scale: number, zeroPoint: number, qmin: number, qmax: number): Tensor {
  const fn = "fakeQuantizePerTensor";
  check(Number.isFinite(scale) && scale > 0, fn, "scale must be a positive finite number", "scale", scale);
  check(
    isInt(zeroPoint) && zeroPoint >= qmin && zeroPoint <= qmax,
    fn,
    "zeroPoint must be an integer in [qmin, qmax]",
    "zeroPoint",
    zeroPoint,
  );
  checkRange(qmin, qmax, fn);
  return wrap(native.fakeQuantizePerTensor(handleOf(x, fn, "x"), scale, zeroPoint, qmin, qmax));
}

/**
 * Symmetric per-channel fake quantization (zero points 0) along `axis`: one scale per slice, as
 * int8 weights are quantized per output channel (axis 0).
 */
export function fakeQuantizePerChannel(x: Tensor, scales: Tensor, axis: number, qmin: number, qmax: number): Tensor {
  const fn = "fakeQuantizePerChannel";
  tensorArg(scales, fn, "scales");
  check(isInt(axis) && axis >= 0 && axis < x.shape.length, fn, `axis must be in [0, ${x.shape.length})`, "axis", axis);
  check(
    scales.shape.length === 1 && scales.shape[0] === x.shape[axis],
    fn,
    `scales must be 1-d with one scale per slice along axis ${axis} (${x.shape[axis]})`,
    "scales.shape",
    scales.shape,
  );
  checkRange(qmin, qmax, fn);
  return wrap(native.fakeQuantizePerChannel(handleOf(x, fn, "x"), handleOf(scales, fn, "scales"), axis, qmin, qmax));
}
