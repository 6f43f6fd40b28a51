// The functional nn ops against PyTorch, forward and backward: convolutions, batch norm in
// training and eval (running statistics included), pools, softmax, dropout, losses.
import assert from "node:assert/strict";
import { test } from "node:test";
import * as bn from "../../src";
import { checkNoLeaks } from "../helpers";
import { rnd, type TorchCase, torchCaseTests } from "../peers/torch-cases";

checkNoLeaks();

const g = { grad: true };
const x = rnd([2, 3, 8, 8], 51, g);
const atol = 1e-5;

const cases: TorchCase[] = [
  {
    name: "conv2d x=[2,3,8,8] k=3 s=1 p=1 with bias matches PyTorch",
    inputs: { x, w: rnd([4, 3, 3, 3], 52, g), b: rnd([4], 53, g) },
    torch: "F.conv2d(x, w, b, padding=1)",
    ours: (t) => bn.conv2d(t.x, t.w, t.b, { padding: 1 }),
  },
  {
    name: "conv2d x=[2,3,8,8] k=3 s=2 g=3 matches PyTorch",
    inputs: { x, w: rnd([6, 1, 3, 3], 54, g) },
    torch: "F.conv2d(x, w, stride=2, groups=3)",
    ours: (t) => bn.conv2d(t.x, t.w, undefined, { stride: 2, groups: 3 }),
  },
  {
    name: "conv2d depthwise k=5 p=2 dilation=2 stride [1,2] matches PyTorch",
    inputs: { x, w: rnd([3, 1, 5, 5], 55, g) },
    torch: "F.conv2d(x, w, padding=(4, 2), dilation=(2, 1), stride=(1, 2), groups=3)",
    ours: (t) => bn.conv2d(t.x, t.w, undefined, { padding: [4, 2], dilation: [2, 1], stride: [1, 2], groups: 3 }),
  },
  {
    name: "conv2d 1x1 in float64 is exact to 1e-12",
    inputs: {
      x: rnd([2, 3, 4, 4], 56, { dtype: "float64", grad: true }),
      w: rnd([5, 3, 1, 1], 57, { dtype: "float64", grad: true }),
    },
    torch: "F.conv2d(x, w)",
    ours: (t) => bn.conv2d(t.x, t.w),
    atol: 1e-12,
  },
  {
    name: "convTranspose2d x=[2,3,8,8] k=3 s=2 p=1 op=1 doubles the size like PyTorch",
    inputs: { x, w: rnd([3, 2, 3, 3], 58, g), b: rnd([2], 59, g) },
    torch: "F.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1)",
    ours: (t) => bn.convTranspose2d(t.x, t.w, t.b, { stride: 2, padding: 1, outputPadding: 1 }),
  },
  {
    name: "convTranspose2d grouped g=3 with dilation 2",
    inputs: { x, w: rnd([3, 2, 3, 3], 60, g) },
    torch: "F.conv_transpose2d(x, w, groups=3, dilation=2)",
    ours: (t) => bn.convTranspose2d(t.x, t.w, undefined, { groups: 3, dilation: 2 }),
  },
  {
    name: "batchNorm training normalizes with batch stats and updates running stats (momentum 0.2)",
    inputs: {
      x,
      w: rnd([3], 61, { ...g, lo: 0.5, hi: 1.5 }),
      b: rnd([3], 62, g),
      rm: rnd([3], 63),
      rv: rnd([3], 64, { lo: 0.5, hi: 2 }),
    },
    torch:
      "rm2, rv2 = rm.clone(), rv.clone()\nout = (F.batch_norm(x, rm2, rv2, w, b, training=True, momentum=0.2, eps=1e-3), rm2, rv2)",
    ours: (t) => {
      const rm = bn.clone(t.rm);
      const rv = bn.clone(t.rv);
      const y = bn.batchNorm(t.x, {
        weight: t.w,
        bias: t.b,
        runningMean: rm,
        runningVar: rv,
        training: true,
        momentum: 0.2,
        eps: 1e-3,
      });
      return [y, rm, rv];
    },
    atol: 2e-5,
  },
  {
    name: "batchNorm eval uses the running stats and leaves them unchanged",
    inputs: { x, w: rnd([3], 65, g), b: rnd([3], 66, g), rm: rnd([3], 67), rv: rnd([3], 68, { lo: 0.5, hi: 2 }) },
    torch: "rm2, rv2 = rm.clone(), rv.clone()\nout = (F.batch_norm(x, rm2, rv2, w, b, training=False), rm2, rv2)",
    ours: (t) => {
      const rm = bn.clone(t.rm);
      const rv = bn.clone(t.rv);
      return [bn.batchNorm(t.x, { weight: t.w, bias: t.b, runningMean: rm, runningVar: rv, training: false }), rm, rv];
    },
  },
  {
    name: "batchNorm without affine or running stats (training)",
    inputs: { x },
    torch: "F.batch_norm(x, None, None, training=True)",
    ours: (t) => bn.batchNorm(t.x, { training: true }),
    atol: 2e-5,
  },
  {
    name: "layerNorm over the last two dims with weight and bias",
    inputs: { x, w: rnd([8, 8], 69, g), b: rnd([8, 8], 70, g) },
    torch: "F.layer_norm(x, (8, 8), w, b)",
    ours: (t) => bn.layerNorm(t.x, [8, 8], t.w, t.b),
    atol: 2e-5,
  },
  {
    name: "maxPool2d k=3 s=2 p=1 and ceil mode",
    inputs: { x },
    torch: "(F.max_pool2d(x, 3, 2, 1), F.max_pool2d(x, 3, 2, ceil_mode=True), F.max_pool2d(x, 2, dilation=2))",
    ours: (t) => [
      bn.maxPool2d(t.x, 3, { stride: 2, padding: 1 }),
      bn.maxPool2d(t.x, 3, { stride: 2, ceilMode: true }),
      bn.maxPool2d(t.x, 2, { dilation: 2 }),
    ],
  },
  {
    name: "avgPool2d with and without counting the padding",
    inputs: { x },
    torch:
      "(F.avg_pool2d(x, 3, 2, 1), F.avg_pool2d(x, 3, 2, 1, count_include_pad=False), F.avg_pool2d(x, 3, 2, ceil_mode=True))",
    ours: (t) => [
      bn.avgPool2d(t.x, 3, { stride: 2, padding: 1 }),
      bn.avgPool2d(t.x, 3, { stride: 2, padding: 1, countIncludePad: false }),
      bn.avgPool2d(t.x, 3, { stride: 2, ceilMode: true }),
    ],
  },
  {
    name: "adaptive average and max pools to 1x1 and to 3x3 (uneven bins)",
    inputs: { x },
    torch: "(F.adaptive_avg_pool2d(x, 1), F.adaptive_avg_pool2d(x, 3), F.adaptive_max_pool2d(x, (3, 2)))",
    ours: (t) => [bn.adaptiveAvgPool2d(t.x, 1), bn.adaptiveAvgPool2d(t.x, 3), bn.adaptiveMaxPool2d(t.x, [3, 2])],
  },
  {
    name: "softmax and logSoftmax over dim 1 and the last dim",
    inputs: { x },
    torch: "(F.softmax(x, 1), F.log_softmax(x, -1))",
    ours: (t) => [bn.softmax(t.x, 1), t.x.logSoftmax()],
  },
  {
    name: "dropout and dropout2d in eval mode are the identity",
    inputs: { x },
    torch: "(F.dropout(x, 0.5, False), F.dropout2d(x, 0.5, False))",
    ours: (t) => [bn.dropout(t.x, 0.5, false), bn.dropout2d(t.x, 0.5, false)],
  },
  {
    name: "mseLoss with mean, sum and none",
    inputs: { a: rnd([4, 5], 71, g), b: rnd([4, 5], 72, g) },
    torch: "(F.mse_loss(a, b), F.mse_loss(a, b, reduction='sum'), F.mse_loss(a, b, reduction='none'))",
    ours: (t) => [bn.mseLoss(t.a, t.b), bn.mseLoss(t.a, t.b, "sum"), bn.mseLoss(t.a, t.b, "none")],
  },
];
for (const c of cases) c.atol ??= atol;

torchCaseTests(test, cases);

test("dropout in training zeroes about p of the elements and scales the rest by 1/(1-p)", () => {
  bn.scope(() => {
    bn.manualSeed(3);
    const y = bn.dropout(bn.ones([20000]), 0.3, true).toArray();
    const zeros = y.filter((v) => v === 0).length;
    assert.ok(Math.abs(zeros / y.length - 0.3) < 0.02, `dropped ${zeros / y.length}`);
    assert.ok(y.every((v) => v === 0 || Math.abs(v - 1 / 0.7) < 1e-6));
    return undefined;
  });
});

test("dropout2d in training zeroes whole channels", () => {
  bn.scope(() => {
    bn.manualSeed(4);
    const y = bn.dropout2d(bn.ones([8, 16, 3, 3]), 0.5, true).toArray();
    let dropped = 0;
    for (let c = 0; c < 8 * 16; c++) {
      const ch = y.slice(c * 9, c * 9 + 9);
      assert.ok(
        ch.every((v) => v === ch[0]),
        "a channel is dropped or kept whole",
      );
      if (ch[0] === 0) dropped++;
      else assert.ok(Math.abs((ch[0] as number) - 2) < 1e-6);
    }
    assert.ok(dropped > 30 && dropped < 98, `dropped ${dropped} of 128 channels`);
    return undefined;
  });
});

test("nn argument checks name the op and the argument", () => {
  bn.scope(() => {
    const xs = bn.zeros([1, 4, 6, 6]);
    assert.throws(() => bn.conv2d(xs, bn.zeros([2, 3, 3, 3])), /conv2d: input has 4 channels but the weight expects 3/);
    assert.throws(() => bn.conv2d(bn.zeros([4, 6, 6]), bn.zeros([2, 4, 3, 3])), /input must be 4-d/);
    assert.throws(
      () => bn.conv2d(xs, bn.zeros([2, 2, 3, 3]), undefined, { groups: 0 }),
      /groups must be a positive integer/,
    );
    assert.throws(
      () => bn.conv2d(xs, bn.zeros([2, 4, 3, 3]), undefined, { stride: 0 }),
      /stride must be an integer >= 1.*Received: stride=0/,
    );
    assert.throws(() => bn.maxPool2d(xs, 2, { padding: 2 }), /padding must be at most half the kernel size/);
    assert.throws(() => bn.batchNorm(xs, { training: false }), /eval mode needs runningMean and runningVar/);
    assert.throws(() => bn.batchNorm(xs, { training: true, momentum: 2 }), /momentum must be in \[0, 1\]/);
    assert.throws(() => bn.dropout(xs, 1, true), /p must be in \[0, 1\)/);
    assert.throws(() => bn.gelu(xs, "fast" as "tanh"), /approximate must be/);
    assert.throws(
      () => bn.batchNorm(xs, { training: false, runningMean: bn.zeros([3]), runningVar: bn.ones([3]) }),
      (e: unknown) => e instanceof bn.NativeOpError && e.op === "batchNorm" && e.shapes.length === 3,
    );
    return undefined;
  });
});
