// crossEntropy and nllLoss against PyTorch: label smoothing, soft targets, ignoreIndex, class
// weights and every reduction, forward and backward.
import assert from "node:assert/strict";
import { test } from "node:test";
import * as bn from "../../src";
import { checkNoLeaks } from "../helpers";
import { ints, rnd, type TorchCase, torchCaseTests, vals } from "../peers/torch-cases";

checkNoLeaks();

const logits = rnd([6, 5], 81, { lo: -3, hi: 3, grad: true });
const labels = ints([6], 5, 82);
const withIgnored = vals([0, -100, 4, 2, -100, 1], [6], "int64");
const withCustomIgnore = vals([0, 3, 4, 3, 1, 1], [6], "int64");
const weight = rnd([5], 83, { lo: 0.2, hi: 2 });
// soft targets: rows of a softmax, as mixup or cutmix make them
const soft = rnd([6, 5], 84, { lo: 0, hi: 1 });
const softRows = "(soft / soft.sum(1, keepdim=True))";
const normalize = (s: bn.Tensor) => s.div(s.sum(1, { keepdim: true }));

const ce = (opts: bn.CrossEntropyOptions) => (t: Record<string, bn.Tensor>) =>
  bn.crossEntropy(t.logits as bn.Tensor, t.labels as bn.Tensor, { ...opts, weight: opts.weight && t.weight });

const cases: TorchCase[] = [
  {
    name: "crossEntropy mean, sum and none with class indices",
    inputs: { logits, labels },
    torch:
      "(F.cross_entropy(logits, labels), F.cross_entropy(logits, labels, reduction='sum'), F.cross_entropy(logits, labels, reduction='none'))",
    ours: (t) => [ce({})(t), ce({ reduction: "sum" })(t), ce({ reduction: "none" })(t)],
  },
  {
    name: "crossEntropy labelSmoothing=0.1 (mean and none)",
    inputs: { logits, labels },
    torch:
      "(F.cross_entropy(logits, labels, label_smoothing=0.1), F.cross_entropy(logits, labels, label_smoothing=0.1, reduction='none'))",
    ours: (t) => [ce({ labelSmoothing: 0.1 })(t), ce({ labelSmoothing: 0.1, reduction: "none" })(t)],
  },
  {
    name: "crossEntropy labelSmoothing=1 spreads all mass uniformly",
    inputs: { logits, labels },
    torch: "F.cross_entropy(logits, labels, label_smoothing=1.0)",
    ours: ce({ labelSmoothing: 1 }),
  },
  {
    name: "crossEntropy class weights divide the mean by the summed weights",
    inputs: { logits, labels, weight },
    torch:
      "(F.cross_entropy(logits, labels, weight=weight), F.cross_entropy(logits, labels, weight=weight, reduction='sum'))",
    ours: (t) => [ce({ weight: t.weight })(t), ce({ weight: t.weight, reduction: "sum" })(t)],
  },
  {
    name: "crossEntropy weights with labelSmoothing=0.2",
    inputs: { logits, labels, weight },
    torch:
      "(F.cross_entropy(logits, labels, weight=weight, label_smoothing=0.2), F.cross_entropy(logits, labels, weight=weight, label_smoothing=0.2, reduction='none'))",
    ours: (t) => [
      ce({ weight: t.weight, labelSmoothing: 0.2 })(t),
      ce({ weight: t.weight, labelSmoothing: 0.2, reduction: "none" })(t),
    ],
  },
  {
    name: "crossEntropy ignoreIndex=-100 drops those rows from the loss and the mean",
    inputs: { logits, labels: withIgnored },
    torch:
      "(F.cross_entropy(logits, labels), F.cross_entropy(logits, labels, reduction='none'), F.cross_entropy(logits, labels, label_smoothing=0.3))",
    ours: (t) => [ce({})(t), ce({ reduction: "none" })(t), ce({ labelSmoothing: 0.3 })(t)],
  },
  {
    name: "crossEntropy custom ignoreIndex=3 with weights and smoothing",
    inputs: { logits, labels: withCustomIgnore, weight },
    torch:
      "(F.cross_entropy(logits, labels, ignore_index=3, weight=weight), F.cross_entropy(logits, labels, ignore_index=3, weight=weight, label_smoothing=0.1))",
    ours: (t) => [
      ce({ ignoreIndex: 3, weight: t.weight })(t),
      ce({ ignoreIndex: 3, weight: t.weight, labelSmoothing: 0.1 })(t),
    ],
  },
  {
    name: "crossEntropy soft targets (class probabilities), every reduction",
    inputs: { logits, soft },
    torch: `(F.cross_entropy(logits, ${softRows}), F.cross_entropy(logits, ${softRows}, reduction='sum'), F.cross_entropy(logits, ${softRows}, reduction='none'))`,
    ours: (t) => {
      const p = normalize(t.soft as bn.Tensor);
      const l = t.logits as bn.Tensor;
      return [
        bn.crossEntropy(l, p),
        bn.crossEntropy(l, p, { reduction: "sum" }),
        bn.crossEntropy(l, p, { reduction: "none" }),
      ];
    },
  },
  {
    name: "crossEntropy soft targets with labelSmoothing=0.1 and class weights",
    inputs: { logits, soft, weight },
    torch: `(F.cross_entropy(logits, ${softRows}, label_smoothing=0.1), F.cross_entropy(logits, ${softRows}, weight=weight, label_smoothing=0.1))`,
    ours: (t) => {
      const p = normalize(t.soft as bn.Tensor);
      const l = t.logits as bn.Tensor;
      return [
        bn.crossEntropy(l, p, { labelSmoothing: 0.1 }),
        bn.crossEntropy(l, p, { weight: t.weight, labelSmoothing: 0.1 }),
      ];
    },
  },
  {
    name: "crossEntropy soft targets receive a gradient too",
    inputs: { logits, soft: { ...soft, grad: true } },
    torch: "F.cross_entropy(logits, soft)",
    ours: (t) => bn.crossEntropy(t.logits as bn.Tensor, t.soft as bn.Tensor),
  },
  {
    name: "crossEntropy over [N, C, H, W] logits and [N, H, W] labels (per-pixel)",
    inputs: { l4: rnd([2, 3, 2, 2], 85, { grad: true }), y3: ints([2, 2, 2], 3, 86) },
    torch: "F.cross_entropy(l4, y3, label_smoothing=0.05)",
    ours: (t) => bn.crossEntropy(t.l4 as bn.Tensor, t.y3 as bn.Tensor, { labelSmoothing: 0.05 }),
  },
  {
    name: "nllLoss on logSoftmax equals crossEntropy, with weights and ignoreIndex",
    inputs: { logits, labels: withIgnored, weight },
    torch:
      "(F.nll_loss(F.log_softmax(logits, 1), labels, weight=weight), F.nll_loss(F.log_softmax(logits, 1), labels, reduction='none'))",
    ours: (t) => {
      const lp = bn.logSoftmax(t.logits as bn.Tensor, 1);
      return [
        bn.nllLoss(lp, t.labels as bn.Tensor, { weight: t.weight }),
        bn.nllLoss(lp, t.labels as bn.Tensor, { reduction: "none" }),
      ];
    },
  },
];

torchCaseTests(test, cases);

test("crossEntropy explains wrong target kinds and ranges", () => {
  bn.scope(() => {
    const l = bn.zeros([4, 3]);
    assert.throws(
      () => bn.crossEntropy(l, bn.zeros([4])),
      /float targets are class probabilities and must match the logits' shape/,
    );
    assert.throws(() => bn.crossEntropy(l, bn.zeros([4, 3], { dtype: "int64" })), /one dimension less than the logits/);
    assert.throws(
      () => bn.crossEntropy(l, bn.zeros([4], { dtype: "int64" }), { labelSmoothing: 1.5 }),
      /labelSmoothing must be in \[0, 1\]/,
    );
    assert.throws(
      () => bn.crossEntropy(l, bn.full([4], 7, { dtype: "int64" })),
      (e: unknown) => e instanceof bn.NativeOpError && e.op === "crossEntropy" && /out of bounds/.test(e.message),
    );
    assert.throws(
      () => bn.crossEntropy(l, bn.zeros([4], { dtype: "int64" }), { reduction: "avg" as "mean" }),
      /reduction must be 'mean', 'sum' or 'none'/,
    );
    return undefined;
  });
});
