// The ONNX model as plain objects, and its encoding to (and decoding from) onnx.proto's
// ModelProto. Field numbers are onnx.proto's (IR version 8 goes with opset 17).
import {
  decodeFields,
  intField,
  messages,
  ProtoDecodeError,
  type ProtoField,
  ProtoMessage,
  repeatedInts,
  stringField,
} from "./protobuf";

export const IR_VERSION = 8;
export const OPSET = 17;

/** TensorProto.DataType */
export const DataType = {
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  INT32: 6,
  INT64: 7,
  BOOL: 9,
  FLOAT16: 10,
  DOUBLE: 11,
  BFLOAT16: 16,
} as const;

export type Attribute =
  | { name: string; kind: "int"; value: number }
  | { name: string; kind: "float"; value: number }
  | { name: string; kind: "string"; value: string }
  | { name: string; kind: "ints"; value: number[] }
  | { name: string; kind: "floats"; value: number[] };

/** AttributeProto.AttributeType */
const ATTRIBUTE_TYPE = { float: 1, int: 2, string: 3, floats: 6, ints: 7 } as const;

export interface OnnxNode {
  opType: string;
  name: string;
  inputs: string[];
  outputs: string[];
  attributes: Attribute[];
}

export interface OnnxInitializer {
  name: string;
  dims: number[];
  dataType: number;
  /** Row-major elements, little-endian. */
  raw: Uint8Array;
}

/** A graph input or output: element type and shape (a string names a symbolic dimension). */
export interface OnnxValueInfo {
  name: string;
  elemType: number;
  shape: (number | string)[];
}

export interface OnnxModel {
  irVersion: number;
  opsetImports: { domain: string; version: number }[];
  producerName: string;
  producerVersion: string;
  docString: string;
  graphName: string;
  nodes: OnnxNode[];
  initializers: OnnxInitializer[];
  inputs: OnnxValueInfo[];
  outputs: OnnxValueInfo[];
  metadata: Record<string, string>;
}

function encodeAttribute(a: Attribute): ProtoMessage {
  const m = new ProtoMessage().string(1, a.name).varint(20, ATTRIBUTE_TYPE[a.kind]);
  if (a.kind === "float") m.float(2, a.value);
  else if (a.kind === "int") m.varint(3, a.value);
  else if (a.kind === "string") m.string(4, a.value);
  else if (a.kind === "floats") for (const v of a.value) m.float(7, v);
  else for (const v of a.value) m.varint(8, v);
  return m;
}

function encodeNode(n: OnnxNode): ProtoMessage {
  const m = new ProtoMessage();
  for (const i of n.inputs) m.string(1, i);
  for (const o of n.outputs) m.string(2, o);
  m.string(3, n.name).string(4, n.opType);
  for (const a of n.attributes) m.message(5, encodeAttribute(a));
  return m;
}

function encodeTensor(t: OnnxInitializer): ProtoMessage {
  const m = new ProtoMessage();
  for (const d of t.dims) m.varint(1, d);
  return m.varint(2, t.dataType).string(8, t.name).bytes(9, t.raw);
}

function encodeValueInfo(v: OnnxValueInfo): ProtoMessage {
  const shape = new ProtoMessage();
  for (const d of v.shape) {
    const dim = new ProtoMessage();
    if (typeof d === "number") dim.varint(1, d);
    else dim.string(2, d);
    shape.message(1, dim);
  }
  const tensorType = new ProtoMessage().varint(1, v.elemType).message(2, shape);
  return new ProtoMessage().string(1, v.name).message(2, new ProtoMessage().message(1, tensorType));
}

/** ModelProto bytes for m. */
export function encodeModel(m: OnnxModel): Uint8Array {
  const graph = new ProtoMessage();
  for (const n of m.nodes) graph.message(1, encodeNode(n));
  graph.string(2, m.graphName);
  for (const t of m.initializers) graph.message(5, encodeTensor(t));
  for (const v of m.inputs) graph.message(11, encodeValueInfo(v));
  for (const v of m.outputs) graph.message(12, encodeValueInfo(v));
  const model = new ProtoMessage().varint(1, m.irVersion);
  model.string(2, m.producerName).string(3, m.producerVersion);
  if (m.docString) model.string(6, m.docString);
  model.message(7, graph);
  for (const o of m.opsetImports) model.message(8, new ProtoMessage().string(1, o.domain).varint(2, o.version));
  for (const [key, value] of Object.entries(m.metadata))
    model.message(14, new ProtoMessage().string(1, key).string(2, value));
  return model.finish();
}

function decodeAttribute(f: ProtoField[]): Attribute {
  const name = stringField(f, 1) ?? "";
  const type = intField(f, 20);
  const floats = (field: number) =>
    f
      .filter((x) => x.field === field && x.fixed !== undefined)
      .map((x) =>
        new DataView((x.fixed as Uint8Array).buffer, (x.fixed as Uint8Array).byteOffset, 4).getFloat32(0, true),
      );
  switch (type) {
    case ATTRIBUTE_TYPE.float:
      return { name, kind: "float", value: floats(2)[0] ?? 0 };
    case ATTRIBUTE_TYPE.int:
      return { name, kind: "int", value: intField(f, 3) ?? 0 };
    case ATTRIBUTE_TYPE.string:
      return { name, kind: "string", value: stringField(f, 4) ?? "" };
    case ATTRIBUTE_TYPE.floats:
      return { name, kind: "floats", value: floats(7) };
    case ATTRIBUTE_TYPE.ints:
      return { name, kind: "ints", value: repeatedInts(f, 8) };
    default:
      throw new ProtoDecodeError(`attribute "${name}" has a type this reader does not handle (${String(type)})`);
  }
}

function decodeValueInfo(f: ProtoField[]): OnnxValueInfo {
  const name = stringField(f, 1) ?? "";
  const tensorType = messages(messages(f, 2)[0] ?? [], 1)[0] ?? [];
  const dims = messages(messages(tensorType, 2)[0] ?? [], 1);
  return {
    name,
    elemType: intField(tensorType, 1) ?? 0,
    shape: dims.map((d) => stringField(d, 2) ?? intField(d, 1) ?? "?"),
  };
}

/** Reads ModelProto bytes back; anything that is not an ONNX model throws ProtoDecodeError. */
export function decodeModel(bytes: Uint8Array): OnnxModel {
  const f = decodeFields(bytes);
  const irVersion = intField(f, 1);
  const graphs = messages(f, 7);
  const opsetImports = messages(f, 8).map((o) => ({ domain: stringField(o, 1) ?? "", version: intField(o, 2) ?? 0 }));
  if (irVersion === undefined || graphs.length !== 1 || opsetImports.length === 0)
    throw new ProtoDecodeError(
      `the bytes parse as protobuf but not as an ONNX ModelProto (ir_version ${irVersion === undefined ? "missing" : "present"}, ${graphs.length} graphs, ${opsetImports.length} opset imports)`,
    );
  const g = graphs[0] as ProtoField[];
  const metadata: Record<string, string> = {};
  for (const e of messages(f, 14)) metadata[stringField(e, 1) ?? ""] = stringField(e, 2) ?? "";
  return {
    irVersion,
    opsetImports,
    producerName: stringField(f, 2) ?? "",
    producerVersion: stringField(f, 3) ?? "",
    docString: stringField(f, 6) ?? "",
    graphName: stringField(g, 2) ?? "",
    nodes: messages(g, 1).map((n) => ({
      inputs: stringsOf(n, 1),
      outputs: stringsOf(n, 2),
      name: stringField(n, 3) ?? "",
      opType: stringField(n, 4) ?? "",
      attributes: messages(n, 5).map(decodeAttribute),
    })),
    initializers: messages(g, 5).map((t) => ({
      name: stringField(t, 8) ?? "",
      dims: repeatedInts(t, 1),
      dataType: intField(t, 2) ?? 0,
      raw: t.find((x) => x.field === 9)?.bytes ?? new Uint8Array(0),
    })),
    inputs: messages(g, 11).map(decodeValueInfo),
    outputs: messages(g, 12).map(decodeValueInfo),
    metadata,
  };
}

const textDecoder = new TextDecoder();
function stringsOf(f: ProtoField[], field: number): string[] {
  return f.filter((x) => x.field === field).map((x) => textDecoder.decode(x.bytes));
}
