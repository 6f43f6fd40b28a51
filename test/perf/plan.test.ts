import assert from "node:assert/strict";
import { test } from "node:test";
import { createModel, keep, manualSeed, maxAbsDiff, NativeOpError, nn, noGrad, randn, scope } from "../../src";
import { foldBatchNorm } from "../../src/perf/fold";
import { compileInference, planAvailable } from "../../src/perf/plan";
import { checkNoLeaks } from "../helpers";

checkNoLeaks();

// The plan needs oneDNN's headers at build time (libdnnl-dev, which scripts/setup.sh installs);
// a build without them (BUDGETNET_DNNL=0) has no plan and these tests say so instead of passing.
const skip = planAvailable() ? false : "addon built without oneDNN (libdnnl-dev): no inference plan";

test("the addon has the oneDNN plan unless it was built without it on purpose", () => {
  if (process.env.BUDGETNET_DNNL === "0") return;
  assert.equal(planAvailable(), true, "scripts/setup.sh installs libdnnl-dev, so the build should include the plan");
});

/** Largest |compiled - model| over the batch, relative to the largest |model output|. */
function relativeError(
  model: nn.Module,
  forward: (x: ReturnType<typeof randn>) => ReturnType<typeof randn>,
  shape: number[],
) {
  return noGrad(() =>
    scope(() => {
      const x = randn(shape);
      const ref = model.eval().forward(x);
      const out = forward(x);
      assert.deepEqual(out.shape, ref.shape);
      return maxAbsDiff(out, ref) / Math.max(1e-6, ref.abs().max().item() as number);
    }),
  );
}

test(
  "fp32 plans match the models they compile (post- and pre-activation, SE, Efficient ResNet, MobileNet v2 and v3, WRN)",
  { skip },
  () => {
    for (const [name, options] of [
      ["resnet20", {}],
      ["se_resnet20", {}],
      ["efficient_resnet", { channels: 16 }],
      ["mobilenetv2", { widthMultiplier: 0.5 }],
      ["preact_resnet164", { depth: 11 }],
      ["wrn16_2", {}],
    ] as const) {
      manualSeed(1);
      const model = createModel(name, options);
      const compiled = compileInference(model, { precision: "fp32", inputShape: [2, 3, 32, 32] });
      try {
        const err = relativeError(model, (x) => compiled.forward(x), [3, 3, 32, 32]);
        assert.ok(err < 1e-4, `${name}: relative error ${err}`);
        assert.ok(compiled.summary.convolutions > 0, name);
      } finally {
        compiled.dispose();
        model.dispose();
      }
    }
  },
);

test("a resnet20 plan fuses every ReLU and residual addition into the convolutions", { skip }, () => {
  manualSeed(2);
  const model = createModel("resnet20");
  const compiled = compileInference(model, { precision: "fp32" });
  try {
    // 21 convolutions (19 + 2 projection shortcuts); the stem ReLU, 18 block ReLUs, 9 additions
    // and 9 post-addition ReLUs all become post-ops; pooling stays; flatten + linear are replayed
    assert.equal(compiled.summary.convolutions, 21);
    assert.equal(compiled.summary.planNodes, 22);
    assert.equal(compiled.summary.tailCalls, 2);
    assert.equal(compiled.summary.fused, 28);
    noGrad(() => scope(() => void compiled.forward(randn([2, 3, 32, 32]))));
    const choices = compiled.choices();
    assert.equal(choices.length, 21);
    assert.ok(
      choices.every((c) => /^(direct|winograd) \S+/.test(c)),
      choices.join("; "),
    );
  } finally {
    compiled.dispose();
    model.dispose();
  }
});

test("bf16 plans stay close to float32; new batch sizes recompile and stay exact", { skip }, () => {
  manualSeed(3);
  const model = createModel("resnet20");
  const bf16 = compileInference(model, { precision: "bf16" });
  const fp32 = compileInference(model, { precision: "fp32", winograd: "always" });
  try {
    assert.ok(relativeError(model, (x) => bf16.forward(x), [4, 3, 32, 32]) < 5e-2);
    for (const n of [1, 5, 1])
      assert.ok(relativeError(model, (x) => fp32.forward(x), [n, 3, 32, 32]) < 1e-4, `batch ${n}`);
  } finally {
    bf16.dispose();
    fp32.dispose();
    model.dispose();
  }
});

test("precision auto times both plans and keeps the faster", { skip }, () => {
  manualSeed(4);
  const model = createModel("resnet20", { depth: 8 });
  const compiled = compileInference(model, { precision: "auto", inputShape: [4, 3, 32, 32] });
  try {
    const t = compiled.timings;
    assert.ok(t !== undefined && t.fp32 > 0 && t.bf16 > 0);
    assert.equal(compiled.summary.precision, t.bf16 < t.fp32 ? "bf16" : "fp32");
  } finally {
    compiled.dispose();
    model.dispose();
  }
});

test("bad options and bad inputs give clear errors, and the process lives on", { skip }, () => {
  manualSeed(5);
  const model = createModel("resnet20", { depth: 8 });
  assert.throws(
    () => compileInference(model, { precision: "fp16" as "fp32" }),
    /precision must be "fp32", "bf16", "int8" or "auto"/,
  );
  assert.throws(
    () => compileInference(model, { winograd: "maybe" as "auto" }),
    /winograd must be "auto", "never" or "always"/,
  );
  const compiled = compileInference(model);
  try {
    // wrong channel count: the plan's convolution says what is wrong, naming the shapes
    assert.throws(
      () => noGrad(() => scope(() => void compiled.forward(randn([2, 4, 32, 32])))),
      (e: unknown) =>
        e instanceof NativeOpError &&
        /input channels do not match the weight/.test(e.message) &&
        /\[2, 4, 32, 32\]/.test(e.message),
    );
    assert.throws(
      () => noGrad(() => scope(() => void compiled.forward(randn([3, 32, 32])))),
      /4-D floating-point CPU tensor/,
    );
    // still usable afterwards
    assert.ok(relativeError(model, (x) => compiled.forward(x), [2, 3, 32, 32]) < 1e-4);
  } finally {
    compiled.dispose();
  }
  scope(() => assert.throws(() => compiled.forward(randn([1, 3, 32, 32])), /disposed/));
  model.dispose();
});

test(
  "a model built by hand compiles in place (copy: false); a folded model compiles as it is, never folded twice",
  { skip },
  () => {
    manualSeed(6);
    const model = new nn.Sequential([
      new nn.Conv2d({ inChannels: 3, outChannels: 16, kernelSize: 3, padding: 1, bias: false }),
      new nn.BatchNorm2d({ numFeatures: 16 }),
      new nn.ReLU(),
      new nn.Conv2d({ inChannels: 16, outChannels: 16, kernelSize: 3, padding: 1 }),
      new nn.ReLU(),
    ]);
    model.eval();
    // a copy needs createModel; in place works, and says what to do when precision is "auto"
    assert.throws(() => compileInference(model), /not made by createModel/);
    assert.throws(() => compileInference(model, { copy: false, precision: "auto" }), /with copy: false pass precision/);
    const x = keep(randn([2, 3, 8, 8]));
    const before = noGrad(() => scope(() => keep(model.forward(x))));
    const compiled = compileInference(model, { copy: false, inputShape: [2, 3, 8, 8] });
    try {
      const out = noGrad(() => scope(() => keep(compiled.forward(x))));
      scope(() => assert.ok(maxAbsDiff(out, before) / (before.abs().max().item() as number) < 1e-5));
      out.dispose();
      // the model was folded in place: compiling it again takes it as it is (folded once, never twice)
      assert.throws(() => foldBatchNorm(model, { copy: false }), /already folded/);
      const again = compileInference(model, { inputShape: [2, 3, 8, 8] });
      try {
        const out2 = noGrad(() => scope(() => keep(again.forward(x))));
        scope(() => assert.ok(maxAbsDiff(out2, before) / (before.abs().max().item() as number) < 1e-5));
        out2.dispose();
      } finally {
        again.dispose();
      }
    } finally {
      compiled.dispose(); // leaves the model alive: it belongs to the caller
      x.dispose();
      before.dispose();
    }
    assert.ok(
      model.parameters().every((p) => p.live() !== undefined),
      "the model is still alive",
    );
    model.dispose();
  },
);
