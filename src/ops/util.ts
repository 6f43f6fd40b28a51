// Small helpers shared by the op wrappers: argument checks in the Keras error form.

import type { NativeHandle } from "../tensor/binding";
import { ArgumentError, describe } from "../tensor/errors";
import { handleOf, Tensor } from "../tensor/tensor";

export { handleOf };

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
  if (!cond) throw new ArgumentError(`${fn}: ${what}. Received: ${name}=${describe(received)}`);
}

export function isInt(v: unknown): v is number {
  return typeof v === "number" && Number.isInteger(v);
}

/** Expands a number or [h, w] pair, checking each is an integer >= min. */
export function pair(v: number | readonly number[], fn: string, name: string, min: number): [number, number] {
  const p = typeof v === "number" ? [v, v] : [...v];
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
