import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import { loadSafetensors } from "../../src/export/safetensors";
import { getModelEntry } from "../../src/models";
import { maxAbsDiff } from "../../src/ops/math";
import type { Tensor } from "../../src/tensor/tensor";
import { disposeCheckpoint, loadCheckpoint } from "../../src/train/checkpoint";
import { applyOverrides, listRecipes, loadRecipe, type TrainConfig } from "../../src/train/config";
import { Progress, readMetrics } from "../../src/train/metrics";
import { loadRunModel } from "../../src/train/run";
import { TrainingDivergedError, train } from "../../src/train/trainer";
import { checkNoLeaks, tempDir } from "../helpers";

checkNoLeaks();

const quiet = { write: () => true, isTTY: false } as unknown as NodeJS.WriteStream;

/** A small real run on Fashion-MNIST: a slice of the data, few steps, one thread. */
function smallConfig(overrides: Record<string, string> = {}): TrainConfig {
  return applyOverrides(loadRecipe("fashion-mnist-quick"), {
    "train-subset": "512",
    "val-subset": "200",
    "batch-size": "64",
    epochs: "2",
    threads: "1",
    "log-every": "4",
    ...overrides,
  });
}

function weightsOf(file: string): Map<string, Tensor> {
  return loadSafetensors(file).tensors;
}

function disposeAll(m: Map<string, { dispose(): void }>): void {
  for (const t of m.values()) t.dispose();
}

test("a run interrupted mid-epoch and resumed ends with the same weights as an uninterrupted one", async () => {
  // wrn16_2 has dropout between its convs, so the libtorch RNG state must be restored too; mixup exercises the loader's RNG.
  const cfg = smallConfig({ model: "wrn16_2", "model-options": '{"dropout":0.3}', "augment.mixup": '{"alpha":1}' });
  const a = path.join(tempDir(), "a");
  const b = path.join(tempDir(), "b");
  const full = await train(cfg, { runDir: a, handleSignals: false, progress: new Progress(quiet) });
  assert.equal(full.status, "completed");
  const stop = await train(cfg, { runDir: b, handleSignals: false, stopAfterSteps: 11, progress: new Progress(quiet) });
  assert.equal(stop.status, "interrupted");
  assert.equal(stop.steps, 11);
  assert.ok(!fs.existsSync(path.join(b, "model.safetensors")), "an interrupted run has no final weights yet");
  const resumed = await train(cfg, { runDir: b, resume: true, handleSignals: false, progress: new Progress(quiet) });
  assert.equal(resumed.status, "completed");
  assert.equal(resumed.steps, full.steps);
  const wa = weightsOf(path.join(a, "model.safetensors"));
  const wb = weightsOf(path.join(b, "model.safetensors"));
  try {
    assert.deepEqual([...wa.keys()], [...wb.keys()]);
    for (const [k, t] of wa) assert.equal(maxAbsDiff(t, wb.get(k)!), 0, `weights differ at ${k}`);
  } finally {
    disposeAll(wa);
    disposeAll(wb);
  }
  assert.equal(resumed.bestValAccuracy, full.bestValAccuracy);
});

test("a short real run on a slice of Fashion-MNIST learns well above chance and writes the run folder", async () => {
  const dir = path.join(tempDir(), "run");
  const cfg = smallConfig({ "train-subset": "2000", epochs: "3", "batch-size": "100", lr: "0.05" });
  const r = await train(cfg, { runDir: dir, handleSignals: false, progress: new Progress(quiet) });
  assert.ok(r.bestValAccuracy > 0.6, `validation accuracy ${r.bestValAccuracy} should be far above chance (0.1)`);
  for (const f of ["config.json", "metrics.jsonl", "model.safetensors", "best.safetensors", "checkpoint.safetensors"])
    assert.ok(fs.existsSync(path.join(dir, f)), `${f} missing`);
  const config = JSON.parse(fs.readFileSync(path.join(dir, "config.json"), "utf8"));
  assert.equal(config.model.name, "resnet20");
  assert.equal(config.model.options.inChannels, 1);
  assert.equal(config.data.classNames.length, 10);
  assert.equal(config.recipe.seed, 0);
  const epochs = readMetrics(path.join(dir, "metrics.jsonl")).filter((m) => m.type === "epoch");
  assert.equal(epochs.length, 3);
  for (const e of epochs)
    for (const k of ["trainLoss", "valAccuracy", "lr", "imagesPerSec"]) assert.equal(typeof e[k], "number");
  // what each epoch cost the process: work done, garbage collected, memory left behind
  for (const e of epochs as Record<string, number>[]) {
    assert.ok(e.cpuSeconds > 0.2 * e.seconds, `cpuSeconds ${e.cpuSeconds} for ${e.seconds} s of training`);
    assert.ok(e.valSeconds > 0 && e.gcSeconds >= 0 && e.gcSeconds < e.seconds, JSON.stringify(e));
    assert.ok(e.rssMb > 50 && e.liveTensors > 0, JSON.stringify(e));
  }
  // no tensor leaks from one epoch to the next
  assert.equal(epochs[2]?.liveTensors, epochs[1]?.liveTensors);
  const steps = readMetrics(path.join(dir, "metrics.jsonl")).filter((m) => m.type === "step");
  assert.ok(steps.length >= 4);
  // The saved best weights rebuild the model from the run folder alone.
  const { model } = loadRunModel(dir, "best");
  assert.equal(model.numParameters(), config.parameters);
  model.dispose();
});

test("a NaN loss stops the run with a clear message and keeps the last good checkpoint", async () => {
  const dir = path.join(tempDir(), "nan");
  // The lr jumps to 1e29 after epoch 1: epoch 1 ends with a checkpoint, epoch 2 diverges.
  const cfg = smallConfig({
    epochs: "2",
    "schedule.type": "multistep",
    "schedule.per": "epoch",
    "schedule.milestones": "[1]",
    "schedule.gamma": "1e30",
  });
  await assert.rejects(
    train(cfg, { runDir: dir, handleSignals: false, progress: new Progress(quiet) }),
    (e: unknown) =>
      e instanceof TrainingDivergedError &&
      /loss became (NaN|Infinity|-Infinity) at epoch 2/.test(e.message) &&
      /checkpoint/.test(e.message),
  );
  const ck = loadCheckpoint(path.join(dir, "checkpoint.safetensors"));
  try {
    assert.deepEqual([ck.meta.epoch, ck.meta.nextBatch], [1, 0], "the epoch-1 checkpoint is kept");
    assert.ok(ck.meta.step > 0);
  } finally {
    disposeCheckpoint(ck);
  }
});

test("step statistics read several steps at a time (the GPU path) give the same journal, weights and divergence step", async () => {
  const cfg = smallConfig();
  const runs: Record<string, string> = {};
  for (const every of [1, 5]) {
    runs[every] = path.join(tempDir(), `every${every}`);
    const r = await train(cfg, {
      runDir: runs[every],
      handleSignals: false,
      statisticsEvery: every,
      progress: new Progress(quiet),
    });
    assert.equal(r.status, "completed");
  }
  const journal = (dir: string, type: string) =>
    readMetrics(path.join(dir, "metrics.jsonl"))
      .filter((m) => m.type === type)
      .map((m) => ({
        step: m.step,
        epoch: m.epoch,
        loss: m.loss,
        lr: m.lr,
        trainLoss: m.trainLoss,
        acc: m.trainAccuracy,
      }));
  for (const type of ["step", "epoch"]) {
    const [a, b] = [journal(runs[1], type), journal(runs[5], type)];
    assert.ok(a.length >= 2, `${type} lines`);
    assert.deepEqual(b, a, `${type} lines differ`);
  }
  const wa = weightsOf(path.join(runs[1], "model.safetensors"));
  const wb = weightsOf(path.join(runs[5], "model.safetensors"));
  try {
    for (const [k, t] of wa) assert.equal(maxAbsDiff(t, wb.get(k)!), 0, `weights differ at ${k}`);
  } finally {
    disposeAll(wa);
    disposeAll(wb);
  }
  // a stop between two reads still accounts every step before the checkpoint
  const stopDir = path.join(tempDir(), "stop");
  const stop = await train(cfg, {
    runDir: stopDir,
    handleSignals: false,
    statisticsEvery: 5,
    stopAfterSteps: 11,
    progress: new Progress(quiet),
  });
  assert.equal(stop.steps, 11);
  // divergence: the step named is the first non-finite loss, whichever way the losses are read
  const nan = smallConfig({
    "schedule.type": "multistep",
    "schedule.per": "epoch",
    "schedule.milestones": "[1]",
    "schedule.gamma": "1e30",
  });
  const diverged: unknown[] = [];
  for (const every of [1, 3]) {
    const dir = path.join(tempDir(), `nan${every}`);
    await assert.rejects(
      train(nan, { runDir: dir, handleSignals: false, statisticsEvery: every, progress: new Progress(quiet) }),
      TrainingDivergedError,
    );
    const line = readMetrics(path.join(dir, "metrics.jsonl")).find((m) => m.type === "diverged");
    diverged.push({ ...line, time: undefined });
  }
  assert.equal((diverged[0] as { step?: number }).step, 9, "epoch 2's first step (8 steps an epoch)");
  assert.deepEqual(diverged[1], diverged[0]);
  await assert.rejects(
    train(cfg, { runDir: path.join(tempDir(), "bad"), handleSignals: false, statisticsEvery: 0 }),
    /statisticsEvery must be an integer >= 1.*Received: statisticsEvery=0/,
  );
});

test("a run folder that already holds a run is not overwritten without --resume", async () => {
  const dir = path.join(tempDir(), "twice");
  const cfg = smallConfig({ epochs: "1" });
  await train(cfg, { runDir: dir, handleSignals: false, stopAfterSteps: 1, progress: new Progress(quiet) });
  await assert.rejects(
    train(cfg, { runDir: dir, handleSignals: false, progress: new Progress(quiet) }),
    /already holds a run/,
  );
});

test("every built-in recipe loads, names its source and a registered model", () => {
  const names = listRecipes();
  for (const required of [
    "fashion-mnist-quick",
    "efficient-resnet-cifar10",
    "resnet20-cifar10",
    "preact-resnet164-cifar100",
    "preact-resnet164-se-mixup-cifar100",
    "resnet29-cifar100",
    "resnet29-se-mixup-cifar100",
    "resnext29-cifar10",
    "wrn28-10-cifar10",
    "mini-resnet34-cifar10",
  ])
    assert.ok(names.includes(required), `recipe ${required} missing`);
  for (const n of names) {
    const r = loadRecipe(n);
    assert.ok(r.source.length > 20, `${n} must name its source`);
    assert.ok(getModelEntry(r.model), `${n}: model ${r.model} is not registered`);
  }
});

test("recipe overrides: kebab case, dotted paths, aliases; an unknown field lists the known ones", () => {
  const base = loadRecipe("resnet20-cifar10");
  const c = applyOverrides(base, {
    "batch-size": "256",
    "optimizer.lr": "0.05",
    "weight-decay": "0",
    model: "resnet56",
  });
  assert.equal(c.batchSize, 256);
  assert.equal(c.optimizer.lr, 0.05);
  assert.equal(c.optimizer.weightDecay, 0);
  assert.equal(c.model, "resnet56");
  assert.equal(c.optimizer.momentum, 0.9, "untouched nested fields survive");
  assert.throws(
    () => applyOverrides(base, { "batch-sise": "2" }),
    /unknown recipe field "batchSise"\. Known fields: .*batchSize/,
  );
  assert.throws(
    () => applyOverrides(base, { "optimizer.moment": "2" }),
    /Known fields of optimizer: type, lr, momentum/,
  );
  assert.throws(() => applyOverrides(base, { epochs: "0" }), /epochs must be an integer >= 1\. Received: epochs=0/);
  assert.throws(() => loadRecipe("no-such-recipe"), /Built-in recipes: .*fashion-mnist-quick/);
});
