// Inference speed: budgetnet (eval, no grad, one scope per call) against onnxruntime-node running
// the exported file (BatchNorm folded), both on 2 threads, in one process. Batch-1 latency
// (median over many calls) and batch-256 throughput (median over rounds) for three models; the
// two engines alternate within every round, in a rotating order, because these machines are
// shared and noisy. The outputs are compared too, so a fast wrong file cannot pass. Where the
// addon has it, budgetnet's fused float32 plan (src/perf/plan.ts) runs as a third engine.
//
//   npm run bench -- onnx [--rounds N] [--quick] [--out FILE]
import * as os from "node:os";
import * as path from "node:path";
import * as ort from "onnxruntime-node";
import { createModel, noGrad, rand, scope, setNumThreads, tensor } from "../src";
import { exportOnnx } from "../src/export/onnx";
import type { Module } from "../src/nn/module";
import { type CompiledInference, compileInference, planAvailable } from "../src/perf/plan";
import { writeResult } from "./results";

const ROOT = path.resolve(__dirname, "..", "..");
const MODELS = ["resnet20", "efficient_resnet", "mobilenetv2"];
const THREADS = 2;
const SHAPE = [3, 32, 32];
const LATENCY_BUDGET_MS = 8000;

interface Engine {
  name: "budgetnet" | "budgetnetPlan" | "onnxruntime";
  run(x: Float32Array, batch: number): Promise<Float32Array>;
}

/** The fused oneDNN plan in float32 (src/perf/plan.ts), what `budgetnet eval`/`predict` run. */
function planEngine(compiled: CompiledInference): Engine {
  return {
    name: "budgetnetPlan",
    async run(x, batch) {
      return noGrad(() => scope(() => compiled.forward(tensor(x, [batch, ...SHAPE])).toFloat32Array()));
    },
  };
}

function budgetnetEngine(model: Module): Engine {
  return {
    name: "budgetnet",
    async run(x, batch) {
      return noGrad(() => scope(() => model.forward(tensor(x, [batch, ...SHAPE])).toFloat32Array()));
    },
  };
}

function ortEngine(session: ort.InferenceSession): Engine {
  return {
    name: "onnxruntime",
    async run(x, batch) {
      const out = await session.run({ input: new ort.Tensor("float32", x, [batch, ...SHAPE]) });
      return out.logits?.data as Float32Array;
    },
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

interface Samples {
  latencyMs: number[];
  throughput: number[];
}

export async function main(args: string[]): Promise<void> {
  const quick = args.includes("--quick");
  const roundsArg = args.indexOf("--rounds");
  const rounds = roundsArg >= 0 ? Number(args[roundsArg + 1]) : quick ? 1 : 3;
  const outArg = args.indexOf("--out");
  const out = outArg >= 0 ? args[outArg + 1] : quick ? undefined : path.join(ROOT, "bench", "results", "onnx.json");
  const latencyCalls = quick ? 10 : 40;
  const throughputBatch = quick ? 32 : 256;
  const throughputCalls = 1;
  setNumThreads(THREADS);
  const results: Record<string, unknown> = {};
  for (const name of MODELS) {
    const model = createModel(name);
    model.eval();
    const bytes = exportOnnx(model, { inputShape: SHAPE, foldBn: true });
    const session = await ort.InferenceSession.create(bytes, {
      intraOpNumThreads: THREADS,
      interOpNumThreads: 1,
      executionMode: "sequential",
      graphOptimizationLevel: "all",
    });
    const compiled = planAvailable() ? compileInference(model, { precision: "fp32" }) : undefined;
    const engines = [budgetnetEngine(model), ortEngine(session), ...(compiled ? [planEngine(compiled)] : [])];
    const xs = new Map<number, Float32Array>();
    const samples: Record<string, Samples> = {
      budgetnet: { latencyMs: [], throughput: [] },
      onnxruntime: { latencyMs: [], throughput: [] },
      budgetnetPlan: { latencyMs: [], throughput: [] },
    };
    for (const b of [1, throughputBatch])
      xs.set(
        b,
        scope(() => rand([b, ...SHAPE]).toFloat32Array()),
      );
    for (let r = 0; r < rounds; r++) {
      const order = engines.map((_, i) => engines[(i + r) % engines.length] as Engine);
      for (const e of order) {
        const s = samples[e.name] as Samples;
        const x1 = xs.get(1) as Float32Array;
        for (let i = 0; i < 3; i++) await e.run(x1, 1); // warm-up
        // up to latencyCalls calls, but at least 5 and at most about LATENCY_BUDGET_MS per round
        const start = performance.now();
        for (let i = 0; i < latencyCalls && (i < 5 || performance.now() - start < LATENCY_BUDGET_MS); i++) {
          const t0 = process.hrtime.bigint();
          await e.run(x1, 1);
          s.latencyMs.push(Number(process.hrtime.bigint() - t0) / 1e6);
        }
        const xb = xs.get(throughputBatch) as Float32Array;
        if (r === 0) await e.run(xb, throughputBatch); // warm-up
        const t0 = process.hrtime.bigint();
        for (let i = 0; i < throughputCalls; i++) await e.run(xb, throughputBatch);
        const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
        s.throughput.push((throughputCalls * throughputBatch) / seconds);
      }
    }
    // agreement on the same pixels
    const check = xs.get(1) as Float32Array;
    const bnOut = await (engines[0] as Engine).run(check, 1);
    const ortOut = await (engines[1] as Engine).run(check, 1);
    const maxDiff = (a: Float32Array, b: Float32Array) =>
      a.reduce((m, v, i) => Math.max(m, Math.abs(v - (b[i] as number))), 0);
    const diff = maxDiff(bnOut, ortOut);
    const summary = (k: keyof typeof samples) => {
      const s = samples[k] as Samples;
      return { latencyMsMedian: median(s.latencyMs), imagesPerSecond: median(s.throughput) };
    };
    const row = {
      parameters: model.numParameters(),
      budgetnet: summary("budgetnet"),
      onnxruntime: summary("onnxruntime"),
      ...(compiled ? { budgetnetPlan: summary("budgetnetPlan") } : {}),
      maxAbsDiff: diff,
      ...(compiled ? { planMaxAbsDiffVsOnnxruntime: maxDiff(await (engines[2] as Engine).run(check, 1), ortOut) } : {}),
    };
    const ratios = {
      // > 1: onnxruntime is faster
      latencySpeedup: row.budgetnet.latencyMsMedian / row.onnxruntime.latencyMsMedian,
      throughputSpeedup: row.onnxruntime.imagesPerSecond / row.budgetnet.imagesPerSecond,
    };
    const planRatios = row.budgetnetPlan && {
      // > 1: the plan is faster than onnxruntime
      latencySpeedup: row.onnxruntime.latencyMsMedian / row.budgetnetPlan.latencyMsMedian,
      throughputSpeedup: row.budgetnetPlan.imagesPerSecond / row.onnxruntime.imagesPerSecond,
    };
    results[name] = { ...row, onnxruntimeOverBudgetnet: ratios, planOverOnnxruntime: planRatios, samples };
    console.log(
      `${name.padEnd(17)} batch 1: budgetnet ${row.budgetnet.latencyMsMedian.toFixed(2)} ms, onnxruntime ${row.onnxruntime.latencyMsMedian.toFixed(2)} ms (ort ${ratios.latencySpeedup.toFixed(2)}x)` +
        ` | batch ${throughputBatch}: budgetnet ${row.budgetnet.imagesPerSecond.toFixed(0)} img/s, onnxruntime ${row.onnxruntime.imagesPerSecond.toFixed(0)} img/s (ort ${ratios.throughputSpeedup.toFixed(2)}x)` +
        ` | max abs diff ${diff.toExponential(1)}`,
    );
    if (row.budgetnetPlan && planRatios)
      console.log(
        `${"".padEnd(17)} plan:   ${row.budgetnetPlan.latencyMsMedian.toFixed(2)} ms (${planRatios.latencySpeedup.toFixed(2)}x onnxruntime) | ${row.budgetnetPlan.imagesPerSecond.toFixed(0)} img/s (${planRatios.throughputSpeedup.toFixed(2)}x onnxruntime) | max abs diff vs onnxruntime ${row.planMaxAbsDiffVsOnnxruntime?.toExponential(1)}`,
      );
    compiled?.dispose();
    await session.release();
    model.dispose();
  }
  const report = {
    benchmark: "onnx",
    date: new Date().toISOString(),
    cpu: os.cpus()[0]?.model ?? "unknown",
    cores: os.availableParallelism(),
    threads: THREADS,
    rounds,
    latencyCallsPerRound: latencyCalls,
    throughputBatch,
    onnxruntime: (require("onnxruntime-node/package.json") as { version: string }).version,
    note: "shared, noisy machine: both engines alternate within each round; medians reported",
    models: results,
  };
  if (out !== undefined) {
    writeResult(out, report);
  }
}
