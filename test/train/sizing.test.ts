// The trainer sizes the model to the data: classes, channels, image size and a pool that fits.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import { summary } from "../../src/analysis/summary";
import { loadDataset } from "../../src/data";
import { analyticCost, createModel } from "../../src/models";
import { randn } from "../../src/ops/creation";
import { ArgumentError } from "../../src/tensor/errors";
import { scope } from "../../src/tensor/scope";
import { applyOverrides, loadRecipe, type TrainConfig } from "../../src/train/config";
import { Progress } from "../../src/train/metrics";
import { checkImageSizeSetting, lastMapSide, recipeInput, sizeModelToData } from "../../src/train/sizing";
import { train } from "../../src/train/trainer";
import { checkNoLeaks, tempDir } from "../helpers";

checkNoLeaks();

const quiet = { write: () => true, isTTY: false } as unknown as NodeJS.WriteStream;
const FASHION = { channels: 1, height: 28, width: 28, numClasses: 10 };
/** A small Efficient ResNet (three stages, one block each) so building and training it is quick. */
const SMALL_EFFICIENT = { blocks: [1, 1, 1], channels: 8 };

test("efficient_resnet on 1x28x28 gets imageSize 28 and poolSize 7 from the data, and runs on it", () => {
  const sized = sizeModelToData("efficient_resnet", SMALL_EFFICIENT, FASHION);
  assert.equal(sized.options.imageSize, 28);
  assert.equal(sized.options.poolSize, 7);
  assert.equal(sized.options.inChannels, 1);
  assert.equal(sized.options.numClasses, 10);
  assert.deepEqual(Object.keys(sized.derived).sort(), ["imageSize", "inChannels", "numClasses", "poolSize"]);
  assert.match(sized.derived.poolSize?.reason ?? "", /7x7 on 28x28 inputs; 7 pools it to 1x1, as 8 does on 32x32/);
  // poolSize 7 pools the 7x7 map to 1x1 as 8 does on 32x32: the classifier has the same inputs
  const at32 = analyticCost("efficient_resnet", { ...SMALL_EFFICIENT, inChannels: 1 }, [1, 32, 32]);
  const at28 = analyticCost("efficient_resnet", sized.options, [1, 28, 28]);
  assert.equal(at28?.params, at32?.params);
  const model = createModel("efficient_resnet", sized.options);
  try {
    const shape = scope(() => model.forward(randn([2, 1, 28, 28])).shape);
    assert.deepEqual(shape, [2, 10]);
  } finally {
    model.dispose();
  }
});

test("a default pool that fits the data is kept; the last map is found from the family's cost", () => {
  assert.equal(lastMapSide("efficient_resnet", { inChannels: 3 }, 3, 32), 8);
  assert.equal(lastMapSide("efficient_resnet", { inChannels: 3 }, 3, 28), 7);
  assert.equal(lastMapSide("efficient_resnet", { inChannels: 3 }, 3, 16), 4);
  assert.equal(lastMapSide("efficient_resnet", { inChannels: 3, blocks: [1, 1, 1, 1] }, 3, 32), 4);
  const cifar = sizeModelToData("efficient_resnet", {}, { channels: 3, height: 32, width: 32, numClasses: 10 });
  assert.equal(cifar.options.poolSize, undefined, "the name's default 8 fits 32x32 and stays");
  assert.equal(cifar.derived.poolSize, undefined);
  const big = sizeModelToData("efficient_resnet", {}, { channels: 3, height: 64, width: 64, numClasses: 10 });
  assert.equal(big.options.poolSize, undefined, "8 fits the 16x16 map of 64x64 inputs");
  const tiny = sizeModelToData("efficient_resnet", {}, { channels: 3, height: 16, width: 16, numClasses: 10 });
  assert.equal(tiny.options.poolSize, 4);
  // four stages halve 32 three times: the 4x4 map takes the whole default grid (1x1) with pool 4
  const deep = sizeModelToData("efficient_resnet", { blocks: [1, 1, 1, 1] }, FASHION);
  assert.equal(deep.options.poolSize, 4);
  // a family without a pool or image size gets classes and channels only
  const cifarNet = sizeModelToData("resnet20", {}, FASHION);
  assert.deepEqual(cifarNet.options, { numClasses: 10, inChannels: 1 });
});

test("user settings that contradict the data are refused, saying which values fit", () => {
  const refuses = (options: Record<string, unknown>, data: typeof FASHION, pattern: RegExp) =>
    assert.throws(
      () => sizeModelToData("efficient_resnet", options, data),
      (e: Error) => e instanceof ArgumentError && pattern.test(e.message),
    );
  refuses(
    { poolSize: 8 },
    FASHION,
    /modelOptions\.poolSize 8 does not fit efficient_resnet on 28x28 inputs: its last feature map is 7x7, so poolSize must be 0 \(global average pooling\) or 1 to 7/,
  );
  refuses({ imageSize: 32 }, FASHION, /modelOptions\.imageSize 32 does not match the data's 28x28 images/);
  refuses({ inChannels: 3 }, FASHION, /modelOptions\.inChannels 3 does not match the data's 1-channel images/);
  refuses({ numClasses: 100 }, FASHION, /modelOptions\.numClasses 100 does not match the data's 10 classes/);
  const wide = { channels: 3, height: 24, width: 32, numClasses: 3 };
  refuses({ poolSize: 4 }, wide, /poolSize 4 needs square images .* the data's are 24x32/);
  // user values that fit are kept as given
  const fits = sizeModelToData("efficient_resnet", { poolSize: 3, imageSize: 28 }, FASHION);
  assert.equal(fits.options.poolSize, 3);
  assert.equal(fits.derived.poolSize, undefined);
  assert.equal(fits.derived.imageSize, undefined);
  // non-square images take global pooling when the user did not choose a pool
  const global = sizeModelToData("efficient_resnet", SMALL_EFFICIENT, wide);
  assert.equal(global.options.poolSize, 0);
  assert.match(global.derived.poolSize?.reason ?? "", /not square/);
});

test("the built-in data sets' shapes are known without reading them, and match what loads", async () => {
  const cfg = loadRecipe("fashion-mnist-quick");
  const input = await recipeInput(cfg);
  const ds = loadDataset("fashion-mnist", { split: "train" });
  assert.deepEqual(
    [input.channels, input.height, input.width, input.numClasses],
    [ds.channels, ds.height, ds.width, ds.numClasses],
  );
  const cifar = await recipeInput(loadRecipe("resnet29-cifar100"));
  assert.deepEqual([cifar.channels, cifar.height, cifar.numClasses], [3, 32, 100]);
  // imageSize resizes folders only: on Fashion-MNIST it must be 28 or absent, not silently ignored
  const resized = applyOverrides(cfg, { "image-size": "32" });
  assert.throws(
    () => checkImageSizeSetting(resized, 28, 28),
    /imageSize 32 resizes image folders only; fashion-mnist images are 28x28/,
  );
  await assert.rejects(recipeInput(resized), /imageSize 32 resizes image folders only/);
  checkImageSizeSetting(applyOverrides(cfg, { "image-size": "28" }), 28, 28);
});

/** The demo recipe on a slice of Fashion-MNIST, float32, cosine (one-cycle needs more steps), one thread. */
function smallRun(overrides: Record<string, string>): TrainConfig {
  return applyOverrides(loadRecipe("fashion-mnist-quick"), {
    schedule: "cosine",
    "train-subset": "256",
    "val-subset": "64",
    "batch-size": "64",
    epochs: "1",
    threads: "1",
    precision: "fp32",
    "channels-last": "false",
    ...overrides,
  });
}

test("`train --model efficient_resnet` on Fashion-MNIST trains, and config.json records what the data decided", async () => {
  const dir = path.join(tempDir(), "run");
  const cfg = smallRun({
    model: "efficient_resnet",
    "model-options.blocks": "[1,1,1]",
    "model-options.channels": "8",
  });
  let started: { parameters: number; macs: number } | undefined;
  const r = await train(cfg, {
    runDir: dir,
    handleSignals: false,
    stopAfterSteps: 2,
    progress: new Progress(quiet),
    onStart: (s) => {
      started = { parameters: s.size.parameters, macs: s.size.macs };
    },
  });
  assert.equal(r.steps, 2);
  const config = JSON.parse(fs.readFileSync(path.join(dir, "config.json"), "utf8"));
  assert.equal(config.model.options.imageSize, 28);
  assert.equal(config.model.options.poolSize, 7);
  assert.equal(config.derivedModelOptions.poolSize.value, 7);
  assert.match(config.derivedModelOptions.poolSize.reason, /last feature map, 7x7 on 28x28/);
  assert.deepEqual(config.recipe.modelOptions, SMALL_EFFICIENT, "the recipe keeps what the user set");
  // the start report gives the built model's size (counted from its options, checked here on the model)
  const model = createModel(config.model.name, config.model.options);
  try {
    const s = summary(model, { inputShape: [1, 28, 28] });
    assert.deepEqual(started, { parameters: s.params, macs: s.macs });
    assert.equal(config.parameters, s.params);
  } finally {
    model.dispose();
  }
});

test("a run is refused before training when its settings cannot fit the data", async () => {
  const pool = smallRun({ model: "efficient_resnet", "model-options.pool-size": "8" });
  await assert.rejects(
    train(pool, { runDir: path.join(tempDir(), "pool"), handleSignals: false, progress: new Progress(quiet) }),
    /poolSize 8 does not fit efficient_resnet on 28x28 inputs: .* 1 to 7/,
  );
  const size = smallRun({ "image-size": "32" });
  await assert.rejects(
    train(size, { runDir: path.join(tempDir(), "size"), handleSignals: false, progress: new Progress(quiet) }),
    /imageSize 32 resizes image folders only/,
  );
});
