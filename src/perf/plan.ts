// Fused inference: a BatchNorm-folded copy of a model, traced once, becomes an oneDNN plan
// (native/plan.cc) for its convolutional trunk — convolutions with ReLU and residual additions
// fused in as post-ops, activations in oneDNN's blocked layouts between operators, weights
// reordered once, Winograd where it measures faster — and the rest of the forward (flatten,
// linear, ...) is replayed through libtorch from the trace. The forward must not depend on the
// data (true of every CNN in the zoo): the trace of one probe batch is the program.
//
// The nodes come from the trace in ./plan_nodes.ts. With precision "int8" and a QuantSpec,
// convolutions and average pools run in int8 and the rest in float32 per op (./plan_int8.ts).
//
// The result is checked against the unfolded model on the probe batch when it is built (an int8
// plan against the fake-quantized replay of its spec, ./fake_quant.ts), so a returned plan is a
// faithful one; a model the plan cannot take at all is an error that says so.

import type { Module } from "../nn/module";
import { randn } from "../ops/creation";
import { abs, maxAbsDiff } from "../ops/math";
import { countNonFinite, max } from "../ops/reduce";
import { wrap } from "../ops/util";
import { fakeQuantizeHandle } from "../quant/simulate";
import { traceSites } from "../quant/sites";
import type { ActivationQuant, QuantSpec } from "../quant/spec";
import { ArgumentError } from "../tensor/errors";
import { type NativeInferencePlan, newInferencePlan, planAvailable } from "../tensor/native_calls";
import { scope } from "../tensor/scope";
import { type NativeHandle, noGrad, type Tensor } from "../tensor/tensor";
import { callNative, isNativeHandle as isHandle, type NativeCall, traceNative } from "../tensor/trace";
import { foldBatchNorm, isFolded } from "./fold";
import {
  checkInt8,
  denseSites,
  type FloatNode,
  type Int8Quantization,
  type Int8Trace,
  int8Nodes,
  int8Trace,
} from "./plan_int8";
import { buildNodes, fuse, renumber } from "./plan_nodes";

export { planAvailable };
export type { FloatNode, Int8Quantization };

export interface PlanOptions {
  /** Probe batch shape [N, C, H, W] for the trace and the check. Default [2, 3, 32, 32]. */
  inputShape?: number[];
  /**
   * Arithmetic of the plan: "fp32" (default; exact to ~1e-6, Winograd available), "bf16", or
   * "auto": both are built and timed on a batch of inputShape, and the faster one is kept.
   */
  precision?: "fp32" | "bf16" | "auto" | "int8";
  /**
   * With precision "int8": the quantization (src/quant/spec.ts) of the model's BatchNorm-folded
   * copy — activation scales by site key, per-channel weight scales by folded weight name.
   */
  quant?: QuantSpec;
  /**
   * Fold a copy (default; the model must come from createModel) or, with false, the model itself,
   * which then becomes inference-only (for models built by hand); dispose() leaves it alive.
   */
  copy?: boolean;
  /** Winograd for 3x3 stride-1 float32 convolutions: "auto" (default, timed per shape), "never", "always". */
  winograd?: "auto" | "never" | "always";
}

/**
 * What the plan would hide: oneDNN gives finite, confident-looking outputs for NaN or infinite
 * inputs and for images with a zero-size side, where libtorch gives NaN or an error. One sum over
 * x (no copy) finds a non-finite value; only a non-finite sum pays for the exact count, since a
 * sum of large finite values can overflow too. An empty batch (N = 0) is fine: [0, classes] out,
 * as from libtorch.
 */
function checkPlanInput(x: Tensor): void {
  const shape = `[${x.shape.join(", ")}]`;
  if (x.shape.slice(1).some((d) => d === 0))
    throw new ArgumentError(
      `CompiledInference.forward: x has a zero-size channel or image side; give images of at least 1x1 pixels. Received: x of shape ${shape}`,
    );
  const bad = countNonFinite(x);
  if (bad > 0)
    throw new ArgumentError(
      `CompiledInference.forward: x holds ${bad} NaN or infinite value(s), which the plan would turn into confident predictions. ` +
        `Check the input and its normalization (a std of 0 divides by zero). Received: x of shape ${shape}`,
    );
}

/** A compiled inference model: forward(x) runs the plan, then the traced tail through libtorch. */
export class CompiledInference {
  /**
   * Number of operators in the plan, of them convolutions, and of calls replayed after it; int8
   * plans: `float`, the plan nodes that ran in float32 and why.
   */
  readonly summary: {
    planNodes: number;
    convolutions: number;
    fused: number;
    tailCalls: number;
    precision: string;
    float?: FloatNode[];
  };
  /** With precision "auto": the best forward time (ms) of each candidate on the probe shape. */
  timings: { fp32: number; bf16: number } | undefined;
  /** int8 plans: where the plan quantizes (sites and their quantization, weight names). */
  quantization: Int8Quantization | undefined;
  private disposed = false;

  constructor(
    private readonly folded: Module,
    private readonly ownsFolded: boolean,
    private readonly plan: NativeInferencePlan,
    private readonly outputs: { handle: NativeHandle; index: number }[],
    private readonly tail: NativeCall[],
    private readonly result: NativeHandle,
    summary: CompiledInference["summary"],
    /** int8 plans: tail call index -> the quantization its value is fake-quantized by. */
    private readonly tailQuant?: Map<number, ActivationQuant>,
  ) {
    this.summary = summary;
  }

  /** The algorithm and oneDNN implementation of each convolution (after a forward). */
  choices(): string[] {
    return this.plan.choices();
  }

  forward(x: Tensor): Tensor {
    if (this.disposed) throw new ArgumentError("CompiledInference.forward: this compiled model was disposed.");
    if (x.rank !== 4)
      throw new ArgumentError(
        `CompiledInference.forward: x must be a 4-D floating-point CPU tensor [N, C, H, W]. Received: x of shape [${x.shape.join(", ")}]`,
      );
    checkPlanInput(x);
    const exported = this.plan.run(x.live());
    const map = new Map<NativeHandle, NativeHandle>();
    for (const o of this.outputs) map.set(o.handle, exported[o.index] as NativeHandle);
    const made: NativeHandle[] = [...exported];
    try {
      const sub = (a: unknown): unknown =>
        isHandle(a) ? (map.get(a) ?? a) : Array.isArray(a) ? a.map((b) => (isHandle(b) ? (map.get(b) ?? b) : b)) : a;
      this.tail.forEach((c, j) => {
        let r = callNative(c.name, c.args.map(sub));
        const q = this.tailQuant?.get(j);
        if (q !== undefined && isHandle(r)) {
          const fq = fakeQuantizeHandle(r, q);
          made.push(r);
          r = fq;
          // an in-place op's readers read its first argument
          if (c.name.endsWith("_") && isHandle(c.args[0])) map.set(c.args[0], fq);
        }
        if (isHandle(r) && isHandle(c.result)) {
          map.set(c.result, r);
          made.push(r);
        } else if (Array.isArray(r) && Array.isArray(c.result))
          r.forEach((h, j) => {
            if (isHandle(h) && isHandle((c.result as unknown[])[j])) {
              map.set((c.result as NativeHandle[])[j] as NativeHandle, h);
              made.push(h);
            }
          });
      });
      const out = map.get(this.result);
      if (out === undefined) throw new Error("CompiledInference: the traced output was not produced; this is a bug.");
      for (const h of made) if (h !== out) h.dispose();
      return wrap(out);
    } catch (err) {
      for (const h of made) if (h.isAlive()) h.dispose();
      throw err;
    }
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.plan.dispose();
    if (this.ownsFolded) this.folded.dispose();
  }
}

/** Builds the fp32 and the bf16 plan, times each on a batch of `shape`, keeps the faster. */
function fastest(model: Module, opts: PlanOptions, shape: number[]): CompiledInference {
  const candidates = (["fp32", "bf16"] as const).map((precision) => compileInference(model, { ...opts, precision }));
  try {
    const times = scope(() => {
      const x = randn(shape);
      const once = (c: CompiledInference) =>
        noGrad(() => {
          const t0 = performance.now();
          scope(() => void c.forward(x));
          return performance.now() - t0;
        });
      const best = candidates.map(() => Number.POSITIVE_INFINITY);
      for (let round = 0; round < 3; round++)
        candidates.forEach((c, i) => {
          best[i] = Math.min(best[i] as number, once(c));
        });
      return best;
    });
    const win = (times[1] as number) < (times[0] as number) ? 1 : 0;
    const chosen = candidates[win] as CompiledInference;
    chosen.timings = { fp32: times[0] as number, bf16: times[1] as number };
    (candidates[1 - win] as CompiledInference).dispose();
    return chosen;
  } catch (err) {
    for (const c of candidates) c.dispose();
    throw err;
  }
}

/**
 * Compiles model (made by createModel, any mode; it is not changed) for inference: BatchNorm
 * folded, the convolutional trunk as a fused oneDNN plan, the rest replayed. Throws if the
 * addon was built without oneDNN (planAvailable() is false), if the model's forward starts with
 * an operator the plan cannot run, or if the compiled output differs from the model's.
 */
export function compileInference(model: Module, opts: PlanOptions = {}): CompiledInference {
  const { shape, precision, winograd } = checkPlanOptions(opts);
  if (precision === "auto") return fastest(model, opts, shape);
  // a model folded already (an int8 run's, loaded by src/quant/files.ts) is compiled as it is
  const prefolded = isFolded(model);
  const copy = prefolded ? false : (opts.copy ?? true);
  const { model: folded } = prefolded ? { model } : foldBatchNorm(model, { inputShape: shape, copy });
  try {
    return noGrad(() =>
      scope(() => {
        const probe = randn(shape);
        const calls: NativeCall[] = [];
        let siteOfCall = new Map<number, string>();
        let traced: Tensor;
        if (precision === "int8") {
          // site keys name the values whose scales the QuantSpec holds (src/quant/sites.ts)
          const t = traceSites(folded, probe, () => folded.forward(probe));
          calls.push(...t.calls);
          siteOfCall = new Map(t.sites.filter((x) => x.callIndex >= 0).map((x) => [x.callIndex, x.key]));
          traced = t.result;
        } else
          traced = traceNative(
            () => folded.forward(probe),
            (c) => calls.push(c),
            { shapes: true },
          );
        const largest = max(abs(traced)).item() as number;
        if (!Number.isFinite(largest))
          throw new ArgumentError(
            "compileInference: the model's own output on a random probe batch holds NaN or infinite values, so its weights (or BatchNorm statistics) are not finite; there is nothing faithful to compile. Check where the weights came from (a diverged run, a damaged file).",
          );
        const int8 = precision === "int8" ? int8Trace(folded, opts.quant as QuantSpec, siteOfCall) : undefined;
        const built = planFromTrace(calls, probe, traced, precision, winograd, int8);
        const compiled = new CompiledInference(
          folded,
          copy,
          built.plan,
          built.outputs,
          built.tail,
          traced.live(),
          { ...built.summary, precision },
          built.tailQuant,
        );
        compiled.quantization = built.quantization;
        try {
          if (built.quantization === undefined) checkAgainstFolded(compiled, probe, traced, largest, precision);
          else
            checkInt8(
              (x) => compiled.forward(x),
              () => compiled.choices(),
              { calls, siteOfCall, input: probe.live(), output: traced.live() },
              probe,
              built.quantization,
              int8 as Int8Trace,
            );
        } catch (e) {
          built.plan.dispose();
          throw e;
        }
        return compiled;
      }),
    );
  } catch (err) {
    if (copy) folded.dispose();
    throw err;
  }
}

/** The options, checked: probe shape, precision ("auto" only with a copy) and the Winograd choice. */
function checkPlanOptions(opts: PlanOptions): {
  shape: number[];
  precision: "fp32" | "bf16" | "auto" | "int8";
  winograd: "auto" | "never" | "always";
} {
  if (!planAvailable())
    throw new ArgumentError(
      "compileInference: this build of budgetnet has no oneDNN plan (install libdnnl-dev and rebuild: npm run build:native).",
    );
  const shape = opts.inputShape ?? [2, 3, 32, 32];
  const precision = opts.precision ?? "fp32";
  if (precision !== "fp32" && precision !== "bf16" && precision !== "auto" && precision !== "int8")
    throw new ArgumentError(
      `compileInference: precision must be "fp32", "bf16", "int8" or "auto". Received: precision=${String(precision)}`,
    );
  if ((precision === "int8") !== (opts.quant !== undefined))
    throw new ArgumentError(
      precision === "int8"
        ? 'compileInference: precision "int8" needs the model\'s quantization: pass { quant: QuantSpec } (budgetnet quantize writes it as RUN/int8/quant.json).'
        : `compileInference: a quant spec is given but precision is "${precision}"; pass precision "int8" to use it.`,
    );
  if (precision === "auto" && opts.copy === false)
    throw new ArgumentError(
      'compileInference: precision "auto" compiles twice and needs a copy each time; with copy: false pass precision "fp32" or "bf16".',
    );
  const winograd = opts.winograd ?? "auto";
  if (!["auto", "never", "always"].includes(winograd))
    throw new ArgumentError(
      `compileInference: winograd must be "auto", "never" or "always". Received: winograd=${String(winograd)}`,
    );
  return { shape, precision, winograd };
}

/** The traced forward as a native plan: nodes fused and renumbered, the values the tail reads exported. */
function planFromTrace(
  calls: NativeCall[],
  probe: Tensor,
  traced: Tensor,
  precision: "fp32" | "bf16" | "int8",
  winograd: "auto" | "never" | "always",
  int8?: Int8Trace,
) {
  const { nodes, valueIds, tail, callOf } = buildNodes(calls, probe.live());
  if (nodes.length === 0)
    throw new ArgumentError(
      `compileInference: the model's forward starts with ${tail[0]?.name ?? "nothing"}, which the plan cannot run; use foldBatchNorm for this model.`,
    );
  // plan values the tail (or the caller) reads come back as tensors
  const needed = new Set<number>();
  const tailReads = (h: unknown) => {
    if (isHandle(h) && valueIds.has(h)) needed.add(valueIds.get(h) as number);
  };
  for (const c of tail) for (const a of c.args) Array.isArray(a) ? a.forEach(tailReads) : tailReads(a);
  tailReads(traced.live());
  const { nodes: fused, renames } = fuse(nodes, new Set(needed));
  const { nodes: dense, map } = renumber(fused);
  // handle -> exported index, following fusion's renames and the renumbering
  const resolve = (id: number): number => {
    let r = id;
    while (renames.has(r)) r = renames.get(r) as number;
    return map.get(r) as number;
  };
  const unique = [...new Set([...needed].map(resolve))];
  const outputs = [...valueIds]
    .filter(([, id]) => needed.has(id))
    .map(([handle, id]) => ({ handle, index: unique.indexOf(resolve(id)) }));
  const summary = {
    planNodes: dense.length,
    convolutions: dense.filter((n) => n.op === "conv").length,
    fused: nodes.length - fused.length,
    tailCalls: tail.length,
  };
  if (int8 !== undefined) {
    const sites = denseSites(callOf, renames, map, int8.siteOfCall);
    const q = int8Nodes(dense, { quant: int8.quant, sites, weightNames: int8.weightNames });
    const plan = newInferencePlan(q.wire, unique, "int8", winograd, q.input);
    // the float tail (the classifier) fake-quantizes the values the spec quantizes, as the
    // simulation does: the plan computes what `budgetnet quantize` reported
    const tailQuant = new Map<number, ActivationQuant>();
    tail.forEach((c, j) => {
      const key = int8.siteOfCall.get(calls.indexOf(c));
      const aq = key === undefined ? undefined : int8.quant.activations[key];
      if (key === undefined || aq === undefined) return;
      tailQuant.set(j, aq);
      q.quantization.sites[key] = { ...aq };
    });
    return {
      plan,
      outputs,
      tail,
      tailQuant,
      summary: { ...summary, float: q.float },
      quantization: q.quantization,
    };
  }
  const wire = dense.map((n) => ({ ...n, post: n.post ?? [] }));
  const plan = newInferencePlan(wire, unique, precision === "bf16" ? "bfloat16" : "float32", winograd);
  return { plan, outputs, tail, tailQuant: undefined, summary, quantization: undefined };
}

/** The folded model was checked against the model by foldBatchNorm; the plan is checked against it here. */
function checkAgainstFolded(
  compiled: CompiledInference,
  probe: Tensor,
  traced: Tensor,
  largest: number,
  precision: "fp32" | "bf16" | "int8",
): void {
  const out = compiled.forward(probe);
  const scale = Math.max(1e-6, largest);
  const err = maxAbsDiff(out, traced) / scale;
  const tolerance = precision === "bf16" ? 5e-2 : 1e-3;
  if (!(err <= tolerance))
    throw new Error(
      `compileInference: the compiled model differs from the folded model by ${err} (relative) on the probe batch (tolerance ${tolerance}). An untrained, very deep network can amplify float rounding this much (its logits reach ${scale.toPrecision(3)}); on a trained model this is a bug, please report it. The model's own forward (--engine libtorch) is unaffected.`,
    );
}
