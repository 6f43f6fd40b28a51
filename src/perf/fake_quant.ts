// The reference of an int8 plan: the traced forward of the folded model (traceSites) replayed
// through libtorch in float32 with the value of every site the plan quantizes fake-quantized
// (quantized and dequantized with the plan's scale and zero point) and every weight it quantizes
// fake-quantized per output channel. The plan and this replay differ only by float rounding
// (accumulation order, the int32 bias, x * (1 / s) against x / s at exact ties), so a plan that
// strays from it has a bug; compileInference checks its int8 plans against it on the probe.

import { tensor } from "../ops/creation";
import { round } from "../ops/math";
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
  return round(x.div(q.scale)).add(q.zeroPoint).clamp(lo, hi).sub(q.zeroPoint).mul(q.scale);
}

/** A conv weight [O, I, kH, kW] quantized per output channel (symmetric, [-127, 127]) and back. */
export function fakeQuantizeWeight(w: Tensor, scales: number[]): Tensor {
  const s = tensor(Float32Array.from(scales), [scales.length, 1, 1, 1]);
  return round(w.div(s)).clamp(-127, 127).mul(s);
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
  const quantized = (t: Tensor, key: string | undefined): Tensor => {
    const q = key === undefined ? undefined : sites[key];
    return q === undefined ? t : fakeQuantize(t, q);
  };
  map.set(trace.input, quantized(x, "input"));
  for (const [h, scales] of weights) map.set(h, fakeQuantizeWeight(wrap(h), scales));
  const one = (a: unknown): unknown => (isNativeHandle(a) ? (map.get(a)?.live() ?? a) : a);
  const sub = (a: unknown): unknown => (Array.isArray(a) ? a.map(one) : one(a));
  trace.calls.forEach((c, i) => {
    if (INFO_FUNCTIONS.has(c.name)) return;
    const r = callNative(c.name, c.args.map(sub));
    const key = siteOfCall.get(i);
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
