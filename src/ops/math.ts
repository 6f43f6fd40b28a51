// Elementwise math with broadcasting and scalars, comparisons, where, clamp, matmul.
import { native } from "../tensor/binding";
import type { Tensor } from "../tensor/tensor";
import { check, handleOf, operand, optHandle, wrap } from "./util";

type Operand = Tensor | number | boolean;

type BinaryName =
  | "sub"
  | "mul"
  | "div"
  | "pow"
  | "remainder"
  | "maximum"
  | "minimum"
  | "eq"
  | "ne"
  | "lt"
  | "le"
  | "gt"
  | "ge"
  | "logicalAnd"
  | "logicalOr";
/** An elementwise op of two operands, broadcast; either may be a JS number. */
function binary(name: BinaryName) {
  return (a: Operand, b: Operand): Tensor => wrap(native[name](operand(a, name, "a"), operand(b, name, "b")));
}
type UnaryName =
  | "neg"
  | "abs"
  | "exp"
  | "log"
  | "sqrt"
  | "rsqrt"
  | "square"
  | "reciprocal"
  | "sign"
  | "floor"
  | "ceil"
  | "round"
  | "sin"
  | "cos"
  | "isnan"
  | "isfinite"
  | "logicalNot";
function unary(name: UnaryName) {
  return (x: Tensor): Tensor => wrap(native[name](handleOf(x, name, "x")));
}

export const sub = binary("sub");
export const mul = binary("mul");
export const div = binary("div");
export const pow = binary("pow");
export const remainder = binary("remainder");
export const maximum = binary("maximum");
export const minimum = binary("minimum");

/** a + alpha * b (alpha defaults to 1). */
export function add(a: Operand, b: Operand, alpha = 1): Tensor {
  if (alpha === 1) return wrap(native.add(operand(a, "add", "a"), operand(b, "add", "b")));
  return wrap(native.addAlpha(handleOf(a, "add", "a"), operand(b, "add", "b"), alpha));
}

export const eq = binary("eq");
export const ne = binary("ne");
export const lt = binary("lt");
export const le = binary("le");
export const gt = binary("gt");
export const ge = binary("ge");
export const logicalAnd = binary("logicalAnd");
export const logicalOr = binary("logicalOr");

export const neg = unary("neg");
export const abs = unary("abs");
export const exp = unary("exp");
export const log = unary("log");
export const sqrt = unary("sqrt");
export const rsqrt = unary("rsqrt");
export const square = unary("square");
export const reciprocal = unary("reciprocal");
export const sign = unary("sign");
export const floor = unary("floor");
export const ceil = unary("ceil");
export const round = unary("round");
export const sin = unary("sin");
export const cos = unary("cos");
export const isnan = unary("isnan");
export const isfinite = unary("isfinite");
export const logicalNot = unary("logicalNot");

/** Elements of a where cond is true, else of b. */
export function where(cond: Tensor, a: Operand, b: Operand): Tensor {
  return wrap(native.where(handleOf(cond, "where", "cond"), operand(a, "where", "a"), operand(b, "where", "b")));
}

export function clamp(x: Tensor, min?: number, max?: number): Tensor {
  check(min !== undefined || max !== undefined, "clamp", "give min, max or both", "[min, max]", [min, max]);
  check(min === undefined || typeof min === "number", "clamp", "min must be a number or undefined", "min", min);
  check(max === undefined || typeof max === "number", "clamp", "max must be a number or undefined", "max", max);
  check(min === undefined || max === undefined || min <= max, "clamp", "min must not exceed max", "[min, max]", [
    min,
    max,
  ]);
  return wrap(native.clamp(handleOf(x, "clamp", "x"), min, max));
}

export function matmul(a: Tensor, b: Tensor): Tensor {
  return wrap(native.matmul(handleOf(a, "matmul", "a"), handleOf(b, "matmul", "b")));
}

/** x @ w.T + b, with w of shape [out, in] (PyTorch's Linear layout). */
export function linear(x: Tensor, w: Tensor, b?: Tensor): Tensor {
  return wrap(
    native.linear(handleOf(x, "linear", "x"), handleOf(w, "linear", "weight"), optHandle(b, "linear", "bias")),
  );
}

/** max |a - b| over all elements, as a number (computed in float64). */
export function maxAbsDiff(a: Tensor, b: Tensor): number {
  return native.maxAbsDiff(handleOf(a, "maxAbsDiff", "a"), handleOf(b, "maxAbsDiff", "b"));
}
