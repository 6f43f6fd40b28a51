// Post-training calibration: a BatchNorm-folded model run on a few training images (eval
// transform, no augmentation) under traceSites, one range observer per quantized site, and the
// weights of every conv2d/linear quantized symmetric int8 per output channel.
import type { ImageDataset } from "../data/dataset";
import { DataLoader } from "../data/loader";
import type { Module } from "../nn/module";
import { narrow } from "../ops/shape";
import { scope } from "../tensor/scope";
import { noGrad, type Tensor } from "../tensor/tensor";
import { cloneHandle, isNativeHandle } from "../tensor/trace";
import { AbsHistogram, chooseThreshold } from "./observers";
import { activationQuant, type QuantizedWeight, quantizeWeight } from "./quantize";
import { quantizedHere, quantizedSites, type SiteDecision } from "./rule";
import { traceSites } from "./sites";
import type { ActivationQuant, ObserverName, QuantSpec } from "./spec";

/** Fewer calibration images than this: ranges are unreliable, so quantize warns. */
export const FEW_CALIBRATION_IMAGES = 32;

export interface CalibrateOptions {
  observer: ObserverName;
  /** For the percentile observer; default 99.99. */
  percentile?: number;
  perChannel: boolean;
}

/** The structure of a folded model as the int8 path sees it: site roles and quantized weights. */
export interface QuantLayout {
  decisions: SiteDecision[];
  /** Folded state-dict names of the conv2d/linear weights to quantize. */
  weights: string[];
  float: QuantSpec["float"];
}

/** Site roles and weight names, from one probe forward of the folded model on x. */
export function quantLayout(folded: Module, x: Tensor): QuantLayout {
  const names = new Map(folded.namedParameters().map(([n, t]) => [t.handle, n] as const));
  return noGrad(() =>
    scope(() => {
      const trace = traceSites(folded, x, () => folded.forward(x));
      const decisions = quantizedSites(trace);
      const weights: string[] = [];
      const float: QuantSpec["float"] = [];
      for (const d of decisions) if (d.role === "float") float.push({ key: d.key, reason: d.reason as string });
      for (const site of trace.sites) {
        if (site.op !== "conv2d" && site.op !== "linear") continue;
        const w = trace.calls[site.callIndex]?.args[1];
        const name = isNativeHandle(w) ? names.get(w) : undefined;
        if (name === undefined)
          float.push({
            key: site.key,
            reason: `the ${site.op} weight is not a parameter of the model; it stays float32`,
          });
        else if (!weights.includes(name)) weights.push(name);
      }
      return { decisions, weights, float };
    }),
  );
}

/** Every weight of the layout, quantized (per output channel or per tensor). */
export function quantizeWeights(folded: Module, names: string[], perChannel: boolean): Map<string, QuantizedWeight> {
  const state = folded.stateDict();
  const out = new Map<string, QuantizedWeight>();
  for (const name of names) {
    const w = state.get(name) as Tensor;
    out.set(name, quantizeWeight(w.toFloat32Array(), w.shape, perChannel));
  }
  return out;
}

/**
 * Activation quantization of every quantized site of the layout, from the batches (normalized
 * images, disposed by the caller) run through the folded model.
 */
export function calibrateActivations(
  folded: Module,
  layout: QuantLayout,
  batches: Iterable<Tensor>,
  opts: CalibrateOptions,
): Record<string, ActivationQuant> {
  const watched = new Map(quantizedHere(layout.decisions).map((d) => [d.key, d] as const));
  const histograms = new Map<string, AbsHistogram>();
  for (const x of batches)
    noGrad(() =>
      scope(() => {
        traceSites(
          folded,
          x,
          () => folded.forward(x),
          (site, value) => {
            if (!watched.has(site.key)) return;
            const copy = cloneHandle(value);
            try {
              const h = histograms.get(site.key) ?? new AbsHistogram();
              histograms.set(site.key, h);
              h.add(copy.toFloat32Array());
            } finally {
              copy.dispose();
            }
          },
        );
      }),
    );
  const activations: Record<string, ActivationQuant> = {};
  for (const [key, d] of watched) {
    const h = histograms.get(key);
    if (h === undefined)
      throw new Error(`calibration never reached site ${key}: the model's forward differs between batches`);
    const levels = d.nonNegative ? 255 : 127;
    activations[key] = activationQuant(chooseThreshold(h, { ...opts, levels }), d.nonNegative);
  }
  return activations;
}

/**
 * The first n images of ds in a seeded shuffled order, normalized with the run's statistics,
 * in batches (the caller disposes each batch after use).
 */
export function* calibrationBatches(
  ds: ImageDataset,
  n: number,
  data: { mean: number[]; std: number[]; numClasses: number },
  batchSize = 128,
): Generator<Tensor> {
  const loader = new DataLoader(ds, { batchSize, shuffle: true, seed: 1234, ...data });
  let left = Math.min(n, ds.n);
  for (const batch of loader.batches(0)) {
    batch.y.dispose();
    batch.target.dispose();
    const take = Math.min(left, batch.x.shape[0] as number);
    let x = batch.x;
    if (take < (batch.x.shape[0] as number)) {
      const view = narrow(batch.x, 0, 0, take);
      x = view.clone();
      view.dispose();
      batch.x.dispose();
    }
    left -= take;
    try {
      yield x;
    } finally {
      x.dispose();
    }
    if (left <= 0) break;
  }
}
