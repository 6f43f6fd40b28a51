// Range observers: what a calibration pass learns about one activation, and the clipping
// threshold it chooses. Every quantized activation here is symmetric around 0 (int8, zero point
// 0) or non-negative (uint8, zero point 0), so an observer only needs the distribution of |x|
// and returns one threshold T: scale = T / 127 (int8) or T / 255 (uint8).
//   minmax      T = max |x| seen (PyTorch's MinMaxObserver): nothing clipped, coarse steps.
//   percentile  T = the given percentile of |x| (default 99.99): outliers clipped.
//   mse         T minimizing the expected squared quantization error on the histogram of |x|
//               (clipping error above T, rounding error step^2/12 below; as TensorRT's and
//               PyTorch's HistogramObserver search).
import type { ObserverName } from "./spec";

export const OBSERVERS: readonly ObserverName[] = ["minmax", "percentile", "mse"];

const BINS = 2048;

/** A histogram of |x| over [0, top], widened (bins merged) as larger values arrive. */
export class AbsHistogram {
  counts = new Float64Array(BINS);
  top = 0;
  total = 0;
  min = Number.POSITIVE_INFINITY;
  max = Number.NEGATIVE_INFINITY;

  add(values: Float32Array): void {
    let lo = this.min;
    let hi = this.max;
    for (let i = 0; i < values.length; i++) {
      const v = values[i] as number;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    if (!Number.isFinite(lo) || !Number.isFinite(hi))
      throw new Error("an activation holds NaN or infinite values; the model's weights or the input are broken");
    this.min = lo;
    this.max = hi;
    const absMax = Math.max(Math.abs(lo), Math.abs(hi));
    if (absMax > this.top) this.widen(absMax);
    if (this.top === 0) {
      this.counts[0] = (this.counts[0] as number) + values.length;
      this.total += values.length;
      return;
    }
    const perBin = BINS / this.top;
    for (let i = 0; i < values.length; i++) {
      const b = Math.min(BINS - 1, Math.floor(Math.abs(values[i] as number) * perBin));
      this.counts[b] = (this.counts[b] as number) + 1;
    }
    this.total += values.length;
  }

  /** Grows the range to cover absMax, by a power-of-two factor so old bins merge exactly. */
  private widen(absMax: number): void {
    if (this.top === 0 || this.total === 0) {
      this.top = absMax;
      return;
    }
    let factor = 1;
    while (this.top * factor < absMax) factor *= 2;
    const merged = new Float64Array(BINS);
    for (let b = 0; b < BINS; b++) {
      const to = Math.floor(b / factor);
      merged[to] = (merged[to] as number) + (this.counts[b] as number);
    }
    this.counts = merged;
    this.top *= factor;
  }

  binWidth(): number {
    return this.top / BINS;
  }
}

/** The threshold at which `fraction` of |x| lies below (linear within a bin). */
function percentileOf(h: AbsHistogram, fraction: number): number {
  const want = fraction * h.total;
  let seen = 0;
  const w = h.binWidth();
  for (let b = 0; b < BINS; b++) {
    const c = h.counts[b] as number;
    if (seen + c >= want) return (b + (c > 0 ? (want - seen) / c : 1)) * w;
    seen += c;
  }
  return h.top;
}

/** Expected squared error of quantizing the histogram's values with threshold t and `levels` steps. */
function quantizationMse(h: AbsHistogram, t: number, levels: number): number {
  const step = t / levels;
  const w = h.binWidth();
  let err = 0;
  for (let b = 0; b < BINS; b++) {
    const c = h.counts[b] as number;
    if (c === 0) continue;
    const center = (b + 0.5) * w;
    err += center > t ? c * (center - t) ** 2 : (c * step * step) / 12;
  }
  return err;
}

export interface ThresholdOptions {
  observer: ObserverName;
  /** Percentile for the percentile observer, in (0, 100]. Default 99.99. */
  percentile?: number;
  /** Quantization levels on one side of 0: 127 for int8, 255 for uint8. */
  levels: number;
}

/** The clipping threshold T (> 0) for the histogram's values. */
export function chooseThreshold(h: AbsHistogram, opts: ThresholdOptions): number {
  if (h.total === 0) throw new Error("an observer saw no values; calibration ran no images through this site");
  if (h.top === 0) return 1e-8; // a constant zero: any scale represents it exactly
  if (opts.observer === "minmax") return h.top;
  if (opts.observer === "percentile") {
    const p = opts.percentile ?? 99.99;
    return Math.max(percentileOf(h, p / 100), h.binWidth());
  }
  // mse: search thresholds from the 90th percentile (coarser clipping is never better for
  // activations) to the maximum on a grid of 256
  const lo = Math.max(percentileOf(h, 0.9), h.binWidth());
  let best = h.top;
  let bestErr = quantizationMse(h, h.top, opts.levels);
  for (let k = 0; k < 256; k++) {
    const t = lo + ((h.top - lo) * k) / 256;
    const err = quantizationMse(h, t, opts.levels);
    if (err < bestErr) {
      bestErr = err;
      best = t;
    }
  }
  return best;
}

/** An exponential moving average of per-batch min and max (QAT's observer, as PyTorch's MovingAverageMinMaxObserver). */
export class MovingAverageMinMax {
  min = 0;
  max = 0;
  seen = 0;
  constructor(readonly momentum = 0.01) {}

  update(lo: number, hi: number): void {
    if (this.seen === 0) {
      this.min = lo;
      this.max = hi;
    } else {
      this.min += this.momentum * (lo - this.min);
      this.max += this.momentum * (hi - this.max);
    }
    this.seen++;
  }

  threshold(): number {
    return Math.max(Math.abs(this.min), Math.abs(this.max), 1e-8);
  }
}
