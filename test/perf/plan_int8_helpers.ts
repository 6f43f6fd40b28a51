// Test-side pieces for the int8 plan: a min/max QuantSpec (the real calibrator is `budgetnet
// quantize`'s; this one only has to give every site a sensible scale), BatchNorm statistics that
// make an untrained network's activations and logits non-degenerate, the fake-quantized reference
// of a compiled plan and agreement measures.
import { argmax, type nn, noGrad, randn, scope, type Tensor } from "../../src";
import { max } from "../../src/ops/reduce";
import { fakeQuantReplay } from "../../src/perf/fake_quant";
import { foldBatchNorm } from "../../src/perf/fold";
import type { CompiledInference } from "../../src/perf/plan";
import { traceSites } from "../../src/quant/sites";
import type { ActivationQuant, QuantSpec } from "../../src/quant/spec";
import type { NativeHandle } from "../../src/tensor/tensor";
import { callNative } from "../../src/tensor/trace";

/**
 * A few training-mode forwards (no gradients) so that every BatchNorm's running statistics come
 * from data: a freshly initialized network in eval mode otherwise shrinks its activations layer
 * by layer (MobileNet v2's logits come out near 1e-8), and int8 against float on such logits
 * measures rounding noise, not the plan.
 */
export function settleBatchNorm(model: nn.Module, shape: number[], steps = 12): void {
  model.train();
  noGrad(() => {
    for (let i = 0; i < steps; i++) scope(() => void model.forward(randn(shape)));
  });
  model.eval();
}

/** The site keys of the folded model, each with the range of its values over the batches. */
function siteRanges(folded: nn.Module, batches: Tensor[]): Map<string, [number, number]> {
  const ranges = new Map<string, [number, number]>();
  const item = (h: unknown) => {
    const r = callNative("item", [h]) as number;
    (h as NativeHandle).dispose();
    return r;
  };
  for (const x of batches)
    traceSites(
      folded,
      x,
      () => folded.forward(x),
      (site, h) => {
        const lo = item(callNative("amin", [h]));
        const hi = item(callNative("amax", [h]));
        const [a, b] = ranges.get(site.key) ?? [Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY];
        ranges.set(site.key, [Math.min(a, lo), Math.max(b, hi)]);
      },
    );
  return ranges;
}

/**
 * A post-training QuantSpec by min/max: non-negative sites uint8 with zero point 0, the others
 * symmetric int8 (asymmetricInput: the input uint8 with a zero point; asymmetric: every site
 * with negative values uint8 with a zero point); conv weights per output channel, max |w| / 127.
 */
export function minMaxSpec(
  model: nn.Module,
  batches: Tensor[],
  opts: { asymmetricInput?: boolean; asymmetric?: boolean; scales?: Record<string, number> } = {},
  inPlace = false,
): QuantSpec {
  return noGrad(() =>
    scope(() => {
      // inPlace: a model built by hand, without BatchNorms (foldBatchNorm copies only createModel's)
      const folded = inPlace ? model : foldBatchNorm(model, { inputShape: batches[0]?.shape }).model;
      try {
        const activations: Record<string, ActivationQuant> = {};
        for (const [key, [lo, hi]] of siteRanges(folded, batches)) {
          if (lo < 0 && (opts.asymmetric === true || (key === "input" && opts.asymmetricInput === true))) {
            const scale = Math.max(hi - lo, 1e-8) / 255;
            activations[key] = { scale, zeroPoint: Math.round(-lo / scale), dtype: "uint8" };
          } else if (lo >= 0) activations[key] = { scale: Math.max(hi, 1e-8) / 255, zeroPoint: 0, dtype: "uint8" };
          else activations[key] = { scale: Math.max(-lo, hi, 1e-8) / 127, zeroPoint: 0, dtype: "int8" };
          const scale = opts.scales?.[key];
          if (scale !== undefined) (activations[key] as ActivationQuant).scale = scale;
        }
        const weights: QuantSpec["weights"] = {};
        for (const [name, w] of folded.namedParameters())
          if (w.rank === 4) {
            const perChannel = max(w.abs().reshape([w.shape[0] as number, -1]), 1).toArray() as number[];
            weights[name] = { scales: Array.from(perChannel, (v) => Math.max(v, 1e-8) / 127), axis: 0 };
          }
        return {
          format: "budgetnet-int8",
          version: 1,
          model: "test",
          modelOptions: {},
          inputShape: (batches[0]?.shape ?? []).slice(1),
          observer: "minmax",
          calibrationImages: batches.reduce((n, b) => n + (b.shape[0] as number), 0),
          perChannel: true,
          method: "ptq",
          activations,
          weights,
          float: [],
        } satisfies QuantSpec;
      } finally {
        if (!inPlace) folded.dispose();
      }
    }),
  );
}

/** The compiled plan's reference: the folded model's forward with the plan's quantization faked. */
export function fakeQuantReference(
  model: nn.Module,
  compiled: CompiledInference,
  spec: QuantSpec,
  x: Tensor,
  inPlace = false,
): Tensor {
  const q = compiled.quantization;
  if (q === undefined) throw new Error("not an int8 plan");
  const folded = inPlace ? model : foldBatchNorm(model, { inputShape: x.shape }).model;
  try {
    const t = traceSites(folded, x, () => folded.forward(x));
    const siteOfCall = new Map(t.sites.filter((s) => s.callIndex >= 0).map((s) => [s.callIndex, s.key]));
    const byName = new Map(folded.namedParameters().map(([name, w]) => [name, w.handle]));
    const weights = new Map(
      q.weights.map((name) => [byName.get(name) as NativeHandle, (spec.weights[name] as { scales: number[] }).scales]),
    );
    const trace = { calls: t.calls, siteOfCall, input: x.live(), output: t.result.live() };
    return fakeQuantReplay(trace, x, q.sites, weights).clone();
  } finally {
    if (!inPlace) folded.dispose();
  }
}

/** The fraction of rows of a and b [N, classes] with the same argmax. */
export function argmaxAgreement(a: Tensor, b: Tensor): number {
  const x = argmax(a, 1).toArray();
  const y = argmax(b, 1).toArray();
  let same = 0;
  for (let i = 0; i < x.length; i++) if (x[i] === y[i]) same++;
  return same / x.length;
}
