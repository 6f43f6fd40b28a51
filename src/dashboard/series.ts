// Curves for the page and for `budgetnet plot`: a metric of a run against step, epoch or wall time,
// taken from the journal's columns, downsampled with LTTB (Steinarsson 2013, "Downsampling Time
// Series for Visual Representation": keeps the points that carry the shape, first and last
// included), and runs that differ only by seed folded into mean, min and max per step.
import type { SeriesColumns } from "./metrics_reader";

export const METRICS = {
  loss: { record: "step", column: "loss", label: "training loss (per logged step)" },
  lr: { record: "step", column: "lr", label: "learning rate" },
  imagesPerSec: { record: "step", column: "imagesPerSec", label: "images/s" },
  "train.loss": { record: "epoch", column: "trainLoss", label: "training loss (epoch mean)" },
  "train.accuracy": { record: "epoch", column: "trainAccuracy", label: "training accuracy" },
  "val.loss": { record: "epoch", column: "valLoss", label: "validation loss" },
  "val.accuracy": { record: "epoch", column: "valAccuracy", label: "validation accuracy" },
} as const;

export type MetricName = keyof typeof METRICS;
export type XAxis = "step" | "epoch" | "time";
export const X_AXES: readonly XAxis[] = ["step", "epoch", "time"];

export function isMetric(name: string): name is MetricName {
  return Object.hasOwn(METRICS, name);
}

export interface Series {
  x: number[];
  y: number[];
  /** Points before downsampling. */
  total: number;
}

/**
 * A metric's points in journal order; non-finite values are left out (a diverged run's curve
 * ends where its values do). stepsPerEpoch turns steps into fractional epochs and epoch ends into
 * steps; without it the journal's own step of the epoch's end is used.
 */
export function extractSeries(
  c: SeriesColumns,
  metric: MetricName,
  axis: XAxis,
  stepsPerEpoch: number | null,
): { x: number[]; y: number[] } {
  const m = METRICS[metric];
  const x: number[] = [];
  const y: number[] = [];
  if (m.record === "step") {
    const s = c.step;
    const values = s[m.column];
    for (let i = 0; i < values.length; i++) {
      const v = values[i] as number;
      const step = s.step[i] as number;
      const xv =
        axis === "step"
          ? step
          : axis === "time"
            ? (s.time[i] as number)
            : stepsPerEpoch
              ? step / stepsPerEpoch
              : (s.epoch[i] as number);
      if (Number.isFinite(v) && Number.isFinite(xv)) {
        x.push(xv);
        y.push(v);
      }
    }
  } else {
    const e = c.epoch;
    const values = e[m.column];
    for (let i = 0; i < values.length; i++) {
      const v = values[i] as number;
      const epoch = e.epoch[i] as number;
      const xv =
        axis === "epoch"
          ? epoch + 1
          : axis === "time"
            ? (e.time[i] as number)
            : stepsPerEpoch
              ? (epoch + 1) * stepsPerEpoch
              : (e.step[i] as number);
      if (Number.isFinite(v) && Number.isFinite(xv)) {
        x.push(xv);
        y.push(v);
      }
    }
  }
  return { x, y };
}

/** Indices of at most `threshold` points chosen by Largest-Triangle-Three-Buckets. */
export function lttbIndices(x: readonly number[], y: readonly number[], threshold: number): number[] {
  const n = x.length;
  if (threshold >= n || threshold < 3) return Array.from({ length: n }, (_, i) => i);
  const out: number[] = [0];
  const every = (n - 2) / (threshold - 2);
  let a = 0;
  for (let i = 0; i < threshold - 2; i++) {
    // the average point of the next bucket is the triangle's third corner
    const nextStart = Math.floor((i + 1) * every) + 1;
    const nextEnd = Math.min(Math.floor((i + 2) * every) + 1, n);
    let avgX = 0;
    let avgY = 0;
    for (let j = nextStart; j < nextEnd; j++) {
      avgX += x[j] as number;
      avgY += y[j] as number;
    }
    const count = Math.max(1, nextEnd - nextStart);
    avgX /= count;
    avgY /= count;
    const start = Math.floor(i * every) + 1;
    const end = Math.floor((i + 1) * every) + 1;
    const ax = x[a] as number;
    const ay = y[a] as number;
    let best = start;
    let bestArea = -1;
    for (let j = start; j < end; j++) {
      const area = Math.abs((ax - avgX) * ((y[j] as number) - ay) - (ax - (x[j] as number)) * (avgY - ay));
      if (area > bestArea) {
        bestArea = area;
        best = j;
      }
    }
    out.push(best);
    a = best;
  }
  out.push(n - 1);
  return out;
}

export function downsample(s: { x: number[]; y: number[] }, points: number): Series {
  const idx = lttbIndices(s.x, s.y, points);
  if (idx.length === s.x.length) return { x: s.x, y: s.y, total: s.x.length };
  return { x: idx.map((i) => s.x[i] as number), y: idx.map((i) => s.y[i] as number), total: s.x.length };
}

export interface GroupSeries {
  x: number[];
  mean: number[];
  lo: number[];
  hi: number[];
  /** Runs that had a value at each point. */
  count: number[];
  total: number;
}

/**
 * Runs of one seed group folded per step (step metrics) or per epoch (epoch metrics): the mean,
 * min and max over the runs that reached that point. On the time axis each point is placed at
 * the runs' mean time.
 */
export function groupSeries(
  members: { c: SeriesColumns; stepsPerEpoch: number | null }[],
  metric: MetricName,
  axis: XAxis,
  points: number,
): GroupSeries {
  const byKey = new Map<number, { xs: number[]; ys: number[] }>();
  for (const m of members) {
    const keyed = extractSeries(m.c, metric, METRICS[metric].record === "step" ? "step" : "epoch", null);
    const shown = extractSeries(m.c, metric, axis, m.stepsPerEpoch);
    for (let i = 0; i < keyed.x.length; i++) {
      const k = keyed.x[i] as number;
      let slot = byKey.get(k);
      if (slot === undefined) {
        slot = { xs: [], ys: [] };
        byKey.set(k, slot);
      }
      slot.xs.push(shown.x[i] as number);
      slot.ys.push(keyed.y[i] as number);
    }
  }
  const keys = [...byKey.keys()].sort((a, b) => a - b);
  const g: GroupSeries = { x: [], mean: [], lo: [], hi: [], count: [], total: keys.length };
  for (const k of keys) {
    const { xs, ys } = byKey.get(k) as { xs: number[]; ys: number[] };
    g.x.push(xs.reduce((a, b) => a + b, 0) / xs.length);
    g.mean.push(ys.reduce((a, b) => a + b, 0) / ys.length);
    g.lo.push(Math.min(...ys));
    g.hi.push(Math.max(...ys));
    g.count.push(ys.length);
  }
  if (axis === "time") {
    // mean times need not rise with the step when runs ran at different speeds
    const order = g.x.map((_, i) => i).sort((a, b) => (g.x[a] as number) - (g.x[b] as number));
    for (const key of ["x", "mean", "lo", "hi", "count"] as const) g[key] = order.map((i) => g[key][i] as number);
  }
  const idx = lttbIndices(g.x, g.mean, points);
  if (idx.length === g.x.length) return g;
  const pick = (a: number[]) => idx.map((i) => a[i] as number);
  return { x: pick(g.x), mean: pick(g.mean), lo: pick(g.lo), hi: pick(g.hi), count: pick(g.count), total: g.total };
}

/** Columns of the rows pushed to the page: x on each axis, then the record's values. */
export const STEP_ROW = ["step", "epoch", "time", "loss", "lr", "imagesPerSec"] as const;
export const EPOCH_ROW = ["step", "epoch", "time", "train.loss", "train.accuracy", "val.loss", "val.accuracy"] as const;

const orNull = (v: number | undefined): number | null => (v !== undefined && Number.isFinite(v) ? v : null);

/** Journal rows from the given indices on, as STEP_ROW / EPOCH_ROW arrays (null for a missing value). */
export function pointRows(
  c: SeriesColumns,
  stepsPerEpoch: number | null,
  fromStep: number,
  fromEpoch: number,
): { step: { from: number; rows: (number | null)[][] }; epoch: { from: number; rows: (number | null)[][] } } {
  const s = c.step;
  const e = c.epoch;
  const stepRows: (number | null)[][] = [];
  for (let i = fromStep; i < s.step.length; i++) {
    const step = s.step[i] as number;
    const epochX = stepsPerEpoch ? step / stepsPerEpoch : s.epoch[i];
    stepRows.push([
      step,
      orNull(epochX),
      orNull(s.time[i]),
      orNull(s.loss[i]),
      orNull(s.lr[i]),
      orNull(s.imagesPerSec[i]),
    ]);
  }
  const epochRows: (number | null)[][] = [];
  for (let i = fromEpoch; i < e.epoch.length; i++) {
    const epoch = e.epoch[i] as number;
    const stepX = stepsPerEpoch ? (epoch + 1) * stepsPerEpoch : e.step[i];
    epochRows.push([
      orNull(stepX),
      epoch + 1,
      orNull(e.time[i]),
      orNull(e.trainLoss[i]),
      orNull(e.trainAccuracy[i]),
      orNull(e.valLoss[i]),
      orNull(e.valAccuracy[i]),
    ]);
  }
  return { step: { from: fromStep, rows: stepRows }, epoch: { from: fromEpoch, rows: epochRows } };
}
