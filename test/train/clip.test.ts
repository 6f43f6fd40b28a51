import assert from "node:assert/strict";
import { test } from "node:test";
import { scope, type Tensor, tensor } from "../../src";
import { clipGradNorm, clipGradValue } from "../../src/train";
import { assertClose, checkNoLeaks, runPython } from "../helpers";

checkNoLeaks();

const SHAPES = [[4, 5], [5], [3, 2, 2], [2]];
const values = (n: number, seed: number) =>
  Array.from({ length: n }, (_, i) => Math.fround(Math.sin(i * 2.1 + seed) * (1 + ((i * 7) % 5))));
const GRADS = SHAPES.map((s, j) =>
  values(
    s.reduce((a, b) => a * b, 1),
    j + 1,
  ),
);
/** The last parameter has no gradient: it must be skipped. */
const HAS_GRAD = [true, true, true, false];

function makeParams(): Tensor[] {
  return scope(() =>
    SHAPES.map((s, j) => {
      const p = tensor(new Array(GRADS[j].length).fill(0), s).requireGrad();
      if (HAS_GRAD[j]) p.setGrad(tensor(GRADS[j], s));
      return p;
    }),
  );
}
function gradsOf(params: Tensor[]): (number[] | null)[] {
  return scope(() => params.map((p) => p.grad?.toArray() ?? null));
}

const PEER = `
import json, sys, torch
inp = json.load(sys.stdin)
out = []
for c in inp["cases"]:
    params = []
    for g, s, has in zip(inp["grads"], inp["shapes"], inp["hasGrad"]):
        p = torch.zeros(s, requires_grad=True)
        if has:
            p.grad = torch.tensor(g, dtype=torch.float32).reshape(s)
        params.append(p)
    if c["kind"] == "norm":
        norm_type = float("inf") if c["normType"] == "inf" else c["normType"]
        total = torch.nn.utils.clip_grad_norm_(params, c["max"], norm_type).item()
    else:
        torch.nn.utils.clip_grad_value_(params, c["max"])
        total = None
    out.append({"total": total, "grads": [None if p.grad is None else p.grad.flatten().tolist() for p in params]})
print(json.dumps(out))
`;

interface Case {
  kind: "norm" | "value";
  max: number;
  normType?: number | "inf";
}
const CASES: Case[] = [
  ...[2, 1, 3, "inf" as const].flatMap((normType) => [
    { kind: "norm" as const, max: 0.5, normType },
    { kind: "norm" as const, max: 1e4, normType },
  ]),
  { kind: "value", max: 1.5 },
  { kind: "value", max: 100 },
];

test("clipGradNorm and clipGradValue match torch.nn.utils (norm types 1, 2, 3, inf; clipping and not)", () => {
  const expected = runPython<{ total: number | null; grads: (number[] | null)[] }[]>(PEER, {
    cases: CASES,
    grads: GRADS,
    shapes: SHAPES,
    hasGrad: HAS_GRAD,
  });
  for (const [i, c] of CASES.entries()) {
    const params = makeParams();
    const what = `${c.kind} max=${c.max} normType=${c.normType}`;
    if (c.kind === "norm") {
      const total = clipGradNorm(params, c.max, c.normType === "inf" ? Number.POSITIVE_INFINITY : c.normType);
      const e = expected[i].total!;
      assert.ok(Math.abs(total - e) <= 1e-6 * e, `${what}: total norm ${total} vs ${e}`);
    } else {
      clipGradValue(params, c.max);
    }
    const got = gradsOf(params);
    for (const [j, g] of got.entries()) {
      const e = expected[i].grads[j];
      if (e === null) assert.equal(g, null, `${what}: parameter ${j} got a gradient`);
      else assertClose(g!, e, 1e-6, 1e-6);
    }
    for (const p of params) p.dispose();
  }
});

test("clipGradNorm scales to maxNorm and leaves small gradients untouched", () => {
  const params = makeParams();
  const before = gradsOf(params);
  const total = clipGradNorm(params, 1e6);
  assert.ok(total > 1);
  assert.deepEqual(gradsOf(params), before);
  const again = clipGradNorm(params, 1);
  assert.equal(again, total);
  // after clipping the norm is maxNorm·total/(total + 1e-6)
  const clipped = clipGradNorm(params, 1e6);
  assert.ok(Math.abs(clipped - total / (total + 1e-6)) < 1e-6, `norm after clipping: ${clipped}`);
  for (const p of params) p.dispose();
});

test("no gradients give a norm of 0; bad arguments are named", () => {
  const params = scope(() => [tensor([1, 2]).requireGrad()]);
  assert.equal(clipGradNorm(params, 1), 0);
  clipGradValue(params, 1);
  assert.throws(() => clipGradNorm(params, -1), /maxNorm must be a finite number >= 0. Received: maxNorm=-1/);
  assert.throws(() => clipGradNorm(params, 1, 0), /normType must be > 0.*Received: normType=0/);
  assert.throws(() => clipGradValue(params, Number.NaN), /Received: clipValue=NaN/);
  assert.throws(() => clipGradNorm([1] as unknown as Tensor[], 1), /params must contain only Tensors/);
  assert.throws(() => clipGradNorm(undefined as unknown as Tensor[], 1), /params must be an array of Tensors/);
  for (const p of params) p.dispose();
});
