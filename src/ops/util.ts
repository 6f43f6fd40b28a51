// Small helpers shared by the op wrappers: argument checks in the Keras error form.

import type { NativeHandle } from "../tensor/binding";
import { arrayArg, checkArg, functionArg, isPlainObject, optionsArg } from "../tensor/errors";
import { handleOf, Tensor } from "../tensor/tensor";

export { arrayArg, functionArg, handleOf, isPlainObject, optionsArg };

export function wrap(h: NativeHandle): Tensor {
  return new Tensor(h);
}

/** A tensor or a JS number/boolean as the native side takes it. */
export function operand(v: Tensor | number | boolean, fn: string, arg: string): NativeHandle | number | boolean {
  if (typeof v === "number" || typeof v === "boolean") return v;
  return handleOf(v, fn, arg);
}

/** t itself, after the checks handleOf makes (a Tensor, not disposed): for reading shape or rank first. */
export function tensorArg(t: unknown, fn: string, arg: string): Tensor {
  handleOf(t, fn, arg);
  return t as Tensor;
}

export function optHandle(t: Tensor | undefined | null, fn: string, arg: string): NativeHandle | undefined {
  return t === undefined || t === null ? undefined : handleOf(t, fn, arg);
}

export function check(cond: boolean, fn: string, what: string, name: string, received: unknown): void {
  checkArg(cond, fn, what, name, received);
}

export function isInt(v: unknown): v is number {
  return typeof v === "number" && Number.isInteger(v);
}

/** Expands a number or [h, w] pair, checking each is an integer >= min. */
export function pair(v: number | readonly number[], fn: string, name: string, min: number): [number, number] {
  const p: unknown[] = typeof v === "number" ? [v, v] : Array.isArray(v) ? v : [];
  check(
    p.length === 2 && p.every((x) => isInt(x) && x >= min),
    fn,
    `${name} must be an integer >= ${min} or a pair of them`,
    name,
    v,
  );
  return [p[0], p[1]] as [number, number];
}

export function shapeArg(shape: readonly number[], fn: string): number[] {
  check(
    Array.isArray(shape) && shape.every((d) => isInt(d) && d >= 0),
    fn,
    "shape must be an array of non-negative integers",
    "shape",
    shape,
  );
  return [...shape];
}

/** A shape that may hold one -1 (inferred from the element count), as reshape/view take it. */
export function shapeWithInfer(shape: readonly number[], fn: string): number[] {
  check(
    Array.isArray(shape) && shape.every((d) => isInt(d) && d >= -1) && shape.filter((d) => d === -1).length <= 1,
    fn,
    "shape must be an array of non-negative integers with at most one -1",
    "shape",
    shape,
  );
  return [...shape];
}

/** A dim or an array of dims, normalized against rank; undefined stays undefined (all dims). */
export function dimsArg(
  dims: number | readonly number[] | undefined,
  rank: number,
  fn: string,
  name = "dims",
): number[] | undefined {
  if (dims === undefined) return undefined;
  check(
    typeof dims === "number" || Array.isArray(dims),
    fn,
    `${name} must be a dim (integer) or an array of dims`,
    name,
    dims,
  );
  const list = typeof dims === "number" ? [dims] : [...dims];
  return list.map((d) => dimArg(d, rank, fn));
}

/** Normalizes a possibly negative dim against a rank. */
export function dimArg(dim: number, rank: number, fn: string, name = "dim"): number {
  const lo = rank === 0 ? -1 : -rank;
  const hi = rank === 0 ? 0 : rank - 1;
  check(
    isInt(dim) && dim >= lo && dim <= hi,
    fn,
    `${name} must be an integer in [${lo}, ${hi}] for a tensor of rank ${rank}`,
    name,
    dim,
  );
  return dim < 0 ? dim + Math.max(rank, 1) : dim;
}
