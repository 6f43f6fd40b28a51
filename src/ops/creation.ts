// Creating tensors: from JS data (one copy), constants, ranges and random draws.
import { type DType, native } from "../tensor/binding";
import { ArgumentError, describe } from "../tensor/errors";
import type { Tensor } from "../tensor/tensor";
import { check, isInt, shapeArg, tensorArg, wrap } from "./util";

export interface CreateOptions {
  dtype?: DType;
  device?: string;
  requiresGrad?: boolean;
}

type NestedNumbers = number | boolean | NestedNumbers[];
export type TensorData =
  | Float32Array
  | Float64Array
  | Int32Array
  | BigInt64Array
  | Uint8Array
  | Uint16Array
  | NestedNumbers;

function inferShape(data: NestedNumbers): number[] {
  const shape: number[] = [];
  let cur: NestedNumbers = data;
  while (Array.isArray(cur)) {
    shape.push(cur.length);
    cur = cur[0] as NestedNumbers;
  }
  return shape;
}

function flatten(data: NestedNumbers, shape: number[], depth: number, out: number[]): void {
  if (depth === shape.length) {
    if (typeof data !== "number" && typeof data !== "boolean")
      throw new ArgumentError(
        `tensor: nested arrays must be rectangular with numbers at the leaves. Received: a leaf ${describe(data)}`,
      );
    out.push(Number(data));
    return;
  }
  if (!Array.isArray(data) || data.length !== shape[depth])
    throw new ArgumentError(`tensor: nested arrays are ragged at depth ${depth}; expected ${shape[depth]} items.`);
  for (const d of data) flatten(d, shape, depth + 1, out);
}

const SUPPORTED_ARRAYS = [Float32Array, Float64Array, Int32Array, BigInt64Array, Uint8Array, Uint16Array];

function defaultDtype(data: TensorData): DType {
  if (data instanceof Float64Array) return "float64";
  if (data instanceof Int32Array) return "int32";
  if (data instanceof BigInt64Array) return "int64";
  if (data instanceof Uint8Array) return "uint8";
  if (data instanceof Uint16Array) return "bfloat16";
  return "float32";
}

function finish(t: Tensor, opts: CreateOptions): Tensor {
  if (opts.requiresGrad) t.requiresGrad = true;
  return t;
}

/**
 * A tensor from JS data: a TypedArray (with shape) or nested number arrays (shape inferred).
 * Float32Array→float32, Float64Array→float64, Int32Array→int32, BigInt64Array→int64,
 * Uint8Array→uint8, Uint16Array→raw bfloat16 bits; plain numbers default to float32.
 */
export function tensor(data: TensorData, shape?: readonly number[], opts: CreateOptions = {}): Tensor {
  check(
    SUPPORTED_ARRAYS.some((c) => data instanceof c) ||
      Array.isArray(data) ||
      typeof data === "number" ||
      typeof data === "boolean",
    "tensor",
    "data must be a Float32Array, Float64Array, Int32Array, BigInt64Array, Uint8Array, Uint16Array (raw 16-bit floats), a number or nested arrays of numbers",
    "data",
    ArrayBuffer.isView(data) ? data.constructor.name : data,
  );
  let buffer: ArrayBufferView;
  let dims: number[];
  if (ArrayBuffer.isView(data)) {
    buffer = data;
    dims = shape === undefined ? [(data as Float32Array).length] : shapeArg(shape, "tensor");
  } else {
    const inferred = inferShape(data);
    const flat: number[] = [];
    flatten(data, inferred, 0, flat);
    dims = shape === undefined ? inferred : shapeArg(shape, "tensor");
    const dtype = opts.dtype ?? "float32";
    buffer = dtype === "float32" ? new Float32Array(flat) : new Float64Array(flat);
  }
  const dtype = opts.dtype ?? defaultDtype(data);
  return finish(wrap(native.fromBuffer(buffer, dims, dtype, opts.device)), opts);
}

export function zeros(shape: readonly number[], opts: CreateOptions = {}): Tensor {
  return finish(wrap(native.zeros(shapeArg(shape, "zeros"), opts.dtype, opts.device)), opts);
}
export function ones(shape: readonly number[], opts: CreateOptions = {}): Tensor {
  return finish(wrap(native.ones(shapeArg(shape, "ones"), opts.dtype, opts.device)), opts);
}
/** Uninitialized memory: every element must be written before it is read. */
export function empty(shape: readonly number[], opts: CreateOptions = {}): Tensor {
  return finish(wrap(native.empty(shapeArg(shape, "empty"), opts.dtype, opts.device)), opts);
}
export function full(shape: readonly number[], value: number, opts: CreateOptions = {}): Tensor {
  check(typeof value === "number" || typeof value === "boolean", "full", "value must be a number", "value", value);
  return finish(wrap(native.full(shapeArg(shape, "full"), value, opts.dtype, opts.device)), opts);
}
/** Values start, start+step, ... below end. arange(n) counts 0..n-1 as int64. */
export function arange(start: number, end?: number, step = 1, opts: CreateOptions = {}): Tensor {
  const [s, e] = end === undefined ? [0, start] : [start, end];
  check(step !== 0 && Number.isFinite(step), "arange", "step must be a non-zero finite number", "step", step);
  const allInt = isInt(s) && isInt(e) && isInt(step);
  const dtype = opts.dtype ?? (allInt ? "int64" : "float32");
  return finish(wrap(native.arange(s, e, step, dtype, opts.device)), opts);
}
/** Uniform on [0, 1). */
export function rand(shape: readonly number[], opts: CreateOptions = {}): Tensor {
  return finish(wrap(native.rand(shapeArg(shape, "rand"), opts.dtype, opts.device)), opts);
}
/** Standard normal. */
export function randn(shape: readonly number[], opts: CreateOptions = {}): Tensor {
  return finish(wrap(native.randn(shapeArg(shape, "randn"), opts.dtype, opts.device)), opts);
}
/** Integers uniform on [low, high). */
export function randint(low: number, high: number, shape: readonly number[], opts: CreateOptions = {}): Tensor {
  check(
    isInt(low) && isInt(high) && high > low,
    "randint",
    "low and high must be integers with high > low",
    "[low, high]",
    [low, high],
  );
  return wrap(native.randint(low, high, shapeArg(shape, "randint"), opts.dtype ?? "int64", opts.device));
}
/** A random permutation of 0..n-1 (int64). */
export function randperm(n: number): Tensor {
  check(isInt(n) && n >= 0, "randperm", "n must be a non-negative integer", "n", n);
  return wrap(native.randperm(n));
}
export function zerosLike(t: Tensor, opts: CreateOptions = {}): Tensor {
  tensorArg(t, "zerosLike", "t");
  return zeros(t.shape, { dtype: t.dtype, device: t.device, ...opts });
}
export function onesLike(t: Tensor, opts: CreateOptions = {}): Tensor {
  tensorArg(t, "onesLike", "t");
  return ones(t.shape, { dtype: t.dtype, device: t.device, ...opts });
}
