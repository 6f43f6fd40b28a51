// exportOnnx / saveOnnx: a model to an ONNX opset-17 file with input "input" [batch, C, H, W]
// and output "logits" [batch, classes] (and optionally "probabilities"), the batch dimension
// symbolic, optional BatchNorm folding and input normalization, and the preprocessing and class
// names in metadata_props so a consumer needs nothing but the file.
import { modelSpec } from "../../models/registry";
import type { Module } from "../../nn/module";
import { packageVersion } from "../../paths";
import type { QuantSpec } from "../../quant/spec";
import { ArgumentError, describe } from "../../tensor/errors";
import { writeFileAtomic } from "../atomic";
import { foldBatchNorms } from "./fold";
import { type GraphBuilder, ONNX_DTYPE, OnnxExportError } from "./graph";
import { DataType, encodeModel, IR_VERSION, type OnnxInitializer, type OnnxModel, OPSET } from "./model";
import { qdqActivations, qdqWeights } from "./qdq";
import { traceModel } from "./trace";

export interface OnnxExportOptions {
  /** One image's shape [C, H, W]; the batch dimension is symbolic ("batch"). */
  inputShape: readonly [number, number, number] | readonly number[];
  /** Merge every eval-mode BatchNorm into the convolution before it (default false). */
  foldBn?: boolean;
  /** Bake (x - mean) / std per channel into the graph, so the model takes [0, 1] pixels. */
  withNormalization?: { mean: readonly number[]; std: readonly number[] };
  /** Class names in output order, stored in the metadata. */
  classNames?: readonly string[];
  /** Also output "probabilities" (softmax of the logits). */
  probabilities?: boolean;
  /** Extra metadata_props entries (strings). */
  metadata?: Record<string, string>;
  /**
   * Write the int8 model in QDQ form (./qdq.ts): the model must be the folded model of this
   * quantization, as src/quant/files.ts's loadQuantized gives it.
   */
  int8?: QuantSpec;
}

const PRODUCER = "budgetnet";
const PRODUCER_VERSION: string = packageVersion();

function checkOptions(opts: OnnxExportOptions): [number, number, number] {
  const s = opts?.inputShape;
  if (!Array.isArray(s) || s.length !== 3 || !s.every((d) => Number.isInteger(d) && d > 0))
    throw new ArgumentError(
      `exportOnnx: inputShape must be [C, H, W] of positive integers. Received: inputShape=${describe(s)}`,
    );
  const norm = opts.withNormalization;
  if (norm !== undefined) {
    for (const key of ["mean", "std"] as const) {
      const v = norm[key];
      if (!Array.isArray(v) || v.length !== s[0] || !v.every((x) => Number.isFinite(x)))
        throw new ArgumentError(
          `exportOnnx: withNormalization.${key} must list one finite number per input channel (${s[0]}). Received: ${key}=${describe(v)}`,
        );
    }
    if (!norm.std.every((x) => x > 0))
      throw new ArgumentError(
        `exportOnnx: withNormalization.std must be positive. Received: std=${describe(norm.std)}`,
      );
  }
  for (const [k, v] of Object.entries(opts.metadata ?? {}))
    if (typeof v !== "string")
      throw new ArgumentError(`exportOnnx: metadata values must be strings. Received: ${k}=${describe(v)}`);
  return s as [number, number, number];
}

/** Renames value `from` to `to` everywhere in the graph. */
function rename(g: GraphBuilder, from: string, to: string): void {
  for (const node of g.nodes) {
    node.inputs = node.inputs.map((i) => (i === from ? to : i));
    node.outputs = node.outputs.map((o) => (o === from ? to : o));
  }
}

function initializers(g: GraphBuilder): OnnxInitializer[] {
  const used = new Set(g.nodes.flatMap((n) => n.inputs));
  const out: OnnxInitializer[] = [];
  for (const [name, t] of g.tensors) {
    if (!used.has(name)) continue;
    const dataType = ONNX_DTYPE[t.dtype];
    if (dataType === undefined || dataType === DataType.FLOAT16 || dataType === DataType.BFLOAT16)
      throw new OnnxExportError(
        `ONNX export: initializer "${name}" has dtype ${t.dtype}; export a float32 model (convert it with to("float32") first).`,
      );
    const data = t.toTypedArray();
    out.push({ name, dims: t.shape, dataType, raw: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) });
  }
  for (const [name, c] of g.constants) if (used.has(name)) out.push(c);
  return out;
}

/** The model as ONNX ModelProto bytes (opset 17). The model's weights are not changed. */
export function exportOnnx(model: Module, opts: OnnxExportOptions): Uint8Array {
  const [C, H, W] = checkOptions(opts);
  const norm = opts.withNormalization;
  const seen = new Set<string>();
  const int8 = opts.int8;
  const prologue = (g: GraphBuilder): string => {
    if (norm === undefined) return "input";
    const mean = g.float32([...norm.mean], [1, C, 1, 1]);
    const std = g.float32([...norm.std], [1, C, 1, 1]);
    return g.node("Div", [g.node("Sub", ["input", mean])[0] as string, std])[0] as string;
  };
  const trace = traceModel(model, [C, H, W], prologue, 2, int8 ? qdqActivations(int8, seen) : undefined);
  const g = trace.graph;
  try {
    if (int8 !== undefined) {
      const missing = Object.keys(int8.activations).filter((k) => !seen.has(k));
      if (missing.length > 0)
        throw new OnnxExportError(
          `int8 ONNX export: quant.json names ${missing.length} value(s) the model's forward does not compute: ${missing.slice(0, 5).join(", ")}. Export the folded model of that quantization (loadQuantized).`,
        );
      qdqWeights(g, int8);
    }
    if (trace.outputShape.length !== 2 || trace.outputShape[0] !== trace.batch)
      throw new OnnxExportError(
        `ONNX export: the model's output should be [batch, classes]. Received: shape=[${trace.outputShape.join(", ")}]`,
      );
    const classes = trace.outputShape[1] as number;
    if (opts.classNames !== undefined && opts.classNames.length !== classes)
      throw new ArgumentError(
        `exportOnnx: classNames must name each of the ${classes} outputs. Received: ${opts.classNames.length} names`,
      );
    if (g.nodes.some((n) => n.outputs.includes(trace.output))) rename(g, trace.output, "logits");
    else
      g.nodes.push({ opType: "Identity", name: "logits", inputs: [trace.output], outputs: ["logits"], attributes: [] });
    const outputs = ["logits"];
    if (opts.probabilities) {
      g.nodes.push({
        opType: "Softmax",
        name: "probabilities",
        inputs: ["logits"],
        outputs: ["probabilities"],
        attributes: [{ name: "axis", kind: "int", value: 1 }],
      });
      outputs.push("probabilities");
    }
    const folded = opts.foldBn ? foldBatchNorms(g, outputs) : 0;
    const spec = modelSpec(model);
    const metadata: Record<string, string> = {
      input_shape: JSON.stringify([C, H, W]),
      input_layout: "NCHW float32",
      normalization: norm
        ? "baked in: feed pixels in [0, 1]; the graph applies (x - mean) / std"
        : "not in the graph: feed (x - mean) / std",
      batchnorm_folded: String(folded),
    };
    if (int8 !== undefined) {
      metadata.quantization = `int8 QDQ (${int8.method}, ${int8.observer} observer, weights per ${int8.perChannel ? "output channel" : "tensor"})`;
      metadata.batchnorm_folded = "all (folded before quantization)";
    }
    if (norm) {
      metadata.mean = JSON.stringify(norm.mean);
      metadata.std = JSON.stringify(norm.std);
    }
    if (spec) {
      metadata.model_name = spec.name;
      metadata.model_options = JSON.stringify(spec.options);
    }
    if (opts.classNames) metadata.class_names = JSON.stringify(opts.classNames);
    Object.assign(metadata, opts.metadata);
    const onnx: OnnxModel = {
      irVersion: IR_VERSION,
      opsetImports: [{ domain: "", version: OPSET }],
      producerName: PRODUCER,
      producerVersion: PRODUCER_VERSION,
      docString: spec ? `${spec.name} exported by budgetnet` : "exported by budgetnet",
      graphName: spec?.name ?? model.constructor.name,
      nodes: g.nodes,
      initializers: initializers(g),
      inputs: [{ name: "input", elemType: DataType.FLOAT, shape: ["batch", C, H, W] }],
      outputs: outputs.map((name) => ({ name, elemType: DataType.FLOAT, shape: ["batch", classes] })),
      metadata,
    };
    return encodeModel(onnx);
  } finally {
    g.dispose();
  }
}

/** exportOnnx, written atomically to `file` (temp file in the same folder, fsync, rename). */
export function saveOnnx(file: string, model: Module, opts: OnnxExportOptions): void {
  if (typeof file !== "string" || file.length === 0)
    throw new ArgumentError(`saveOnnx: file must be a non-empty path. Received: file=${describe(file)}`);
  const bytes = exportOnnx(model, opts);
  writeFileAtomic(file, [bytes]);
}
