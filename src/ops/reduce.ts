// Reductions. dims undefined reduces every dimension; keepdim keeps them as size 1.
import { native } from "../tensor/binding";
import type { Tensor } from "../tensor/tensor";
import { check, dimArg, handleOf, tensorArg, wrap } from "./util";

export interface ReduceOptions {
  keepdim?: boolean;
}

function dimsArg(x: Tensor, dims: number | number[] | undefined, fn: string): number[] | undefined {
  if (dims === undefined) return undefined;
  const list = typeof dims === "number" ? [dims] : dims;
  const rank = tensorArg(x, fn, "x").rank;
  return list.map((d) => dimArg(d, rank, fn));
}

export function sum(x: Tensor, dims?: number | number[], opts: ReduceOptions = {}): Tensor {
  return wrap(native.sum(handleOf(x, "sum", "x"), dimsArg(x, dims, "sum"), opts.keepdim));
}
export function mean(x: Tensor, dims?: number | number[], opts: ReduceOptions = {}): Tensor {
  return wrap(native.mean(handleOf(x, "mean", "x"), dimsArg(x, dims, "mean"), opts.keepdim));
}
/** Largest value over dims (all by default). */
export function max(x: Tensor, dims?: number | number[], opts: ReduceOptions = {}): Tensor {
  return wrap(native.amax(handleOf(x, "max", "x"), dimsArg(x, dims, "max"), opts.keepdim));
}
export function min(x: Tensor, dims?: number | number[], opts: ReduceOptions = {}): Tensor {
  return wrap(native.amin(handleOf(x, "min", "x"), dimsArg(x, dims, "min"), opts.keepdim));
}
/** Index of the largest value along dim (over the flattened tensor when dim is undefined). */
export function argmax(x: Tensor, dim?: number, opts: ReduceOptions = {}): Tensor {
  const d = dim === undefined ? undefined : dimArg(dim, tensorArg(x, "argmax", "x").rank, "argmax");
  return wrap(native.argmax(handleOf(x, "argmax", "x"), d, opts.keepdim));
}
export function argmin(x: Tensor, dim?: number, opts: ReduceOptions = {}): Tensor {
  const d = dim === undefined ? undefined : dimArg(dim, tensorArg(x, "argmin", "x").rank, "argmin");
  return wrap(native.argmin(handleOf(x, "argmin", "x"), d, opts.keepdim));
}

export interface VarOptions extends ReduceOptions {
  /** 1 (default) divides by n-1 (Bessel), 0 by n. */
  correction?: number;
}
export function variance(x: Tensor, dims?: number | number[], opts: VarOptions = {}): Tensor {
  const c = opts.correction ?? 1;
  check(c === 0 || c === 1, "var", "correction must be 0 or 1", "correction", c);
  return wrap(native.var(handleOf(x, "var", "x"), dimsArg(x, dims, "var"), c, opts.keepdim));
}
export function std(x: Tensor, dims?: number | number[], opts: VarOptions = {}): Tensor {
  const c = opts.correction ?? 1;
  check(c === 0 || c === 1, "std", "correction must be 0 or 1", "correction", c);
  return wrap(native.std(handleOf(x, "std", "x"), dimsArg(x, dims, "std"), c, opts.keepdim));
}
/** Vector p-norm over dims (p = 2 by default; Infinity for the max norm). */
export function norm(x: Tensor, p = 2, dims?: number | number[], opts: ReduceOptions = {}): Tensor {
  check(p > 0, "norm", "p must be positive", "p", p);
  return wrap(native.norm(handleOf(x, "norm", "x"), p, dimsArg(x, dims, "norm"), opts.keepdim));
}
export function logsumexp(x: Tensor, dims?: number | number[], opts: ReduceOptions = {}): Tensor {
  return wrap(native.logsumexp(handleOf(x, "logsumexp", "x"), dimsArg(x, dims, "logsumexp"), opts.keepdim));
}
/** The k largest values along dim, sorted, and their indices. */
export function topk(x: Tensor, k: number, dim = -1): { values: Tensor; indices: Tensor } {
  const d = dimArg(dim, tensorArg(x, "topk", "x").rank, "topk");
  const size = x.shape[d] ?? 1;
  check(Number.isInteger(k) && k >= 1 && k <= size, "topk", `k must be an integer in [1, ${size}]`, "k", k);
  const [v, i] = native.topk(handleOf(x, "topk", "x"), k, d);
  return { values: wrap(v), indices: wrap(i) };
}
