// int8 building blocks: observers, weight quantization, the fake-quant ops and their gradient,
// the site rule on real models, and forwardWithSites naming sites exactly as traceSites does.
import assert from "node:assert/strict";
import { test } from "node:test";
import { createModel, noGrad, randn, scope, tensor } from "../../src";
import { fakeQuantizePerChannel, fakeQuantizePerTensor } from "../../src/ops/quant";
import { foldBatchNorm } from "../../src/perf/fold";
import { quantLayout } from "../../src/quant/calibrate";
import { forwardWithSites } from "../../src/quant/intercept";
import { AbsHistogram, chooseThreshold } from "../../src/quant/observers";
import { dequantizeWeight, quantizeWeight } from "../../src/quant/quantize";
import { traceSites } from "../../src/quant/sites";
import { randomizeBatchNorms } from "../export/onnx_helpers";
import { checkNoLeaks } from "../helpers";

checkNoLeaks();

function histogramOf(values: number[]): AbsHistogram {
  const h = new AbsHistogram();
  h.add(Float32Array.from(values));
  return h;
}

/** Mean squared error of int8-quantizing values with threshold t (scale t / 127). */
function actualMse(values: number[], t: number): number {
  const s = t / 127;
  return (
    values.reduce((a, v) => a + (Math.max(-127, Math.min(127, Math.round(v / s))) * s - v) ** 2, 0) / values.length
  );
}

test("minmax takes max |x|; percentile clips the rare outliers; mse finds the least quantization error", () => {
  const values = Array.from({ length: 20000 }, (_, i) => Math.sin(i) * 1.0);
  for (let i = 0; i < 20; i++) values.push(i % 2 === 0 ? 30 + i : -(30 + i)); // 0.1% outliers
  const h = histogramOf(values);
  const minmax = chooseThreshold(h, { observer: "minmax", levels: 127 });
  const pct = chooseThreshold(h, { observer: "percentile", percentile: 99.5, levels: 127 });
  const mse = chooseThreshold(h, { observer: "mse", levels: 127 });
  assert.equal(minmax, 49);
  assert.ok(pct > 0.9 && pct < 1.1, `percentile ${pct}`);
  assert.ok(mse > pct && mse < minmax, `mse ${mse}`);
  const err = actualMse(values, mse);
  for (const t of [minmax, pct, (mse + minmax) / 2, (mse + pct) / 2])
    assert.ok(err <= actualMse(values, t) * 1.02, `T=${t}`);
});

test("the histogram widens without losing counts when larger values arrive", () => {
  const h = new AbsHistogram();
  h.add(Float32Array.from([0.1, 0.2, -0.3]));
  h.add(Float32Array.from([5, -7]));
  assert.equal(h.total, 5);
  assert.equal(
    h.counts.reduce((a, b) => a + b, 0),
    5,
  );
  assert.ok(h.top >= 7);
  assert.equal(h.min, -7);
});

test("per-channel int8 weights dequantize within half a step of the float weights", () => {
  const w = Float32Array.from({ length: 4 * 9 }, (_, i) => (i < 9 ? 100 : 1) * Math.cos(i));
  const q = quantizeWeight(w, [4, 1, 3, 3], true);
  assert.equal(q.quant.scales.length, 4);
  const back = dequantizeWeight(q.q, q.shape, q.quant);
  for (let i = 0; i < w.length; i++) {
    const s = q.quant.scales[Math.floor(i / 9)] as number;
    assert.ok(Math.abs((back[i] as number) - (w[i] as number)) <= s / 2 + 1e-6);
  }
  // per tensor: the small channels lose their precision to the large one
  const t = quantizeWeight(w, [4, 1, 3, 3], false);
  assert.equal(t.quant.scales.length, 1);
  const err = (a: Float32Array) => a.reduce((m, v, i) => (i >= 9 ? Math.max(m, Math.abs(v - (w[i] as number))) : m), 0);
  assert.ok(err(dequantizeWeight(t.q, t.shape, t.quant)) > 10 * err(back));
});

test("fakeQuantizePerTensor rounds, clamps and passes the gradient straight through inside the range", () => {
  scope(() => {
    const x = tensor(Float32Array.from([-3, -0.26, 0.24, 0.5, 10]), [5]);
    x.requiresGrad = true;
    const y = fakeQuantizePerTensor(x, 0.5, 0, -4, 4);
    assert.deepEqual(y.toArray(), [-2, -0.5, 0, 0.5, 2]);
    y.sum().backward();
    assert.deepEqual((x.grad as ReturnType<typeof tensor>).toArray(), [0, 1, 1, 1, 0]);
    const w = tensor(Float32Array.from([1, 2, 30, 40]), [2, 2]);
    const s = tensor(Float32Array.from([1, 10]), [2]);
    assert.deepEqual(fakeQuantizePerChannel(w, s, 0, -127, 127).toArray(), [1, 2, 30, 40]);
    assert.throws(() => fakeQuantizePerTensor(x, 0, 0, -4, 4), /scale must be a positive/);
    assert.throws(() => fakeQuantizePerChannel(w, tensor([1, 2, 3], [3]), 0, -127, 127), /one scale per slice/);
  });
});

function folded(name: string, options: Record<string, unknown> = {}) {
  const m = createModel(name, { numClasses: 10, inChannels: 1, ...options });
  randomizeBatchNorms(m);
  m.eval();
  const f = foldBatchNorm(m, { inputShape: [2, 1, 16, 16] }).model;
  m.dispose();
  return f;
}

test("the site rule on resnet20: conv+relu and conv+add+relu fused, ReLUs uint8, shortcut conv int8, logits float", () => {
  const f = folded("resnet20");
  try {
    const { decisions, weights, float } = scope(() => quantLayout(f, randn([2, 1, 16, 16])));
    const role = (k: string) => decisions.find((d) => d.key === k);
    assert.equal(role("input")?.role, "quantized");
    assert.equal(role("conv1:conv2d#0")?.role, "fused");
    assert.deepEqual([role("relu:relu_#0")?.role, role("relu:relu_#0")?.nonNegative], ["quantized", true]);
    assert.equal(role("layer1.0.conv2:conv2d#0")?.role, "fused");
    assert.equal(role("layer1.0:add#0")?.role, "fused");
    assert.equal(role("layer1.0.relu:relu_#1")?.role, "quantized");
    assert.deepEqual(
      [role("layer2.0.downsample.0:conv2d#0")?.role, role("layer2.0.downsample.0:conv2d#0")?.nonNegative],
      ["quantized", false],
    );
    assert.deepEqual(
      [role(":flatten#0")?.role, role(":flatten#0")?.quantizedAs],
      ["passthrough", ":adaptiveAvgPool2d#0"],
    );
    assert.equal(role("fc:linear#0")?.role, "output");
    assert.equal(weights.length, 22); // 19 convs + 2 projection shortcuts + fc
    assert.ok(weights.includes("fc.weight") && weights.includes("layer2.0.downsample.0.weight"));
    assert.deepEqual(float, []);
  } finally {
    f.dispose();
  }
});

test("an op without an int8 kernel is named, kept float32 and requantized (SE: mul); the gate's sigmoid fuses into its conv", () => {
  const f = folded("resnet20", { se: true });
  try {
    const { decisions, float } = scope(() => quantLayout(f, randn([2, 1, 16, 16])));
    const ops = new Set(float.map((x) => x.key.replace(/.*:/, "").replace(/#.*/, "")));
    assert.deepEqual([...ops], ["mul"], JSON.stringify(float.slice(0, 4)));
    assert.ok(float.every((x) => /no int8 kernel/.test(x.reason)));
    // fc2 -> sigmoid: one int8 op (the plan's conv with a logistic post-op), quantized once, uint8
    const sig = decisions.find((d) => d.op === "sigmoid");
    assert.deepEqual([sig?.role, sig?.nonNegative], ["quantized", true]);
    assert.equal(decisions[decisions.indexOf(sig as (typeof decisions)[number]) - 1]?.role, "fused");
  } finally {
    f.dispose();
  }
});

test("the site rule fuses conv+ReLU6 (MobileNetV2) and conv+Hardswish (MobileNetV3) as the int8 plan does", () => {
  for (const [name, act, opts] of [
    ["mobilenetv2", "relu6", { widthMultiplier: 0.25 }],
    ["mobilenetv3_small", "hardswish", {}],
  ] as const) {
    const f = folded(name, opts);
    try {
      const { decisions } = scope(() => quantLayout(f, randn([2, 1, 16, 16])));
      const acts = decisions.filter((d) => d.op === act && decisions[decisions.indexOf(d) - 1]?.op === "conv2d");
      assert.ok(acts.length > 0, `${name}: no conv -> ${act}`);
      for (const d of acts) {
        assert.equal(decisions[decisions.indexOf(d) - 1]?.role, "fused", `${name}: the conv before ${d.key}`);
        assert.equal(d.role, "quantized", d.key);
        assert.equal(d.nonNegative, act === "relu6", d.key);
      }
    } finally {
      f.dispose();
    }
  }
});

for (const name of ["resnet20", "mobilenetv2", "preact_resnet18"])
  test(`forwardWithSites names the sites of ${name} exactly as traceSites does`, () => {
    const f = folded(name, name === "mobilenetv2" ? { widthMultiplier: 0.25 } : {});
    try {
      noGrad(() =>
        scope(() => {
          const x = randn([2, 1, 16, 16]);
          const want = traceSites(f, x, () => f.forward(x)).sites.map((s) => s.key);
          const got: string[] = [];
          forwardWithSites(f, x, { onSite: (s) => void got.push(s.key) });
          assert.deepEqual(got, want);
        }),
      );
    } finally {
      f.dispose();
    }
  });
