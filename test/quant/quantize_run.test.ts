// `budgetnet quantize` on run folders made here over the installed Fashion-MNIST (small subsets):
// the int8 folder, its loader, eval --int8, QAT, and every bad input the issue lists.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import { createModel, manualSeed, scope, type Tensor } from "../../src";
import { DataNotFoundError } from "../../src/data/dataset";
import { DataLoader } from "../../src/data/loader";
import { loadSafetensors, saveSafetensors } from "../../src/export/safetensors";
import type { Module } from "../../src/nn/module";
import { crossEntropy } from "../../src/ops/nn";
import { planAvailable } from "../../src/perf/plan";
import { int8Forward } from "../../src/quant/engine";
import { loadQuantized } from "../../src/quant/files";
import { quantizeRun } from "../../src/quant/quantize_run";
import { loadRecipe, patchRecipe } from "../../src/train/config";
import { evaluate } from "../../src/train/evaluate";
import { SGD } from "../../src/train/sgd";
import { prepareData } from "../../src/train/trainer";
import { checkNoLeaks, tempDir } from "../helpers";

checkNoLeaks();

const OPTIONS = { numClasses: 10, inChannels: 1 };
const MEAN = [0.286];
const STD = [0.353];
const recipe = (patch: Record<string, unknown> = {}) =>
  patchRecipe(loadRecipe("fashion-mnist-quick"), { trainSubset: 512, valSubset: 256, ...patch }, "test");

/** A few float SGD steps on the run's training subset, so accuracies mean something. */
function pretrain(model: Module, steps: number): void {
  const { train } = prepareData(recipe());
  const loader = new DataLoader(train, { batchSize: 64, shuffle: true, seed: 0, mean: MEAN, std: STD, numClasses: 10 });
  const sgd = new SGD(model.parameters(), { lr: 0.05, momentum: 0.9 });
  model.train();
  let step = 0;
  for (let epoch = 0; step < steps; epoch++)
    for (const b of loader.batches(epoch)) {
      if (step++ < steps)
        scope(() => {
          crossEntropy(model.forward(b.x), b.y).backward();
          sgd.step();
          sgd.zeroGrad();
        });
      for (const t of [b.x, b.y, b.target]) t.dispose();
    }
  sgd.dispose();
  model.eval();
}

/** A run folder as `budgetnet train` leaves it (config.json with its recipe, best.safetensors). */
function makeRun(opts: { pretrainSteps?: number; recipe?: Record<string, unknown> } = {}): string {
  const dir = tempDir();
  manualSeed(0);
  const model = createModel("resnet20", OPTIONS);
  try {
    if (opts.pretrainSteps) pretrain(model, opts.pretrainSteps);
    const config = {
      recipe: recipe(opts.recipe),
      model: { name: "resnet20", options: OPTIONS },
      parameters: 0,
      data: {
        dataset: "fashion-mnist",
        classNames: [..."0123456789"],
        mean: MEAN,
        std: STD,
        imageShape: [1, 28, 28],
        numClasses: 10,
      },
    };
    fs.writeFileSync(path.join(dir, "config.json"), JSON.stringify(config));
    saveSafetensors(path.join(dir, "best.safetensors"), model.stateDict());
  } finally {
    model.dispose();
  }
  return dir;
}

/** The int8 tensors of a safetensors file (its float tensors freed). */
function readInt8(file: string) {
  const { tensors, int8 } = loadSafetensors(file);
  for (const t of tensors.values()) t.dispose();
  return int8;
}

const quiet = { calibration: 128, observer: "percentile" as const, perChannel: true };

test("quantize writes RUN/int8 with I8 weights and scales; the loader gives back the int8 weights; eval --int8 matches", () => {
  const run = makeRun();
  const r = quantizeRun(run, quiet);
  assert.equal(r.dir, path.join(run, "int8"));
  assert.ok(r.int8Bytes <= 0.3 * r.floatBytes, `${r.int8Bytes} vs ${r.floatBytes}`);
  const header = JSON.parse(
    (() => {
      const buf = fs.readFileSync(path.join(r.dir, "model.safetensors"));
      return buf.toString("utf8", 8, 8 + Number(buf.readBigUInt64LE(0)));
    })(),
  );
  assert.equal(header["conv1.weight"].dtype, "I8");
  assert.equal(header["conv1.weight.scale"].dtype, "F32");
  assert.deepEqual(header["conv1.weight.scale"].shape, [16]);
  assert.equal(header["fc.weight"].dtype, "I8");
  const spec = JSON.parse(fs.readFileSync(path.join(r.dir, "quant.json"), "utf8"));
  assert.equal(spec.method, "ptq");
  assert.equal(spec.activations["relu:relu_#0"].dtype, "uint8");
  assert.equal(spec.activations.input.dtype, "int8");

  const { model, spec: loaded } = loadQuantized(r.dir);
  try {
    const int8 = readInt8(path.join(r.dir, "model.safetensors"));
    for (const [name, q] of int8) {
      const w = (model.stateDict().get(name) as Tensor).toFloat32Array();
      const scales = loaded.weights[name]?.scales as number[];
      const per = w.length / (q.shape[0] as number);
      for (let i = 0; i < w.length; i += 7)
        assert.equal(w[i], Math.fround((q.data[i] as number) * (scales[Math.floor(i / per)] as number)));
    }
  } finally {
    model.dispose();
  }
  const { val } = prepareData(recipe());
  const accuracyOf = (engine: "simulated" | "auto") => {
    const int8 = int8Forward(r.dir, { batchSize: 256, engine });
    try {
      const unused = createModel("resnet20", OPTIONS);
      const acc = evaluate(unused, val, { mean: MEAN, std: STD, forward: (x) => int8.forward(x) });
      unused.dispose();
      return { accuracy: acc.accuracy, engine: int8.engine };
    } finally {
      int8.dispose();
    }
  };
  // the simulation is what quantize reported
  const simulated = accuracyOf("simulated");
  assert.deepEqual(simulated, { accuracy: r.int8Accuracy, engine: "int8-simulated" });
  // the native int8 plan, where built, computes the same quantization with int8 kernels
  const plan = accuracyOf("auto");
  assert.equal(plan.engine, planAvailable() ? "int8-plan" : "int8-simulated");
  assert.ok(
    Math.abs(plan.accuracy - simulated.accuracy) <= 0.02,
    `plan ${plan.accuracy} vs simulated ${simulated.accuracy}`,
  );
});

test("bad input: an int8 folder as the run, a second quantization without --force, a damaged quant.json, no weights", () => {
  const run = makeRun();
  const r = quantizeRun(run, quiet);
  assert.throws(() => quantizeRun(r.dir, quiet), /is an int8 folder written by `budgetnet quantize`/);
  assert.throws(() => quantizeRun(run, quiet), /already holds a quantization.*--force/);
  const file = path.join(r.dir, "quant.json");
  const spec = JSON.parse(fs.readFileSync(file, "utf8"));
  spec.activations.input.scale = -1;
  fs.writeFileSync(file, JSON.stringify(spec));
  assert.throws(() => loadQuantized(r.dir), /quant\.json: activations\["input"\] must be/);
  fs.rmSync(path.join(r.dir, "model.safetensors"));
  assert.throws(() => int8Forward(r.dir, { batchSize: 1 }), /activations|model\.safetensors/);
  assert.throws(() => quantizeRun(tempDir(), quiet), /not a budgetnet run folder/);
  const untrained = tempDir();
  fs.copyFileSync(path.join(run, "config.json"), path.join(untrained, "config.json"));
  assert.throws(() => quantizeRun(untrained, quiet), /has not finished an epoch yet/);
});

test("one calibration image is a warning, not an error; missing data names the download command", () => {
  const run = makeRun();
  const warnings: string[] = [];
  quantizeRun(run, { ...quiet, calibration: 1, onWarning: (m) => warnings.push(m) });
  assert.ok(
    warnings.some((w) => /on 1 image: activation ranges from so few images are unreliable/.test(w)),
    warnings.join("\n"),
  );
  const noData = makeRun({ recipe: { dataRoot: tempDir() } });
  assert.throws(
    () => quantizeRun(noData, quiet),
    (e: unknown) => e instanceof DataNotFoundError || /budgetnet data download fashion-mnist --root/.test(String(e)),
  );
});

test("QAT fine-tunes the weights through the fake quantization and keeps or improves per-tensor PTQ", () => {
  const run = makeRun({ pretrainSteps: 60 });
  const opts = { ...quiet, observer: "minmax" as const, perChannel: false };
  const ptq = quantizeRun(run, { ...opts, out: path.join(run, "ptq") });
  const qat = quantizeRun(run, {
    ...opts,
    out: path.join(run, "qat"),
    qat: { epochs: 1, lr: 0.002, maxSteps: 16, batchSize: 64 },
  });
  assert.equal(qat.spec.method, "qat");
  assert.ok(qat.int8Accuracy >= ptq.int8Accuracy, `qat ${qat.int8Accuracy} < ptq ${ptq.int8Accuracy}`);
  const a = readInt8(path.join(run, "ptq", "model.safetensors")).get("layer1.0.conv1.weight");
  const b = readInt8(path.join(run, "qat", "model.safetensors")).get("layer1.0.conv1.weight");
  assert.ok(a && b && a.data.some((v, i) => v !== b.data[i]), "QAT left the int8 weights unchanged");
});
