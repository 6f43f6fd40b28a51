// Elementwise math, broadcasting, scalars, type promotion, comparisons, where and clamp:
// forward values and input gradients against PyTorch.
import { test } from "node:test";
import * as bn from "../../src";
import { checkNoLeaks } from "../helpers";
import { ints, rnd, type TorchCase, torchCaseTests, vals } from "../peers/torch-cases";

checkNoLeaks();

const x = rnd([2, 3, 4], 1, { grad: true });
const y = rnd([3, 1], 2, { grad: true });
const pos = rnd([2, 3, 4], 3, { lo: 0.1, hi: 2, grad: true });
const row = rnd([4], 4, { grad: true });

const cases: TorchCase[] = [
  {
    name: "add x=[2,3,4] + y=[3,1] broadcasts and sums y's gradient",
    inputs: { x, y },
    torch: "x + y",
    ours: (t) => bn.add(t.x, t.y),
  },
  {
    name: "add with alpha=-2.5 is x - 2.5y",
    inputs: { x, y },
    torch: "torch.add(x, y, alpha=-2.5)",
    ours: (t) => bn.add(t.x, t.y, -2.5),
  },
  {
    name: "sub and mul by a row [4] broadcast",
    inputs: { x, row },
    torch: "(x - row) * row",
    ours: (t) => t.x.sub(t.row).mul(t.row),
  },
  { name: "div by a positive tensor", inputs: { x, pos }, torch: "x / pos", ours: (t) => bn.div(t.x, t.pos) },
  {
    name: "scalar on the left: 3 - x and 2 / pos",
    inputs: { x, pos },
    torch: "(3 - x, 2 / pos)",
    ours: (t) => [bn.sub(3, t.x), bn.div(2, t.pos)],
  },
  {
    name: "pow with a scalar exponent 2.5 and a tensor exponent",
    inputs: { pos, x },
    torch: "(pos ** 2.5, pos ** x)",
    ours: (t) => [t.pos.pow(2.5), bn.pow(t.pos, t.x)],
  },
  {
    name: "unary family exp log sqrt rsqrt square reciprocal abs neg sin cos",
    inputs: { pos },
    torch:
      "(pos.exp(), pos.log(), pos.sqrt(), pos.rsqrt(), pos.square(), pos.reciprocal(), (pos - 1).abs(), -pos, pos.sin(), pos.cos())",
    ours: (t) => [
      bn.exp(t.pos),
      bn.log(t.pos),
      bn.sqrt(t.pos),
      bn.rsqrt(t.pos),
      bn.square(t.pos),
      bn.reciprocal(t.pos),
      bn.abs(t.pos.sub(1)),
      bn.neg(t.pos),
      bn.sin(t.pos),
      bn.cos(t.pos),
    ],
  },
  {
    name: "sign floor ceil round of values with .5 ties (round half to even)",
    inputs: { v: vals([-2.5, -1.5, -0.5, 0, 0.5, 1.5, 2.5, 2.7, -2.7], [9]) },
    torch: "(v.sign(), v.floor(), v.ceil(), v.round())",
    ours: (t) => [bn.sign(t.v), bn.floor(t.v), bn.ceil(t.v), bn.round(t.v)],
  },
  {
    name: "maximum and minimum split the gradient like PyTorch, ties included",
    inputs: { a: vals([1, 2, 3, 4], [4], "float32", true), b: vals([4, 2, 1, 4], [4], "float32", true) },
    torch: "(torch.maximum(a, b), torch.minimum(a, b))",
    ours: (t) => [bn.maximum(t.a, t.b), bn.minimum(t.a, t.b)],
  },
  {
    name: "remainder follows Python's sign convention",
    inputs: { v: vals([-7, -3.5, 5, 7.25], [4]) },
    torch: "torch.remainder(v, 3)",
    ours: (t) => bn.remainder(t.v, 3),
  },
  {
    name: "type promotion: int64 tensor + float scalar gives float32, int64 + int scalar stays int64",
    inputs: { i: ints([5], 10, 5) },
    torch: "(i + 0.5, i * 3, i / 2, i + True)",
    ours: (t) => [bn.add(t.i, 0.5), bn.mul(t.i, 3), bn.div(t.i, 2), bn.add(t.i, true)],
  },
  {
    name: "type promotion: float64 with float32 gives float64; int32 with int64 gives int64",
    inputs: {
      d: rnd([3], 6, { dtype: "float64" }),
      f: rnd([3], 7),
      i32: ints([3], 9, 8, "int32"),
      i64: ints([3], 9, 9),
    },
    torch: "(d + f, i32 + i64, i32 * 2, f + i64)",
    ours: (t) => [t.d.add(t.f), t.i32.add(t.i64), t.i32.mul(2), t.f.add(t.i64)],
  },
  {
    name: "bfloat16 and float16 arithmetic rounds like PyTorch",
    inputs: { a: rnd([8], 10, { dtype: "bfloat16" }), h: rnd([8], 11, { dtype: "float16" }) },
    torch: "(a * 3.3 + 1, h * 3.3 + 1, a + h)",
    ours: (t) => [t.a.mul(3.3).add(1), t.h.mul(3.3).add(1), t.a.add(t.h)],
  },
  {
    name: "comparisons eq ne lt le gt ge give bool",
    inputs: { a: vals([1, 2, 3, Number.NaN], [4]), b: vals([1, 3, 2, Number.NaN], [4]) },
    torch: "(a == b, a != b, a < b, a <= b, a > b, a >= b, a > 1.5)",
    ours: (t) => [
      bn.eq(t.a, t.b),
      bn.ne(t.a, t.b),
      bn.lt(t.a, t.b),
      bn.le(t.a, t.b),
      bn.gt(t.a, t.b),
      bn.ge(t.a, t.b),
      bn.gt(t.a, 1.5),
    ],
  },
  {
    name: "logical and, or, not and isnan, isfinite",
    inputs: { a: vals([0, 1, Number.NaN, Infinity, -Infinity, 2], [6]) },
    torch:
      "(torch.logical_and(a, a > 0.5), torch.logical_or(a == 0, a.isnan()), torch.logical_not(a), a.isnan(), a.isfinite())",
    ours: (t) => [
      bn.logicalAnd(t.a, t.a.gt(0.5)),
      bn.logicalOr(t.a.eq(0), bn.isnan(t.a)),
      bn.logicalNot(t.a),
      bn.isnan(t.a),
      bn.isfinite(t.a),
    ],
  },
  {
    name: "where(cond, x, y) broadcasts and routes the gradient",
    inputs: { x, y },
    torch: "torch.where(x > 0, x, y)",
    ours: (t) => bn.where(t.x.gt(0), t.x, t.y),
  },
  {
    name: "where with scalar branches",
    inputs: { x },
    torch: "torch.where(x > 0, x, 0.0)",
    ours: (t) => bn.where(t.x.gt(0), t.x, 0),
  },
  {
    name: "clamp with min, max and both passes gradient only inside the range",
    inputs: { x },
    torch: "(x.clamp(min=-0.3), x.clamp(max=0.2), x.clamp(-0.5, 0.5))",
    ours: (t) => [bn.clamp(t.x, -0.3), bn.clamp(t.x, undefined, 0.2), t.x.clamp(-0.5, 0.5)],
  },
  {
    name: "activations relu relu6 sigmoid tanh silu hardswish hardsigmoid mish softplus gelu elu leakyRelu",
    inputs: { v: rnd([40], 12, { lo: -8, hi: 8, grad: true }) },
    torch:
      "(F.relu(v), F.relu6(v), torch.sigmoid(v), torch.tanh(v), F.silu(v), F.hardswish(v), F.hardsigmoid(v), F.mish(v), F.softplus(v), F.gelu(v), F.gelu(v, approximate='tanh'), F.elu(v, 0.7), F.leaky_relu(v, 0.2))",
    ours: (t) => [
      bn.relu(t.v),
      bn.relu6(t.v),
      bn.sigmoid(t.v),
      bn.tanh(t.v),
      bn.silu(t.v),
      bn.hardswish(t.v),
      bn.hardsigmoid(t.v),
      bn.mish(t.v),
      bn.softplus(t.v),
      bn.gelu(t.v),
      bn.gelu(t.v, "tanh"),
      bn.elu(t.v, 0.7),
      bn.leakyRelu(t.v, 0.2),
    ],
  },
  {
    name: "NaN and infinity propagate through arithmetic as in PyTorch",
    inputs: { v: vals([Number.NaN, Infinity, -Infinity, 0, 1], [5]) },
    torch: "(v * 0, v / 0, v - v, F.relu(v), v.exp())",
    ours: (t) => [t.v.mul(0), t.v.div(0), t.v.sub(t.v), bn.relu(t.v), t.v.exp()],
  },
];

torchCaseTests(test, cases);
