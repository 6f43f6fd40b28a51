// Which sites (./sites.ts) hold int8 values: the one rule that calibration, the int8 simulation,
// the QDQ ONNX export and the native int8 plan share (docs/int8.md, "The site rule").
//
// Read in call order over a folded model's sites:
// - "input": quantized (int8, the normalized input is signed).
// - conv2d, linear, residual add (both operands from the input), relu/relu_/relu6, average
//   pools: quantized at their output, unless fused into the op that follows:
//     a conv2d/linear/add whose next site is an activation of its value (relu, relu6, sigmoid,
//     silu, hardswish, hardsigmoid: in place, or the value's only reader) is not quantized, the
//     activation is (conv+relu, conv+relu6, add+relu: the int8 plan's oneDNN post-ops, so the
//     activation runs on the int32 accumulator's float value and its output is quantized once);
//     a conv2d/linear whose value's only reader is the add that is the next site is not
//     quantized, the add (or the ReLU after it) is (conv+add, a residual connection).
// - max pools, reshapes, slices, zero padding, eval-mode dropout: "passthrough", they move
//   quantized values without changing them, so they carry their input's quantization.
// - any other op (sigmoid, mul, an unfolded batchNorm, ...) is not covered by the int8 path: it
//   runs in float32 on dequantized inputs and its output is quantized again ("float").
// - the model's output (the last site) stays float32: logits are not quantized.
// A value is non-negative (uint8, zero point 0) when it comes out of a ReLU-like op, or out of a
// pool, passthrough or add whose inputs are all non-negative; every other value is int8
// symmetric (zero point 0).
import { ACTIVATIONS as PLAN_ACTIVATIONS } from "../perf/plan_nodes";
import type { NativeHandle } from "../tensor/tensor";
import { handleArgs, INFO_FUNCTIONS, type NativeCall } from "../tensor/trace";
import type { Site } from "./sites";

/** Ops with an int8 kernel: their output is quantized (unless fused into the next). */
export const INT8_OPS: ReadonlySet<string> = new Set([
  "conv2d",
  "linear",
  "add",
  "relu",
  "relu_",
  "relu6",
  "avgPool2d",
  "adaptiveAvgPool2d",
]);
/** Ops that move int8 values unchanged (same scale and zero point as their input). */
export const PASSTHROUGH_OPS: ReadonlySet<string> = new Set([
  "maxPool2d",
  "adaptiveMaxPool2d",
  "reshape",
  "view",
  "flatten",
  "contiguous",
  "clone",
  "detach",
  "slice",
  "narrow",
  "select",
  "squeeze",
  "unsqueeze",
  "permute",
  "transpose",
  "pad",
  "dropout",
  "featureDropout",
]);
/** Ops whose output is never negative. */
const NON_NEGATIVE_OPS: ReadonlySet<string> = new Set(["relu", "relu_", "relu6", "sigmoid", "hardsigmoid", "softmax"]);
/**
 * Activations fused into the conv2d/linear/add before them: the ones the int8 plan runs as a
 * convolution's post-op (its own set, so the two cannot drift), and relu_ in place. A fused
 * activation's output is quantized even where the activation alone has no int8 kernel (silu,
 * hardswish, sigmoid).
 */
export const FUSED_ACTIVATIONS: ReadonlySet<string> = new Set([...PLAN_ACTIVATIONS, "relu_"]);
const FUSES_INTO_RELU: ReadonlySet<string> = new Set(["conv2d", "linear", "add"]);

export type SiteRole = "quantized" | "fused" | "passthrough" | "float" | "output";

export interface SiteDecision {
  key: string;
  op: string;
  /**
   * quantized: an int8 op's output, quantized here. fused: inside a fused op, never
   * materialized (not quantized). passthrough: carries `quantizedAs`'s quantization. float: an
   * op without an int8 kernel, run in float32, its output quantized here. output: the model's
   * output, float32.
   */
  role: SiteRole;
  /** The site whose scale and zero point this value has (itself when quantized here). */
  quantizedAs?: string;
  /** Known non-negative: quantized as uint8 (zero point 0) rather than int8. */
  nonNegative: boolean;
  /** Why the op runs in float32 (role "float"). */
  reason?: string;
  /** Keys of the sites this value was computed from. */
  inputs: string[];
}

export interface TraceForRule {
  sites: readonly Site[];
  calls: readonly NativeCall[];
  handles: readonly NativeHandle[];
}

/** Indices of the later calls that read each handle (metadata queries left out). */
function readers(calls: readonly NativeCall[]): Map<NativeHandle, number[]> {
  const out = new Map<NativeHandle, number[]>();
  calls.forEach((c, i) => {
    if (INFO_FUNCTIONS.has(c.name)) return;
    for (const h of handleArgs(c.args)) {
      const list = out.get(h);
      if (list === undefined) out.set(h, [i]);
      else list.push(i);
    }
  });
  return out;
}

function isFusedIntoNext(i: number, trace: TraceForRule, reads: Map<NativeHandle, number[]>): boolean {
  const site = trace.sites[i] as Site;
  const next = trace.sites[i + 1];
  const h = trace.handles[i] as NativeHandle;
  if (next === undefined) return false;
  const nextCall = trace.calls[next.callIndex] as NativeCall;
  if (!handleArgs(nextCall.args).includes(h)) return false;
  const later = (reads.get(h) ?? []).filter((j) => j > site.callIndex);
  if (FUSES_INTO_RELU.has(site.op) && FUSED_ACTIVATIONS.has(next.op) && nextCall.args[0] === h)
    return next.op === "relu_" || later.length === 1;
  if ((site.op === "conv2d" || site.op === "linear") && next.op === "add" && later.length === 1) {
    const operands = handleArgs(nextCall.args);
    return operands.length === 2 && operands.every((o) => trace.handles.slice(0, i + 2).includes(o));
  }
  return false;
}

/**
 * The role of every site of a folded model's trace (traceSites' sites, calls and handles, with
 * the handles still alive), in site order.
 */
export function quantizedSites(trace: TraceForRule): SiteDecision[] {
  const reads = readers(trace.calls);
  const producer = new Map<NativeHandle, number>();
  const out: SiteDecision[] = [];
  trace.sites.forEach((site, i) => {
    const h = trace.handles[i] as NativeHandle;
    const call = site.callIndex >= 0 ? (trace.calls[site.callIndex] as NativeCall) : undefined;
    const from = call === undefined ? [] : handleArgs(call.args).flatMap((a) => producer.get(a) ?? []);
    const inputs = from.map((j) => (out[j] as SiteDecision).key);
    const allNonNegative = from.length > 0 && from.every((j) => (out[j] as SiteDecision).nonNegative);
    let d: SiteDecision;
    if (site.op === "input") d = { key: site.key, op: "input", role: "quantized", nonNegative: false, inputs };
    else if (i === trace.sites.length - 1)
      d = { key: site.key, op: site.op, role: "output", nonNegative: false, inputs };
    else if (PASSTHROUGH_OPS.has(site.op)) {
      const src = out[from[0] ?? -1];
      d = {
        key: site.key,
        op: site.op,
        role: "passthrough",
        quantizedAs: src?.quantizedAs,
        nonNegative: src?.nonNegative ?? false,
        inputs,
      };
    } else {
      const residual = site.op !== "add" || from.length === 2;
      // an activation fused into the int8 op before it is that op's quantized output
      const afterFused = FUSED_ACTIVATIONS.has(site.op) && out[i - 1]?.role === "fused";
      const covered = (INT8_OPS.has(site.op) && residual) || afterFused;
      const nonNegative =
        NON_NEGATIVE_OPS.has(site.op) || (covered && site.op !== "conv2d" && site.op !== "linear" && allNonNegative);
      const fused = covered && isFusedIntoNext(i, trace, reads);
      d = { key: site.key, op: site.op, role: fused ? "fused" : covered ? "quantized" : "float", nonNegative, inputs };
      if (!covered)
        d.reason =
          site.op === "add"
            ? "add with a constant operand has no int8 kernel; it runs in float32 and its output is quantized again"
            : `op ${site.op} has no int8 kernel; it runs in float32 on dequantized inputs and its output is quantized again`;
    }
    if (d.role === "quantized" || d.role === "float") d.quantizedAs = d.key;
    out.push(d);
    producer.set(h, i);
  });
  return out;
}

/** The decisions whose value gets a scale of its own (a QuantSpec activation). */
export function quantizedHere(decisions: readonly SiteDecision[]): SiteDecision[] {
  return decisions.filter((d) => d.role === "quantized" || d.role === "float");
}
