import assert from "node:assert/strict";
import { test } from "node:test";
import {
  batchNorm,
  conv2d,
  createModel,
  liveTensors,
  manualSeed,
  maxAbsDiff,
  type nn,
  noGrad,
  rand,
  randn,
  scope,
  uniformInPlace,
} from "../../src";
import { Sequential } from "../../src/nn/containers";
import { foldConvBatchNorm } from "../../src/nn/fold";
import { BatchNorm2d, Conv2d, ReLU } from "../../src/nn/layers";
import { castModel } from "../../src/perf/cast";
import { foldBatchNorm } from "../../src/perf/fold";
import { inferenceMode, isInferenceMode } from "../../src/perf/inference";
import { profileNative, profileOperators } from "../../src/perf/trace";
import { checkNoLeaks } from "../helpers";

checkNoLeaks();

/** Running statistics and affine parameters away from their 0/1 defaults, so folding has work to do. */
function randomizeBatchNorms(model: nn.Module): void {
  noGrad(() => {
    for (const [, m] of model.namedModules())
      if (m instanceof BatchNorm2d) {
        uniformInPlace(m.runningMean as never, -0.5, 0.5);
        uniformInPlace(m.runningVar as never, 0.5, 2);
        if (m.weight) uniformInPlace(m.weight, 0.5, 1.5);
        if (m.bias) uniformInPlace(m.bias, -0.3, 0.3);
      }
  });
}

test("foldConvBatchNorm: conv' equals BN(conv) for a conv with bias and groups", () => {
  scope(() => {
    const x = randn([2, 4, 6, 6]);
    const w = randn([6, 2, 3, 3]);
    const b = randn([6]);
    const stats = {
      weight: rand([6]),
      bias: randn([6]),
      runningMean: randn([6]),
      runningVar: rand([6]).add(0.5),
      eps: 1e-5,
    };
    const ref = batchNorm(conv2d(x, w, b, { groups: 2, padding: 1 }), { ...stats, training: false });
    const f = foldConvBatchNorm(w, b, stats);
    const out = conv2d(x, f.weight, f.bias, { groups: 2, padding: 1 });
    assert.ok(maxAbsDiff(out, ref) < 1e-4, `max diff ${maxAbsDiff(out, ref)}`);
    assert.throws(
      () => foldConvBatchNorm(w, b, { ...stats, runningMean: randn([5]) }),
      /one statistic per conv output channel/,
    );
  });
});

for (const [name, pairsExpected] of [
  ["resnet20", 21],
  ["mobilenetv2", 52],
  ["resnet29", 19],
] as const)
  test(`foldBatchNorm ${name}: folded output equals unfolded within 1e-4, original untouched`, () => {
    manualSeed(5);
    const model = createModel(name);
    randomizeBatchNorms(model);
    const before = new Map([...model.stateDict()].map(([k, t]) => [k, t.toArray()]));
    const live = liveTensors();
    const folded = foldBatchNorm(model);
    assert.equal(folded.pairs.length, pairsExpected);
    assert.equal(model.training, true, "the original keeps its mode");
    scope(() => {
      const x = randn([3, 3, 32, 32]);
      const ref = noGrad(() => {
        model.eval();
        const y = model.forward(x);
        model.train();
        return y;
      });
      const out = inferenceMode(() => scope(() => folded.model.forward(x)));
      const rel = maxAbsDiff(out, ref) / Math.max(1, ref.abs().max().item() as number);
      assert.ok(rel < 1e-4, `relative difference ${rel}`);
    });
    for (const [k, t] of model.stateDict()) assert.deepEqual(t.toArray(), before.get(k), k);
    folded.model.dispose();
    assert.equal(liveTensors(), live);
    model.dispose();
  });

test("pre-activation: a BN whose input also feeds the shortcut is not folded", () => {
  manualSeed(6);
  const model = createModel("resnet29");
  const { pairs, model: folded } = foldBatchNorm(model);
  const bns = pairs.map(([, b]) => b);
  // layer2.0 has a projection shortcut that reads bn1's output, so bn1's own input (the add of
  // the previous block) is read by bn1 only; but no bn1 of a pre-activation unit follows a conv.
  assert.ok(!bns.includes("layer2.1.bn1"));
  assert.ok(bns.includes("layer2.1.bn2") && bns.includes("layer2.1.bn3"));
  folded.dispose();
  model.dispose();
});

test("foldBatchNorm in place on a hand-built Sequential; copy needs a registry model", () => {
  manualSeed(7);
  const net = new Sequential([
    new Conv2d({ inChannels: 3, outChannels: 8, kernelSize: 3, padding: 1 }),
    new BatchNorm2d({ numFeatures: 8 }),
    new ReLU(),
  ]);
  randomizeBatchNorms(net);
  assert.throws(() => foldBatchNorm(net), /not made by createModel.*copy: false/);
  const x = randn([2, 3, 8, 8]);
  const ref = scope(() => noGrad(() => net.eval().forward(x)));
  const r = foldBatchNorm(net, { copy: false, inputShape: [2, 3, 8, 8] });
  const out = scope(() => noGrad(() => net.forward(x)));
  assert.ok(maxAbsDiff(out, ref) < 1e-5);
  for (const t of [x, out]) t.dispose();
  assert.equal(r.model, net);
  assert.deepEqual(r.pairs, [["0", "1"]]);
  assert.ok(r.probeRelativeError < 1e-5);
  assert.throws(
    () => foldBatchNorm(net, { copy: false, inputShape: [2, 3] }),
    /inputShape must be 4 positive integers/,
  );
  ref.dispose();
  net.dispose();
});

test("inferenceMode restores the state after an exception", () => {
  assert.equal(isInferenceMode(), false);
  assert.throws(
    () =>
      inferenceMode(() => {
        assert.equal(isInferenceMode(), true);
        throw new Error("inside");
      }),
    /inside/,
  );
  assert.equal(isInferenceMode(), false);
});

test("profileNative reports the convolutions of a forward", () => {
  manualSeed(8);
  const model = createModel("resnet20").eval();
  const rows = profileNative(() => noGrad(() => scope(() => void model.forward(randn([1, 3, 32, 32])))));
  const conv = rows.find((r) => r.name === "conv2d");
  assert.equal(conv?.calls, 21);
  assert.ok(rows.every((r) => r.totalMs >= 0));
  model.dispose();
});

test("profileOperators sees inside backward: ATen operators and autograd nodes with self <= total", () => {
  manualSeed(9);
  const model = createModel("resnet20");
  const rows = profileOperators(() =>
    scope(() => {
      const out = model.forward(randn([2, 3, 32, 32]));
      out.sum().backward();
    }),
  );
  const byName = new Map(rows.map((r) => [r.name, r]));
  // 21 forward convolutions, and each one's backward node (which the addon's call trace cannot see)
  assert.equal(byName.get("aten::convolution")?.calls, 21);
  assert.equal(byName.get("aten::convolution_backward")?.calls, 21);
  assert.ok(
    rows.every((r) => r.selfMs >= 0 && r.selfMs <= r.totalMs + 1e-6),
    "self time within total",
  );
  for (let i = 1; i < rows.length; i++) assert.ok((rows[i - 1]?.selfMs ?? 0) >= (rows[i]?.selfMs ?? 0), "sorted");
  const shaped = profileOperators(() => scope(() => void randn([3, 4]).add(1)), { recordShapes: true });
  assert.ok(
    shaped.some((r) => r.name === "aten::add [[3,4], [], []]"),
    shaped.map((r) => r.name).join("; "),
  );
  // a profile never nests, and the error says what to do
  assert.throws(
    () => profileOperators(() => profileOperators(() => undefined)),
    /already running; call profilerStop\(\)/,
  );
  model.dispose();
});

test("a folded copy cast to bfloat16 stays close to the float32 model", () => {
  manualSeed(11);
  const model = createModel("resnet20");
  randomizeBatchNorms(model);
  const { model: folded } = foldBatchNorm(model);
  const floats = [...folded.stateDict().values()].filter((t) => t.dtype === "float32").length;
  assert.equal(castModel(folded, "bfloat16"), floats);
  for (const [k, t] of folded.stateDict())
    assert.equal(t.dtype, k.endsWith("num_batches_tracked") ? "int64" : "bfloat16", k);
  assert.throws(() => castModel(folded, "float16" as "bfloat16"), /dtype must be "bfloat16" or "float32"/);
  scope(() => {
    const x = randn([2, 3, 32, 32]);
    const ref = noGrad(() => model.eval().forward(x));
    const out = inferenceMode(() => scope(() => folded.forward(x.to("bfloat16")))).to("float32");
    const rel = maxAbsDiff(out, ref) / Math.max(1, ref.abs().max().item() as number);
    assert.ok(rel < 0.05, `relative difference ${rel}`);
  });
  folded.dispose();
  model.dispose();
});
