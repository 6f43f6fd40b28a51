// `npm run bench -- pipeline`: does a training step wait for data? The demo's step (ResNet-20 on
// Fashion-MNIST, batch 128, bf16 + channels-last as in recipes/fashion-mnist-quick.json) timed
// with batches from the DataLoader (shuffle, crop with padding 2, flip, normalization, prepared
// on the loader's native thread one batch ahead) against the same step fed one pre-made batch
// again and again. Rounds alternate; medians of ms per step. Writes bench/results/pipeline.json.
import * as os from "node:os";
import * as path from "node:path";
import { DataLoader } from "../src/data/loader";
import { createModel } from "../src/models";
import { crossEntropy } from "../src/ops/nn";
import { keep, scope } from "../src/tensor/scope";
import { setNumThreads, type Tensor } from "../src/tensor/tensor";
import { applyOverrides, loadRecipe } from "../src/train/config";
import { forwardWithPrecision, preparePrecision } from "../src/train/precision";
import { buildOptimization } from "../src/train/setup";
import { prepareData } from "../src/train/trainer";
import { writeResult } from "./results";

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

export async function main(args: string[]): Promise<void> {
  const steps = Number(args[args.indexOf("--steps") + 1] ?? 0) || 40;
  const rounds = Number(args[args.indexOf("--rounds") + 1] ?? 0) || 3;
  const threads = 2;
  setNumThreads(threads);
  const cfg = applyOverrides(loadRecipe("fashion-mnist-quick"), { threads: String(threads) });
  const data = prepareData(cfg);
  const model = createModel(cfg.model, { numClasses: 10, inChannels: 1 });
  preparePrecision(model, cfg);
  const opt = buildOptimization(cfg, model, Math.floor(data.train.n / cfg.batchSize));
  const loader = new DataLoader(data.train, {
    batchSize: cfg.batchSize,
    shuffle: true,
    seed: 0,
    dropLast: true,
    mean: data.mean,
    std: data.std,
    augment: { crop: { padding: 2, mode: "zero" }, flip: true },
    numClasses: 10,
  });
  const step = (x: Tensor, target: Tensor): void =>
    scope(() => {
      const loss = crossEntropy(forwardWithPrecision(model, x, cfg), target, { labelSmoothing: 0.1 });
      opt.zeroGrad();
      loss.backward();
      opt.step();
      loss.item();
    });
  // One pre-made batch, reused: the step with no data work at all.
  const first = loader.batches(99)[Symbol.iterator]().next().value as { x: Tensor; y: Tensor; target: Tensor };
  const fixedX = keep(first.x);
  const fixedT = keep(first.target);
  first.y.dispose();

  const timeLoader = (epoch: number): number => {
    let n = 0;
    let t0 = 0;
    for (const b of loader.batches(epoch)) {
      if (n === 2) t0 = performance.now(); // after warm-up
      step(b.x, b.target);
      b.x.dispose();
      b.y.dispose();
      b.target.dispose();
      if (++n === steps + 2) break;
    }
    return (performance.now() - t0) / steps;
  };
  const timeFixed = (): number => {
    for (let i = 0; i < 2; i++) step(fixedX, fixedT);
    const t0 = performance.now();
    for (let i = 0; i < steps; i++) step(fixedX, fixedT);
    return (performance.now() - t0) / steps;
  };

  const withLoader: number[] = [];
  const premade: number[] = [];
  for (let r = 0; r < rounds; r++) {
    if (r % 2 === 0) {
      withLoader.push(timeLoader(r));
      premade.push(timeFixed());
    } else {
      premade.push(timeFixed());
      withLoader.push(timeLoader(r));
    }
    console.log(
      `round ${r + 1}: loader ${withLoader[r]!.toFixed(1)} ms/step, pre-made ${premade[r]!.toFixed(1)} ms/step`,
    );
  }
  const ratio = median(withLoader) / median(premade);
  console.log(
    `median: with augmentation ${median(withLoader).toFixed(1)} ms/step, pre-made batch ${median(premade).toFixed(1)} ms/step, ratio ${ratio.toFixed(3)} (floor: <= 1.05)`,
  );
  const out = path.join(__dirname, "..", "..", "bench", "results", "pipeline.json");
  const record = {
    benchmark: "pipeline",
    recipe: cfg.name,
    steps,
    rounds,
    threads,
    machine: { cpu: os.cpus()[0]?.model ?? "unknown", cores: os.availableParallelism(), loadavg: os.loadavg() },
    msPerStepWithLoader: withLoader,
    msPerStepPremade: premade,
    ratio,
    pass: ratio <= 1.05,
    loaderWaitMs: loader.stats,
    timestamp: new Date().toISOString(),
  };
  writeResult(out, record);
  fixedX.dispose();
  fixedT.dispose();
  opt.dispose();
  model.dispose();
}
