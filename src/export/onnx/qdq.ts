// The int8 ONNX export in QDQ form (QuantizeLinear -> DequantizeLinear pairs), as onnxruntime's
// quantization tool writes it: every value quant.json quantizes gets a Q/DQ pair with its scale,
// zero point and dtype (uint8 or int8), and every int8 weight is an int8 initializer read through
// a DequantizeLinear with its per-output-channel scales (axis 0). onnxruntime fuses DQ -> op -> Q
// patterns into int8 kernels (QLinearConv, QGemm, ...) where it can and runs the rest in float on
// the dequantized values, which is what the int8 simulation computes (src/quant/simulate.ts).
// Biases stay float32, as the simulation keeps them.
import type { QuantSpec } from "../../quant/spec";
import type { NativeHandle, Tensor } from "../../tensor/tensor";
import { type GraphBuilder, OnnxExportError } from "./graph";
import { DataType } from "./model";
import type { OnTracedValue } from "./trace";

function zeroPointConstant(g: GraphBuilder, zeroPoint: number, dtype: "uint8" | "int8", dims: number[] = []): string {
  const n = dims.reduce((a, d) => a * d, 1);
  const raw =
    dtype === "uint8" ? new Uint8Array(n).fill(zeroPoint) : new Uint8Array(new Int8Array(n).fill(zeroPoint).buffer);
  return g.constant(raw, dims, dtype === "uint8" ? DataType.UINT8 : DataType.INT8);
}

/** The trace hook that puts a Q/DQ pair after each quantized value; records which keys it saw. */
export function qdqActivations(spec: QuantSpec, seen: Set<string>): OnTracedValue {
  return (g: GraphBuilder, key: string, value: NativeHandle) => {
    const q = spec.activations[key];
    if (q === undefined) return;
    seen.add(key);
    const x = g.input(value);
    const scale = g.float32([q.scale], []);
    const zp = zeroPointConstant(g, q.zeroPoint, q.dtype);
    const [quantized] = g.node("QuantizeLinear", [x, scale, zp]);
    const [dequantized] = g.node("DequantizeLinear", [quantized as string, scale, zp]);
    g.bind(value, dequantized as string);
  };
}

/**
 * Replaces each float weight initializer that spec quantizes by an int8 initializer and a
 * DequantizeLinear (per axis 0). The int8 values are round(w / scale): exact, as the model's
 * weights hold scale * q (loadQuantized).
 */
export function qdqWeights(g: GraphBuilder, spec: QuantSpec): void {
  const used = new Set(g.nodes.flatMap((n) => n.inputs));
  for (const [name, wq] of Object.entries(spec.weights)) {
    const t = g.tensors.get(name) as Tensor | undefined;
    if (t === undefined || !used.has(name))
      throw new OnnxExportError(
        `int8 ONNX export: quant.json quantizes weight "${name}", which the traced graph does not use.`,
      );
    const w = t.toFloat32Array();
    const out = t.shape[0] as number;
    const per = w.length / out;
    const q = new Int8Array(w.length);
    for (let i = 0; i < w.length; i++) {
      const s = wq.scales[wq.scales.length === 1 ? 0 : Math.floor(i / per)] as number;
      q[i] = Math.max(-127, Math.min(127, Math.round((w[i] as number) / s)));
    }
    const weight = g.constant(new Uint8Array(q.buffer), t.shape, DataType.INT8);
    const perAxis = wq.scales.length > 1;
    const scales = g.float32(wq.scales, perAxis ? [wq.scales.length] : []);
    const zp = zeroPointConstant(g, 0, "int8", perAxis ? [wq.scales.length] : []);
    const attrs = perAxis ? [{ name: "axis", kind: "int" as const, value: 0 }] : [];
    const [dequantized] = g.node("DequantizeLinear", [weight, scales, zp], attrs);
    for (const node of g.nodes)
      if (node.opType !== "DequantizeLinear" || node.outputs[0] !== dequantized)
        node.inputs = node.inputs.map((i) => (i === name ? (dequantized as string) : i));
    // the DQ node was appended last; a node must come after its inputs' producers: move it first
    const dq = g.nodes.pop();
    if (dq !== undefined) g.nodes.unshift(dq);
  }
}
