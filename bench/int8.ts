// `npm run bench -- int8`: what int8 buys a trained compact model, in one run, per model:
//   accuracy  test accuracy of float32 (libtorch), int8 post-training (`budgetnet quantize`, the
//             int8 plan through `budgetnet eval --int8`), int8 QAT (`quantize --qat`), and
//             onnxruntime on the exported QDQ model (`budgetnet export --int8`)
//   size      int8 weights file against the float32 one
//   speed     the int8 plan's throughput (batch 256) and latency (batch 1) against the bf16 and
//             fp32 plans, and onnxruntime running the same int8 ONNX
// Models come as trained runs (--run MODEL=DIR, repeatable through commas) or are trained here on
// Fashion-MNIST with the demo recipe (--train-epochs, --train-subset; short recipes are fine).
// Floors (issue 18): PTQ within 0.5 points of float32 and QAT within 0.3 on resnet20; the int8
// file at most 0.3x; the int8 plan at least 1.3x the bf16 plan's throughput on resnet20;
// onnxruntime within 0.1 points of budgetnet's int8 accuracy. Writes bench/results/int8.json.
//
//   npm run bench -- int8 [--models resnet20,mobilenetv2,efficient_resnet] [--run resnet20=DIR,...]
//                         [--train-epochs 1] [--train-subset N] [--qat-steps 300] [--threads 2]
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as ort from "onnxruntime-node";
import { loadDataset } from "../src/data";
import { loadQuantized } from "../src/quant/files";
import { readRunConfig } from "../src/train/run";
import { parseBenchArgs, UsageError } from "./args";
import { measureInt8Plan } from "./int8_plan";
import { writeResult } from "./results";
import { median } from "./stats";

const ROOT = path.resolve(__dirname, "..", "..");
const BIN = path.join(ROOT, "bin", "budgetnet.js");

const FLAGS = {
  models: {
    type: "string",
    valueName: "a,b",
    default: "resnet20,mobilenetv2,efficient_resnet",
    description: "models to quantize",
  },
  run: { type: "string", valueName: "M=DIR,...", description: "trained runs to use instead of training here" },
  "train-epochs": { type: "integer", valueName: "N", min: 1, default: 1, description: "epochs when training here" },
  "train-subset": { type: "integer", valueName: "N", min: 256, description: "training images when training here" },
  "qat-steps": { type: "integer", valueName: "N", min: 1, default: 300, description: "QAT fine-tuning steps" },
  "qat-models": {
    type: "string",
    valueName: "a,b",
    description: "models that get the QAT figure (default: all; QAT on the large nets takes long on 2 cores)",
  },
  threads: { type: "integer", valueName: "N", min: 1, default: 2, description: "threads for the speed figures" },
} as const;

function cli(args: string[], env: Record<string, string> = {}): string {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
    env: { ...process.env, BUDGETNET_PLAIN: "1", ...env },
    maxBuffer: 64 << 20,
  });
  if (r.status !== 0) throw new Error(`budgetnet ${args.slice(0, 3).join(" ")} failed (exit ${r.status})`);
  return r.stdout;
}

const evalJson = (args: string[]): { accuracy: number; engine: string } =>
  JSON.parse(cli(["eval", ...args, "--split", "test", "--json"])) as { accuracy: number; engine: string };

/** onnxruntime on the exported model: test accuracy (the run's normalization), images/s at 256, ms at 1. */
async function onnxruntime(
  file: string,
  runDir: string,
  threads: number,
): Promise<{ testAccuracy: number; imagesPerSec: number; latencyMs: number }> {
  const config = readRunConfig(runDir);
  const data = config.data as { dataset: string; mean: number[]; std: number[]; imageShape: number[] };
  const test = loadDataset(data.dataset as "fashion-mnist", { split: "test" });
  const [c, h, w] = data.imageShape as [number, number, number];
  const plane = h * w;
  const session = await ort.InferenceSession.create(file, { intraOpNumThreads: threads, interOpNumThreads: 1 });
  const input = session.inputNames[0] as string;
  const batchOf = (from: number, n: number): Float32Array => {
    const x = new Float32Array(n * c * plane);
    for (let i = 0; i < n; i++)
      for (let ch = 0; ch < c; ch++)
        for (let p = 0; p < plane; p++) {
          const v = (test.images[(from + i) * c * plane + ch * plane + p] as number) / 255;
          x[i * c * plane + ch * plane + p] = (v - (data.mean[ch] as number)) / (data.std[ch] as number);
        }
    return x;
  };
  let correct = 0;
  for (let from = 0; from < test.n; from += 256) {
    const n = Math.min(256, test.n - from);
    const out = await session.run({ [input]: new ort.Tensor("float32", batchOf(from, n), [n, c, h, w]) });
    const logits = (out[session.outputNames[0] as string] as ort.Tensor).data as Float32Array;
    const k = logits.length / n;
    for (let i = 0; i < n; i++) {
      let best = 0;
      for (let j = 1; j < k; j++) if ((logits[i * k + j] as number) > (logits[i * k + best] as number)) best = j;
      if (best === test.labels[from + i]) correct++;
    }
  }
  const time = async (n: number, repeats: number): Promise<number> => {
    const feed = { [input]: new ort.Tensor("float32", batchOf(0, n), [n, c, h, w]) };
    await session.run(feed);
    const ms: number[] = [];
    for (let r = 0; r < repeats; r++) {
      const t0 = performance.now();
      await session.run(feed);
      ms.push(performance.now() - t0);
    }
    return median(ms);
  };
  const batchMs = await time(256, 7);
  const latencyMs = await time(1, 50);
  await session.release();
  return { testAccuracy: correct / test.n, imagesPerSec: 256 / (batchMs / 1000), latencyMs };
}

async function benchModel(model: string, runDir: string, o: { "qat-steps": number; threads: number; qat: boolean }) {
  const float = evalJson(["--run", runDir, "--engine", "libtorch"]);
  cli(["quantize", "--run", runDir, "--force", "--json"]);
  const ptq = evalJson(["--run", runDir, "--int8"]);
  const qatDir = path.join(runDir, "int8-qat");
  if (o.qat)
    cli([
      "quantize",
      "--run",
      runDir,
      "--qat",
      "--steps",
      String(o["qat-steps"]),
      "--out",
      qatDir,
      "--force",
      "--json",
    ]);
  const qat = o.qat ? evalJson(["--run", runDir, "--int8", "--int8-dir", qatDir]) : undefined;
  const onnxFile = path.join(runDir, "model.int8.onnx");
  cli(["export", "--run", runDir, "--format", "onnx", "--int8", "--out", onnxFile]);
  const ortFigures = await onnxruntime(onnxFile, runDir, o.threads);
  const floatBytes = fs.statSync(path.join(runDir, "best.safetensors")).size;
  const int8Bytes = fs.statSync(path.join(runDir, "int8", "model.safetensors")).size;
  // the plans: the folded model with its int8 weights, timed at batch 256 and batch 1
  const { model: folded, spec } = loadQuantized(path.join(runDir, "int8"));
  let throughput: ReturnType<typeof measureInt8Plan>;
  let latency: ReturnType<typeof measureInt8Plan>;
  try {
    const shape = { imageShape: spec.inputShape, threads: o.threads };
    throughput = measureInt8Plan(folded, spec, { ...shape, batch: 256, repeats: 7 });
    latency = measureInt8Plan(folded, spec, { ...shape, batch: 1, repeats: 50 });
  } finally {
    folded.dispose();
  }
  const ms = (ips: number) => 1000 / ips;
  return {
    model,
    runDir,
    testAccuracy: {
      float32: float.accuracy,
      int8Ptq: ptq.accuracy,
      int8Qat: qat?.accuracy ?? null,
      onnxruntimeInt8: ortFigures.testAccuracy,
      int8Engine: ptq.engine,
    },
    points: {
      ptqVsFloat: 100 * (ptq.accuracy - float.accuracy),
      qatVsFloat: qat === undefined ? null : 100 * (qat.accuracy - float.accuracy),
      onnxruntimeVsBudgetnet: 100 * (ortFigures.testAccuracy - ptq.accuracy),
    },
    bytes: { float32: floatBytes, int8: int8Bytes, ratio: int8Bytes / floatBytes },
    throughputBatch256: {
      ...throughput.imagesPerSec,
      onnxruntimeInt8: ortFigures.imagesPerSec,
      int8OverBf16: throughput.int8OverBf16,
      int8OverFp32: throughput.int8OverFp32,
    },
    latencyMsBatch1: {
      fp32: ms(latency.imagesPerSec.fp32),
      bf16: ms(latency.imagesPerSec.bf16),
      int8: ms(latency.imagesPerSec.int8),
      onnxruntimeInt8: ortFigures.latencyMs,
    },
    int8Choices: [...new Set(throughput.int8Choices)],
  };
}

export async function main(argv: string[]): Promise<void> {
  const o = parseBenchArgs("int8", FLAGS, argv);
  if (o === undefined) return;
  const models = o.models.split(",").filter((m) => m !== "");
  const given = new Map<string, string>();
  for (const pair of (o.run ?? "").split(",").filter((s) => s !== "")) {
    const [m, dir] = pair.split("=");
    if (m === undefined || dir === undefined || !fs.existsSync(dir))
      throw new UsageError(`--run takes MODEL=DIR pairs of trained runs. Received: ${pair}`);
    given.set(m, path.resolve(dir));
  }
  console.log(
    `int8 bench: ${models.join(", ")}; load average ${os
      .loadavg()
      .map((x) => x.toFixed(2))
      .join(" ")}`,
  );
  const rows = [];
  for (const model of models) {
    let runDir = given.get(model);
    if (runDir === undefined) {
      runDir = fs.mkdtempSync(path.join(os.tmpdir(), `budgetnet-bench-int8-${model}-`));
      console.log(`${model}: training with the demo recipe into ${runDir}`);
      cli([
        "train",
        "--recipe",
        "fashion-mnist-quick",
        "--model",
        model,
        "--epochs",
        String(o["train-epochs"]),
        ...(o["train-subset"] !== undefined ? ["--train-subset", String(o["train-subset"])] : []),
        "--out",
        runDir,
      ]);
    }
    const qatModels = o["qat-models"]?.split(",") ?? models;
    const row = await benchModel(model, runDir, { ...o, qat: qatModels.includes(model) });
    const a = row.testAccuracy;
    console.log(
      `${model}: test float32 ${(100 * a.float32).toFixed(2)}%, int8 PTQ ${(100 * a.int8Ptq).toFixed(2)}% (${a.int8Engine}), QAT ${a.int8Qat === null ? "not run" : `${(100 * a.int8Qat).toFixed(2)}%`}, onnxruntime int8 ${(100 * a.onnxruntimeInt8).toFixed(2)}%; ` +
        `file ${row.bytes.ratio.toFixed(2)}x; batch 256 images/s fp32 ${row.throughputBatch256.fp32.toFixed(0)}, bf16 ${row.throughputBatch256.bf16.toFixed(0)}, int8 ${row.throughputBatch256.int8.toFixed(0)} (${row.throughputBatch256.int8OverBf16.toFixed(2)}x bf16), onnxruntime int8 ${row.throughputBatch256.onnxruntimeInt8.toFixed(0)}; ` +
        `batch 1 ms int8 ${row.latencyMsBatch1.int8.toFixed(2)}, bf16 ${row.latencyMsBatch1.bf16.toFixed(2)}, onnxruntime ${row.latencyMsBatch1.onnxruntimeInt8.toFixed(2)}`,
    );
    rows.push(row);
  }
  const r20 = rows.find((r) => r.model === "resnet20");
  const floors =
    r20 === undefined
      ? null
      : {
          ptqWithin05: r20.points.ptqVsFloat >= -0.5,
          qatWithin03: r20.points.qatVsFloat === null ? null : r20.points.qatVsFloat >= -0.3,
          sizeAtMost03: r20.bytes.ratio <= 0.3,
          int8Over13xBf16: r20.throughputBatch256.int8OverBf16 >= 1.3,
          onnxruntimeWithin01: Math.abs(r20.points.onnxruntimeVsBudgetnet) <= 0.1,
        };
  if (floors !== null) console.log(`floors on resnet20: ${JSON.stringify(floors)}`);
  writeResult(path.join("bench", "results", "int8.json"), {
    benchmark: "int8",
    models: rows,
    floorsResnet20: floors,
    machine: { cpu: os.cpus()[0]?.model ?? "unknown", cores: os.availableParallelism(), loadAverage: os.loadavg() },
    timestamp: new Date().toISOString(),
  });
}
