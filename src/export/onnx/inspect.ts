// Reading an ONNX file back: its graph inputs and outputs, ops, initializers and metadata. Used by
// the tests and the CLI to check what was written; anything that is not an ONNX model is refused
// with the file's name and what did not fit.
import * as fs from "node:fs";
import { decodeModel, type OnnxModel } from "./model";
import { ProtoDecodeError } from "./protobuf";

export class OnnxFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "OnnxFormatError";
  }
}

/** Decodes ModelProto bytes; `source` names them in errors. */
export function readOnnx(bytes: Uint8Array, source = "the bytes"): OnnxModel {
  if (bytes.length === 0) throw new OnnxFormatError(`${source} is not an ONNX model: it is empty.`);
  try {
    return decodeModel(bytes);
  } catch (e) {
    if (e instanceof ProtoDecodeError)
      throw new OnnxFormatError(
        `${source} is not an ONNX model (${e.message}). Give a .onnx file written by an ONNX exporter.`,
      );
    throw e;
  }
}

/** Reads and decodes an .onnx file. */
export function loadOnnx(file: string): OnnxModel {
  if (!fs.existsSync(file)) throw new OnnxFormatError(`${file} does not exist.`);
  return readOnnx(fs.readFileSync(file), file);
}

export interface OnnxSummary {
  opset: number;
  inputs: { name: string; shape: (number | string)[] }[];
  outputs: { name: string; shape: (number | string)[] }[];
  /** Node count per op type. */
  ops: Record<string, number>;
  initializers: number;
  /** Elements in all initializers. */
  parameters: number;
  metadata: Record<string, string>;
}

export function summarizeOnnx(m: OnnxModel): OnnxSummary {
  const ops: Record<string, number> = {};
  for (const n of m.nodes) ops[n.opType] = (ops[n.opType] ?? 0) + 1;
  return {
    opset: m.opsetImports.find((o) => o.domain === "")?.version ?? 0,
    inputs: m.inputs.map(({ name, shape }) => ({ name, shape })),
    outputs: m.outputs.map(({ name, shape }) => ({ name, shape })),
    ops,
    initializers: m.initializers.length,
    parameters: m.initializers.reduce((s, t) => s + t.dims.reduce((a, b) => a * b, 1), 0),
    metadata: m.metadata,
  };
}
