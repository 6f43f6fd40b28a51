// Gradient checks for the composites we write ourselves: autograd gradients against central
// finite differences in float64. Modules are float32 (there is no Module.to(dtype) yet), so
// each module is checked in two links: its float32 output and gradients equal those of the
// same composite written with float64 ops, and those equal the finite differences.
import assert from "node:assert/strict";
import { test } from "node:test";
import * as bn from "../../src";
import { assertClose, checkNoLeaks } from "../helpers";

checkNoLeaks();

type Inputs = Record<string, { data: Float64Array; shape: number[] }>;
type Fn = (t: Record<string, bn.Tensor>) => bn.Tensor;

function seeded(n: number, seed: number, lo = -1, hi = 1): Float64Array {
  let s = seed;
  return Float64Array.from({ length: n }, () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return lo + ((hi - lo) * s) / 2147483648;
  });
}
const input = (shape: number[], seed: number, lo = -1, hi = 1) => ({
  shape,
  data: seeded(
    shape.reduce((a, b) => a * b, 1),
    seed,
    lo,
    hi,
  ),
});

/** The scalar that is differentiated: a fixed, uneven weighting of every output element. */
function weightedSum(y: bn.Tensor): bn.Tensor {
  const w = bn.tensor(
    Float64Array.from({ length: y.size }, (_, i) => Math.cos(0.7 * i + 0.3)),
    y.shape,
  );
  return y.to("float64").mul(w).sum();
}

function evaluate(inputs: Inputs, f: Fn, grad: boolean): { loss: number; grads: Record<string, number[]> } {
  return bn.scope(() => {
    const t: Record<string, bn.Tensor> = {};
    for (const [k, v] of Object.entries(inputs)) t[k] = bn.tensor(v.data, v.shape, { requiresGrad: grad });
    const loss = weightedSum(f(t));
    const grads: Record<string, number[]> = {};
    if (grad) {
      loss.backward();
      for (const k of Object.keys(inputs)) grads[k] = (t[k] as bn.Tensor).grad?.toArray() ?? [];
    }
    return { loss: loss.item(), grads };
  });
}

/** Autograd gradients of f at inputs vs central differences (step 1e-6, float64). */
function gradCheck(inputs: Inputs, f: Fn): Record<string, number[]> {
  const analytic = evaluate(inputs, f, true).grads;
  const eps = 1e-6;
  for (const [k, v] of Object.entries(inputs)) {
    const numeric: number[] = [];
    for (let i = 0; i < v.data.length; i++) {
      const keep = v.data[i] as number;
      v.data[i] = keep + eps;
      const up = evaluate(inputs, f, false).loss;
      v.data[i] = keep - eps;
      const down = evaluate(inputs, f, false).loss;
      v.data[i] = keep;
      numeric.push((up - down) / (2 * eps));
    }
    assertClose(analytic[k] as number[], numeric, 1e-6, 1e-4);
  }
  return analytic;
}

const T = (t: Record<string, bn.Tensor>, k: string) => t[k] as bn.Tensor;

function squeezeExcite(t: Record<string, bn.Tensor>): bn.Tensor {
  const s = bn.adaptiveAvgPool2d(T(t, "x"), 1);
  const h = bn.relu(bn.conv2d(s, T(t, "fc1.weight"), T(t, "fc1.bias")));
  const gate = bn.sigmoid(bn.conv2d(h, T(t, "fc2.weight"), T(t, "fc2.bias")));
  return T(t, "x").mul(gate);
}

function convBnRelu(t: Record<string, bn.Tensor>): bn.Tensor {
  const y = bn.conv2d(T(t, "x"), T(t, "0.weight"), T(t, "0.bias"), { padding: 1, stride: 1 });
  return bn.relu(bn.batchNorm(y, { weight: T(t, "1.weight"), bias: T(t, "1.bias"), training: true }));
}

/** The module's float32 output and parameter gradients equal the float64 composite's. */
function moduleMatches(model: bn.nn.Module, x: { data: Float64Array; shape: number[] }, composite: Fn): void {
  const inputs: Inputs = { x };
  for (const [k, p] of model.namedParameters()) inputs[k] = { data: Float64Array.from(p.toArray()), shape: p.shape };
  const want = gradCheck(inputs, composite);
  bn.scope(() => {
    const xt = bn.tensor(new Float32Array(x.data), x.shape, { requiresGrad: true });
    const loss = weightedSum(model.forward(xt));
    assert.ok(Math.abs(loss.item() - evaluate(inputs, composite, false).loss) < 1e-4, "forward differs");
    loss.backward();
    assertClose(xt.grad?.toArray() ?? [], want.x as number[], 1e-5, 1e-3);
    for (const [k, p] of model.namedParameters()) assertClose(p.grad?.toArray() ?? [], want[k] as number[], 1e-5, 1e-3);
    model.zeroGrad();
    return undefined;
  });
}

test("SqueezeExcite(channels=4, reduced=2) gradients match finite differences", () => {
  bn.manualSeed(11);
  const se = new bn.nn.SqueezeExcite({ channels: 4, reducedChannels: 2 });
  moduleMatches(se, input([2, 4, 3, 3], 5), squeezeExcite);
  se.dispose();
});

test("Conv2d(2->3, k=3, p=1) + BatchNorm2d + ReLU in training gradients match finite differences", () => {
  bn.manualSeed(12);
  const stack = new bn.nn.Sequential([
    new bn.nn.Conv2d({ inChannels: 2, outChannels: 3, kernelSize: 3, padding: 1 }),
    new bn.nn.BatchNorm2d({ numFeatures: 3 }),
    new bn.nn.ReLU(),
  ]);
  // non-trivial affine parameters so their gradients are tested away from 1 and 0
  bn.scope(() => {
    bn.copyInPlace(stack.at(1).stateDict().get("weight") as bn.Tensor, bn.tensor([0.5, 1.5, -0.8]));
    bn.copyInPlace(stack.at(1).stateDict().get("bias") as bn.Tensor, bn.tensor([0.1, -0.2, 0.3]));
  });
  moduleMatches(stack, input([2, 2, 4, 4], 6), convBnRelu);
  stack.dispose();
});

test("crossEntropy with labelSmoothing=0.1 and class indices: gradient matches finite differences", () => {
  const labels = new BigInt64Array([2n, 0n, 4n, 1n]);
  gradCheck({ logits: input([4, 5], 7, -3, 3) }, (t) =>
    bn.crossEntropy(T(t, "logits"), bn.tensor(labels, [4]), { labelSmoothing: 0.1, reduction: "none" }),
  );
});

test("crossEntropy with soft targets and labelSmoothing=0.2: gradients for logits and targets", () => {
  gradCheck({ logits: input([4, 5], 8, -3, 3), target: input([4, 5], 9, 0, 1) }, (t) =>
    bn.crossEntropy(T(t, "logits"), T(t, "target"), { labelSmoothing: 0.2 }),
  );
});

test("crossEntropy with class weights, ignoreIndex and smoothing: gradient matches finite differences", () => {
  const labels = new BigInt64Array([2n, -100n, 4n, 1n]);
  // libtorch (like PyTorch) does not differentiate with respect to the class weights
  const weight = input([5], 11, 0.3, 2);
  gradCheck({ logits: input([4, 5], 10, -3, 3) }, (t) =>
    bn.crossEntropy(T(t, "logits"), bn.tensor(labels, [4]), {
      labelSmoothing: 0.15,
      weight: bn.tensor(weight.data, weight.shape),
    }),
  );
});

test("the gradient check itself fails on a wrong gradient", () => {
  // x * stopgrad(x): autograd sees half the true derivative, the finite differences do not
  assert.throws(() => gradCheck({ x: input([3], 12) }, (t) => T(t, "x").mul(T(t, "x").detach())), /element 0/);
});
