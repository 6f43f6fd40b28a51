import assert from "node:assert/strict";
import * as fs from "node:fs";
import { test } from "node:test";
import {
  cat,
  conv2d,
  createModel,
  crossEntropy,
  keep,
  liveTensors,
  manualSeed,
  maxAbsDiff,
  nn,
  randint,
  randn,
  SGD,
  scope,
} from "../../src";
import { autocast, autocastState } from "../../src/perf/autocast";
import { buildInfo } from "../../src/tensor/tensor";
import {
  effectivePrecision,
  fastBf16,
  forwardWithPrecision,
  nativeBf16,
  preparePrecision,
} from "../../src/train/precision";
import { checkNoLeaks } from "../helpers";

checkNoLeaks();

test("autocast runs conv in bfloat16 and crossEntropy in float32, and restores the state", () => {
  scope(() => {
    assert.equal(autocastState().enabled, false);
    const x = randn([2, 3, 8, 8]);
    const w = randn([4, 3, 3, 3]);
    const { conv, loss } = autocast(() => {
      assert.equal(autocastState().enabled, true);
      const conv = conv2d(x, w, undefined, { padding: 1 });
      const logits = conv.mean([2, 3]);
      return { conv, loss: crossEntropy(logits, randint(0, 4, [2], { dtype: "int64" })) };
    });
    assert.equal(conv.dtype, "bfloat16");
    assert.equal(loss.dtype, "float32");
    assert.equal(autocastState().enabled, false);
  });
});

test("autocast state is restored after an exception, and nested regions restore their parent", () => {
  assert.throws(
    () =>
      autocast(() => {
        throw new Error("inside");
      }),
    /inside/,
  );
  assert.equal(autocastState().enabled, false);
  autocast(() => {
    autocast(
      () => {
        assert.equal(autocastState().enabled, false);
      },
      { enabled: false },
    );
    assert.equal(autocastState().enabled, true);
  });
  assert.equal(autocastState().enabled, false);
});

test("autocast rejects float16 and non-functions with clear errors", () => {
  assert.throws(
    () => autocast(() => 1, { dtype: "float16" as "bfloat16" }),
    /"bfloat16" only. Received: dtype=float16/,
  );
  assert.throws(() => autocast(42 as unknown as () => number), /fn must be a function/);
  assert.throws(
    () => autocast(() => 1, { device: "gpu" as "cuda" }),
    /device must be "cpu" or "cuda". Received: device=gpu/,
  );
  if (!buildInfo().cuda)
    assert.throws(
      () => autocast(() => 1, { device: "cuda" }),
      /autocast on 'cuda' asked for, but this libtorch has no CUDA/,
    );
  assert.equal(autocastState().enabled, false);
});

test("resnet20 bf16 forward is close to float32 (eval), float32 logits from forwardWithPrecision", () => {
  manualSeed(1);
  const model = createModel("resnet20").eval();
  scope(() => {
    const x = randn([4, 3, 32, 32]);
    const ref = model.forward(x);
    const bf = forwardWithPrecision(model, x, { precision: "bf16", channelsLast: false });
    assert.equal(bf.dtype, "float32");
    const scale = ref.abs().max().item() as number;
    // bfloat16 keeps 8 significant bits (~0.4%); twenty layers of it stay within a few percent.
    assert.ok(maxAbsDiff(bf, ref) / scale < 0.05, `relative error ${maxAbsDiff(bf, ref) / scale}`);
  });
  model.dispose();
});

test("bf16 training keeps float32 master weights, grads and BN statistics", () => {
  manualSeed(2);
  const model = createModel("resnet20");
  scope(() => {
    const x = randn([4, 3, 32, 32]);
    const y = randint(0, 10, [4], { dtype: "int64" });
    const logits = forwardWithPrecision(model, x, { precision: "bf16", channelsLast: false });
    crossEntropy(logits, y).backward();
    for (const [k, t] of model.stateDict()) if (!k.endsWith("num_batches_tracked")) assert.equal(t.dtype, "float32", k);
    for (const p of model.parameters()) assert.equal(p.grad?.dtype, "float32");
  });
  model.zeroGrad();
  model.dispose();
});

function tinyNet(): nn.Sequential {
  return new nn.Sequential([
    new nn.Conv2d({ inChannels: 3, outChannels: 16, kernelSize: 3, padding: 1, bias: false }),
    new nn.BatchNorm2d({ numFeatures: 16 }),
    new nn.ReLU(),
    new nn.AdaptiveAvgPool2d(1),
    new nn.Flatten(),
    new nn.Linear({ inFeatures: 16, outFeatures: 4 }),
  ]);
}

function trainTiny(precision: "fp32" | "bf16"): number {
  manualSeed(3);
  const x = keep(randn([64, 3, 8, 8]));
  // A learnable rule: the class is which of four (channel, image half) regions is brightest.
  const y = keep(
    scope(() => {
      const half = (h: number) => x.narrow(2, h, 4).mean([2, 3]).narrow(1, 0, 2);
      return cat([half(0), half(4)], 1).argmax(1);
    }),
  );
  const net = tinyNet();
  const opt = new SGD(net.parameters(), { lr: 0.2, momentum: 0.9 });
  let last = Number.NaN;
  for (let i = 0; i < 60; i++)
    last = scope(() => {
      const loss = crossEntropy(forwardWithPrecision(net, x, { precision, channelsLast: false }), y);
      opt.zeroGrad();
      loss.backward();
      opt.step();
      return loss.item() as number;
    });
  opt.zeroGrad();
  opt.dispose();
  net.dispose();
  x.dispose();
  y.dispose();
  return last;
}

test("a short bf16 training run converges like float32", () => {
  const before = liveTensors();
  const fp32 = trainTiny("fp32");
  const bf16 = trainTiny("bf16");
  assert.ok(fp32 < 0.9, `fp32 did not learn: final loss ${fp32}`);
  assert.ok(Math.abs(bf16 - fp32) < 0.15, `bf16 final loss ${bf16} vs fp32 ${fp32}`);
  assert.equal(liveTensors(), before);
});

test("preparePrecision with channelsLast converts the model and forwardWithPrecision matches", () => {
  manualSeed(4);
  const a = createModel("resnet20").eval();
  const b = createModel("resnet20").eval();
  b.loadStateDict(a.stateDict());
  assert.equal(preparePrecision(b, { precision: "fp32", channelsLast: true }, [3, 32, 32]), true);
  scope(() => {
    const x = randn([2, 3, 32, 32]);
    const ref = a.forward(x);
    const out = forwardWithPrecision(b, x, { precision: "fp32", channelsLast: true });
    assert.ok(maxAbsDiff(out, ref) < 1e-4);
  });
  assert.throws(
    () => scope(() => forwardWithPrecision(a, randn([1]), { precision: "fp16" as "bf16", channelsLast: false })),
    /precision must be/,
  );
  a.dispose();
  b.dispose();
});

test("a ReLU6 net (MobileNet v2) trains under bf16 autocast: relu6 has a bfloat16 backward", () => {
  // PyTorch 1.13's hardtanh has none ("hardshrink_backward_cpu" not implemented for 'BFloat16');
  // budgetnet's relu6 is clamp in bfloat16, hardtanh in float32.
  manualSeed(3);
  const model = createModel("mobilenetv2", { widthMultiplier: 0.25 });
  scope(() => {
    const x = randn([2, 3, 32, 32]);
    const y = randint(0, 10, [2], { dtype: "int64" });
    const logits = forwardWithPrecision(model, x, { precision: "bf16", channelsLast: true });
    crossEntropy(logits, y).backward();
    let nonzero = 0;
    for (const p of model.parameters()) {
      const g = p.grad;
      assert.ok(g !== undefined && g.dtype === "float32");
      const total = g.abs().sum().item() as number;
      assert.ok(Number.isFinite(total), "finite gradients");
      if (total > 0) nonzero++;
    }
    assert.ok(nonzero > model.parameters().length / 2, `${nonzero} parameters got gradients`);
  });
  model.zeroGrad();
  model.dispose();
});

test('precision "auto" is bf16 exactly where the CPU runs bfloat16 faster (cpuinfo: AMX, AMD, Arm), else fp32', () => {
  const saved = process.env.BUDGETNET_NATIVE_BF16;
  try {
    delete process.env.BUDGETNET_NATIVE_BF16;
    const info = fs.readFileSync("/proc/cpuinfo", "utf8");
    const native = /^(flags|Features)\s*:.*\b(avx512_bf16|amx_bf16|bf16)\b/m.test(info);
    assert.equal(nativeBf16(), native);
    // Intel's avx512_bf16 without AMX is native but measured slower than float32
    const fast =
      native &&
      (/^flags\s*:.*\bamx_bf16\b/m.test(info) || /AuthenticAMD/.test(info) || /^Features\s*:.*\bbf16\b/m.test(info));
    assert.equal(fastBf16(), fast);
    assert.equal(effectivePrecision({ precision: "auto" }), fast ? "bf16" : "fp32");
    process.env.BUDGETNET_NATIVE_BF16 = "1";
    assert.equal(effectivePrecision({ precision: "auto" }), "bf16");
    // with native bf16, a model and shape measured faster in float32 train in float32
    assert.equal(effectivePrecision({ precision: "auto" }, "resnet20", [1, 28, 28]), "fp32");
    assert.equal(effectivePrecision({ precision: "auto" }, "speednet", [1, 28, 28]), "fp32");
    assert.equal(effectivePrecision({ precision: "auto" }, "resnet20", [3, 32, 32]), "bf16");
    assert.equal(effectivePrecision({ precision: "auto" }, "no_such_model", [1, 28, 28]), "bf16");
    assert.equal(effectivePrecision({ precision: "bf16" }, "resnet20", [1, 28, 28]), "bf16");
    process.env.BUDGETNET_NATIVE_BF16 = "0";
    assert.equal(effectivePrecision({ precision: "auto" }), "fp32");
    // on a GPU "auto" is bf16 whatever the CPU; "cpu" is the CPU's choice
    assert.equal(effectivePrecision({ precision: "auto", device: "cuda" }), "bf16");
    assert.equal(effectivePrecision({ precision: "auto", device: "cpu" }), "fp32");
    // an explicit choice is kept whatever the CPU
    assert.equal(effectivePrecision({ precision: "bf16" }), "bf16");
    assert.equal(effectivePrecision({ precision: "fp32" }), "fp32");
  } finally {
    if (saved === undefined) delete process.env.BUDGETNET_NATIVE_BF16;
    else process.env.BUDGETNET_NATIVE_BF16 = saved;
  }
});
