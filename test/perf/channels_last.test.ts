import assert from "node:assert/strict";
import { test } from "node:test";
import {
  createModel,
  crossEntropy,
  getNumThreads,
  isContiguous,
  manualSeed,
  maxAbsDiff,
  native,
  randint,
  randn,
  SGD,
  scope,
  setNumThreads,
  zeros,
} from "../../src";
import { conv2d } from "../../src/ops/nn";
import { toChannelsLast, toChannelsLastInput, toContiguousFormat } from "../../src/perf/channels_last";
import { checkNoLeaks } from "../helpers";

checkNoLeaks();

for (const name of ["resnet20", "mobilenetv2"])
  test(`${name}: channels-last output and gradients equal the contiguous model's`, (t) => {
    // One thread: with two, the kernels' reductions split differently between the layouts and
    // mobilenetv2's depthwise weight gradients differed by up to 1.1% (seen with BUDGETNET_THREADS=2).
    const threads = getNumThreads();
    setNumThreads(1);
    t.after(() => setNumThreads(threads));
    manualSeed(9);
    const a = createModel(name);
    const b = createModel(name);
    b.loadStateDict(a.stateDict());
    const weightB = b.parameters()[0];
    const n = toChannelsLast(b);
    assert.ok(n > 0);
    assert.equal(b.parameters()[0], weightB, "the same Tensor objects stay registered");
    for (const p of b.parameters()) {
      if (p.rank === 4) assert.ok(isContiguous(p, "channelsLast"));
      assert.equal(p.requiresGrad, true);
    }
    scope(() => {
      const x = randn([2, 3, 32, 32]);
      const y = randint(0, 10, [2], { dtype: "int64" });
      // The same seed before each forward: mobilenetv2's classifier dropout draws the same mask.
      manualSeed(10);
      const la = crossEntropy(a.forward(x), y);
      manualSeed(10);
      const lb = crossEntropy(b.forward(toChannelsLastInput(x)), y);
      assert.ok(Math.abs((la.item() as number) - (lb.item() as number)) < 1e-4);
      // Gradients in eval mode: through train-mode BN, libtorch's NHWC and NCHW kernels sum in
      // different orders and PyTorch 1.13 itself shows 0.2-2% differences on mobilenetv2's stem.
      a.eval();
      b.eval();
      crossEntropy(a.forward(x), y).backward();
      crossEntropy(b.forward(toChannelsLastInput(x)), y).backward();
      const pa = a.parameters();
      const pb = b.parameters();
      for (let i = 0; i < pa.length; i++) {
        const ga = pa[i]?.grad;
        const gb = pb[i]?.grad;
        if (ga === undefined || gb === undefined) assert.fail("missing grad");
        const rel = maxAbsDiff(ga, gb) / Math.max(1e-3, ga.abs().max().item() as number);
        assert.ok(rel < 1e-3, `grad ${i}: relative difference ${rel}`);
      }
    });
    // An optimizer made before the conversion still updates the converted tensors.
    const opt = new SGD(b.parameters(), { lr: 0.1 });
    toContiguousFormat(b);
    for (const p of b.parameters()) if (p.rank === 4) assert.ok(isContiguous(p));
    opt.step();
    a.zeroGrad();
    b.zeroGrad();
    a.dispose();
    b.dispose();
  });

test("setData rejects a different shape or dtype", () => {
  scope(() => {
    const t = zeros([2, 3]);
    assert.throws(() => native.setData(t.live(), zeros([3, 2]).live()), /same shape/);
    assert.throws(() => native.setData(t.live(), zeros([2, 3], { dtype: "float64" }).live()), /same dtype/);
  });
  assert.throws(() => toChannelsLast(42 as never), /model must be a Module/);
});

test("a 1-channel stem goes channels-last for real: its convolution writes channels-last, no reorder after it", () => {
  const m = createModel("resnet20", { inChannels: 1 });
  try {
    const stem = m.parameters()[0]!;
    assert.deepEqual(stem.shape, [16, 1, 3, 3]);
    // [16, 1, 3, 3] NCHW is contiguous in both formats, but libtorch's convolution reads its
    // strides as NCHW and writes NCHW: it is not channels-last until it is converted
    assert.equal(isContiguous(stem, "channelsLast"), false);
    assert.equal(toChannelsLast(m), 21, "all 21 convolution weights, the stem's too");
    assert.equal(isContiguous(stem, "channelsLast"), true);
    scope(() => {
      const x = randn([2, 1, 28, 28]);
      assert.equal(isContiguous(x, "channelsLast"), false);
      const xl = toChannelsLastInput(x);
      assert.equal(isContiguous(xl, "channelsLast"), true);
      assert.equal(maxAbsDiff(xl, x), 0);
      const y = conv2d(xl, stem, undefined, { padding: 1 });
      assert.equal(isContiguous(y, "channelsLast"), true, "the stem's output is channels-last");
    });
  } finally {
    m.dispose();
  }
});
