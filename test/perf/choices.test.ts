import assert from "node:assert/strict";
import { test } from "node:test";
import {
  bestSetting,
  type ImageShape,
  type ModelChoices,
  measuredChoices,
  preferChannelsLast,
  shapeKey,
} from "../../src/perf/choices";

const choices = (precision: "fp32" | "bf16", channelsLast: boolean): ModelChoices => ({
  train: { fp32: channelsLast, bf16: channelsLast },
  infer: { fp32: channelsLast, bf16: channelsLast },
  best: { train: { precision, channelsLast }, infer: { precision, channelsLast } },
});

const FASHION: ImageShape = [1, 28, 28];
const CIFAR: ImageShape = [3, 32, 32];

test("shapeKey writes channels x height x width", () => {
  assert.equal(shapeKey(FASHION), "1x28x28");
  assert.equal(shapeKey(CIFAR), "3x32x32");
});

test("measuredChoices takes the shape's entry, then the model's 3x32x32 entry, then none", () => {
  const at28 = choices("fp32", false);
  const at32 = choices("bf16", true);
  const table = { "m@1x28x28": at28, "m@3x32x32": at32, "only32@3x32x32": at32 };
  assert.equal(measuredChoices("m", FASHION, table), at28);
  assert.equal(measuredChoices("m", CIFAR, table), at32);
  assert.equal(measuredChoices("m", [3, 64, 64], table), at32);
  assert.equal(measuredChoices("only32", FASHION, table), at32);
  assert.equal(measuredChoices("unmeasured", FASHION, table), undefined);
});

test("resnet20 and efficient_resnet have measured 1x28x28 entries: float32 runs channels-last in both phases", () => {
  for (const model of ["resnet20", "efficient_resnet"]) {
    assert.notEqual(measuredChoices(model, FASHION), measuredChoices(model, CIFAR), model);
    for (const phase of ["train", "infer"] as const)
      assert.equal(preferChannelsLast(model, FASHION, "fp32", phase), true);
  }
});

test("without a 1x28x28 entry, a model's choices at 1x28x28 are its 3x32x32 ones", () => {
  for (const model of ["resnet56", "mobilenetv2", "preact_resnet164"]) {
    assert.deepEqual(measuredChoices(model, FASHION), measuredChoices(model, CIFAR), model);
    assert.notEqual(measuredChoices(model, CIFAR), undefined, model);
    for (const phase of ["train", "infer"] as const) {
      assert.deepEqual(bestSetting(model, FASHION, phase), bestSetting(model, CIFAR, phase));
      for (const precision of ["fp32", "bf16"] as const)
        assert.equal(
          preferChannelsLast(model, FASHION, precision, phase),
          preferChannelsLast(model, CIFAR, precision, phase),
        );
    }
  }
});

/** fn with BUDGETNET_NATIVE_BF16 set to v (nativeBf16() reads it on every call). */
function withNativeBf16<T>(v: "0" | "1", fn: () => T): T {
  const was = process.env.BUDGETNET_NATIVE_BF16;
  process.env.BUDGETNET_NATIVE_BF16 = v;
  try {
    return fn();
  } finally {
    if (was === undefined) delete process.env.BUDGETNET_NATIVE_BF16;
    else process.env.BUDGETNET_NATIVE_BF16 = was;
  }
}

test("an unmeasured model gets the default, bf16 channels-last, at any shape (float32 without native bf16)", () => {
  for (const shape of [FASHION, CIFAR]) {
    assert.equal(measuredChoices("no_such_model", shape), undefined);
    assert.equal(preferChannelsLast("no_such_model", shape, "fp32", "train"), true);
    const train = withNativeBf16("1", () => bestSetting("no_such_model", shape, "train"));
    assert.deepEqual(train, { precision: "bf16", channelsLast: true, fold: false, inferenceMode: false });
    const emulated = withNativeBf16("0", () => bestSetting("no_such_model", shape, "train"));
    assert.deepEqual(emulated, { precision: "fp32", channelsLast: true, fold: false, inferenceMode: false });
  }
});

test("a bf16 best is float32 where the CPU emulates bf16, with the layout measured for float32", () => {
  for (const phase of ["train", "infer"] as const) {
    const native = withNativeBf16("1", () => bestSetting("resnet20", CIFAR, phase));
    assert.equal(native.precision, "bf16");
    const emulated = withNativeBf16("0", () => bestSetting("resnet20", CIFAR, phase));
    assert.equal(emulated.precision, "fp32");
    assert.equal(emulated.channelsLast, preferChannelsLast("resnet20", CIFAR, "fp32", phase));
  }
});
