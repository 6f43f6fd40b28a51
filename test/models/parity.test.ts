// Forward parity with PyTorch through the file format users ship: budgetnet saves the weights
// as safetensors, the PyTorch peer (test/peers/resnet_cifar.py) reads the file by hand, loads it
// strictly into the same network written in PyTorch and returns its eval-mode logits.
import assert from "node:assert/strict";
import * as path from "node:path";
import { test } from "node:test";
import { createModel, type ModelOptions, manualSeed, noGrad, randn, saveSafetensors, scope } from "../../src";
import type { SpeedNet } from "../../src/models/speednet";
import type { Module } from "../../src/nn";
import { checkNoLeaks, peerSkip, runPython, tempDir } from "../helpers";

checkNoLeaks();

const PEER = path.resolve(__dirname, "../../../test/peers/resnet_cifar.py");
const skip = peerSkip();
const dir = tempDir();

/** Moves BN running statistics off their initial 0/1 so the eval-mode comparison covers them. */
function warmBatchNorm(model: Module, inChannels: number, size: number): void {
  model.train();
  scope(() => {
    noGrad(() => model.forward(randn([4, inChannels, size, size]).mul(2).add(0.5)));
  });
  model.eval();
}

function compare(name: string, options: ModelOptions, peerFamily: string, peerConfig: (m: Module) => unknown): void {
  const inChannels = (options.inChannels as number | undefined) ?? 3;
  const size = (options.imageSize as number | undefined) ?? 32;
  manualSeed(7);
  const model = createModel(name, options);
  try {
    warmBatchNorm(model, inChannels, size);
    const weights = path.join(dir, `${name}.safetensors`);
    const input = path.join(dir, `${name}-x.safetensors`);
    const ours = scope(() => {
      const x = randn([2, inChannels, size, size]);
      saveSafetensors(weights, model.stateDict());
      saveSafetensors(input, { x });
      return noGrad(() => model.forward(x)).toArray();
    });
    const peer = runPython<{ logits: number[]; keys: string[] }>(
      `import runpy, sys; sys.argv = [${JSON.stringify(PEER)}]; runpy.run_path(${JSON.stringify(PEER)}, run_name="__main__")`,
      { family: peerFamily, config: peerConfig(model), weights, input },
    );
    assert.deepEqual([...model.stateDict().keys()].sort(), [...peer.keys].sort());
    assert.equal(ours.length, peer.logits.length);
    const maxAbsDiff = Math.max(...ours.map((v, i) => Math.abs(v - (peer.logits[i] as number))));
    assert.ok(maxAbsDiff < 1e-4, `max |budgetnet - PyTorch| = ${maxAbsDiff}`);
  } finally {
    model.dispose();
  }
}

test("resnet20 eval logits match PyTorch after a safetensors round trip (max abs diff < 1e-4)", { skip }, () => {
  compare("resnet20", {}, "resnet_cifar", () => ({
    depth: 20,
    num_classes: 10,
    in_channels: 3,
    shortcut: "B",
    se: 0,
    width: 1,
  }));
});

const resnetConfig = (m: Module): unknown => m.toConfig();

// The other ResNet families, at reduced width where that keeps the peer quick: every block kind
// (post/pre-activation, basic/bottleneck), SE in blocks and after the stem, F/K/P of Efficient ResNets.
const CASES: [string, ModelOptions][] = [
  ["se_resnet29", {}],
  ["resnet29", { preact: false, finalNorm: false }],
  ["preact_resnet18", { baseWidth: 8 }],
  ["resnet18", { baseWidth: 8, numClasses: 7 }],
  ["resnet50", { baseWidth: 4, layers: [1, 1, 1, 1] }],
  ["efficient_resnet", { channels: 8 }],
  ["efficient_resnet", { channels: 8, blocks: [1, 2], convKernels: [5, 3], skipKernels: 3, poolSize: 4 }],
  ["efficient_resnet", { channels: 8, inChannels: 1, imageSize: 28, poolSize: 7 }],
];
for (const [name, options] of CASES)
  test(`${name} ${JSON.stringify(options)} eval logits match the PyTorch peer via safetensors`, { skip }, () => {
    compare(name, options, "resnet", resnetConfig);
  });

// SpeedNet (bench/peers/speednet.py): conv-pool-BN blocks, global max-pool; relu and gelu
const SPEEDNET_CASES: ModelOptions[] = [
  { inChannels: 1 },
  { widths: [8, 16], stemWidth: 4, convsPerBlock: 3, activation: "gelu", numClasses: 7 },
];
for (const options of SPEEDNET_CASES)
  test(`speednet ${JSON.stringify(options)} eval logits match the PyTorch peer via safetensors`, { skip }, () => {
    compare("speednet", options, "speednet", (m) => (m as SpeedNet).plan);
  });
