// Quantization-aware training (Jacob et al. 2018; PyTorch's prepare_qat -> fine-tune -> convert):
// the folded model fine-tuned for a few epochs with its weights fake-quantized per output channel
// (per tensor without perChannel) and its activations fake-quantized at the same sites as the
// int8 simulation, gradients through the rounding by the straight-through estimator (libtorch's
// fake_quantize ops). Activation ranges start at the calibration's and follow a moving average
// of each batch's min and max until `freezeObserversAfter`, then stay fixed so the last steps
// train against the final scales. SGD with momentum 0.9 and a cosine decay from lr to 0.
import type { AugmentOptions } from "../data/augment";
import type { ImageDataset } from "../data/dataset";
import { DataLoader } from "../data/loader";
import type { Module } from "../nn/module";
import { crossEntropy } from "../ops/nn";
import { argmax } from "../ops/reduce";
import { scope } from "../tensor/scope";
import type { NativeHandle } from "../tensor/tensor";
import { callNative } from "../tensor/trace";
import { SGD } from "../train/sgd";
import type { QuantLayout } from "./calibrate";
import { forwardWithSites } from "./intercept";
import { MovingAverageMinMax } from "./observers";
import { activationQuant, WEIGHT_RANGE } from "./quantize";
import { fakeQuantizeHandle } from "./simulate";
import type { ActivationQuant } from "./spec";

export interface QatOptions {
  /** Epochs of fine-tuning (default 1). */
  epochs: number;
  /** Peak learning rate (default 0.002): small, the model is already trained. */
  lr: number;
  /** Fraction of the steps after which activation ranges stop moving (default 0.5). */
  freezeObserversAfter?: number;
  /** Cap on the total number of steps (quick runs, tests). */
  maxSteps?: number;
  batchSize?: number;
  seed?: number;
}

export interface QatContext {
  perChannel: boolean;
  data: { mean: number[]; std: number[]; numClasses: number };
  augment?: AugmentOptions;
  onProgress?: (message: string) => void;
}

/** Fake-quantized weight (symmetric int8, per output channel or per tensor), a new handle. */
function fakeQuantizeWeight(w: NativeHandle, perChannel: boolean): NativeHandle {
  const [qmin, qmax] = WEIGHT_RANGE;
  const abs = callNative("abs", [w]) as NativeHandle;
  const rank = (callNative("shape", [w]) as number[]).length;
  const dims = perChannel ? Array.from({ length: rank - 1 }, (_, i) => i + 1) : undefined;
  const max = callNative("amax", [abs, dims ?? Array.from({ length: rank }, (_, i) => i), false]) as NativeHandle;
  const clamped = callNative("clamp", [max, 1e-8, undefined]) as NativeHandle;
  const scales = callNative("div", [clamped, qmax]) as NativeHandle;
  const fixed = callNative("detach", [scales]) as NativeHandle;
  try {
    if (perChannel) return callNative("fakeQuantizePerChannel", [w, fixed, 0, qmin, qmax]) as NativeHandle;
    const s = callNative("item", [fixed]) as number;
    return callNative("fakeQuantizePerTensor", [w, s, 0, qmin, qmax]) as NativeHandle;
  } finally {
    for (const h of [abs, max, clamped, scales, fixed]) h.dispose();
  }
}

/**
 * Fine-tunes folded (in place) with fake quantization; returns the activation quantization the
 * observers ended with. The caller quantizes the tuned weights.
 */
export function quantizationAwareTraining(
  folded: Module,
  layout: QuantLayout,
  train: ImageDataset,
  initial: Record<string, ActivationQuant>,
  opts: QatOptions & QatContext,
): { activations: Record<string, ActivationQuant> } {
  const nonNegative = new Map(layout.decisions.map((d) => [d.key, d.nonNegative] as const));
  const observers = new Map<string, MovingAverageMinMax>();
  for (const [key, q] of Object.entries(initial)) {
    const o = new MovingAverageMinMax();
    const t = q.dtype === "uint8" ? q.scale * 255 : q.scale * 127;
    o.update(q.dtype === "uint8" ? 0 : -t, t);
    observers.set(key, o);
  }
  const batchSize = opts.batchSize ?? 128;
  const loader = new DataLoader(train, {
    batchSize,
    shuffle: true,
    dropLast: true,
    seed: opts.seed ?? 0,
    augment: opts.augment,
    ...opts.data,
  });
  const total = Math.min(opts.maxSteps ?? Number.POSITIVE_INFINITY, opts.epochs * loader.numBatches);
  const freezeAt = Math.floor(total * (opts.freezeObserversAfter ?? 0.5));
  const params = folded.parameters();
  for (const p of params) p.requiresGrad = true;
  const sgd = new SGD(params, { lr: opts.lr, momentum: 0.9 });
  let step = 0;
  try {
    for (let epoch = 0; epoch < opts.epochs && step < total; epoch++) {
      let lossSum = 0;
      let correct = 0;
      let seen = 0;
      for (const batch of loader.batches(epoch)) {
        if (step >= total) {
          for (const t of [batch.x, batch.y, batch.target]) t.dispose();
          break;
        }
        sgd.setLr((opts.lr * (1 + Math.cos((Math.PI * step) / total))) / 2);
        const frozen = step >= freezeAt;
        scope(() => {
          const logits = forwardWithSites(folded, batch.x, {
            onSite: (site, value) => {
              const o = observers.get(site.key);
              if (o === undefined) return undefined;
              if (!frozen) {
                const lo = callNative("amin", [value, undefined, false]) as NativeHandle;
                const hi = callNative("amax", [value, undefined, false]) as NativeHandle;
                o.update(callNative("item", [lo]) as number, callNative("item", [hi]) as number);
                lo.dispose();
                hi.dispose();
              }
              return fakeQuantizeHandle(value, activationQuant(o.threshold(), nonNegative.get(site.key) ?? false));
            },
            onWeight: (w) => fakeQuantizeWeight(w, opts.perChannel),
          });
          const loss = crossEntropy(logits, batch.y);
          loss.backward();
          sgd.step();
          sgd.zeroGrad();
          lossSum += loss.item() * (batch.y.shape[0] as number);
          const pred = argmax(logits, 1).toArray();
          const truth = batch.y.toArray();
          for (let i = 0; i < truth.length; i++) if (pred[i] === truth[i]) correct++;
          seen += truth.length;
        });
        for (const t of [batch.x, batch.y, batch.target]) t.dispose();
        step++;
      }
      opts.onProgress?.(
        `qat epoch ${epoch + 1}/${opts.epochs}: ${seen} images, loss ${(lossSum / Math.max(1, seen)).toFixed(4)}, fake-quantized train accuracy ${((100 * correct) / Math.max(1, seen)).toFixed(2)}%`,
      );
    }
  } finally {
    sgd.dispose();
    for (const p of params) {
      p.zeroGrad();
      p.requiresGrad = false;
    }
  }
  const activations: Record<string, ActivationQuant> = {};
  for (const [key, o] of observers) activations[key] = activationQuant(o.threshold(), nonNegative.get(key) ?? false);
  return { activations };
}
