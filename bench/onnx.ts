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
import { type BenchOptions, parseBenchArgs } from "./args";
import { writeResult } from "./results";
import { median } from "./stats";

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

interface Samples {
  latencyMs: number[];
  throughput: number[];
}

const FLAGS = {
  rounds: {
    type: "integer",
    valueName: "N",
    min: 1,
    description: "rounds of every engine (default 3, 1 with --quick)",
  },
  quick: { type: "boolean", description: "one round of fewer calls on a smaller batch, nothing written unless --out" },
  out: {
    type: "string",
    valueName: "FILE",
    description: "where to write the record (default bench/results/onnx.json)",
  },
} as const;

/** One invocation, from its flags. */
interface Settings {
  rounds: number;
  latencyCalls: number;
  throughputBatch: number;
  out: string | undefined;
}

function settings(opts: BenchOptions<typeof FLAGS>): Settings {
  return {
    rounds: opts.rounds ?? (opts.quick ? 1 : 3),
    latencyCalls: opts.quick ? 10 : 40,
    throughputBatch: opts.quick ? 32 : 256,
    out: opts.out ?? (opts.quick ? undefined : path.join(ROOT, "bench", "results", "onnx.json")),
  };
}

/**
 * One round of engine e: warm-up, then up to latencyCalls batch-1 calls (at least 5, at most about
 * LATENCY_BUDGET_MS), then one timed call on a batch of throughputBatch (warmed up in round 0).
 */
async function sampleRound(e: Engine, s: Samples, xs: Map<number, Float32Array>, r: number, set: Settings) {
  const throughputCalls = 1;
  const x1 = xs.get(1) as Float32Array;
  for (let i = 0; i < 3; i++) await e.run(x1, 1); // warm-up
  const start = performance.now();
  for (let i = 0; i < set.latencyCalls && (i < 5 || performance.now() - start < LATENCY_BUDGET_MS); i++) {
    const t0 = process.hrtime.bigint();
    await e.run(x1, 1);
    s.latencyMs.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  const xb = xs.get(set.throughputBatch) as Float32Array;
  if (r === 0) await e.run(xb, set.throughputBatch); // warm-up
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < throughputCalls; i++) await e.run(xb, set.throughputBatch);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  s.throughput.push((throughputCalls * set.throughputBatch) / seconds);
}

/** Every engine once a round, the order rotating round by round. */
async function sampleEngines(engines: Engine[], xs: Map<number, Float32Array>, set: Settings) {
  const samples: Record<string, Samples> = {
    budgetnet: { latencyMs: [], throughput: [] },
    onnxruntime: { latencyMs: [], throughput: [] },
    budgetnetPlan: { latencyMs: [], throughput: [] },
  };
  for (let r = 0; r < set.rounds; r++) {
    const order = engines.map((_, i) => engines[(i + r) % engines.length] as Engine);
    for (const e of order) await sampleRound(e, samples[e.name] as Samples, xs, r, set);
  }
  return samples;
}

const maxDiff = (a: Float32Array, b: Float32Array) =>
  a.reduce((m, v, i) => Math.max(m, Math.abs(v - (b[i] as number))), 0);

/** Medians per engine, the engines' agreement on the same pixels, and the speed ratios. */
async function modelRow(model: Module, engines: Engine[], samples: Record<string, Samples>, check: Float32Array) {
  const bnOut = await (engines[0] as Engine).run(check, 1);
  const ortOut = await (engines[1] as Engine).run(check, 1);
  const plan = engines[2];
  const diff = maxDiff(bnOut, ortOut);
  const summary = (k: keyof typeof samples) => {
    const s = samples[k] as Samples;
    return { latencyMsMedian: median(s.latencyMs), imagesPerSecond: median(s.throughput) };
  };
  const row = {
    parameters: model.numParameters(),
    budgetnet: summary("budgetnet"),
    onnxruntime: summary("onnxruntime"),
    ...(plan ? { budgetnetPlan: summary("budgetnetPlan") } : {}),
    maxAbsDiff: diff,
    ...(plan ? { planMaxAbsDiffVsOnnxruntime: maxDiff(await plan.run(check, 1), ortOut) } : {}),
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
  return { ...row, onnxruntimeOverBudgetnet: ratios, planOverOnnxruntime: planRatios, samples };
}
type Row = Awaited<ReturnType<typeof modelRow>>;

function printRow(name: string, row: Row, throughputBatch: number): void {
  const ratios = row.onnxruntimeOverBudgetnet;
  console.log(
    `${name.padEnd(17)} batch 1: budgetnet ${row.budgetnet.latencyMsMedian.toFixed(2)} ms, onnxruntime ${row.onnxruntime.latencyMsMedian.toFixed(2)} ms (ort ${ratios.latencySpeedup.toFixed(2)}x)` +
      ` | batch ${throughputBatch}: budgetnet ${row.budgetnet.imagesPerSecond.toFixed(0)} img/s, onnxruntime ${row.onnxruntime.imagesPerSecond.toFixed(0)} img/s (ort ${ratios.throughputSpeedup.toFixed(2)}x)` +
      ` | max abs diff ${row.maxAbsDiff.toExponential(1)}`,
  );
  const planRatios = row.planOverOnnxruntime;
  if (row.budgetnetPlan && planRatios)
    console.log(
      `${"".padEnd(17)} plan:   ${row.budgetnetPlan.latencyMsMedian.toFixed(2)} ms (${planRatios.latencySpeedup.toFixed(2)}x onnxruntime) | ${row.budgetnetPlan.imagesPerSecond.toFixed(0)} img/s (${planRatios.throughputSpeedup.toFixed(2)}x onnxruntime) | max abs diff vs onnxruntime ${row.planMaxAbsDiffVsOnnxruntime?.toExponential(1)}`,
    );
}

/** One model: exported, loaded into onnxruntime, compiled where the plan exists, and measured. */
async function measureModel(name: string, set: Settings): Promise<Row> {
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
  for (const b of [1, set.throughputBatch])
    xs.set(
      b,
      scope(() => rand([b, ...SHAPE]).toFloat32Array()),
    );
  const samples = await sampleEngines(engines, xs, set);
  // agreement on the same pixels
  const row = await modelRow(model, engines, samples, xs.get(1) as Float32Array);
  printRow(name, row, set.throughputBatch);
  compiled?.dispose();
  await session.release();
  model.dispose();
  return row;
}

export async function main(args: string[]): Promise<void> {
  const opts = parseBenchArgs("onnx", FLAGS, args);
  if (opts === undefined) return;
  const set = settings(opts);
  setNumThreads(THREADS);
  const results: Record<string, unknown> = {};
  for (const name of MODELS) results[name] = await measureModel(name, set);
  const report = {
    benchmark: "onnx",
    date: new Date().toISOString(),
    cpu: os.cpus()[0]?.model ?? "unknown",
    cores: os.availableParallelism(),
    threads: THREADS,
    rounds: set.rounds,
    latencyCallsPerRound: set.latencyCalls,
    throughputBatch: set.throughputBatch,
    onnxruntime: (require("onnxruntime-node/package.json") as { version: string }).version,
    note: "shared, noisy machine: both engines alternate within each round; medians reported",
    models: results,
  };
  if (set.out !== undefined) {
    writeResult(set.out, report);
  }
}
