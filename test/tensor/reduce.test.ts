// Reductions and matmul: values, keepdim shapes, index outputs and gradients against PyTorch.
import assert from "node:assert/strict";
import { test } from "node:test";
import * as bn from "../../src";
import { checkNoLeaks } from "../helpers";
import { rnd, type TorchCase, torchCaseTests, vals } from "../peers/torch-cases";

checkNoLeaks();

const x = rnd([2, 3, 5], 21, { grad: true });
const x64 = rnd([4, 6], 22, { dtype: "float64", grad: true });
const ties = vals([1, 3, 3, 2, 0, 0], [2, 3], "float32", true);

const cases: TorchCase[] = [
  {
    name: "sum over all, over dim 1, and over dims [0,2] with keepdim",
    inputs: { x },
    torch: "(x.sum(), x.sum(1), x.sum((0, 2), keepdim=True))",
    ours: (t) => [t.x.sum(), t.x.sum(1), t.x.sum([0, 2], { keepdim: true })],
  },
  {
    name: "mean over all and over a negative dim",
    inputs: { x },
    torch: "(x.mean(), x.mean(-1))",
    ours: (t) => [t.x.mean(), t.x.mean(-1)],
  },
  {
    name: "sum of int64 stays int64",
    inputs: { i: vals([1, 2, 3, 4], [2, 2], "int64") },
    torch: "(i.sum(), i.sum(0))",
    ours: (t) => [t.i.sum(), t.i.sum(0)],
  },
  {
    name: "max and min (amax/amin) spread the gradient evenly over ties",
    inputs: { ties },
    torch: "(torch.amax(ties), torch.amax(ties, 1), torch.amin(ties, 1, keepdim=True))",
    ours: (t) => [bn.max(t.ties), bn.max(t.ties, 1), bn.min(t.ties, 1, { keepdim: true })],
  },
  {
    name: "argmax and argmin give int64 indices, the first on ties",
    inputs: { ties },
    torch: "(ties.argmax(), ties.argmax(1), ties.argmin(1, keepdim=True))",
    ours: (t) => [bn.argmax(t.ties), bn.argmax(t.ties, 1), bn.argmin(t.ties, 1, { keepdim: true })],
  },
  {
    name: "variance and std with Bessel's correction and without",
    inputs: { x64 },
    torch: "(x64.var(), x64.var(1, unbiased=False), x64.std(0, keepdim=True), x64.std(unbiased=False))",
    ours: (t) => [
      bn.variance(t.x64),
      bn.variance(t.x64, 1, { correction: 0 }),
      bn.std(t.x64, 0, { keepdim: true }),
      bn.std(t.x64, undefined, { correction: 0 }),
    ],
  },
  {
    name: "norm p=2, p=1 and p=inf over dims",
    inputs: { x64 },
    torch: "(x64.norm(), x64.norm(1, dim=1), x64.norm(float('inf'), dim=0))",
    ours: (t) => [bn.norm(t.x64), bn.norm(t.x64, 1, 1), bn.norm(t.x64, Infinity, 0)],
  },
  {
    name: "logsumexp is stable for large logits",
    inputs: { v: vals([1000, 1001, 999, -5, 0, 5], [2, 3], "float32", true) },
    torch: "(torch.logsumexp(v, 1), torch.logsumexp(v, (0, 1)))",
    ours: (t) => [bn.logsumexp(t.v, 1), bn.logsumexp(t.v, [0, 1])],
  },
  {
    name: "topk k=2 along the last dim returns sorted values and their indices",
    inputs: { x },
    torch: "tuple(torch.topk(x, 2, -1))",
    ours: (t) => {
      const r = bn.topk(t.x, 2);
      return [r.values, r.indices];
    },
  },
  {
    name: "matmul [3,5]@[5,4]",
    inputs: { a: rnd([3, 5], 23, { grad: true }), b: rnd([5, 4], 24, { grad: true }) },
    torch: "a @ b",
    ours: (t) => bn.matmul(t.a, t.b),
  },
  {
    name: "matmul batched [2,3,5]@[5,4] broadcasts the matrix",
    inputs: { x, b: rnd([5, 4], 25, { grad: true }) },
    torch: "x @ b",
    ours: (t) => t.x.matmul(t.b),
  },
  {
    name: "matmul vector-vector and matrix-vector",
    inputs: { v: rnd([5], 26, { grad: true }), m: rnd([3, 5], 27, { grad: true }) },
    torch: "(v @ v, m @ v)",
    ours: (t) => [bn.matmul(t.v, t.v), bn.matmul(t.m, t.v)],
  },
  {
    name: "linear x=[4,5] w=[3,5] b=[3] is x @ w.T + b",
    inputs: { a: rnd([4, 5], 28, { grad: true }), w: rnd([3, 5], 29, { grad: true }), b: rnd([3], 30, { grad: true }) },
    torch: "(F.linear(a, w, b), F.linear(a, w))",
    ours: (t) => [bn.linear(t.a, t.w, t.b), bn.linear(t.a, t.w)],
  },
  {
    name: "matmul in float64",
    inputs: { x64, m: rnd([6, 2], 31, { dtype: "float64", grad: true }) },
    torch: "x64 @ m",
    ours: (t) => t.x64.matmul(t.m),
    atol: 1e-12,
    rtol: 1e-12,
  },
];

torchCaseTests(test, cases);

test("maxAbsDiff returns the largest absolute difference as a number", () => {
  bn.scope(() => {
    const a = bn.tensor([1, 2, 3]);
    const b = bn.tensor([1, 2.5, 1]);
    assert.equal(bn.maxAbsDiff(a, b), 2);
    return undefined;
  });
});

test("reductions reject dims outside the rank with the valid range", () => {
  bn.scope(() => {
    const a = bn.zeros([2, 3]);
    assert.throws(() => bn.sum(a, 2), /dim must be an integer in \[-2, 1\].*Received: dim=2/);
    assert.throws(() => bn.topk(a, 4), /k must be an integer in \[1, 3\]/);
    assert.throws(() => bn.variance(a, 0, { correction: 2 }), /correction must be 0 or 1/);
    assert.throws(
      () => bn.matmul(a, a),
      (e: unknown) => e instanceof bn.NativeOpError && e.op === "matmul",
    );
    return undefined;
  });
});
