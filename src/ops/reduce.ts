// Reductions. dims undefined reduces every dimension; keepdim keeps them as size 1.
import { native } from "../tensor/binding";
import { scope } from "../tensor/scope";
import type { Tensor } from "../tensor/tensor";
import { isfinite, logicalNot } from "./math";
import { check, dimArg, dimsArg, handleOf, optionsArg, tensorArg, wrap } from "./util";

export interface ReduceOptions {
  keepdim?: boolean;
}

/** Checks dims against x's rank, and opts, before anything reaches the native side. */
function reduceArgs<O extends object>(
  x: Tensor,
  dims: number | number[] | undefined,
  opts: O | undefined,
  fn: string,
): [number[] | undefined, O] {
  const rank = tensorArg(x, fn, "x").rank;
  return [dimsArg(dims, rank, fn), optionsArg(opts, fn)];
}

export function sum(x: Tensor, dims?: number | number[], opts?: ReduceOptions): Tensor {
  const [d, o] = reduceArgs(x, dims, opts, "sum");
  return wrap(native.sum(handleOf(x, "sum", "x"), d, o.keepdim));
}
export function mean(x: Tensor, dims?: number | number[], opts?: ReduceOptions): Tensor {
  const [d, o] = reduceArgs(x, dims, opts, "mean");
  return wrap(native.mean(handleOf(x, "mean", "x"), d, o.keepdim));
}
/** Largest value over dims (all by default). */
export function max(x: Tensor, dims?: number | number[], opts?: ReduceOptions): Tensor {
  const [d, o] = reduceArgs(x, dims, opts, "max");
  return wrap(native.amax(handleOf(x, "max", "x"), d, o.keepdim));
}
export function min(x: Tensor, dims?: number | number[], opts?: ReduceOptions): Tensor {
  const [d, o] = reduceArgs(x, dims, opts, "min");
  return wrap(native.amin(handleOf(x, "min", "x"), d, o.keepdim));
}
/** Index of the largest value along dim (over the flattened tensor when dim is undefined). */
export function argmax(x: Tensor, dim?: number, opts?: ReduceOptions): Tensor {
  const d = dim === undefined ? undefined : dimArg(dim, tensorArg(x, "argmax", "x").rank, "argmax");
  return wrap(native.argmax(handleOf(x, "argmax", "x"), d, optionsArg(opts, "argmax").keepdim));
}
export function argmin(x: Tensor, dim?: number, opts?: ReduceOptions): Tensor {
  const d = dim === undefined ? undefined : dimArg(dim, tensorArg(x, "argmin", "x").rank, "argmin");
  return wrap(native.argmin(handleOf(x, "argmin", "x"), d, optionsArg(opts, "argmin").keepdim));
}

export interface VarOptions extends ReduceOptions {
  /** 1 (default) divides by n-1 (Bessel), 0 by n. */
  correction?: number;
}
export function variance(x: Tensor, dims?: number | number[], opts?: VarOptions): Tensor {
  const [d, o] = reduceArgs(x, dims, opts, "var");
  const c = o.correction ?? 1;
  check(c === 0 || c === 1, "var", "correction must be 0 or 1", "correction", c);
  return wrap(native.var(handleOf(x, "var", "x"), d, c, o.keepdim));
}
export function std(x: Tensor, dims?: number | number[], opts?: VarOptions): Tensor {
  const [d, o] = reduceArgs(x, dims, opts, "std");
  const c = o.correction ?? 1;
  check(c === 0 || c === 1, "std", "correction must be 0 or 1", "correction", c);
  return wrap(native.std(handleOf(x, "std", "x"), d, c, o.keepdim));
}
/** Vector p-norm over dims (p = 2 by default; Infinity for the max norm). */
export function norm(x: Tensor, p = 2, dims?: number | number[], opts?: ReduceOptions): Tensor {
  check(typeof p === "number" && p > 0, "norm", "p must be a positive number (Infinity for the max norm)", "p", p);
  const [d, o] = reduceArgs(x, dims, opts, "norm");
  return wrap(native.norm(handleOf(x, "norm", "x"), p, d, o.keepdim));
}
export function logsumexp(x: Tensor, dims?: number | number[], opts?: ReduceOptions): Tensor {
  const [d, o] = reduceArgs(x, dims, opts, "logsumexp");
  return wrap(native.logsumexp(handleOf(x, "logsumexp", "x"), d, o.keepdim));
}
/** The k largest values along dim, sorted, and their indices. */
export function topk(x: Tensor, k: number, dim = -1): { values: Tensor; indices: Tensor } {
  const d = dimArg(dim, tensorArg(x, "topk", "x").rank, "topk");
  const size = x.shape[d] ?? 1;
  check(Number.isInteger(k) && k >= 1 && k <= size, "topk", `k must be an integer in [1, ${size}]`, "k", k);
  const [v, i] = native.topk(handleOf(x, "topk", "x"), k, d);
  return { values: wrap(v), indices: wrap(i) };
}

/**
 * How many elements of x are NaN or infinite. One sum says whether there can be any; only then
 * are they counted (a sum of large finite values can overflow too), so the common case costs one
 * reduction and one read back.
 */
export function countNonFinite(x: Tensor): number {
  if (tensorArg(x, "countNonFinite", "x").size === 0) return 0;
  return scope(() => {
    if (Number.isFinite(sum(x).item() as number)) return 0;
    return sum(logicalNot(isfinite(x))).item() as number;
  });
}
