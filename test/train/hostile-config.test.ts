// Hostile or damaged configuration: recipes, overrides, run folders and data that would otherwise
// fail late with an unrelated message or give a confident wrong answer are refused up front,
// naming the file, the field and the value.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import type { ImageDataset } from "../../src/data/dataset";
import { normalizationStats } from "../../src/data/split";
import { saveSafetensors } from "../../src/export/safetensors";
import { createModel } from "../../src/models";
import { fillInPlace } from "../../src/ops/inplace";
import { noGrad } from "../../src/tensor/tensor";
import {
  applyOverrides,
  checkConfigAgainstData,
  DEFAULT_CONFIG,
  loadRecipe,
  type TrainConfig,
} from "../../src/train/config";
import { loadRunModel, readRunConfig, runRecipe } from "../../src/train/run";
import { checkNoLeaks, tempDir } from "../helpers";

checkNoLeaks();

const BIN = path.resolve(__dirname, "../../../bin/budgetnet.js");

function runCli(...args: string[]): { status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    encoding: "utf8",
    env: { ...process.env, BUDGETNET_THREADS: "1", BUDGETNET_PLAIN: "1" },
  });
  return { status: r.status, stderr: r.stderr };
}

/** One temporary folder for the file (tempDir adds an exit listener per call). */
const ROOT = tempDir();
let folders = 0;
function freshDir(): string {
  const dir = path.join(ROOT, String(folders++));
  fs.mkdirSync(dir);
  return dir;
}

function recipeFile(content: unknown): string {
  const file = path.join(freshDir(), "bad.json");
  fs.writeFileSync(file, typeof content === "string" ? content : JSON.stringify(content));
  return file;
}

const base = (): TrainConfig => loadRecipe("fashion-mnist-quick");

test("recipe fields that only exist on Object.prototype are unknown fields, in a file and on the command line", () => {
  for (const k of ["toString", "constructor", "hasOwnProperty", "__proto__"])
    assert.throws(
      () => loadRecipe(recipeFile(`{"${k}": {"epochs": 1}}`)),
      new RegExp(`bad\\.json: unknown recipe field "${k}"\\. Known fields: name, source, model`),
      k,
    );
  assert.throws(() => applyOverrides(base(), { "to-string": "5" }), /unknown recipe field "toString"/);
  assert.throws(
    () => applyOverrides(base(), { "optimizer.constructor": "5" }),
    /unknown recipe field "optimizer\.constructor"/,
  );
  assert.throws(() => applyOverrides(base(), { "__proto__.epochs": "1" }), /unknown recipe field "__proto__"/);
});

test("every recipe field is type-checked when the recipe is loaded or overridden, naming the field and value", () => {
  assert.throws(
    () => loadRecipe(recipeFile({ labelSmoothing: "0.1" })),
    /bad\.json: recipe field labelSmoothing must be a number in \[0, 1\)\. Received: labelSmoothing="0\.1"/,
  );
  assert.throws(
    () => loadRecipe(recipeFile({ optimizer: { nesterov: "yes" } })),
    /optimizer\.nesterov must be true or false\. Received: optimizer\.nesterov="yes"/,
  );
  const refused: [Record<string, string>, RegExp][] = [
    [{ "label-smoothing": "abc" }, /labelSmoothing must be a number in \[0, 1\)\. Received: labelSmoothing="abc"/],
    [{ "label-smoothing": "1" }, /labelSmoothing must be a number in \[0, 1\)\. Received: labelSmoothing=1$/],
    [{ lr: "Infinity" }, /optimizer\.lr must be a finite number > 0\. Received: optimizer\.lr=Infinity/],
    [{ lr: "0" }, /optimizer\.lr must be a finite number > 0\. Received: optimizer\.lr=0/],
    [{ epochs: "1.5" }, /epochs must be an integer >= 1\. Received: epochs=1\.5/],
    [{ "batch-size": "0" }, /batchSize must be an integer >= 1/],
    [{ "val-fraction": "0" }, /valFraction must be a number in \(0, 1\)\. Received: valFraction=0/],
    [
      { "optimizer.betas": "[0.9]" },
      /optimizer\.betas must be a list of 2 numbers in \[0, 1\)\. Received: optimizer\.betas=\[0\.9\]/,
    ],
    [{ "schedule.per": "step" }, /schedule\.per must be "epoch" or "iteration"/],
    [{ ema: '{"decay": "0.9"}' }, /ema\.decay must be a number in \[0, 1\]\. Received: ema\.decay="0\.9"/],
    [
      { clip: '{"nrm": 1}' },
      /unknown recipe field "clip\.nrm"\. Known fields of clip: value, norm\. Received: clip\.nrm=1 \(did you mean "clip\.norm"\?\)/,
    ],
    [{ "augment.crop": '{"padding": "4", "mode": "zero"}' }, /augment\.crop\.padding must be an integer >= 0/],
    [
      { "augment.crops": "null" },
      /unknown recipe field "augment\.crops"\. Known fields of augment: crop, flip, .*Received: augment\.crops=null \(did you mean "augment\.crop"\?\)/,
    ],
    [{ "image-size": "100000" }, /imageSize must be null or an integer in \[1, 4096\]/],
    [{ threads: "two" }, /threads must be null or an integer >= 1\. Received: threads="two"/],
  ];
  for (const [overrides, message] of refused) assert.throws(() => applyOverrides(base(), overrides), message);
  // a text field keeps the text given on the command line
  assert.equal(applyOverrides(base(), { name: "2024" }).name, "2024");
  assert.equal(applyOverrides(base(), { "data-root": "10" }).dataRoot, "10");
  assert.equal(applyOverrides(base(), { "data-root": "null" }).dataRoot, null);
  const auto = applyOverrides(base(), { "channels-last": "auto" });
  assert.equal(applyOverrides(auto, { "channels-last": "true" }).channelsLast, true);
  assert.equal(applyOverrides(base(), { "label-smoothing": "0.2" }).labelSmoothing, 0.2);
});

test("checkConfigAgainstData refuses a crop padding or cutout as large as the image", () => {
  const shape = { channels: 1, height: 28, width: 28, n: 1000 };
  const padded = applyOverrides(base(), { "augment.crop": '{"padding": 1000, "mode": "zero"}' });
  assert.throws(
    () => checkConfigAgainstData(padded, shape),
    /augment\.crop\.padding must be smaller than the image side \(28x28 images: at most 27.*Received: augment\.crop\.padding=1000/,
  );
  const tiny = { ...shape, height: 1, width: 1 };
  assert.throws(() => checkConfigAgainstData(base(), tiny), /crop\.padding must be smaller than the image side/);
  assert.throws(
    () => checkConfigAgainstData(applyOverrides(base(), { "augment.cutout": '{"size": 40}' }), shape),
    /augment\.cutout\.size must not exceed the image \(28x28\)/,
  );
  assert.throws(
    () => checkConfigAgainstData(base(), { ...shape, n: 100 }),
    /batchSize must not exceed the 100 training images.*Received: batchSize=128/,
  );
  checkConfigAgainstData(base(), shape);
});

test("normalizationStats refuses images that are constant in a channel, naming it", () => {
  const n = 4;
  const images = new Uint8Array(n * 2 * 3 * 3);
  for (let i = 0; i < images.length; i++) images[i] = i % 18 < 9 ? i % 7 : 51;
  const ds: ImageDataset = {
    name: "flat",
    images,
    labels: new Int32Array(n),
    n,
    channels: 2,
    height: 3,
    width: 3,
    numClasses: 1,
    classNames: ["a"],
  };
  assert.throws(
    () => normalizationStats(ds),
    /the images of "flat" are constant in channel 1 \(every pixel of all 4 images is 51\).*Received: std=\[[0-9.e-]+,0\]/,
  );
  images[17] = 52;
  assert.equal(normalizationStats(ds).std.length, 2);
});

/** A run folder with a small resnet20's weights (optionally with a NaN in fc.weight) and a config.json. */
function runFolder(edit: (config: Record<string, unknown>) => void = () => {}, nanWeights = false): string {
  const dir = freshDir();
  const model = createModel("resnet20", { depth: 8, numClasses: 2, inChannels: 1 });
  try {
    if (nanWeights) noGrad(() => fillInPlace(model.stateDict().get("fc.weight") as never, Number.NaN));
    saveSafetensors(path.join(dir, "best.safetensors"), model.stateDict());
  } finally {
    model.dispose();
  }
  const config: Record<string, unknown> = {
    recipe: { ...DEFAULT_CONFIG },
    model: { name: "resnet20", options: { depth: 8, numClasses: 2, inChannels: 1 } },
    parameters: 0,
    data: {
      dataset: "fashion-mnist",
      numClasses: 2,
      classNames: ["a", "b"],
      imageShape: [1, 8, 8],
      mean: [0.5],
      std: [0.25],
    },
  };
  edit(config);
  fs.writeFileSync(path.join(dir, "config.json"), JSON.stringify(config));
  return dir;
}

/** An edit of config.json that sets the field at a dotted path (undefined deletes it). */
function setting(dotted: string, value: unknown): (c: Record<string, unknown>) => void {
  return (c) => {
    const keys = dotted.split(".");
    let o = c;
    for (const k of keys.slice(0, -1)) o = o[k] as Record<string, unknown>;
    const last = keys[keys.length - 1] as string;
    if (value === undefined) delete o[last];
    else o[last] = value;
  };
}

test("readRunConfig checks config.json's shape and names the field that is wrong", () => {
  const { model } = loadRunModel(runFolder());
  model.dispose();
  const refused: [(c: Record<string, unknown>) => void, RegExp][] = [
    [
      (c) => {
        for (const k of Object.keys(c)) delete c[k];
      },
      /config\.json: model must be an object/,
    ],
    [setting("recipe", []), /config\.json: recipe must be an object/],
    [setting("model", undefined), /config\.json: model must be an object \{ name, options \}/],
    [setting("data.imageShape", [1, 1e5, 1e5]), /data\.imageShape must have a height and width in \[1, 4096\]/],
    [setting("data.imageShape", [7, 8, 8]), /data\.imageShape must have 1 to 4 channels/],
    [setting("data.std", [0]), /config\.json: data\.std must be > 0 in every channel; channel 0 is 0/],
    [setting("data.mean", [null]), /data\.mean must be a list of 1 finite numbers/],
    [setting("data.classNames", ["a"]), /data\.classNames must be a list of 2 class names/],
    [setting("data.numClasses", 0), /data\.numClasses must be a positive integer/],
    [setting("model.options.numClasses", 3), /model\.options\.numClasses must match data\.numClasses \(2\)/],
    [setting("recipe.labelSmoothing", "0.1"), /config\.json: recipe field labelSmoothing must be a number/],
  ];
  for (const [edit, message] of refused) assert.throws(() => readRunConfig(runFolder(edit)), message);
  // a hand-made run folder without a recipe loads its model; only reading the recipe is an error
  const bareDir = runFolder(setting("recipe", undefined));
  const { model: bare, config } = loadRunModel(bareDir);
  bare.dispose();
  assert.throws(
    () => runRecipe(config, bareDir),
    /config\.json has no recipe .* which evaluating on the run's data and resuming need/,
  );
  const broken = runFolder();
  fs.writeFileSync(path.join(broken, "config.json"), "{");
  assert.throws(() => readRunConfig(broken), /config\.json is not valid JSON/);
});

test("loadRunModel refuses weights holding NaN, naming the file and the tensor", () => {
  assert.throws(
    () => loadRunModel(runFolder(undefined, true)),
    /best\.safetensors holds NaN or infinite values in 1 tensor\(s\): fc\.weight \(128 of 128\)/,
  );
});

test("eval and predict refuse NaN weights and a zero std in config.json instead of predicting", () => {
  const nan = runCli("eval", "--run", runFolder(undefined, true), "--split", "test");
  assert.equal(nan.status, 1, nan.stderr);
  assert.match(nan.stderr, /best\.safetensors holds NaN or infinite values .*fc\.weight/);
  const flat = runCli("predict", "--run", runFolder(setting("data.std", [0])), "x.png");
  assert.equal(flat.status, 1, flat.stderr);
  assert.match(flat.stderr, /config\.json: data\.std must be > 0 in every channel/);
  // a run whose config.json says 8x8 images of 2 classes is not evaluated on Fashion-MNIST's 28x28 of 10
  const other = runCli("eval", "--run", runFolder(), "--split", "test");
  assert.equal(other.status, 1, other.stderr);
  assert.match(
    other.stderr,
    /the test data \(10 classes of 1x28x28 images\) is not what the run was trained on \(2 classes of 1x8x8/,
  );
});
