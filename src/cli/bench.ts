// `budgetnet bench MODEL`: inference latency at batch 1 and throughput at batch 256 on this
// machine, at budgetnet's CPU settings (Conv+BN folded, c10::InferenceMode, and the model's
// measured precision and layout from src/perf/choices.ts unless overridden), or, where the addon
// has it, the fused oneDNN plan (src/perf/plan.ts) with its precision timed per batch size.
import { median } from "../analysis/stats";
import { createModel } from "../models";
import type { Module } from "../nn/module";
import { randn } from "../ops/creation";
import { castModel } from "../perf/cast";
import { toChannelsLast, toChannelsLastInput } from "../perf/channels_last";
import { bestSetting, preferChannelsLast } from "../perf/choices";
import { foldBatchNorm } from "../perf/fold";
import { inferenceMode } from "../perf/inference";
import type { CompiledInference } from "../perf/plan";
import { keep, scope } from "../tensor/scope";
import { getNumThreads, type Tensor } from "../tensor/tensor";
import { sizeModelToData } from "../train/sizing";
import { defineCommand, type FlagSpec, type FlagValues, UsageError } from "./args";
import { compileForEngine, ENGINE_FLAG } from "./engine";

function timeBatches(net: { forward(x: Tensor): Tensor }, x: Tensor, warmup: number, iters: number): number[] {
  const step = () => inferenceMode(() => scope(() => void net.forward(x)));
  for (let i = 0; i < warmup; i++) step();
  const ms: number[] = [];
  for (let i = 0; i < iters; i++) {
    const t0 = performance.now();
    step();
    ms.push(performance.now() - t0);
  }
  return ms;
}

/** What one `budgetnet bench` measures, from its flags and the model's measured best setting. */
interface BenchSettings {
  size: number;
  channels: number;
  iters: number;
  precision: "fp32" | "bf16" | "auto";
  engine: string;
  /** libtorch path: bfloat16 weights and input, channels-last layout */
  bf16: boolean;
  channelsLast: boolean;
}

const BENCH_FLAGS = {
  "image-size": { type: "integer", valueName: "S", description: "input height and width", default: 32 },
  channels: { type: "integer", valueName: "C", description: "input channels (1 for Fashion-MNIST)", default: 3 },
  precision: {
    type: "string",
    valueName: "P",
    description: "fp32, bf16 or auto (default: the measured best for the model)",
    default: "auto",
  },
  layout: { type: "string", valueName: "L", description: "contiguous, channels-last or auto", default: "auto" },
  iters: { type: "integer", valueName: "N", description: "timed batches per measurement", default: 20 },
  engine: ENGINE_FLAG,
  json: { type: "boolean", description: "print JSON instead of text" },
} as const satisfies Record<string, FlagSpec>;

function readSettings(flags: FlagValues<typeof BENCH_FLAGS>, name: string): BenchSettings {
  const { "image-size": size, channels, iters, precision, layout } = flags;
  if (size < 1 || channels < 1)
    throw new UsageError(
      `--image-size and --channels must be >= 1. Received: --image-size=${size} --channels=${channels}`,
    );
  if (precision !== "fp32" && precision !== "bf16" && precision !== "auto")
    throw new UsageError(`--precision must be fp32, bf16 or auto. Received: --precision=${precision}`);
  if (layout !== "contiguous" && layout !== "channels-last" && layout !== "auto")
    throw new UsageError(`--layout must be contiguous, channels-last or auto. Received: --layout=${layout}`);
  if (iters < 1) throw new UsageError(`--iters must be >= 1. Received: --iters=${iters}`);
  const shape = [channels, size, size] as const;
  const best = bestSetting(name, shape, "infer");
  // "auto" takes the measured best precision (bestSetting: bf16 only where it pays on this CPU,
  // fastBf16()), then the layout measured for the precision it runs
  const bf16 = precision === "auto" ? best.precision === "bf16" : precision === "bf16";
  return {
    size,
    channels,
    iters,
    precision,
    engine: flags.engine,
    bf16,
    channelsLast:
      layout === "auto" ? preferChannelsLast(name, shape, bf16 ? "bf16" : "fp32", "infer") : layout === "channels-last",
  };
}

/** Median ms per batch of the compiled plan, which is disposed after. */
function timePlan(compiled: CompiledInference, shape: number[], iterations: number): number {
  const x = keep(randn(shape));
  try {
    return median(timeBatches(compiled, x, 3, iterations));
  } finally {
    x.dispose();
    compiled.dispose();
  }
}

/** Median ms per batch of a BatchNorm-folded copy of the model, in the settings' precision and layout. */
function timeFolded(model: Module, s: BenchSettings, shape: number[], iterations: number) {
  const folded = foldBatchNorm(model, { inputShape: [2, s.channels, s.size, s.size] });
  const net = folded.model;
  if (s.channelsLast) toChannelsLast(net);
  // The folded copy is inference-only: bf16 is explicit bfloat16 weights and input, cast once.
  if (s.bf16) castModel(net, "bfloat16");
  const x = keep(
    scope(() => {
      const r = randn(shape, { dtype: s.bf16 ? "bfloat16" : "float32" });
      return s.channelsLast ? toChannelsLastInput(r) : r;
    }),
  );
  try {
    return { ms: median(timeBatches(net, x, 3, iterations)), pairs: folded.pairs };
  } finally {
    x.dispose();
    net.dispose();
  }
}

/** Latency at batch 1 and throughput at batch 256, each on the plan where --engine gives one. */
function measure(model: Module, s: BenchSettings) {
  const results: Record<string, number> = {};
  const plans: Record<string, unknown> = {};
  let pairs: unknown[] = [];
  let engineUsed = "libtorch";
  for (const [batch, key] of [
    [1, "latency"],
    [256, "throughput"],
  ] as const) {
    const iterations = batch === 1 ? s.iters * 5 : s.iters;
    const shape = [batch, s.channels, s.size, s.size];
    // the fused plan, compiled for this batch size (precision timed when "auto")
    const plan = compileForEngine(s.engine, model, { inputShape: shape, precision: s.precision });
    let ms: number;
    if (plan.compiled) {
      engineUsed = "plan";
      plans[key] = { ...plan.compiled.summary, timings: plan.compiled.timings };
      ms = timePlan(plan.compiled, shape, iterations);
    } else {
      if (plan.note !== undefined && s.engine === "auto") plans[key] = { fallback: plan.note };
      ({ ms, pairs } = timeFolded(model, s, shape, iterations));
    }
    if (key === "latency") results.latencyMsBatch1 = ms;
    else results.imagesPerSecBatch256 = (batch / ms) * 1000;
  }
  return { results, plans, pairs, engineUsed };
}

function report(name: string, s: BenchSettings, m: ReturnType<typeof measure>, json: boolean): void {
  const { results, plans, pairs } = m;
  const planned = (k: string) => (plans[k] as { precision?: string } | undefined)?.precision;
  const settings =
    m.engineUsed === "plan"
      ? {
          engine: "plan",
          precision: `${planned("latency")}/${planned("throughput")}`,
          plans,
          threads: getNumThreads(),
        }
      : {
          engine: "libtorch",
          precision: s.bf16 ? "bf16" : "fp32",
          layout: s.channelsLast ? "channels-last" : "contiguous",
          foldedBatchNorms: pairs.length,
          threads: getNumThreads(),
          ...(Object.keys(plans).length > 0 ? { plans } : {}),
        };
  const how =
    m.engineUsed === "plan"
      ? `fused oneDNN plan, ${settings.precision} (batch 1/256)`
      : `libtorch, ${settings.precision}, ${(settings as { layout: string }).layout}, ${pairs.length} BatchNorms folded`;
  if (json)
    process.stdout.write(
      `${JSON.stringify({ model: name, imageSize: s.size, channels: s.channels, ...settings, ...results })}\n`,
    );
  else
    process.stdout.write(
      `${name} ${s.channels}x${s.size}x${s.size}, ${how}, ${settings.threads} threads\n` +
        `  latency, batch 1:      ${(results.latencyMsBatch1 as number).toFixed(2)} ms (median)\n` +
        `  throughput, batch 256: ${(results.imagesPerSecBatch256 as number).toFixed(0)} images/s (median batch)\n`,
    );
}

export const benchCommand = defineCommand({
  name: "bench",
  summary: "Measure a model's inference latency (batch 1) and throughput (batch 256) on this CPU.",
  positionals: [{ name: "MODEL", description: "a registered model name (see `budgetnet models`)" }],
  flags: BENCH_FLAGS,
  run(args) {
    const name = args.positionals[0] as string;
    const s = readSettings(args.flags, name);
    // sized as the trainer sizes it for such images (channels, and a pool that fits the size)
    const { options } = sizeModelToData(
      name,
      {},
      {
        channels: s.channels,
        height: s.size,
        width: s.size,
        numClasses: 10,
      },
    );
    const model = createModel(name, options);
    let measured: ReturnType<typeof measure>;
    try {
      measured = measure(model, s);
    } finally {
      model.dispose();
    }
    report(name, s, measured, args.flags.json === true);
    return 0;
  },
});
