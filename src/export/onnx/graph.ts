// The graph being recorded while a model runs: ONNX nodes, the value name of every native handle
// that depends on the input, and the initializers (model parameters by state-dict key, tensors the
// forward pass computed without the input, and small constants such as Reshape's shape).
import type { StateDict } from "../../nn/module";
import { keep } from "../../tensor/scope";
import type { DType, NativeHandle, Tensor } from "../../tensor/tensor";
import { cloneHandle, handleDtype, handleShape, isNativeHandle } from "../../tensor/trace";
import { type Attribute, DataType, type OnnxInitializer, type OnnxNode } from "./model";

/** The model cannot be written as ONNX (an op without a mapping, a training-only op, ...). */
export class OnnxExportError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "OnnxExportError";
  }
}

export const ONNX_DTYPE: Partial<Record<DType, number>> = {
  float32: DataType.FLOAT,
  float64: DataType.DOUBLE,
  float16: DataType.FLOAT16,
  bfloat16: DataType.BFLOAT16,
  int64: DataType.INT64,
  int32: DataType.INT32,
  uint8: DataType.UINT8,
  bool: DataType.BOOL,
};

export const isHandle: (v: unknown) => v is NativeHandle = isNativeHandle;

export class GraphBuilder {
  readonly nodes: OnnxNode[] = [];
  /** Initializers backed by tensors: parameters (borrowed) and snapshots (owned). */
  readonly tensors = new Map<string, Tensor>();
  /** Initializers made from JS values (shapes, axes, scalars). */
  readonly constants = new Map<string, OnnxInitializer>();
  private readonly owned = new Set<Tensor>();
  private readonly traced = new Map<NativeHandle, string>();
  private readonly params = new Map<NativeHandle, [string, Tensor]>();
  private readonly snapshots = new Map<NativeHandle, string>();
  private readonly taken = new Set<string>();
  private counter = 0;

  constructor(
    state: StateDict,
    /** The module whose forward() is running, for names and errors. */
    readonly where: () => string,
  ) {
    for (const [key, t] of state) {
      this.params.set(t.handle, [key, t]);
      this.taken.add(key);
    }
  }

  isTraced(v: unknown): v is NativeHandle {
    return isHandle(v) && this.traced.has(v);
  }

  shape(h: NativeHandle): number[] {
    return handleShape(h);
  }

  dtype(h: NativeHandle): DType {
    return handleDtype(h);
  }

  /** A name no other value or initializer has, prefixed by the running module's path. */
  fresh(base: string): string {
    const path = this.where();
    let name: string;
    do name = `${path ? `${path}/` : ""}${base}_${this.counter++}`;
    while (this.taken.has(name));
    this.taken.add(name);
    return name;
  }

  bind(h: NativeHandle, name: string): void {
    this.traced.set(h, name);
  }

  /** The value name of an op's input: a traced value, a parameter, a snapshot or a scalar. */
  input(v: unknown, like?: NativeHandle): string {
    if (typeof v === "number" || typeof v === "boolean")
      return this.scalar(Number(v), like === undefined ? "float32" : this.dtype(like));
    if (!isHandle(v))
      throw new OnnxExportError(`internal: an op input is neither a tensor nor a number (${String(v)})`);
    const traced = this.traced.get(v);
    if (traced !== undefined) return traced;
    const param = this.params.get(v);
    if (param !== undefined) {
      this.tensors.set(param[0], param[1]);
      return param[0];
    }
    // computed without the input (e.g. from parameters): its value is fixed, store it
    let name = this.snapshots.get(v);
    if (name === undefined) {
      name = this.fresh("constant");
      this.addTensor(name, keep(cloneHandle(v)));
      this.snapshots.set(v, name);
    }
    return name;
  }

  /** A tensor the exporter made (e.g. BatchNorm's default scale of ones) as a new initializer. */
  adopt(base: string, t: Tensor): string {
    const name = this.fresh(base);
    this.addTensor(name, keep(t));
    return name;
  }

  /** Stores an owned tensor as an initializer (disposed by dispose()). */
  addTensor(name: string, t: Tensor): void {
    this.taken.add(name);
    this.owned.add(t);
    this.tensors.set(name, t);
  }

  /** Appends a node; returns its output names. */
  node(opType: string, inputs: string[], attributes: Attribute[] = [], outputs = 1): string[] {
    const names = Array.from({ length: outputs }, () => this.fresh(opType));
    this.nodes.push({ opType, name: names[0] as string, inputs, outputs: names, attributes });
    return names;
  }

  /** A one-output node whose output is the handle `out`. */
  emit(out: unknown, opType: string, inputs: string[], attributes: Attribute[] = []): void {
    if (!isHandle(out)) throw new OnnxExportError(`internal: ${opType} produced no tensor`);
    this.bind(out, this.node(opType, inputs, attributes)[0] as string);
  }

  int64(values: number[], dims: number[] = [values.length]): string {
    const raw = new Uint8Array(BigInt64Array.from(values.map((v) => BigInt(v))).buffer);
    return this.constant(raw, dims, DataType.INT64);
  }

  float32(values: number[], dims: number[]): string {
    return this.constant(new Uint8Array(Float32Array.from(values).buffer), dims, DataType.FLOAT);
  }

  scalar(value: number, dtype: DType): string {
    const arrays: Partial<Record<DType, () => ArrayBufferView>> = {
      float32: () => Float32Array.of(value),
      float64: () => Float64Array.of(value),
      int64: () => BigInt64Array.of(BigInt(Math.trunc(value))),
      int32: () => Int32Array.of(value),
      uint8: () => Uint8Array.of(value),
      bool: () => Uint8Array.of(value ? 1 : 0),
    };
    const make = arrays[dtype];
    if (make === undefined)
      throw new OnnxExportError(`a scalar operand of dtype ${dtype} has no ONNX form here (in "${this.where()}")`);
    const view = make();
    return this.constant(new Uint8Array(view.buffer), [], ONNX_DTYPE[dtype] as number);
  }

  /** A constant initializer from raw little-endian bytes of ONNX type dataType (int8 weights, zero points). */
  constant(raw: Uint8Array, dims: number[], dataType: number): string {
    const name = this.fresh("const");
    this.constants.set(name, { name, dims, dataType, raw });
    return name;
  }

  /** Frees the tensors the builder made (parameters are the model's and stay). */
  dispose(): void {
    for (const t of this.owned) t.dispose();
    this.owned.clear();
  }
}

export const attr = {
  int: (name: string, value: number): Attribute => ({ name, kind: "int", value }),
  float: (name: string, value: number): Attribute => ({ name, kind: "float", value }),
  ints: (name: string, value: number[]): Attribute => ({ name, kind: "ints", value }),
  string: (name: string, value: string): Attribute => ({ name, kind: "string", value }),
};
