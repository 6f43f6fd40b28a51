// The fused training-mode BatchNorm+ReLU kernel (native/fused_bn.cc) against libtorch's unfused
// ops (batch_norm, add, relu: PyTorch's own kernels): outputs, running statistics and every
// gradient, with and without a residual, on shapes whose channels and rows do not fill a vector
// or a block; the same bits on 1 and 2 threads; the inputs it declines; and the ResNet's training
// step, fused or not.
import assert from "node:assert/strict";
import { test } from "node:test";
import * as bn from "../../src";
import { BatchNorm2d, ReLU } from "../../src/nn/layers";
import { batchNormReluTrain, setFusedBatchNormRelu } from "../../src/ops/nn";
import { contiguous } from "../../src/ops/shape";
import { assertClose, checkNoLeaks } from "../helpers";

checkNoLeaks();

interface Case {
  x: bn.Tensor;
  residual?: bn.Tensor;
  w: bn.Tensor;
  b: bn.Tensor;
  g: bn.Tensor;
}

function makeCase(shape: [number, number, number, number], residual: boolean, seed: number): Case {
  return bn.scope(() => makeCaseIn(shape, residual, seed));
}

function makeCaseIn(shape: [number, number, number, number], residual: boolean, seed: number): Case {
  bn.manualSeed(seed);
  const cl = (t: bn.Tensor) => bn.keep(contiguous(t, "channelsLast"));
  const c = shape[1];
  // an offset and scale per channel, so the statistics are not those of a unit normal
  const x = cl(
    bn
      .randn(shape)
      .mul(3)
      .add(
        bn
          .arange(c)
          .mul(10 / c)
          .sub(5)
          .reshape([1, c, 1, 1]),
      ),
  );
  const out: Case = {
    x,
    w: bn.keep(bn.rand([c]).add(0.5)),
    b: bn.keep(bn.randn([c]).mul(0.3)),
    g: cl(bn.randn(shape)),
  };
  if (residual) out.residual = cl(bn.randn(shape));
  for (const t of [out.x, out.w, out.b, out.residual]) if (t !== undefined) t.requiresGrad = true;
  return out;
}

function dispose(k: Case): void {
  for (const t of [k.x, k.w, k.b, k.g, k.residual]) {
    t?.zeroGrad();
    t?.dispose();
  }
}

interface Result {
  y: number[];
  mean: number[];
  var: number[];
  grads: number[][];
}

function run(k: Case, fused: boolean): Result {
  const c = k.x.shape[1] as number;
  const rm = bn.zeros([c]);
  const rv = bn.ones([c]);
  for (const t of [k.x, k.w, k.b, k.residual]) t?.zeroGrad();
  const y = bn.scope(() => {
    const opts = { weight: k.w, bias: k.b, runningMean: rm, runningVar: rv, momentum: 0.2, eps: 1e-5 };
    let out: bn.Tensor | undefined;
    if (fused) {
      out = batchNormReluTrain(k.x, { ...opts, residual: k.residual });
      assert.ok(out !== undefined, "the fused kernel declined a float32 channels-last input");
    } else {
      out = bn.batchNorm(k.x, { ...opts, training: true });
      if (k.residual !== undefined) out = out.add(k.residual);
      out = bn.relu(out);
    }
    out.backward(k.g);
    return out.toArray();
  });
  const r: Result = { y, mean: rm.toArray(), var: rv.toArray(), grads: [] };
  bn.scope(() => {
    for (const t of [k.x, k.w, k.b, k.residual]) if (t !== undefined) r.grads.push((t.grad as bn.Tensor).toArray());
  });
  rm.dispose();
  rv.dispose();
  return r;
}

for (const residual of [false, true])
  for (const shape of [
    [6, 5, 7, 9], // 5 channels: no full vector; 378 rows: one full block of 256 and a part
    [32, 16, 12, 12], // 4608 rows, 16 channels: one AVX-512 vector a row
    [4, 67, 3, 5],
  ] as [number, number, number, number][])
    test(`fused BatchNorm+ReLU${residual ? " with a residual" : ""} equals libtorch's ops on [${shape}]`, () => {
      const k = makeCase(shape, residual, 3);
      try {
        const fused = run(k, true);
        const plain = run(k, false);
        assertClose(fused.y, plain.y, 2e-5, 1e-5);
        assertClose(fused.mean, plain.mean, 1e-6, 1e-5);
        assertClose(fused.var, plain.var, 1e-5, 1e-5);
        assert.equal(fused.grads.length, residual ? 4 : 3);
        const names = ["x", "weight", "bias", "residual"];
        fused.grads.forEach((g, i) => {
          // weight and bias gradients sum over every row: their scale grows with the row count
          const atol = i === 1 || i === 2 ? 1e-3 : 2e-5;
          try {
            assertClose(g, plain.grads[i] as number[], atol, 1e-4);
          } catch (e) {
            assert.fail(`gradient of ${names[i]}: ${(e as Error).message}`);
          }
        });
        // the ReLU masked something and passed something
        assert.ok(fused.y.some((v) => v === 0) && fused.y.some((v) => v > 0));
      } finally {
        dispose(k);
      }
    });

test("fused BatchNorm+ReLU gives the same bits on 1 and 2 threads", () => {
  const k = makeCase([8, 24, 10, 10], true, 7);
  const threads = bn.getNumThreads();
  try {
    bn.setNumThreads(1);
    const one = run(k, true);
    bn.setNumThreads(2);
    const two = run(k, true);
    assert.deepEqual(two, one);
  } finally {
    bn.setNumThreads(threads);
    dispose(k);
  }
});

test("the fused kernel declines what it does not handle, and the caller's plain ops run", () => {
  bn.scope(() => {
    const w = bn.ones([4]);
    const b = bn.zeros([4]);
    const nchw = bn.randn([2, 4, 3, 3]);
    assert.equal(batchNormReluTrain(nchw, { weight: w, bias: b }), undefined, "NCHW");
    const cl = contiguous(nchw, "channelsLast");
    assert.equal(batchNormReluTrain(cl.to("float64"), { weight: w, bias: b }), undefined, "float64");
    assert.equal(batchNormReluTrain(cl, { weight: undefined, bias: b }), undefined, "no weight");
    assert.equal(batchNormReluTrain(cl, { weight: w, bias: b, residual: nchw }), undefined, "NCHW residual");
    assert.equal(batchNormReluTrain(cl, { weight: w, bias: b, residual: bn.randn([2, 4, 3, 1]) }), undefined);
    // one value per channel: libtorch's own error, from the plain op
    assert.equal(
      batchNormReluTrain(contiguous(bn.randn([1, 4, 1, 1]), "channelsLast"), { weight: w, bias: b }),
      undefined,
    );
    // bad options are errors, as batchNorm's, not a silent fallback
    assert.throws(
      () => batchNormReluTrain(cl, { weight: w, bias: b, momentum: Number.NaN }),
      /batchNormReluTrain.*momentum must be in \[0, 1\]/,
    );
    assert.throws(
      () => batchNormReluTrain(cl, { weight: w, bias: b, eps: 0 }),
      /batchNormReluTrain.*eps must be positive/,
    );
    assert.throws(() => batchNormReluTrain(bn.randn([4]), { weight: w, bias: b }), /channel dimension/);
    const was = setFusedBatchNormRelu(false);
    try {
      assert.equal(batchNormReluTrain(cl, { weight: w, bias: b }), undefined, "turned off");
    } finally {
      setFusedBatchNormRelu(was);
    }
    assert.notEqual(batchNormReluTrain(cl, { weight: w, bias: b }), undefined);
  });
});

test("BatchNorm2d.forwardRelu: fused in training, plain with a hook, the same numbers and running stats", () => {
  const mods = [0, 1].map(() => new BatchNorm2d({ numFeatures: 8 }));
  const relu = new ReLU({ inplace: true });
  bn.scope(() => {
    const x = contiguous(bn.randn([4, 8, 5, 5]).mul(2).add(1), "channelsLast");
    const r = contiguous(bn.randn([4, 8, 5, 5]), "channelsLast");
    const seen: number[] = [];
    const remove = (mods[1] as BatchNorm2d).registerForwardHook(() => seen.push(1));
    const fused = (mods[0] as BatchNorm2d).forwardRelu(x, r, relu);
    const plain = (mods[1] as BatchNorm2d).forwardRelu(x, r, relu);
    remove();
    assert.equal(seen.length, 1, "the hooked module ran its own forward");
    assertClose(fused.toArray(), plain.toArray(), 2e-5, 1e-5);
    for (const name of ["running_mean", "running_var", "num_batches_tracked"]) {
      const a = (mods[0] as BatchNorm2d).stateDict().get(name) as bn.Tensor;
      const b = (mods[1] as BatchNorm2d).stateDict().get(name) as bn.Tensor;
      assertClose(a.toArray(), b.toArray(), 1e-6, 1e-5);
    }
    assert.equal(((mods[0] as BatchNorm2d).numBatchesTracked as bn.Tensor).item(), 1);
  });
  for (const m of mods) m.dispose();
});

test("ResNet-20 channels-last training steps: fused and unfused agree on losses and gradients", () => {
  const steps = (fused: boolean): { losses: number[]; grads: number[] } => {
    const was = setFusedBatchNormRelu(fused);
    bn.manualSeed(0);
    const model = bn.createModel("resnet20", { inChannels: 1, numClasses: 10 });
    bn.toChannelsLast(model);
    model.train();
    const opt = new bn.SGD(model.parameters(), { lr: 0.05, momentum: 0.9 });
    const losses: number[] = [];
    let grads: number[] = [];
    try {
      bn.manualSeed(1);
      const [x, y] = bn.scope(() => [
        bn.keep(bn.toChannelsLastInput(bn.randn([16, 1, 12, 12]))),
        bn.keep(bn.randint(0, 10, [16])),
      ]);
      for (let i = 0; i < 3; i++)
        bn.scope(() => {
          const loss = bn.crossEntropy(model.forward(x), y);
          losses.push(loss.item());
          opt.zeroGrad();
          loss.backward();
          opt.step();
        });
      // the stem conv's weight gradient has passed through every BN+ReLU of the net
      grads = bn.scope(() => (model.parameters()[0]?.grad as bn.Tensor).toArray());
      x.dispose();
      y.dispose();
    } finally {
      setFusedBatchNormRelu(was);
      opt.dispose?.();
      model.dispose();
    }
    return { losses, grads };
  };
  const fused = steps(true);
  const plain = steps(false);
  assertClose(fused.losses, plain.losses, 1e-4, 1e-4);
  assertClose(fused.grads, plain.grads, 1e-4, 2e-3);
});
