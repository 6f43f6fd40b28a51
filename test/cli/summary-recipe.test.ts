// `budgetnet summary --recipe R --model-options...` gives the size of the model `budgetnet train`
// builds for that recipe and those flags, on that recipe's data.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import { summary } from "../../src/analysis/summary";
import { createModel } from "../../src/models";
import { applyOverrides, loadRecipe } from "../../src/train/config";
import { Progress } from "../../src/train/metrics";
import { train } from "../../src/train/trainer";
import { checkNoLeaks, tempDir } from "../helpers";

checkNoLeaks();

const BIN = path.resolve(__dirname, "../../../bin/budgetnet.js");
const env = { ...process.env, BUDGETNET_THREADS: "1", BUDGETNET_PLAIN: "1" };
const quiet = { write: () => true, isTTY: false } as unknown as NodeJS.WriteStream;

function run(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: "utf8", env });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

interface SummaryJson {
  model: string;
  options: Record<string, unknown>;
  derived: Record<string, { value: unknown }>;
  inputShape: number[];
  params: number;
  macs: number;
  activationBytes: number;
}

/** The same flags as `budgetnet train` takes them. */
const MODEL_FLAGS = {
  model: "efficient_resnet",
  "model-options.blocks": "[1,1,1]",
  "model-options.channels": "8",
  "model-options.se-blocks": "true",
};

test("summary --recipe with model options equals summary() of the model the trainer builds", async () => {
  const flags = Object.entries(MODEL_FLAGS).flatMap(([k, v]) => [`--${k}`, v]);
  const r = run("summary", "--recipe", "fashion-mnist-quick", ...flags, "--json");
  assert.equal(r.status, 0, r.stderr);
  const s = JSON.parse(r.stdout) as SummaryJson;

  // The trainer, given the same recipe and flags, sets a run up (two steps) and records its model.
  const dir = path.join(tempDir(), "run");
  const cfg = applyOverrides(loadRecipe("fashion-mnist-quick"), {
    ...MODEL_FLAGS,
    schedule: "cosine",
    "train-subset": "128",
    "val-subset": "32",
    "batch-size": "64",
    epochs: "1",
    threads: "1",
  });
  await train(cfg, { runDir: dir, handleSignals: false, stopAfterSteps: 1, progress: new Progress(quiet) });
  const config = JSON.parse(fs.readFileSync(path.join(dir, "config.json"), "utf8"));
  const model = createModel(config.model.name, config.model.options);
  try {
    const built = summary(model, { inputShape: config.data.imageShape });
    assert.equal(s.model, config.model.name);
    assert.deepEqual(s.options, config.model.options);
    assert.deepEqual(s.inputShape, config.data.imageShape);
    assert.equal(s.params, built.params);
    assert.equal(s.macs, built.macs);
    assert.equal(s.activationBytes, built.activationBytes);
  } finally {
    model.dispose();
  }
  assert.equal(s.derived.poolSize?.value, 7, "the pool that fits 28x28 inputs, as the trainer chose it");
  assert.equal(config.model.options.poolSize, 7);
});

test("summary --recipe uses the recipe's model and data set; its text names the input and what it decided", () => {
  const r = run("summary", "--recipe", "resnet29-cifar100", "--json");
  assert.equal(r.status, 0, r.stderr);
  const s = JSON.parse(r.stdout) as SummaryJson & { outputShape: number[] };
  assert.equal(s.model, "resnet29");
  assert.deepEqual(s.inputShape, [3, 32, 32]);
  assert.deepEqual(s.outputShape, [100]);
  const text = run("summary", "efficient_resnet", "--recipe", "fashion-mnist-quick");
  assert.equal(text.status, 0, text.stderr);
  assert.match(text.stdout, /^input: recipe fashion-mnist-quick, fashion-mnist: 10 classes of 1x28x28 images$/m);
  assert.match(text.stdout, /^ {2}poolSize 7: the default 8 exceeds the last feature map, 7x7 on 28x28 inputs/m);
  assert.match(text.stdout, /^activations: /m);
});

test("summary refuses what would not change the model, and a pool that does not fit says which do", () => {
  const channels = run("summary", "--recipe", "fashion-mnist-quick", "--in-channels", "3");
  assert.equal(channels.status, 2);
  assert.match(channels.stderr, /--in-channels comes from the recipe's data set/);
  const pool = run("summary", "efficient_resnet", "--recipe", "fashion-mnist-quick", "--model-options.pool-size", "8");
  assert.equal(pool.status, 2);
  assert.match(pool.stderr, /poolSize must be 0 \(global average pooling\) or 1 to 7/);
  const epochs = run("summary", "resnet20", "--epochs", "3");
  assert.equal(epochs.status, 2);
  assert.match(epochs.stderr, /unknown flag --epochs for `summary`/);
  // without a recipe, model options still reach the model (flags as train takes them)
  const plain = run(
    "summary",
    "efficient_resnet",
    "--model-options.blocks",
    "[1,1,1]",
    "--model-options.channels",
    "8",
    "--json",
  );
  assert.equal(plain.status, 0, plain.stderr);
  const s = JSON.parse(plain.stdout) as SummaryJson;
  assert.deepEqual(s.options.blocks, [1, 1, 1]);
  assert.deepEqual(s.inputShape, [3, 32, 32]);
});
