// ONNX export checked by a real consumer: every file here runs in onnxruntime-node and must give
// budgetnet's eval outputs (max abs diff < 1e-4, float32), at batch 2 and at batch 3 (the batch
// dimension is symbolic), plain, with BatchNorm folded, and with the input normalization inside.
import assert from "node:assert/strict";
import { test } from "node:test";
import { createModel, getModelEntry, type ModelOptions, manualSeed, noGrad, rand, scope, tensor } from "../../src";
import { exportOnnx, readOnnx, summarizeOnnx } from "../../src/export/onnx";
import type { Module } from "../../src/nn/module";
import { checkNoLeaks } from "../helpers";
import { maxAbs, maxAbsDiff, ortSession, randomizeBatchNorms, runOrt } from "./onnx_helpers";

checkNoLeaks();

interface Case {
  name: string;
  options?: ModelOptions;
  inputShape?: [number, number, number];
}

// The registry's small models, one or two per family, chosen to keep this file under a minute of
// CPU time (pre-activation blocks: wrn16_4; the rest of the registry: onnx_all.test.ts).
const CASES: Case[] = [
  { name: "resnet20" },
  // option-A shortcuts (strided Slice + channel Pad) on 1-channel 28x28 images (Fashion-MNIST)
  { name: "resnet20", options: { shortcut: "A", inChannels: 1 }, inputShape: [1, 28, 28] },
  { name: "se_resnet20" },
  { name: "efficient_resnet" },
  { name: "wrn16_4" },
  { name: "resnext29_8x8d_w32" },
  { name: "densenet40_12" },
  { name: "mobilenetv2" },
  { name: "mobilenetv3_small" },
  { name: "efficientnet_b0" },
];

const MEAN = [0.4914, 0.4822, 0.4465];
const STD = [0.247, 0.2435, 0.2616];
// Absolute for outputs of order one; relative for larger ones (an untrained DenseNet's logits reach
// thousands, where float32 itself cannot resolve 1e-4)
const TOLERANCE = 1e-4;

function countOps(bytes: Uint8Array, op: string): number {
  return summarizeOnnx(readOnnx(bytes)).ops[op] ?? 0;
}

/** budgetnet's eval output for pixels normalized with mean/std. */
function reference(model: Module, pixels: Float32Array, shape: number[], mean: number[], std: number[]): Float32Array {
  return noGrad(() =>
    scope(() => {
      const c = shape[1] as number;
      const x = tensor(pixels, shape)
        .sub(tensor(mean.slice(0, c)).reshape([1, c, 1, 1]))
        .div(tensor(std.slice(0, c)).reshape([1, c, 1, 1]));
      return model.forward(x).toFloat32Array();
    }),
  );
}

for (const c of CASES) {
  const entry = getModelEntry(c.name);
  const label = `${c.name}${c.options ? ` ${JSON.stringify(c.options)}` : ""}`;
  test(
    `${label}: ONNX plain, BN-folded and normalized match budgetnet eval at batch 2 and 3`,
    {
      skip: entry === undefined ? `${c.name} is not registered on this branch` : false,
    },
    async () => {
      manualSeed(7);
      const inputShape = c.inputShape ?? [3, 32, 32];
      const channels = inputShape[0];
      const model = createModel(c.name, c.options ?? {});
      try {
        randomizeBatchNorms(model);
        model.eval();
        const norm = { mean: MEAN.slice(0, channels), std: STD.slice(0, channels) };
        const plain = exportOnnx(model, { inputShape });
        const folded = exportOnnx(model, { inputShape, foldBn: true });
        const normalized = exportOnnx(model, { inputShape, foldBn: true, withNormalization: norm });
        const bnBefore = countOps(plain, "BatchNormalization");
        const bnAfter = countOps(folded, "BatchNormalization");
        // DenseNet's BatchNorms all come before their convolution (BN-ReLU-conv): nothing to fold
        if (c.name.startsWith("densenet")) assert.equal(bnAfter, bnBefore);
        else assert.ok(bnAfter < bnBefore, `folding removed no BatchNorm (${bnBefore} before, ${bnAfter} after)`);
        const sessions = await Promise.all([plain, folded, normalized].map((b) => ortSession(b)));
        for (const batch of [2, 3]) {
          const shape = [batch, ...inputShape];
          const pixels = scope(() => rand(shape).toFloat32Array());
          const expected = reference(model, pixels, shape, norm.mean, norm.std);
          const standardized = scope(() =>
            tensor(pixels, shape)
              .sub(tensor(norm.mean).reshape([1, channels, 1, 1]))
              .div(tensor(norm.std).reshape([1, channels, 1, 1]))
              .toFloat32Array(),
          );
          assert.ok(maxAbs(expected) > 1e-2, `outputs too small to compare (${maxAbs(expected)})`);
          const runs: [string, Float32Array][] = [
            ["plain", (await runOrt(sessions[0], standardized, shape)).logits],
            ["folded", (await runOrt(sessions[1], standardized, shape)).logits],
            ["normalized", (await runOrt(sessions[2], pixels, shape)).logits],
          ];
          for (const [kind, got] of runs) {
            const diff = maxAbsDiff(got, expected);
            assert.ok(
              diff < TOLERANCE * Math.max(1, maxAbs(expected)),
              `${kind} at batch ${batch}: max abs diff ${diff} (outputs up to ${maxAbs(expected)})`,
            );
          }
        }
        await Promise.all(sessions.map((s) => s.release()));
      } finally {
        model.dispose();
      }
    },
  );
}
