// `budgetnet export` on a run folder made here (config.json + model.safetensors): the ONNX file
// runs in onnxruntime-node with the run's preprocessing, safetensors round-trips, and bad flags
// are usage errors.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import { createModel, loadSafetensors, noGrad, rand, scope, tensor } from "../../src";
import { parseArgs, UsageError } from "../../src/cli/args";
import { exportCommand } from "../../src/cli/export";
import { loadOnnx } from "../../src/export/onnx";
import { saveSafetensors } from "../../src/export/safetensors";
import { checkNoLeaks, tempDir } from "../helpers";
import { maxAbsDiff, ortSession, randomizeBatchNorms, runOrt } from "./onnx_helpers";

checkNoLeaks();

const CLASSES = ["T-shirt", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Boot"];
const MEAN = [0.286];
const STD = [0.353];

/** A run folder as `budgetnet train` leaves it; returns its path and the model's eval outputs for `pixels`. */
function makeRun(pixels: Float32Array, shape: number[]): { dir: string; expected: Float32Array } {
  const dir = tempDir();
  const options = { numClasses: 10, inChannels: 1 };
  const model = createModel("resnet20", options);
  try {
    randomizeBatchNorms(model);
    model.eval();
    const config = {
      model: { name: "resnet20", options },
      data: { classNames: CLASSES, mean: MEAN, std: STD, imageShape: [1, 28, 28], numClasses: 10 },
    };
    fs.writeFileSync(path.join(dir, "config.json"), JSON.stringify(config));
    saveSafetensors(path.join(dir, "model.safetensors"), model.stateDict());
    const expected = noGrad(() =>
      scope(() => {
        const x = tensor(pixels, shape)
          .sub(MEAN[0] as number)
          .div(STD[0] as number);
        return model.forward(x).toFloat32Array();
      }),
    );
    return { dir, expected };
  } finally {
    model.dispose();
  }
}

function runCli(argv: string[]): number {
  const write = process.stdout.write;
  process.stdout.write = (() => true) as typeof process.stdout.write;
  try {
    return exportCommand.run(parseArgs(argv, exportCommand)) as number;
  } finally {
    process.stdout.write = write;
  }
}

test("budgetnet export --format onnx --fold-bn --with-normalization runs in onnxruntime on [0, 1] pixels", async () => {
  const shape = [3, 1, 28, 28];
  const pixels = scope(() => rand(shape).toFloat32Array());
  const { dir, expected } = makeRun(pixels, shape);
  const out = path.join(dir, "fashion.onnx");
  assert.equal(runCli(["--run", dir, "--out", out, "--fold-bn", "--with-normalization", "--probabilities"]), 0);
  const m = loadOnnx(out);
  assert.deepEqual(JSON.parse(m.metadata.class_names as string), CLASSES);
  assert.deepEqual(JSON.parse(m.metadata.mean as string), MEAN);
  assert.equal(m.metadata.model_name, "resnet20");
  assert.ok(!m.nodes.some((n) => n.opType === "BatchNormalization"));
  const session = await ortSession(fs.readFileSync(out));
  const got = await runOrt(session, pixels, shape);
  assert.ok(maxAbsDiff(got.logits as Float32Array, expected) < 1e-4);
  await session.release();
});

test("budgetnet export --format safetensors keeps every tensor and the model's name", () => {
  const shape = [1, 1, 28, 28];
  const { dir } = makeRun(
    scope(() => rand(shape).toFloat32Array()),
    shape,
  );
  assert.equal(runCli(["--run", dir, "--format", "safetensors"]), 0);
  const { tensors, metadata } = loadSafetensors(path.join(dir, "export.safetensors"));
  const original = loadSafetensors(path.join(dir, "model.safetensors"));
  try {
    assert.deepEqual([...tensors.keys()].sort(), [...original.tensors.keys()].sort());
    assert.equal(metadata.model_name, "resnet20");
    assert.deepEqual(JSON.parse(metadata.input_shape as string), [1, 28, 28]);
  } finally {
    for (const t of [...tensors.values(), ...original.tensors.values()]) t.dispose();
  }
});

test("budgetnet export refuses a missing --run, an unknown format and onnx flags on safetensors", () => {
  assert.throws(
    () => runCli([]),
    (e: Error) => e instanceof UsageError && /--run DIR is required/.test(e.message),
  );
  assert.throws(() => runCli(["--run", "x", "--format", "tflite"]), /--format must be one of onnx, safetensors/);
  assert.throws(
    () => runCli(["--run", "x", "--format", "safetensors", "--fold-bn"]),
    /--fold-bn applies only to --format onnx/,
  );
  assert.throws(() => runCli(["--run", tempDir()]), /is not a budgetnet run folder/);
});
