// `npm run bench -- pipeline`: does a training step wait for data? The demo's step (ResNet-20 on
// Fashion-MNIST, batch 128, bf16 + channels-last as in recipes/fashion-mnist-quick.json) timed
// with batches from the DataLoader (shuffle, crop with padding 2, flip, normalization, prepared
// on the loader's native thread one batch ahead) against the same step fed one pre-made batch
// again and again. Rounds alternate; medians of ms per step. Writes bench/results/pipeline.json.
//
//   npm run bench -- pipeline [--steps N] [--rounds N]
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
import { parseBenchArgs } from "./args";
import { writeResult } from "./results";
import { median } from "./stats";

const FLAGS = {
  steps: { type: "integer", valueName: "N", min: 1, default: 40, description: "timed training steps per measurement" },
  rounds: { type: "integer", valueName: "N", min: 1, default: 3, description: "rounds, each timing both feeds" },
} as const;
const THREADS = 2;

/** The demo's model, optimizer and training step, and its augmenting loader. */
function setUp() {
  const cfg = applyOverrides(loadRecipe("fashion-mnist-quick"), { threads: String(THREADS) });
  const data = prepareData(cfg);
  const model = createModel(cfg.model, { numClasses: 10, inChannels: 1 });
  preparePrecision(model, cfg, [data.train.channels, data.train.height, data.train.width]);
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
  return { cfg, model, opt, loader, step };
}
type Demo = ReturnType<typeof setUp>;

/** Milliseconds per step over `steps` steps fed by the loader, after two warm-up steps. */
function timeLoader({ loader, step }: Demo, epoch: number, steps: number): number {
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
}

/** Milliseconds per step over `steps` steps on one pre-made batch: no data work at all. */
function timeFixed({ step }: Demo, x: Tensor, target: Tensor, steps: number): number {
  for (let i = 0; i < 2; i++) step(x, target);
  const t0 = performance.now();
  for (let i = 0; i < steps; i++) step(x, target);
  return (performance.now() - t0) / steps;
}

export async function main(args: string[]): Promise<void> {
  const opts = parseBenchArgs("pipeline", FLAGS, args);
  if (opts === undefined) return;
  const { steps, rounds } = opts;
  setNumThreads(THREADS);
  const demo = setUp();
  // One pre-made batch, reused: the step with no data work at all.
  const first = demo.loader.batches(99)[Symbol.iterator]().next().value as { x: Tensor; y: Tensor; target: Tensor };
  const fixedX = keep(first.x);
  const fixedT = keep(first.target);
  first.y.dispose();

  const withLoader: number[] = [];
  const premade: number[] = [];
  for (let r = 0; r < rounds; r++) {
    if (r % 2 === 0) {
      withLoader.push(timeLoader(demo, r, steps));
      premade.push(timeFixed(demo, fixedX, fixedT, steps));
    } else {
      premade.push(timeFixed(demo, fixedX, fixedT, steps));
      withLoader.push(timeLoader(demo, r, steps));
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
    recipe: demo.cfg.name,
    steps,
    rounds,
    threads: THREADS,
    machine: { cpu: os.cpus()[0]?.model ?? "unknown", cores: os.availableParallelism(), loadavg: os.loadavg() },
    msPerStepWithLoader: withLoader,
    msPerStepPremade: premade,
    ratio,
    pass: ratio <= 1.05,
    loaderWaitMs: demo.loader.stats,
    timestamp: new Date().toISOString(),
  };
  writeResult(out, record);
  fixedX.dispose();
  fixedT.dispose();
  demo.opt.dispose();
  demo.model.dispose();
}
