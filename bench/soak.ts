// `npm run bench -- soak [--steps N] [--cycles N] [--batch N] [--every N]`: does memory stay flat
// over a long run? ResNet-20 trains N steps at batch 8 through the library (scope per step,
// backward, SGD with momentum), then the model is compiled to the fused inference plan and
// disposed N times. RSS, the caching allocator's reserved bytes and the live tensor count are
// sampled along the way; the verdicts are the issue's: RSS at the end within 10% of RSS a tenth of
// the way in, and within 50 MB from a tenth of the compile cycles to the last. bench/results/soak.json.
import {
  compileInference,
  createModel,
  crossEntropy,
  liveTensors,
  manualSeed,
  memoryStats,
  planAvailable,
  randint,
  randn,
  scope,
  setNumThreads,
} from "../src";
import { SGD } from "../src/train/sgd";
import { parseBenchArgs } from "./args";
import { writeResult } from "./results";

interface Sample {
  at: number;
  rssMB: number;
  reservedMB: number;
  heapInUseMB: number;
  heapFreeMB: number;
  liveTensors: number;
}

function sample(at: number): Sample {
  const m = memoryStats();
  return {
    at,
    rssMB: m.rssBytes / 2 ** 20,
    reservedMB: m.reservedBytes / 2 ** 20,
    heapInUseMB: m.heapInUseBytes / 2 ** 20,
    heapFreeMB: m.heapFreeBytes / 2 ** 20,
    liveTensors: liveTensors(),
  };
}

const FLAGS = {
  steps: { type: "integer", valueName: "N", min: 1, default: 10_000, description: "ResNet-20 training steps" },
  cycles: { type: "integer", valueName: "N", min: 1, default: 1_000, description: "compile/dispose cycles" },
  batch: { type: "integer", valueName: "N", min: 1, default: 8, description: "training batch size" },
  every: { type: "integer", valueName: "N", min: 1, description: "sample every N steps (default steps/20)" },
  threads: { type: "integer", valueName: "N", min: 1, default: 2, description: "libtorch threads" },
} as const;

/** Runs body n times, yielding to the event loop after each, sampling memory at 1 and every `every`. */
async function repeat(label: string, n: number, every: number, body: () => void): Promise<Sample[]> {
  const samples: Sample[] = [];
  const started = Date.now();
  for (let i = 1; i <= n; i++) {
    body();
    await turn();
    if (i % every !== 0 && i !== 1) continue;
    const s = sample(i);
    samples.push(s);
    console.log(
      `${label} ${i}: rss ${s.rssMB.toFixed(0)} MB, reserved ${s.reservedMB.toFixed(0)} MB, heap in use ` +
        `${s.heapInUseMB.toFixed(0)} MB, free in heap ${s.heapFreeMB.toFixed(0)} MB, live tensors ${s.liveTensors}, ` +
        `${((Date.now() - started) / i).toFixed(1)} ms each`,
    );
  }
  return samples;
}

async function soakTraining(steps: number, batch: number, every: number): Promise<Sample[]> {
  const model = createModel("resnet20", { numClasses: 10, inChannels: 3 });
  const opt = new SGD(model.parameters(), { lr: 0.01, momentum: 0.9, weightDecay: 5e-4 });
  try {
    return await repeat("train step", steps, every, () =>
      scope(() => {
        const loss = crossEntropy(model.forward(randn([batch, 3, 32, 32])), randint(0, 10, [batch]));
        opt.zeroGrad();
        loss.backward();
        opt.step();
      }),
    );
  } finally {
    opt.dispose();
    model.dispose();
  }
}

async function soakCompile(cycles: number, every: number): Promise<Sample[]> {
  const model = createModel("resnet20", { numClasses: 10, inChannels: 3 });
  model.eval();
  try {
    return await repeat("compile cycle", cycles, every, () => {
      const plan = compileInference(model, { inputShape: [8, 3, 32, 32], precision: "fp32", winograd: "never" });
      scope(() => {
        plan.forward(randn([8, 3, 32, 32]));
      });
      plan.dispose();
    });
  } finally {
    model.dispose();
  }
}

/**
 * One turn of the event loop, as the trainer and a server take between steps: Node-API finalizers
 * (the small per-handle objects of disposed tensors) run there, so a loop that never yields
 * measures their backlog, not a leak.
 */
function turn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** The sample at or after `at` (the first one past it). */
function at(samples: Sample[], step: number): Sample {
  return samples.find((s) => s.at >= step) ?? (samples[samples.length - 1] as Sample);
}

export async function main(args: string[]): Promise<void> {
  const opts = parseBenchArgs("soak", FLAGS, args);
  if (opts === undefined) return;
  const { steps, cycles, batch } = opts;
  const every = opts.every ?? Math.max(1, Math.floor(steps / 20));
  setNumThreads(opts.threads);
  manualSeed(0);
  const training = await soakTraining(steps, batch, every);
  const reference = at(training, Math.floor(steps / 10));
  const last = training[training.length - 1] as Sample;
  const trainGrowth = last.rssMB / reference.rssMB - 1;
  const compile = planAvailable() ? await soakCompile(cycles, Math.max(1, Math.floor(cycles / 20))) : [];
  // Both measured from a warm reference (a tenth of the way in): the first steps and cycles map the
  // working set, tune Winograd per shape and fill oneDNN's primitive cache once.
  const compileRef = compile.length > 0 ? at(compile, Math.floor(cycles / 10)) : null;
  const compileGrowthMB = compileRef === null ? null : (compile[compile.length - 1] as Sample).rssMB - compileRef.rssMB;
  const verdict = {
    trainingRssWithin10Percent: trainGrowth <= 0.1,
    compileRssWithin50MB: compileGrowthMB === null ? null : compileGrowthMB <= 50,
  };
  console.log(
    `training: rss ${reference.rssMB.toFixed(0)} MB at step ${reference.at} -> ${last.rssMB.toFixed(0)} MB at step ` +
      `${last.at} (${(100 * trainGrowth).toFixed(1)}%; floor <= 10%: ${verdict.trainingRssWithin10Percent ? "PASS" : "FAIL"})`,
  );
  if (compileGrowthMB !== null)
    console.log(
      `compile/dispose: rss grew ${compileGrowthMB.toFixed(1)} MB from cycle ${compileRef?.at} to ${cycles} (floor <= 50 MB: ${verdict.compileRssWithin50MB ? "PASS" : "FAIL"})`,
    );
  writeResult("bench/results/soak.json", {
    benchmark: "soak",
    date: new Date().toISOString(),
    allocator: process.env.BUDGETNET_ALLOCATOR ?? "caching",
    config: { model: "resnet20", steps, batch, cycles },
    training,
    compile,
    trainGrowth,
    compileGrowthMB,
    verdict,
  });
}
