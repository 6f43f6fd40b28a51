// `budgetnet bench MODEL`: inference latency at batch 1 and throughput at batch 256 on this
// machine, at budgetnet's CPU settings (Conv+BN folded, c10::InferenceMode, and the model's
// measured precision and layout from src/perf/choices.ts unless overridden), or, where the addon
// has it, the fused oneDNN plan (src/perf/plan.ts) with its precision timed per batch size.
import { createModel, getModelEntry, type ModelOptions } from "../models";
import { randn } from "../ops/creation";
import { castModel } from "../perf/cast";
import { toChannelsLast, toChannelsLastInput } from "../perf/channels_last";
import { bestSetting } from "../perf/choices";
import { foldBatchNorm } from "../perf/fold";
import { inferenceMode } from "../perf/inference";
import { keep, scope } from "../tensor/scope";
import { getNumThreads, type Tensor } from "../tensor/tensor";
import { type CommandSpec, UsageError } from "./args";
import { compileForEngine, ENGINE_FLAG } from "./engine";

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

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

export const benchCommand: CommandSpec = {
  name: "bench",
  summary: "Measure a model's inference latency (batch 1) and throughput (batch 256) on this CPU.",
  positionals: [{ name: "MODEL", description: "a registered model name (see `budgetnet models`)" }],
  flags: {
    "image-size": { type: "integer", valueName: "S", description: "input height and width", default: 32 },
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
  },
  run(args) {
    const name = args.positionals[0] as string;
    const size = args.flags["image-size"] as number;
    const iters = args.flags.iters as number;
    const precisionFlag = args.flags.precision as string;
    const layoutFlag = args.flags.layout as string;
    if (!["fp32", "bf16", "auto"].includes(precisionFlag))
      throw new UsageError(`--precision must be fp32, bf16 or auto. Received: --precision=${precisionFlag}`);
    if (!["contiguous", "channels-last", "auto"].includes(layoutFlag))
      throw new UsageError(`--layout must be contiguous, channels-last or auto. Received: --layout=${layoutFlag}`);
    if (iters < 1) throw new UsageError(`--iters must be >= 1. Received: --iters=${iters}`);
    const best = bestSetting(name, "infer");
    const bf16 = precisionFlag === "auto" ? best.precision === "bf16" : precisionFlag === "bf16";
    const channelsLast = layoutFlag === "auto" ? best.channelsLast : layoutFlag === "channels-last";
    const options: ModelOptions = {};
    if (getModelEntry(name)?.defaults.imageSize !== undefined) options.imageSize = size;
    const model = createModel(name, options);
    const results: Record<string, number> = {};
    const plans: Record<string, unknown> = {};
    let pairs: unknown[] = [];
    let engineUsed = "libtorch";
    try {
      for (const [batch, key] of [
        [1, "latency"],
        [256, "throughput"],
      ] as const) {
        const iterations = batch === 1 ? iters * 5 : iters;
        // the fused plan, compiled for this batch size (precision timed when "auto")
        const plan = compileForEngine(args.flags.engine as string, model, {
          inputShape: [batch, 3, size, size],
          precision: precisionFlag as "fp32" | "bf16" | "auto",
        });
        let ms: number;
        if (plan.compiled) {
          engineUsed = "plan";
          const compiled = plan.compiled;
          plans[key] = { ...compiled.summary, timings: compiled.timings };
          const x = keep(randn([batch, 3, size, size]));
          try {
            ms = median(timeBatches(compiled, x, 3, iterations));
          } finally {
            x.dispose();
            compiled.dispose();
          }
        } else {
          if (plan.note !== undefined && args.flags.engine === "auto") plans[key] = { fallback: plan.note };
          const folded = foldBatchNorm(model, { inputShape: [2, 3, size, size] });
          pairs = folded.pairs;
          const net = folded.model;
          if (channelsLast) toChannelsLast(net);
          // The folded copy is inference-only: bf16 is explicit bfloat16 weights and input, cast once.
          if (bf16) castModel(net, "bfloat16");
          const x = keep(
            scope(() => {
              const r = randn([batch, 3, size, size], { dtype: bf16 ? "bfloat16" : "float32" });
              return channelsLast ? toChannelsLastInput(r) : r;
            }),
          );
          try {
            ms = median(timeBatches(net, x, 3, iterations));
          } finally {
            x.dispose();
            net.dispose();
          }
        }
        if (key === "latency") results.latencyMsBatch1 = ms;
        else results.imagesPerSecBatch256 = (batch / ms) * 1000;
      }
    } finally {
      model.dispose();
    }
    const planned = (k: string) => (plans[k] as { precision?: string } | undefined)?.precision;
    const settings =
      engineUsed === "plan"
        ? {
            engine: "plan",
            precision: `${planned("latency")}/${planned("throughput")}`,
            plans,
            threads: getNumThreads(),
          }
        : {
            engine: "libtorch",
            precision: bf16 ? "bf16" : "fp32",
            layout: channelsLast ? "channels-last" : "contiguous",
            foldedBatchNorms: pairs.length,
            threads: getNumThreads(),
            ...(Object.keys(plans).length > 0 ? { plans } : {}),
          };
    const how =
      engineUsed === "plan"
        ? `fused oneDNN plan, ${settings.precision} (batch 1/256)`
        : `libtorch, ${settings.precision}, ${(settings as { layout: string }).layout}, ${pairs.length} BatchNorms folded`;
    if (args.flags.json)
      process.stdout.write(`${JSON.stringify({ model: name, imageSize: size, ...settings, ...results })}\n`);
    else
      process.stdout.write(
        `${name} ${size}x${size}, ${how}, ${settings.threads} threads\n` +
          `  latency, batch 1:      ${(results.latencyMsBatch1 as number).toFixed(2)} ms (median)\n` +
          `  throughput, batch 256: ${(results.imagesPerSecBatch256 as number).toFixed(0)} images/s (median batch)\n`,
      );
    return 0;
  },
};
