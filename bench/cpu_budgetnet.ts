// One budgetnet measurement of the CPU benchmark, in its own process (bench/cpu.ts runs it):
// one model sized to one input shape as the trainer sizes it (src/train/sizing.ts), one setting,
// training steps (forward + loss under the chosen precision, backward, SGD) and inference
// batches. Prints one JSON line: CpuMeasurement. With no iterations it only builds the model
// (parameters and config, for the peer).
import {
  createModel,
  crossEntropy,
  keep,
  manualSeed,
  noGrad,
  randint,
  randn,
  SGD,
  scope,
  setNumThreads,
  type Tensor,
  to,
} from "../src";
import type { ModelOptions } from "../src/models";
import type { Module } from "../src/nn/module";
import { autocast } from "../src/perf/autocast";
import { castModel } from "../src/perf/cast";
import { toChannelsLast, toChannelsLastInput } from "../src/perf/channels_last";
import { foldBatchNorm } from "../src/perf/fold";
import { inferenceMode } from "../src/perf/inference";
import { compileInference } from "../src/perf/plan";
import { profileOperators } from "../src/perf/trace";
import { sizeModelToData } from "../src/train/sizing";

export interface CpuSetting {
  precision: "fp32" | "bf16";
  channelsLast: boolean;
  /** Inference only: Conv+BN folded copy of the model. */
  fold: boolean;
  /** Inference only: c10::InferenceMode instead of no-grad. */
  inferenceMode: boolean;
  /** Inference only: run the fused oneDNN plan (compileInference) at this precision. */
  plan?: "fp32" | "bf16" | "auto";
}

export interface CpuConfig {
  model: string;
  /** One input image, [channels, height, width]: the model is sized to it (sizeModelToData). */
  shape: [number, number, number];
  batch: number;
  threads: number;
  warmup: number;
  trainIters: number;
  inferIters: number;
  seed: number;
  train: CpuSetting;
  infer: CpuSetting;
  /** Run the timed iterations under libtorch's operator profiler and report its table ("shapes": one row per operator and input shapes). */
  profile?: boolean | "shapes";
}

export interface ProfileRow {
  name: string;
  calls: number;
  totalMs: number;
  selfMs: number;
}

export interface CpuMeasurement {
  engine: string;
  trainMs: number[];
  inferMs: number[];
  params: number;
  threads: number;
  /** ResNet.toConfig() for the PyTorch peer (ResNet-family models). */
  config?: unknown;
  /** Inference through the fused plan: its summary and, with precision "auto", both candidates' times. */
  plan?: unknown;
  /** With cfg.profile: operator tables over the timed iterations. */
  trainProfile?: ProfileRow[];
  inferProfile?: ProfileRow[];
}

/** One phase's timings, with the operator table when profiled and the plan's summary when one ran. */
interface Timed {
  ms: number[];
  profile?: ProfileRow[];
  plan?: unknown;
}

export function timeIterations(
  warmup: number,
  iters: number,
  step: () => void,
  profile: boolean | "shapes" = false,
): Timed {
  for (let i = 0; i < warmup; i++) step();
  const ms: number[] = [];
  const timed = () => {
    for (let i = 0; i < iters; i++) {
      const t0 = performance.now();
      step();
      ms.push(performance.now() - t0);
    }
  };
  if (profile === false) {
    timed();
    return { ms };
  }
  return { ms, profile: profileOperators(timed, { recordShapes: profile === "shapes" }) };
}

function forward(model: Module, x: Tensor, s: CpuSetting): Tensor {
  return s.precision === "bf16" ? autocast(() => model.forward(x)) : model.forward(x);
}

export function measureTrain(model: Module, cfg: CpuConfig): Timed {
  const s = cfg.train;
  if (s.channelsLast) toChannelsLast(model);
  const x = keep(randn([cfg.batch, ...cfg.shape]));
  const xIn = keep(s.channelsLast ? toChannelsLastInput(x) : x);
  const y = keep(randint(0, 10, [cfg.batch], { dtype: "int64" }));
  const opt = new SGD(model.parameters(), { lr: 0.01, momentum: 0.9, weightDecay: 5e-4 });
  model.train();
  const timed = timeIterations(
    cfg.warmup,
    cfg.trainIters,
    () =>
      scope(() => {
        const loss =
          s.precision === "bf16"
            ? autocast(() => crossEntropy(model.forward(xIn), y))
            : crossEntropy(model.forward(xIn), y);
        loss.backward();
        opt.step();
        opt.zeroGrad();
      }),
    cfg.profile,
  );
  for (const t of [x, xIn, y]) t.dispose();
  return timed;
}

function measurePlan(model: Module, cfg: CpuConfig, precision: "fp32" | "bf16" | "auto"): Timed {
  const compiled = compileInference(model, { inputShape: [cfg.batch, ...cfg.shape], precision });
  const x = keep(randn([cfg.batch, ...cfg.shape]));
  const timed = timeIterations(
    cfg.warmup,
    cfg.inferIters,
    () => inferenceMode(() => scope(() => void compiled.forward(x))),
    cfg.profile,
  );
  x.dispose();
  compiled.dispose();
  return { ...timed, plan: { ...compiled.summary, timings: compiled.timings } };
}

export function measureInfer(model: Module, cfg: CpuConfig): Timed {
  const s = cfg.infer;
  if (s.plan !== undefined) return measurePlan(model, cfg, s.plan);
  const net = s.fold ? foldBatchNorm(model, { inputShape: [2, ...cfg.shape] }).model : model;
  if (s.channelsLast) toChannelsLast(net);
  net.eval();
  // A folded copy is inference-only: bf16 runs as explicit bfloat16 weights and input (one cast
  // up front) rather than autocast, which re-casts every weight on every forward.
  const explicitBf16 = s.fold && s.precision === "bf16";
  if (explicitBf16) castModel(net, "bfloat16");
  const x = keep(randn([cfg.batch, ...cfg.shape]));
  const xIn = keep(
    scope(() => {
      const y = s.channelsLast ? toChannelsLastInput(x) : x;
      return explicitBf16 ? to(y, "bfloat16") : y;
    }),
  );
  const region = (fn: () => void) => (s.inferenceMode ? inferenceMode(fn) : noGrad(fn));
  const timed = timeIterations(
    cfg.warmup,
    cfg.inferIters,
    () => region(() => scope(() => void (explicitBf16 ? net.forward(xIn) : forward(net, xIn, s)))),
    cfg.profile,
  );
  for (const t of [x, xIn]) t.dispose();
  if (net !== model) net.dispose();
  return timed;
}

/**
 * The options the trainer builds `model` with on 10 classes of images of `shape` (inChannels from
 * the data; efficient_resnet's imageSize and a pool that fits the last feature map).
 */
export function benchModelOptions(model: string, shape: [number, number, number]): ModelOptions {
  const [channels, height, width] = shape;
  return sizeModelToData(model, {}, { channels, height, width, numClasses: 10 }).options;
}

export function measure(cfg: CpuConfig): CpuMeasurement {
  setNumThreads(cfg.threads);
  manualSeed(cfg.seed);
  const options = benchModelOptions(cfg.model, cfg.shape);
  // Separate models for the two phases: training changes the weights' layout and values.
  const make = () => createModel(cfg.model, options);
  const probe = make();
  const params = probe.numParameters();
  const config = probe.toConfig();
  const infer: Timed = cfg.inferIters > 0 ? measureInfer(probe, cfg) : { ms: [] };
  probe.dispose();
  let train: Timed = { ms: [] };
  if (cfg.trainIters > 0) {
    const m = make();
    train = measureTrain(m, cfg);
    m.dispose();
  }
  const out: CpuMeasurement = {
    engine: "budgetnet",
    trainMs: train.ms,
    inferMs: infer.ms,
    params,
    threads: cfg.threads,
    config,
  };
  if (infer.plan !== undefined) out.plan = infer.plan;
  if (cfg.profile) Object.assign(out, { trainProfile: train.profile, inferProfile: infer.profile });
  return out;
}

if (require.main === module) {
  const cfg = JSON.parse(process.argv[2] ?? "") as CpuConfig;
  process.stdout.write(`${JSON.stringify(measure(cfg))}\n`);
}
