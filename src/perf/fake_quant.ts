// The reference of an int8 plan: the traced forward of the folded model (traceSites) replayed
// through libtorch in float32 with the value of every site the plan quantizes fake-quantized
// (quantized and dequantized with the plan's scale and zero point) and every weight it quantizes
// fake-quantized per output channel, and the bias of such a convolution rounded to the int32 the
// plan adds (units of s_in * s_w). The plan and this replay then differ only by float rounding
// (accumulation order, x * (1 / s) against x / s), which moves a value across a rounding
// boundary now and then; a plan that strays further has a bug. compileInference checks its int8
// plans against it on the probe.

import { tensor } from "../ops/creation";
import { round } from "../ops/math";
import { fakeQuantizePerTensor } from "../ops/quant";
import { wrap } from "../ops/util";
import type { ActivationQuant } from "../quant/spec";
import type { NativeHandle, Tensor } from "../tensor/tensor";
import { callNative, INFO_FUNCTIONS, isNativeHandle, type NativeCall } from "../tensor/trace";

/** What the replay needs of a site trace (src/quant/sites.ts): its calls, their sites, its ends. */
export interface ReplayTrace {
  calls: NativeCall[];
  /** Call index -> the key of the site it made. */
  siteOfCall: Map<number, string>;
  /** The traced input (handles[0] of a SiteTrace) and the traced output. */
  input: NativeHandle;
  output: NativeHandle;
}

/** x quantized by q and back: scale * (clamp(round(x / scale) + zeroPoint, lo, hi) - zeroPoint). */
export function fakeQuantize(x: Tensor, q: ActivationQuant): Tensor {
  const [lo, hi] = q.dtype === "uint8" ? [0, 255] : [-128, 127];
  // libtorch's fake quantization (one op, as the simulation and QAT use), not five elementwise ops
  return fakeQuantizePerTensor(x, q.scale, q.zeroPoint, lo, hi);
}

/** A conv weight [O, I, kH, kW] quantized per output channel (symmetric, [-127, 127]) and back. */
export function fakeQuantizeWeight(w: Tensor, scales: number[]): Tensor {
  const s = tensor(Float32Array.from(scales), [scales.length, 1, 1, 1]);
  return round(w.div(s)).clamp(-127, 127).mul(s);
}

/** A conv bias rounded to the int32 of an int8 plan: round(b / (sIn * sW[oc])) * sIn * sW[oc]. */
function int32Bias(b: Tensor, sIn: number, scales: number[]): Tensor {
  const unit = tensor(
    Float32Array.from(scales, (s) => s * sIn),
    [scales.length],
  );
  return round(b.div(unit)).mul(unit);
}

/**
 * The traced forward replayed on x with the listed sites and weights fake-quantized (weights: the
 * traced weight handle -> its per-channel scales). Tensors it makes belong to the caller's scope.
 */
export function fakeQuantReplay(
  trace: ReplayTrace,
  x: Tensor,
  sites: Record<string, ActivationQuant>,
  weights: Map<NativeHandle, number[]>,
): Tensor {
  const { siteOfCall } = trace;
  // traced handle -> its replayed value (one Tensor per native handle, in the caller's scope)
  const map = new Map<NativeHandle, Tensor>();
  // traced handle -> the site key of its value, for a quantized convolution's input scale
  const keyOf = new Map<NativeHandle, string>([[trace.input, "input"]]);
  const quantized = (t: Tensor, key: string | undefined): Tensor => {
    const q = key === undefined ? undefined : sites[key];
    return q === undefined ? t : fakeQuantize(t, q);
  };
  map.set(trace.input, quantized(x, "input"));
  // a weight belongs to its model: a clone of it is ours to wrap (and free with the scope)
  for (const [h, scales] of weights)
    map.set(h, fakeQuantizeWeight(wrap(callNative("clone", [h]) as NativeHandle), scales));
  const one = (a: unknown): unknown => (isNativeHandle(a) ? (map.get(a)?.live() ?? a) : a);
  const sub = (a: unknown): unknown => (Array.isArray(a) ? a.map(one) : one(a));
  trace.calls.forEach((c, i) => {
    if (INFO_FUNCTIONS.has(c.name)) return;
    const args = c.args.map(sub);
    const scales = isNativeHandle(c.args[1]) ? weights.get(c.args[1]) : undefined;
    const sIn = isNativeHandle(c.args[0]) ? sites[keyOf.get(c.args[0]) ?? ""]?.scale : undefined;
    if (c.name === "conv2d" && scales !== undefined && sIn !== undefined && isNativeHandle(c.args[2]))
      args[2] = int32Bias(wrap(callNative("clone", [c.args[2]]) as NativeHandle), sIn, scales).live();
    const r = callNative(c.name, args);
    const key = siteOfCall.get(i);
    if (key !== undefined && isNativeHandle(c.result)) keyOf.set(c.result, key);
    else if (key !== undefined && isNativeHandle(c.args[0]) && c.name.endsWith("_")) keyOf.set(c.args[0], key);
    if (isNativeHandle(c.result) && isNativeHandle(r)) map.set(c.result, quantized(wrap(r), key));
    else if (Array.isArray(c.result) && Array.isArray(r))
      c.result.forEach((h, j) => {
        if (isNativeHandle(h) && isNativeHandle(r[j])) map.set(h, wrap(r[j]));
      });
    else if (c.name.endsWith("_") && isNativeHandle(c.args[0])) {
      // in place: the replayed first argument now holds the site's value
      const t = map.get(c.args[0]);
      if (t !== undefined) map.set(c.args[0], quantized(t, key));
    }
  });
  const out = map.get(trace.output);
  if (out === undefined) throw new Error("fakeQuantReplay: the traced output was not produced; this is a bug.");
  return out;
}
