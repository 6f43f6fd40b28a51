// `npm run bench -- e2e`: the workload users run, end to end. The README's demo (recipe
// fashion-mnist-quick) through the CLI as scripts/demo.sh runs it (`budgetnet train`, then
// `budgetnet eval --split test`, each a fresh process, wall time around both), against the PyTorch
// peer (bench/peers/fashion_mnist.py) running the same recipe at its best: the same ResNet-20,
// one-cycle SGD Nesterov without decay on BatchNorm and biases, label smoothing, per-sample
// crop+flip, the same validation split; bf16 autocast where the CPU has native bfloat16 (as the
// recipe's precision "auto"), channels-last. Per-epoch training seconds (validation excluded on
// both sides), images/s, wall time, test accuracy, as ratios.
//
// Variants (--variants, comma-separated; each costs two full trainings):
//   recipe   the recipe as written, every core                                   (default)
//   fp32     both sides float32 (channels-last kept)
//   1thread  the recipe on one thread each
// The sides alternate order from variant to variant. Writes bench/results/e2e.json: top level
// `wallRatioVsBest` (PyTorch's wall time / budgetnet's, recipe variant), `budgetnet` and
// `pytorchBest` ({ testAccuracy, epochSeconds, wallSeconds, imagesPerSec, lastVsFirstEpoch }),
// and every variant under `variants`.
//
// With --device cuda both sides train and evaluate on the first GPU (budgetnet's addon built
// against a CUDA libtorch, docs/gpu.md; the peer puts the data on the GPU and augments there) and
// the result goes to bench/results/e2e-cuda.json; --recipe runs another Fashion-MNIST recipe.
//
//   npm run bench -- e2e [--variants recipe,fp32,1thread] [--epochs N] [--train-subset N] [--device cuda] [--recipe NAME]
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { recipesDir } from "../src/train/config";
import { effectivePrecision, fastBf16, nativeBf16 } from "../src/train/precision";
import { parseBenchArgs } from "./args";
import { writeResult } from "./results";

const ROOT = path.resolve(__dirname, "..", "..");
const BIN = path.join(ROOT, "bin", "budgetnet.js");
const PYTHON = process.env.BUDGETNET_PYTHON ?? "/usr/bin/python3";
const VARIANTS = ["recipe", "fp32", "1thread"] as const;
type Variant = (typeof VARIANTS)[number];

const FLAGS = {
  variants: {
    type: "string",
    valueName: "LIST",
    default: "recipe",
    description: "comma-separated: recipe, fp32, 1thread",
  },
  epochs: { type: "integer", valueName: "N", min: 1, description: "epochs instead of the recipe's (a quick check)" },
  "train-subset": {
    type: "integer",
    valueName: "N",
    min: 256,
    description: "train on N images instead of all (a quick check of the harness; not the figure)",
  },
  device: { type: "string", valueName: "cpu|cuda", default: "cpu", description: "where both sides train" },
  recipe: {
    type: "string",
    valueName: "NAME",
    default: "fashion-mnist-quick",
    description: "a built-in Fashion-MNIST recipe (resnet20 or speednet)",
  },
} as const;

export interface Side {
  /** The seed both sides ran with (the recipe's unless a bench set one). */
  seed?: number;
  wallSeconds: number;
  trainSeconds: number;
  evalSeconds: number;
  epochSeconds: number[];
  imagesPerSec: number;
  testAccuracy: number;
  valAccuracy: number;
  /** Last epoch's training seconds over the first's (a run that slows down shows > 1). */
  lastVsFirstEpoch: number;
  precision: string;
  threads: number;
  /**
   * budgetnet only, per epoch from its journal: CPU seconds of the process, GC seconds, resident MB
   * and live tensors at the epoch's end: a slowdown with these flat is not a leak, nor GC, nor
   * waiting (CPU seconds track the wall while libtorch's threads spin).
   */
  epochResources?: Record<"cpuSeconds" | "gcSeconds" | "rssMb" | "liveTensors", number[]>;
}

export interface Settings {
  /** A built-in recipe's name (recipes/NAME.json). */
  recipe: string;
  /** Instead of the recipe's seed. */
  seed?: number;
  threads: number;
  precision: "fp32" | "auto";
  epochs?: number;
  trainSubset?: number;
  /** "cuda": both sides on the first GPU. Default "cpu". */
  device?: "cpu" | "cuda";
}

function settings(
  v: Variant,
  o: { epochs?: number; "train-subset"?: number; device: string; recipe: string },
): Settings {
  const cores = os.availableParallelism();
  return {
    recipe: o.recipe,
    device: o.device === "cuda" ? "cuda" : "cpu",
    threads: v === "1thread" ? 1 : cores,
    precision: v === "fp32" ? "fp32" : "auto",
    epochs: o.epochs,
    trainSubset: o["train-subset"],
  };
}

function run(cmd: string, args: string[], env: Record<string, string>): { stdout: string; seconds: number } {
  const t0 = performance.now();
  const r = spawnSync(cmd, args, {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
    env: { ...process.env, ...env },
    maxBuffer: 64 << 20,
  });
  if (r.status !== 0)
    throw new Error(`${path.basename(args[0] ?? cmd)} ${args.slice(1, 3).join(" ")} failed (exit ${r.status})`);
  return { stdout: r.stdout, seconds: (performance.now() - t0) / 1000 };
}

/** The recipe through the CLI as scripts/demo.sh runs it: `budgetnet train`, then `budgetnet eval --split test`. */
export function budgetnet(s: Settings): Side {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "budgetnet-bench-e2e-"));
  const env = { BUDGETNET_THREADS: String(s.threads), BUDGETNET_PLAIN: "1" };
  try {
    const extra = [
      ...(s.precision === "fp32" ? ["--precision", "fp32"] : []),
      ...(s.epochs !== undefined ? ["--epochs", String(s.epochs)] : []),
      ...(s.trainSubset !== undefined ? ["--train-subset", String(s.trainSubset)] : []),
      ...(s.seed !== undefined ? ["--seed", String(s.seed)] : []),
    ];
    const dev = s.device === "cuda" ? ["--device", "cuda"] : [];
    const train = run(process.execPath, [BIN, "train", "--recipe", s.recipe, ...extra, ...dev, "--out", dir], env);
    const ev = run(process.execPath, [BIN, "eval", "--run", dir, "--split", "test", ...dev, "--json"], env);
    const lines = fs
      .readFileSync(path.join(dir, "metrics.jsonl"), "utf8")
      .split("\n")
      .filter((l) => l.trim() !== "")
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const epochs = lines.filter((l) => l.type === "epoch");
    const epochSeconds = epochs.map((l) => Number(l.seconds));
    const config = JSON.parse(fs.readFileSync(path.join(dir, "config.json"), "utf8")) as {
      data: { train: number };
      precisionUsed?: string;
    };
    const images = config.data.train * epochSeconds.length;
    return {
      seed: s.seed,
      wallSeconds: train.seconds + ev.seconds,
      trainSeconds: train.seconds,
      evalSeconds: ev.seconds,
      epochSeconds,
      imagesPerSec: images / epochSeconds.reduce((a, b) => a + b, 0),
      testAccuracy: (JSON.parse(ev.stdout) as { accuracy: number }).accuracy,
      valAccuracy: Math.max(...epochs.map((l) => Number(l.valAccuracy))),
      lastVsFirstEpoch: (epochSeconds[epochSeconds.length - 1] as number) / (epochSeconds[0] as number),
      precision: config.precisionUsed ?? s.precision,
      threads: s.threads,
      epochResources: {
        cpuSeconds: epochs.map((l) => Number(l.cpuSeconds)),
        gcSeconds: epochs.map((l) => Number(l.gcSeconds)),
        rssMb: epochs.map((l) => Number(l.rssMb)),
        liveTensors: epochs.map((l) => Number(l.liveTensors)),
      },
    };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The precision the peer runs: the one budgetnet's "auto" resolves to for the recipe's model at
 * 1x28x28 on this machine, measured fastest for PyTorch too (src/perf/choices.ts: at 16-128
 * channels float32 beats bf16 autocast in both frameworks even where the CPU has native bf16).
 */
function peerPrecision(s: Settings): "fp32" | "bf16" {
  const recipe = JSON.parse(fs.readFileSync(path.join(recipesDir(), `${s.recipe}.json`), "utf8")) as { model: string };
  return effectivePrecision({ precision: s.precision, device: s.device }, recipe.model, [1, 28, 28]);
}

/** The PyTorch peer (bench/peers/fashion_mnist.py) running the same recipe at its best (channels-last). */
export function pytorch(s: Settings): Side {
  const script = path.join(ROOT, "bench", "peers", "fashion_mnist.py");
  const args = [
    script,
    path.join(recipesDir(), `${s.recipe}.json`),
    "--threads",
    String(s.threads),
    "--precision",
    peerPrecision(s),
    "--channels-last",
    ...(s.epochs !== undefined ? ["--epochs", String(s.epochs)] : []),
    ...(s.trainSubset !== undefined ? ["--train-subset", String(s.trainSubset)] : []),
    ...(s.seed !== undefined ? ["--seed", String(s.seed)] : []),
    ...(s.device === "cuda" ? ["--device", "cuda"] : []),
  ];
  const r = run(PYTHON, args, { OMP_NUM_THREADS: String(s.threads) });
  const last = r.stdout
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .find((o) => o.result === true);
  if (last === undefined) throw new Error(`the PyTorch peer printed no result:\n${r.stdout}`);
  const epochSeconds = last.epochSeconds as number[];
  return {
    seed: s.seed,
    // the process's whole life, like the CLI's two (interpreter and data loading included)
    wallSeconds: r.seconds,
    trainSeconds: Number(last.trainSeconds),
    evalSeconds: Number(last.evalSeconds),
    epochSeconds,
    imagesPerSec: Number(last.imagesPerSec),
    testAccuracy: Number(last.testAccuracy),
    valAccuracy: Number(last.valAccuracy),
    lastVsFirstEpoch: (epochSeconds[epochSeconds.length - 1] as number) / (epochSeconds[0] as number),
    precision: String(last.precision),
    threads: s.threads,
  };
}

/** The machine a Fashion-MNIST benchmark ran on, for its result file. */
export function machineInfo(): {
  cpu: string;
  cores: number;
  nativeBf16: boolean;
  fastBf16: boolean;
  loadAverage: number[];
} {
  return {
    cpu: os.cpus()[0]?.model ?? "unknown",
    cores: os.availableParallelism(),
    nativeBf16: nativeBf16(),
    fastBf16: fastBf16(),
    loadAverage: os.loadavg(),
  };
}

export function show(name: string, s: Side): string {
  return (
    `${name.padEnd(10)} wall ${s.wallSeconds.toFixed(1)} s, ${s.imagesPerSec.toFixed(0)} img/s (${s.precision}, ${s.threads} thread${s.threads > 1 ? "s" : ""}), ` +
    `epochs ${s.epochSeconds.map((x) => x.toFixed(1)).join(" ")} s (last/first ${s.lastVsFirstEpoch.toFixed(3)}), test ${(100 * s.testAccuracy).toFixed(2)}%` +
    (s.epochResources === undefined
      ? ""
      : `\n${"".padEnd(10)} per epoch: CPU ${s.epochResources.cpuSeconds.map((x) => x.toFixed(1)).join(" ")} s, ` +
        `GC ${s.epochResources.gcSeconds.map((x) => x.toFixed(2)).join(" ")} s, RSS ${s.epochResources.rssMb.map((x) => x.toFixed(0)).join(" ")} MB, ` +
        `live tensors ${s.epochResources.liveTensors.join(" ")}`)
  );
}

export async function main(argv: string[]): Promise<void> {
  const o = parseBenchArgs("e2e", FLAGS, argv);
  if (o === undefined) return;
  const variants = String(o.variants)
    .split(",")
    .filter((v) => v !== "");
  for (const v of variants)
    if (!(VARIANTS as readonly string[]).includes(v))
      throw new Error(`--variants: unknown variant ${v}; known: ${VARIANTS.join(", ")}`);
  if (o.device !== "cpu" && o.device !== "cuda") throw new Error(`--device must be cpu or cuda. Received: ${o.device}`);
  const cuda = o.device === "cuda";
  console.log(
    `e2e: ${o.recipe} through the CLI against the PyTorch peer${cuda ? " on the GPU" : ""}; native bf16 on this CPU: ${nativeBf16() ? (fastBf16() ? "yes" : "yes, but not faster than fp32") : "no"}; ` +
      `load average ${os
        .loadavg()
        .map((x) => x.toFixed(2))
        .join(" ")}`,
  );
  const results: Record<string, { budgetnet: Side; pytorchBest: Side; wallRatio: number; throughputRatio: number }> =
    {};
  for (const [i, v] of variants.entries()) {
    const s = settings(v as Variant, o);
    const order = i % 2 === 0 ? (["budgetnet", "pytorch"] as const) : (["pytorch", "budgetnet"] as const);
    const got: Partial<Record<"budgetnet" | "pytorch", Side>> = {};
    for (const side of order) {
      got[side] = side === "budgetnet" ? budgetnet(s) : pytorch(s);
      console.log(`${v}: ${show(side, got[side] as Side)}`);
    }
    const ours = got.budgetnet as Side;
    const peer = got.pytorch as Side;
    results[v] = {
      budgetnet: ours,
      pytorchBest: peer,
      wallRatio: peer.wallSeconds / ours.wallSeconds,
      throughputRatio: ours.imagesPerSec / peer.imagesPerSec,
    };
    console.log(
      `${v}: wall ratio (PyTorch / budgetnet) ${(peer.wallSeconds / ours.wallSeconds).toFixed(3)}, training throughput ratio ${(ours.imagesPerSec / peer.imagesPerSec).toFixed(3)}, ` +
        `accuracy ${(100 * (ours.testAccuracy - peer.testAccuracy)).toFixed(2)} points`,
    );
  }
  const main = results.recipe ?? Object.values(results)[0];
  const record = {
    benchmark: "e2e",
    recipe: o.recipe,
    device: o.device,
    partial: o.epochs !== undefined || o["train-subset"] !== undefined,
    wallRatioVsBest: main?.wallRatio ?? null,
    budgetnet: main?.budgetnet ?? null,
    pytorchBest: main?.pytorchBest ?? null,
    variants: results,
    machine: machineInfo(),
    timestamp: new Date().toISOString(),
  };
  const suffix = o.recipe === "fashion-mnist-quick" ? "" : `-${o.recipe}`;
  const name = `${cuda ? "e2e-cuda" : "e2e"}${suffix}`;
  writeResult(path.join("bench", "results", `${name}.json`), record);
}
