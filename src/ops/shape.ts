// Views and layout: reshape, permute, slicing, joining, padding, dtype/device moves.
import { type DType, native } from "../tensor/binding";
import type { MemoryFormat, Tensor } from "../tensor/tensor";
import { check, dimArg, handleOf, isInt, isPlainObject, shapeWithInfer, tensorArg, wrap } from "./util";

export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  return wrap(native.reshape(handleOf(x, "reshape", "x"), shapeWithInfer(shape, "reshape")));
}
/** Like reshape, but never copies: fails when the memory layout does not allow a view. */
export function view(x: Tensor, shape: readonly number[]): Tensor {
  return wrap(native.view(handleOf(x, "view", "x"), shapeWithInfer(shape, "view")));
}
export function permute(x: Tensor, dims: readonly number[]): Tensor {
  const rank = tensorArg(x, "permute", "x").rank;
  check(
    Array.isArray(dims) && dims.length === rank,
    "permute",
    `dims must list each of the ${rank} dimensions once`,
    "dims",
    dims,
  );
  return wrap(
    native.permute(
      handleOf(x, "permute", "x"),
      dims.map((d) => dimArg(d, rank, "permute")),
    ),
  );
}
export function transpose(x: Tensor, d0: number, d1: number): Tensor {
  const r = tensorArg(x, "transpose", "x").rank;
  return wrap(
    native.transpose(handleOf(x, "transpose", "x"), dimArg(d0, r, "transpose", "d0"), dimArg(d1, r, "transpose", "d1")),
  );
}
/** A contiguous copy (or x itself re-wrapped) in the given memory format. */
export function contiguous(x: Tensor, format: MemoryFormat = "contiguous"): Tensor {
  check(
    format === "contiguous" || format === "channelsLast",
    "contiguous",
    "format must be 'contiguous' or 'channelsLast'",
    "format",
    format,
  );
  if (format === "channelsLast")
    check(tensorArg(x, "contiguous", "x").rank === 4, "contiguous", "channelsLast needs a 4-d tensor", "x", x);
  return wrap(
    native.contiguous(handleOf(x, "contiguous", "x"), format === "channelsLast" ? "channelsLast" : undefined),
  );
}
export function isContiguous(x: Tensor, format: MemoryFormat = "contiguous"): boolean {
  return native.isContiguous(handleOf(x, "isContiguous", "x"), format === "channelsLast" ? "channelsLast" : undefined);
}
/** Elements start..end (exclusive) by step along dim, as a view. Negative indices count from the end. */
export function slice(x: Tensor, dim: number, start = 0, end?: number, step = 1): Tensor {
  const d = dimArg(dim, tensorArg(x, "slice", "x").rank, "slice");
  const n = x.shape[d] as number;
  check(isInt(step) && step >= 1, "slice", "step must be a positive integer", "step", step);
  const s = start < 0 ? start + n : start;
  const e = end === undefined ? n : end < 0 ? end + n : end;
  return wrap(native.slice(handleOf(x, "slice", "x"), d, s, e, step));
}
export function narrow(x: Tensor, dim: number, start: number, length: number): Tensor {
  return wrap(native.narrow(handleOf(x, "narrow", "x"), dimArg(dim, x.rank, "narrow"), start, length));
}
/** The slice at index along dim, with that dim removed. */
export function select(x: Tensor, dim: number, index: number): Tensor {
  return wrap(native.select(handleOf(x, "select", "x"), dimArg(dim, x.rank, "select"), index));
}
export function indexSelect(x: Tensor, dim: number, index: Tensor): Tensor {
  return wrap(
    native.indexSelect(
      handleOf(x, "indexSelect", "x"),
      dimArg(dim, x.rank, "indexSelect"),
      handleOf(index, "indexSelect", "index"),
    ),
  );
}
export function gather(x: Tensor, dim: number, index: Tensor): Tensor {
  return wrap(
    native.gather(handleOf(x, "gather", "x"), dimArg(dim, x.rank, "gather"), handleOf(index, "gather", "index")),
  );
}
export function cat(xs: readonly Tensor[], dim = 0): Tensor {
  check(Array.isArray(xs) && xs.length > 0, "cat", "needs a non-empty array of tensors", "xs", xs);
  return wrap(
    native.cat(
      xs.map((t, i) => handleOf(t, "cat", `xs[${i}]`)),
      dim,
    ),
  );
}
export function stack(xs: readonly Tensor[], dim = 0): Tensor {
  check(Array.isArray(xs) && xs.length > 0, "stack", "needs a non-empty array of tensors", "xs", xs);
  return wrap(
    native.stack(
      xs.map((t, i) => handleOf(t, "stack", `xs[${i}]`)),
      dim,
    ),
  );
}
export function flip(x: Tensor, dims: number | readonly number[]): Tensor {
  check(
    typeof dims === "number" || Array.isArray(dims),
    "flip",
    "dims must be a dim or an array of dims",
    "dims",
    dims,
  );
  const list = typeof dims === "number" ? [dims] : [...dims];
  return wrap(
    native.flip(
      handleOf(x, "flip", "x"),
      list.map((d) => dimArg(d, x.rank, "flip")),
    ),
  );
}
export function squeeze(x: Tensor, dim?: number): Tensor {
  return wrap(
    native.squeeze(handleOf(x, "squeeze", "x"), dim === undefined ? undefined : dimArg(dim, x.rank, "squeeze")),
  );
}
export function unsqueeze(x: Tensor, dim: number): Tensor {
  return wrap(native.unsqueeze(handleOf(x, "unsqueeze", "x"), dimArg(dim, x.rank + 1, "unsqueeze")));
}
export function expand(x: Tensor, shape: readonly number[]): Tensor {
  check(
    Array.isArray(shape) && shape.every((d) => isInt(d) && d >= -1),
    "expand",
    "shape must be an array of non-negative integers (-1 keeps a dimension's size)",
    "shape",
    shape,
  );
  return wrap(native.expand(handleOf(x, "expand", "x"), [...shape]));
}
export function clone(x: Tensor): Tensor {
  return wrap(native.clone(handleOf(x, "clone", "x")));
}
export function flatten(x: Tensor, startDim = 0, endDim = -1): Tensor {
  const r = tensorArg(x, "flatten", "x").rank;
  return wrap(
    native.flatten(
      handleOf(x, "flatten", "x"),
      dimArg(startDim, r, "flatten", "startDim"),
      dimArg(endDim, r, "flatten", "endDim"),
    ),
  );
}

export type PadMode = "constant" | "reflect" | "replicate";
/**
 * Pads like torch.nn.functional.pad: pads lists (before, after) pairs starting from the last
 * dimension. reflect and replicate take 4 pads on a 3-d or 4-d tensor.
 */
export function pad(x: Tensor, pads: readonly number[], mode: PadMode = "constant", value = 0): Tensor {
  check(
    Array.isArray(pads) &&
      pads.length % 2 === 0 &&
      pads.length / 2 <= tensorArg(x, "pad", "x").rank &&
      pads.every(isInt),
    "pad",
    "pads must be integer (before, after) pairs, at most one pair per dimension",
    "pads",
    pads,
  );
  check(
    ["constant", "reflect", "replicate"].includes(mode),
    "pad",
    "mode must be 'constant', 'reflect' or 'replicate'",
    "mode",
    mode,
  );
  return wrap(native.pad(handleOf(x, "pad", "x"), [...pads], mode, value));
}

/** Converts dtype and/or device; returns a new handle even when nothing changes. */
export function to(x: Tensor, target: { dtype?: DType; device?: string } | DType): Tensor {
  check(
    typeof target === "string" || isPlainObject(target),
    "to",
    'target must be a dtype such as "float32" or an object {dtype?, device?}',
    "target",
    target,
  );
  const t = typeof target === "string" ? { dtype: target } : target;
  return wrap(native.to(handleOf(x, "to", "x"), t.dtype, t.device));
}

export function oneHot(labels: Tensor, numClasses: number): Tensor {
  check(
    isInt(numClasses) && numClasses >= 1,
    "oneHot",
    "numClasses must be a positive integer",
    "numClasses",
    numClasses,
  );
  return wrap(native.oneHot(handleOf(labels, "oneHot", "labels"), numClasses));
}
