// One test over the whole registry (timm's way): every registered model builds, runs forward
// on a small batch to the right shape without NaN, trains one step (every parameter gets a
// finite gradient), has a state dict made of exactly its parameters and buffers, has the parameter
// count its source publishes, and frees every tensor it made. Models marked `large` are only built and counted.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  createModel,
  crossEntropy,
  listModels,
  liveTensors,
  manualSeed,
  noGrad,
  randint,
  randn,
  scope,
} from "../../src";
import { checkNoLeaks } from "../helpers";

checkNoLeaks();

const NUM_CLASSES = 7;

// Parameters at 10 classes, 3 input channels, each checked against the figure its source prints
// (the paper's table, or torchvision's count at 1000 classes = this + 990·(F+1)):
const PARAMS_AT_10_CLASSES: Record<string, number> = {
  resnet20: 272_474, // option B; option A 269,722 = He et al. 2015 Table 6's 0.27M
  resnet32: 466_906, // A: 0.46M
  resnet44: 661_338, // A: 0.66M
  resnet56: 855_770, // A: 0.85M
  resnet110: 1_730_714, // A: 1.7M
  resnet1202: 19_424_026, // A: 19.4M
  se_resnet20: 274_847,
  se_resnet56: 862_889,
  se_resnet110: 1_744_952,
  resnet164: 1_704_154, // He et al. 2016 Table 3: 1.7M
  preact_resnet164: 1_703_258, // 1.7M
  preact_resnet1001: 10_327_706, // the paper prints 10.2M
  resnet29: 312_218,
  se_resnet29: 345_902,
  se_resnet164: 1_906_258,
  se_preact_resnet164: 1_905_362,
  preact_resnet18: 11_171_146, // kuangliu/pytorch-cifar PreActResNet18
  se_preact_resnet18: 11_260_226,
  resnet18: 11_173_962, // kuangliu/pytorch-cifar ResNet18
  resnet34: 21_282_122, // kuangliu/pytorch-cifar ResNet34
  resnet50: 23_520_842, // kuangliu/pytorch-cifar ResNet50
  se_resnet18: 11_263_042,
  mini_resnet34: 1_334_618,
  efficient_resnet: 4_697_742, // arXiv 2306.12100: 4.70M
  wrn16_2: 691_674, // Zagoruyko & Komodakis: 0.69M
  wrn16_4: 2_748_890, // 2.7M
  wrn16_8: 10_961_370, // 11.0M
  wrn16_10: 17_116_634, // 17.1M
  wrn28_2: 1_467_610, // 1.5M
  wrn28_10: 36_479_194, // 36.5M
  wrn40_2: 2_243_546, // 2.2M
  wrn40_4: 8_949_210, // 8.9M
  wrn40_8: 35_748_314, // 35.7M
  resnext29_2x64d: 9_130_314, // Xie et al. Table 7: 9.1M
  resnext29_4x64d: 17_562_442, // 17.6M
  resnext29_8x64d: 34_426_698, // 34.4M
  resnext29_16x64d: 68_155_210, // 68.1M
  resnext29_32x4d: 4_775_754, // 4.8M
  resnext29_8x8d_w32: 1_420_970,
  densenet40_12: 1_019_722, // Huang et al. Table 2: 1.0M
  densenet100_12: 6_979_642, // 7.0M
  densenet_bc_100_12: 769_162, // 0.8M
  densenet_bc_250_24: 15_324_406, // 15.3M
  densenet_bc_190_40: 25_624_430, // 25.6M
  mobilenetv1: 3_217_226, // 4,231,976 at 1000 classes (4.2M)
  mobilenetv2: 2_236_682, // torchvision 3,504,872 at 1000
  mobilenetv3_small: 1_528_106, // torchvision 2,542,856 at 1000
  mobilenetv3_large: 4_214_842, // torchvision 5,483,032 at 1000
  efficientnet_b0: 4_020_358, // torchvision 5,288,548 at 1000
  efficientnet_b1: 6_525_994, // torchvision 7,794,184 at 1000
  efficientnet_b2: 7_715_084, // torchvision 9,109,994 at 1000
  efficientnet_b3: 10_711_602, // torchvision 12,233,232 at 1000
  speednet: 292_954, // 292,666 at one input channel (the speedrun's)
};

test("the parameter table covers exactly the registered models", () => {
  assert.deepEqual(
    Object.keys(PARAMS_AT_10_CLASSES).sort(),
    listModels()
      .map((m) => m.name)
      .sort(),
  );
});

for (const entry of listModels()) {
  test(`${entry.name}${entry.large ? " (large: parameters only)" : ""}: state dict, forward, backward, no leak`, () => {
    const start = liveTensors();
    manualSeed(0);
    const model = createModel(entry.name, { numClasses: NUM_CLASSES });
    try {
      const params = model.namedParameters();
      const expectedKeys = [...params, ...model.namedBuffers()].map(([k]) => k).sort();
      assert.deepEqual([...model.stateDict().keys()].sort(), expectedKeys, "state dict = parameters + buffers");
      assert.ok(params.length > 0 && model.numParameters() > 0);
      // The classifier's weight is the last [NUM_CLASSES, F] parameter; at 10 classes the model
      // has 3·(F + 1) more parameters, which gives the 10-class count the table pins.
      const classifier = params.filter(([, p]) => p.shape.length === 2 && p.shape[0] === NUM_CLASSES).at(-1);
      assert.ok(classifier !== undefined, "the classifier is a [numClasses, F] weight");
      const features = classifier[1].shape[1] as number;
      assert.equal(model.numParameters() + (10 - NUM_CLASSES) * (features + 1), PARAMS_AT_10_CLASSES[entry.name]);
      if (entry.large) return;

      model.eval();
      const logits = scope(() => noGrad(() => model.forward(randn([2, 3, 32, 32])).toArray()));
      assert.equal(logits.length, 2 * NUM_CLASSES, "eval output is [2, numClasses]");
      assert.ok(
        logits.every((v) => Number.isFinite(v)),
        "eval logits are finite",
      );

      model.train();
      scope(() => {
        const out = model.forward(randn([2, 3, 32, 32]));
        assert.deepEqual(out.shape, [2, NUM_CLASSES]);
        crossEntropy(out, randint(0, NUM_CLASSES, [2])).backward();
        const missing = params.filter(([, p]) => p.grad === undefined).map(([k]) => k);
        assert.deepEqual(missing, [], "every parameter receives a gradient");
        const bad = params
          .filter(([, p]) => !Number.isFinite(p.grad?.abs().sum().item() ?? Number.NaN))
          .map(([k]) => k);
        assert.deepEqual(bad, [], "gradients are finite");
      });
    } finally {
      model.dispose();
    }
    assert.equal(liveTensors(), start, "live tensor count is back to its start");
  });
}

test("createModel with an unknown name suggests the closest and says how to list them all", () => {
  assert.throws(
    () => createModel("resnet2O"),
    /^ArgumentError: unknown model "resnet2O" \(did you mean "resnet20"\?\)\. List the registered models with `budgetnet models` \(listModels\(\) in code\)/,
  );
  assert.throws(
    () => createModel("resnet_does_not_exist"),
    (err: Error) =>
      /^unknown model "resnet_does_not_exist"\. List the registered models/.test(err.message) &&
      !err.message.includes("did you mean") &&
      !err.message.includes("resnet164"),
  );
});

test("every registry entry names its family, a description and its source", () => {
  for (const m of listModels()) {
    assert.ok(m.family.length > 0 && m.description.length > 0 && m.source.length > 0, m.name);
  }
});
