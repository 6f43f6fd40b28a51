// The arithmetic of int8 quantization, shared by calibration, the simulation, QAT and the files:
// activation scales from a clipping threshold, integer ranges, and symmetric per-channel weights.
import type { ActivationQuant, WeightQuant } from "./spec";

/** Integer range of an activation: uint8 [0, 255], int8 [-128, 127]. */
export function activationRange(q: ActivationQuant): [number, number] {
  return q.dtype === "uint8" ? [0, 255] : [-128, 127];
}

/** Weights are symmetric int8 in [-127, 127] (so -w quantizes to -q, as oneDNN and PyTorch use). */
export const WEIGHT_RANGE: readonly [number, number] = [-127, 127];

/** Scale and zero point for clipping threshold t (> 0): uint8 for non-negative values, else int8. */
export function activationQuant(threshold: number, nonNegative: boolean): ActivationQuant {
  const t = Math.max(threshold, 1e-8);
  return nonNegative
    ? { scale: t / 255, zeroPoint: 0, dtype: "uint8" }
    : { scale: t / 127, zeroPoint: 0, dtype: "int8" };
}

/** A weight's int8 values and scales (per output channel, axis 0, or one for the tensor). */
export interface QuantizedWeight {
  q: Int8Array;
  shape: number[];
  quant: WeightQuant;
}

/** Symmetric int8 quantization of a weight [out, ...]: scale = max|w| / 127 per channel (or tensor). */
export function quantizeWeight(values: Float32Array, shape: number[], perChannel: boolean): QuantizedWeight {
  const out = shape[0] as number;
  const per = values.length / out;
  const channels = perChannel ? out : 1;
  const size = perChannel ? per : values.length;
  const scales: number[] = [];
  for (let c = 0; c < channels; c++) {
    let m = 0;
    for (let i = c * size; i < (c + 1) * size; i++) m = Math.max(m, Math.abs(values[i] as number));
    if (!Number.isFinite(m)) throw new Error("a weight holds NaN or infinite values; the run's weights are broken");
    // float32, as the file stores it, so the same scale is used everywhere
    scales.push(Math.fround(m > 0 ? m / 127 : 1));
  }
  const q = new Int8Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const s = scales[perChannel ? Math.floor(i / per) : 0] as number;
    q[i] = Math.max(-127, Math.min(127, Math.round((values[i] as number) / s)));
  }
  return { q, shape, quant: { scales, axis: 0 } };
}

/** w = scale * q per channel: the float weights an int8 kernel computes with. */
export function dequantizeWeight(q: Int8Array, shape: number[], quant: WeightQuant): Float32Array {
  const per = q.length / (shape[0] as number);
  const perChannel = quant.scales.length > 1 || (shape[0] === 1 && quant.scales.length === 1);
  const out = new Float32Array(q.length);
  for (let i = 0; i < q.length; i++)
    out[i] = (q[i] as number) * (quant.scales[perChannel ? Math.floor(i / per) : 0] as number);
  return out;
}
