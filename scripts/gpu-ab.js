#!/usr/bin/env node
// A/B on the GPU (scripts/gpu-check.sh bench runs it): epoch seconds of a short demo-recipe run with the step statistics read each
// step (statisticsEvery 1) and 25 steps at a time (the default on a GPU).
const path = require("node:path");
const os = require("node:os");
const { applyOverrides, loadRecipe } = require("../dist/src/train/config");
const { Progress, readMetrics } = require("../dist/src/train/metrics");
const { train } = require("../dist/src/train/trainer");
const quiet = { write: () => true, isTTY: false };
(async () => {
  for (const every of [1, 25, 1, 25]) {
    const cfg = applyOverrides(loadRecipe("fashion-mnist-quick"), {
      "train-subset": "25600",
      "val-subset": "512",
      epochs: "2",
      device: "cuda",
    });
    const dir = path.join(os.tmpdir(), `ab-${every}-${Date.now()}`);
    await train(cfg, { runDir: dir, handleSignals: false, statisticsEvery: every, progress: new Progress(quiet) });
    const ep = readMetrics(path.join(dir, "metrics.jsonl")).filter((m) => m.type === "epoch");
    console.log(
      JSON.stringify({
        statisticsEvery: every,
        epochSeconds: ep.map((e) => e.seconds),
        imagesPerSec: ep.map((e) => Math.round(e.imagesPerSec)),
        trainLoss: ep.map((e) => e.trainLoss),
      }),
    );
  }
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
