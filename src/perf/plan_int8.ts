// The int8 side of the fused inference plan (plan.ts; native/plan_int8.cc): which plan nodes run
// in int8 and with which scales, read from a QuantSpec (src/quant/spec.ts) by site key
// (src/quant/sites.ts).
//
// - Convolutions run in int8: the input, the residual added by a fused sum and the output are
//   quantized by their sites' activation quantizations (the output's site is that of the last
//   operator fused into the convolution: the ReLU after an addition, say), the weights by the
//   spec's per-output-channel scales (symmetric int8, q = clamp(round(w / s), -127, 127)).
// - Average pools of an int8 value run in int8 and keep its quantization, as PyTorch's quantized
//   avg_pool2d does, where the spec quantizes the pool's output the same way (or not at all); else
//   they run in float and their output is quantized by the spec's own scale.
// - Everything else (the global pool before the float tail, an SE gate's product, additions not
//   fused into a convolution, standalone activations and BatchNorms) runs in float32, per op, with
//   its int8 inputs dequantized; a float output that an int8 node reads, or that the spec
//   quantizes, is quantized once, right after the node, so every reader sees the same quantized
//   value and the plan computes what the simulation (src/quant/simulate.ts) computes. `float`
//   lists these nodes.
//
// `quantization` says exactly where the plan quantizes (site -> quantization, weight names), so a
// fake-quantized replay of the same forward (./fake_quant.ts) is the plan's reference.

import type { Module } from "../nn/module";
import { abs, maxAbsDiff } from "../ops/math";
import { max } from "../ops/reduce";
import type { ActivationQuant, QuantSpec } from "../quant/spec";
import { ArgumentError } from "../tensor/errors";
import type { InferencePlanNode as PlanNode, PlanQuant } from "../tensor/native_calls";
import type { NativeHandle, Tensor } from "../tensor/tensor";
import { fakeQuantReplay, type ReplayTrace } from "./fake_quant";

/** A plan node that ran in float32 in an int8 plan, and why. */
export interface FloatNode {
  /** The site key of the node's output. */
  key: string;
  /** The plan operator: "eltwise:silu", "binary:mul", "pool:global", "batchnorm". */
  op: string;
  reason: string;
}

/** Where an int8 plan quantizes: the reference a fake-quantized forward must follow. */
export interface Int8Quantization {
  /** Every site whose value the plan holds in int8, with its quantization. */
  sites: Record<string, ActivationQuant>;
  /** The folded state-dict names of the convolution weights it quantizes. */
  weights: string[];
}

/** The int8 inputs of a compilation: the spec, the folded model's site per call and weight names. */
export interface Int8Trace {
  quant: QuantSpec;
  /** Call index -> site key (traceSites on the folded model). */
  siteOfCall: Map<number, string>;
  /** The folded model's parameters: handle -> state-dict name. */
  weightNames: Map<NativeHandle, string>;
}

export function int8Trace(folded: Module, quant: QuantSpec, siteOfCall: Map<number, string>): Int8Trace {
  const weightNames = new Map<NativeHandle, string>(folded.namedParameters().map(([name, t]) => [t.handle, name]));
  return { quant, siteOfCall, weightNames };
}

/**
 * An int8 plan checked against its reference, the fake-quantized replay of the folded model's
 * forward (./fake_quant.ts), on the probe: largest |plan - reference| relative to the largest
 * |reference| logit. A rounding flip in one element moves it by one quantum, and a few such flips
 * reach the logits damped by the layers after them (measured: 0.6% on resnet20 and mobilenetv2,
 * 1.7% with SE gates); a wrong scale, zero point or layout moves it by tens of percent.
 */
export function checkInt8(
  forward: (x: Tensor) => Tensor,
  choices: () => string[],
  trace: ReplayTrace,
  probe: Tensor,
  quantization: Int8Quantization,
  int8: Int8Trace,
): void {
  const out = forward(probe);
  const chosen = choices();
  const byName = new Map([...int8.weightNames].map(([h, name]) => [name, h]));
  const weights = new Map<NativeHandle, number[]>();
  for (const name of quantization.weights)
    weights.set(byName.get(name) as NativeHandle, (int8.quant.weights[name] as { scales: number[] }).scales);
  const ref = fakeQuantReplay(trace, probe, quantization.sites, weights);
  const scale = Math.max(1e-6, max(abs(ref)).item() as number);
  const err = maxAbsDiff(out, ref) / scale;
  // without VNNI, oneDNN halves the int8 weights (vpmaddubsw would saturate), rounding odd ones
  const vnni = chosen.every((c) => /vnni|amx/.test(c));
  const tolerance = vnni ? INT8_PROBE_TOLERANCE : 3 * INT8_PROBE_TOLERANCE;
  if (!(err <= tolerance))
    throw new Error(
      `compileInference: the int8 plan differs from its fake-quantized reference by ${err} (relative) on the probe batch (tolerance ${tolerance}); this is a bug, please report it. Compile with precision "fp32" or "bf16", or use --engine libtorch, meanwhile.`,
    );
}

/** See checkInt8. */
export const INT8_PROBE_TOLERANCE = 0.05;

/** What the int8 wiring needs from the trace of the folded model. */
export interface Int8Context {
  quant: QuantSpec;
  /** Plan value id (after fusion and renumbering) -> the site key of that value. */
  sites: Map<number, string>;
  /** The folded model's parameters: handle -> state-dict name. */
  weightNames: Map<NativeHandle, string>;
}

/**
 * The site key of each dense plan value: the site of the call that made it (callOf: value id before
 * fusion -> call index; siteOfCall from traceSites), moved along fusion's renames so that a
 * convolution's output carries the site of the last operator fused into it, then renumbered.
 */
export function denseSites(
  callOf: Map<number, number>,
  renames: Map<number, number>,
  renumbered: Map<number, number>,
  siteOfCall: Map<number, string>,
): Map<number, string> {
  const site = new Map<number, string>([[0, "input"]]);
  for (const [id, call] of callOf) {
    const key = siteOfCall.get(call);
    if (key !== undefined) site.set(id, key);
  }
  for (const [from, to] of renames) {
    const key = site.get(from);
    if (key !== undefined) site.set(to, key);
  }
  const out = new Map<number, string>();
  for (const [orig, dense] of renumbered) {
    const key = site.get(orig);
    if (key !== undefined) out.set(dense, key);
  }
  return out;
}

function checkQuant(key: string, q: ActivationQuant): PlanQuant {
  const [lo, hi] = q.dtype === "uint8" ? [0, 255] : [-128, 127];
  if (q.dtype !== "uint8" && q.dtype !== "int8")
    throw new ArgumentError(
      `compileInference: site "${key}" of the QuantSpec has dtype ${String(q.dtype)}; give "uint8" or "int8".`,
    );
  if (
    !(q.scale > 0 && Number.isFinite(q.scale)) ||
    !Number.isInteger(q.zeroPoint) ||
    q.zeroPoint < lo ||
    q.zeroPoint > hi
  )
    throw new ArgumentError(
      `compileInference: site "${key}" of the QuantSpec needs a positive finite scale and an integer zero point in [${lo}, ${hi}]. Received: scale=${q.scale}, zeroPoint=${q.zeroPoint}`,
    );
  return { scale: q.scale, zeroPoint: q.zeroPoint, dtype: q.dtype };
}

const FLOAT_REASONS: Record<string, string> = {
  "pool:global": "the global average pool feeds the float tail (or an SE gate)",
  "binary:mul": "products (an SE gate's) have no int8 path",
  "binary:add": "an addition not fused into a convolution has no int8 path",
  batchnorm: "a BatchNorm that follows no convolution has no int8 path",
};

function floatReason(op: string): string {
  const known = FLOAT_REASONS[op];
  if (known !== undefined) return known;
  if (op.startsWith("eltwise:")) return `${op.slice(8)} not fused into a convolution has no int8 path`;
  if (op.startsWith("pool:")) return "an average pool of a float value runs in float";
  return "no int8 path";
}

/**
 * The plan nodes of an int8 plan: int8 flags, output quantizations and weight scales, the input's
 * quantization, the nodes left in float and where the plan quantizes. A site an int8 node needs
 * that the spec lacks, or a convolution weight without scales, is an error that names it.
 */
export function int8Nodes(
  nodes: PlanNode[],
  ctx: Int8Context,
): { wire: PlanNode[]; input: PlanQuant | undefined; float: FloatNode[]; quantization: Int8Quantization } {
  const { quant } = ctx;
  const keyOf = (id: number): string => {
    const key = ctx.sites.get(id);
    if (key === undefined) throw new Error(`compileInference: plan value ${id} has no site key; this is a bug.`);
    return key;
  };
  const sites: Record<string, ActivationQuant> = {};
  const need = (id: number, what: string): PlanQuant => {
    const key = keyOf(id);
    const q = quant.activations[key];
    if (q === undefined)
      throw new ArgumentError(
        `compileInference: the QuantSpec has no activation quantization for site "${key}" (${what}). Calibrate this model again (budgetnet quantize) or compile it with precision "fp32" or "bf16".`,
      );
    const pq = checkQuant(key, q);
    sites[key] = { ...pq };
    return pq;
  };
  const int8Readers = new Set<number>();
  for (const n of nodes) if (n.op === "conv") for (const v of [n.in, n.sum]) if (v !== undefined) int8Readers.add(v);
  // values the plan holds in int8, with the quantization they are held in (an int8 pool's output
  // keeps its input's, whatever the spec says of the pool's own site)
  const stored = new Map<number, PlanQuant>();
  const input = int8Readers.has(0) ? need(0, "the model's input") : undefined;
  if (input !== undefined) stored.set(0, input);
  const held = (id: number, what: string): PlanQuant => stored.get(id) ?? need(id, what);
  // an int8 average pool keeps its input's quantization: where the spec quantizes the pool's output
  // otherwise, the pool runs in float and its output is quantized as the spec says
  const keepsQuant = (from: number, to: number): boolean => {
    const own = quant.activations[keyOf(to)];
    const q = stored.get(from);
    return (
      own === undefined ||
      (q !== undefined && own.scale === q.scale && own.zeroPoint === q.zeroPoint && own.dtype === q.dtype)
    );
  };
  const wire: PlanNode[] = [];
  const float: FloatNode[] = [];
  const weights: string[] = [];
  for (const n of nodes) {
    const w: PlanNode = { ...n, post: n.post ?? [] };
    if (n.op === "conv") {
      const name = ctx.weightNames.get(n.weight as NativeHandle);
      if (name === undefined)
        throw new Error(
          "compileInference: a convolution's weight is not a parameter of the folded model; this is a bug.",
        );
      const wq = quant.weights[name];
      if (wq === undefined)
        throw new ArgumentError(
          `compileInference: the QuantSpec has no weight scales for "${name}". Calibrate this model again (budgetnet quantize).`,
        );
      if (!wq.scales.every((s) => s > 0 && Number.isFinite(s)))
        throw new ArgumentError(`compileInference: the weight scales of "${name}" must be positive and finite.`);
      held(n.in, `the input of the convolution ${name}`);
      if (n.sum !== undefined) held(n.sum, `the residual added by the convolution ${name}`);
      const q = need(n.out, `the output of the convolution ${name}`);
      Object.assign(w, { int8: true, quant: q, wscales: wq.scales });
      weights.push(name);
      stored.set(n.out, q);
    } else if (n.op === "pool" && n.sub !== "global" && stored.has(n.in) && keepsQuant(n.in, n.out)) {
      const q = held(n.in, "the input of an average pool");
      Object.assign(w, { int8: true, quant: q });
      sites[keyOf(n.out)] = { ...q };
      stored.set(n.out, q);
    } else {
      const op = n.sub === undefined ? n.op : `${n.op}:${n.sub}`;
      float.push({ key: keyOf(n.out), op, reason: floatReason(op) });
      // quantized where an int8 node reads it, and wherever the spec quantizes it (the global pool
      // before the float tail, say), so the plan computes what the simulation and QDQ compute
      if (int8Readers.has(n.out) || quant.activations[keyOf(n.out)] !== undefined) {
        const q = need(n.out, `the output of ${op}`);
        Object.assign(w, { quant: q, quantizeOutput: true });
        stored.set(n.out, q);
      }
    }
    wire.push(w);
  }
  return { wire, input, float, quantization: { sites, weights } };
}
