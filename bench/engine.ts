// The engine benchmark: CIFAR ResNet-20 (272,474 parameters, option B), batch 128, float32,
// 2 threads, random 3x32x32 images and labels; training (SGD with momentum, one step per
// iteration) and inference (eval mode, no grad) in images/s, for budgetnet, budgetnet with
// the allocator tuning off (BUDGETNET_ALLOCATOR=default, read at addon load) and PyTorch on the
// same libtorch. Each measurement is its own process; the three alternate round by round (in a
// rotating order) because these machines are shared and noisy, and medians are reported.
//
//   npm run bench -- engine [--rounds N] [--quick] [--out FILE]
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import type { EngineConfig, EngineMeasurement } from "./engine_budgetnet";
import { median } from "./engine_budgetnet";
import { writeResult } from "./results";

const ROOT = path.resolve(__dirname, "..", "..");
const PYTHON = process.env.BUDGETNET_PYTHON ?? "/usr/bin/python3";
const FLOOR = 0.95;

const CONFIG: EngineConfig = Object.freeze({
  model: "resnet20",
  batch: 128,
  threads: 2,
  trainWarmup: 5,
  trainIters: 20,
  inferWarmup: 5,
  inferIters: 30,
  lr: 0.1,
  momentum: 0.9,
  weightDecay: 5e-4,
  seed: 0,
});

type Variant = "budgetnet" | "budgetnet-untuned" | "pytorch" | "budgetnet-gc-between-steps";
const VARIANTS: Variant[] = ["budgetnet", "budgetnet-untuned", "pytorch"];

function runVariant(variant: Variant, cfg: EngineConfig): EngineMeasurement {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    BUDGETNET_THREADS: String(cfg.threads),
    OMP_NUM_THREADS: String(cfg.threads),
  };
  delete env.BUDGETNET_ALLOCATOR;
  if (variant === "budgetnet-untuned") env.BUDGETNET_ALLOCATOR = "default";
  const worker = path.join(__dirname, "engine_budgetnet.js");
  const [cmd, args] =
    variant === "pytorch"
      ? [PYTHON, [path.join(ROOT, "bench", "peers", "engine.py"), JSON.stringify(cfg)]]
      : variant === "budgetnet-gc-between-steps"
        ? [process.execPath, ["--expose-gc", worker, JSON.stringify(cfg), "--gc-between-steps"]]
        : [process.execPath, [worker, JSON.stringify(cfg)]];
  const r = spawnSync(cmd, args, { env, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0)
    throw new Error(`engine benchmark: the ${variant} measurement failed (exit ${r.status}).\n${r.stderr}`);
  const lines = r.stdout.trim().split("\n");
  return JSON.parse(lines[lines.length - 1] as string) as EngineMeasurement;
}

function cpuModel(): string {
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(fs.readFileSync("/proc/cpuinfo", "utf8"));
    if (m?.[1]) return m[1].trim();
  } catch {
    // not Linux: fall back to what Node reports
  }
  return os.cpus()[0]?.model ?? "unknown";
}

function parseArgs(args: string[]): { rounds: number; quick: boolean; diagnose: boolean; out: string | undefined } {
  let rounds = 5;
  let quick = false;
  let diagnose = false;
  let out: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === "--quick") quick = true;
    else if (a === "--diagnose") diagnose = true;
    else if (a === "--rounds") rounds = Number(args[++i]);
    else if (a === "--out") out = args[++i];
    else
      throw new Error(
        `engine benchmark: unknown argument. Received: ${a}. Known: --rounds N, --quick, --diagnose, --out FILE`,
      );
  }
  if (!Number.isInteger(rounds) || rounds < 1)
    throw new Error(`engine benchmark: --rounds must be an integer >= 1. Received: rounds=${rounds}`);
  return { rounds, quick, diagnose, out };
}

const fmt = (n: number): string => n.toFixed(0).padStart(9);
const ratio = (a: number, b: number): number => Math.round((a / b) * 1000) / 1000;

export async function main(args: string[]): Promise<void> {
  const opts = parseArgs(args);
  const cfg: EngineConfig = opts.quick
    ? { ...CONFIG, trainWarmup: 1, trainIters: 3, inferWarmup: 1, inferIters: 3 }
    : CONFIG;
  const rounds = opts.quick ? 1 : opts.rounds;
  const loadStart = os.loadavg();
  // --diagnose adds a run that frees the handles' native wrappers between steps (outside the timing).
  const variants: Variant[] = opts.diagnose ? [...VARIANTS, "budgetnet-gc-between-steps"] : VARIANTS;
  const runs = Object.fromEntries(variants.map((v) => [v, []])) as unknown as Record<Variant, EngineMeasurement[]>;
  for (let r = 0; r < rounds; r++) {
    // Rotate the order so no variant always runs first (after a pause) or last.
    const order = variants.map((_, i) => variants[(i + r) % variants.length] as Variant);
    for (const v of order) {
      const m = runVariant(v, cfg);
      runs[v].push(m);
      console.error(
        `round ${r + 1}/${rounds} ${v.padEnd(17)} train ${fmt(m.train.imagesPerSecMedian)} img/s ${fmt(m.train.cpuMsPerIter)} cpu-ms/it ${fmt(m.train.minorFaultsPerIter)} faults/it` +
          ` | infer ${fmt(m.infer.imagesPerSecMedian)} img/s ${fmt(m.infer.cpuMsPerIter)} cpu-ms/it ${fmt(m.infer.minorFaultsPerIter)} faults/it`,
      );
    }
  }
  for (const v of variants)
    if (runs[v][0]?.params !== 272_474 && cfg.model === "resnet20")
      throw new Error(`engine benchmark: ${v} built a model with ${runs[v][0]?.params} parameters, not 272,474`);

  const med = (v: Variant, phase: "train" | "infer") => median(runs[v].map((m) => m[phase].imagesPerSecMedian));
  // Paired ratios: the two measurements of one round ran back to back under similar load.
  const paired = (a: Variant, b: Variant, phase: "train" | "infer") =>
    median(
      runs[a].map((m, i) => m[phase].imagesPerSecMedian / (runs[b][i] as EngineMeasurement)[phase].imagesPerSecMedian),
    );
  const imagesPerSec = {
    train: {
      budgetnet: med("budgetnet", "train"),
      budgetnetUntuned: med("budgetnet-untuned", "train"),
      pytorch: med("pytorch", "train"),
    },
    infer: {
      budgetnet: med("budgetnet", "infer"),
      budgetnetUntuned: med("budgetnet-untuned", "infer"),
      pytorch: med("pytorch", "infer"),
    },
  };
  // Per-iteration process CPU time and page faults: less sensitive to other processes than wall time.
  const perIter = (key: "cpuMsPerIter" | "minorFaultsPerIter") =>
    Object.fromEntries(
      (["train", "infer"] as const).map((phase) => [
        phase,
        Object.fromEntries(variants.map((v) => [v, median(runs[v].map((m) => m[phase][key]))])),
      ]),
    ) as Record<"train" | "infer", Record<Variant, number>>;
  const cpuMsPerIter = perIter("cpuMsPerIter");
  const minorFaultsPerIter = perIter("minorFaultsPerIter");
  const ratios = {
    trainVsPytorch: ratio(imagesPerSec.train.budgetnet, imagesPerSec.train.pytorch),
    inferVsPytorch: ratio(imagesPerSec.infer.budgetnet, imagesPerSec.infer.pytorch),
    trainTunedVsUntuned: ratio(imagesPerSec.train.budgetnet, imagesPerSec.train.budgetnetUntuned),
    inferTunedVsUntuned: ratio(imagesPerSec.infer.budgetnet, imagesPerSec.infer.budgetnetUntuned),
    pairedTrainVsPytorch: ratio(paired("budgetnet", "pytorch", "train"), 1),
    pairedInferVsPytorch: ratio(paired("budgetnet", "pytorch", "infer"), 1),
    untunedTrainVsPytorch: ratio(imagesPerSec.train.budgetnetUntuned, imagesPerSec.train.pytorch),
    untunedInferVsPytorch: ratio(imagesPerSec.infer.budgetnetUntuned, imagesPerSec.infer.pytorch),
    /** PyTorch's CPU time per iteration over budgetnet's (above 1: budgetnet spends less CPU). */
    cpuTimeTrainVsPytorch: ratio(cpuMsPerIter.train.pytorch, cpuMsPerIter.train.budgetnet),
    cpuTimeInferVsPytorch: ratio(cpuMsPerIter.infer.pytorch, cpuMsPerIter.infer.budgetnet),
  };
  // Both the ratio of medians and the median of per-round paired ratios must clear the floor.
  const pass =
    Math.min(ratios.trainVsPytorch, ratios.pairedTrainVsPytorch) >= FLOOR &&
    Math.min(ratios.inferVsPytorch, ratios.pairedInferVsPytorch) >= FLOOR;
  // Largest max/min spread of one variant's throughput across rounds: above 1.25 the machine was
  // busy with other work and the ratios say little.
  const spread = Math.max(
    ...variants.flatMap((v) =>
      (["train", "infer"] as const).map((ph) => {
        const xs = runs[v].map((m) => m[ph].imagesPerSecMedian);
        return Math.max(...xs) / Math.min(...xs);
      }),
    ),
  );

  const t = imagesPerSec;
  console.log(`\nCIFAR ResNet-20, batch ${cfg.batch}, ${cfg.threads} threads, median of ${rounds} rounds (images/s)`);
  console.log("            budgetnet  untuned   PyTorch   bn/PT  untuned/PT  tuned/untuned");
  for (const phase of ["train", "infer"] as const) {
    const p = phase === "train" ? "Train" : "Infer";
    console.log(
      `${(phase === "train" ? "training" : "inference").padEnd(10)}${fmt(t[phase].budgetnet)}${fmt(t[phase].budgetnetUntuned)}${fmt(t[phase].pytorch)}` +
        `   ${ratios[`${phase}VsPytorch`].toFixed(3)}       ${ratios[`untuned${p}VsPytorch`].toFixed(3)}          ${ratios[`${phase}TunedVsUntuned`].toFixed(3)}`,
    );
  }
  console.log(
    `paired per-round ratios bn/PT: training ${ratios.pairedTrainVsPytorch.toFixed(3)}, inference ${ratios.pairedInferVsPytorch.toFixed(3)}`,
  );
  for (const [label, table] of [
    ["CPU ms / iteration", cpuMsPerIter],
    ["minor page faults / iteration", minorFaultsPerIter],
  ] as const)
    console.log(
      `${label}: ${(["train", "infer"] as const)
        .map((ph) => `${ph} ${variants.map((v) => `${v} ${table[ph][v].toFixed(1)}`).join(", ")}`)
        .join("; ")}`,
    );
  if (opts.diagnose) {
    const gc = (phase: "train" | "infer") => med("budgetnet-gc-between-steps", phase);
    console.log(
      `diagnostic, handles' native wrappers freed between steps: training ${gc("train").toFixed(0)} img/s (${ratio(gc("train"), imagesPerSec.train.pytorch).toFixed(3)} of PyTorch), inference ${gc("infer").toFixed(0)} img/s (${ratio(gc("infer"), imagesPerSec.infer.pytorch).toFixed(3)} of PyTorch)`,
    );
  }
  console.log(`floor ${FLOOR} on both ratios (median and paired): ${pass ? "PASS" : "FAIL"}`);
  if (spread > 1.25)
    console.log(
      `warning: throughput varied ${spread.toFixed(1)}x between rounds; the machine was busy, rerun when idle`,
    );

  const bn = runs.budgetnet[0] as EngineMeasurement;
  const pt = runs.pytorch[0] as EngineMeasurement;
  const result = {
    benchmark: "engine",
    timestamp: new Date().toISOString(),
    quick: opts.quick,
    config: cfg,
    rounds,
    machine: {
      cpuModel: cpuModel(),
      cores: os.availableParallelism(),
      platform: `${os.platform()} ${os.release()}`,
      loadAverageAtStart: loadStart,
      loadAverageAtEnd: os.loadavg(),
    },
    versions: {
      node: process.version,
      budgetnet: (JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")) as { version: string }).version,
      libtorch: bn.info.torchVersion,
      pytorch: pt.info.torchVersion,
      python: pt.info.python,
    },
    imagesPerSec,
    imagesPerSecGcBetweenSteps: opts.diagnose
      ? { train: med("budgetnet-gc-between-steps", "train"), infer: med("budgetnet-gc-between-steps", "infer") }
      : undefined,
    cpuMsPerIter,
    minorFaultsPerIter,
    ratios,
    floor: { ratio: FLOOR, pass, roundSpread: Math.round(spread * 100) / 100, reliable: spread <= 1.25 },
    runs,
  };
  const out = opts.out ?? (opts.quick ? undefined : path.join(ROOT, "bench", "results", "engine.json"));
  if (out !== undefined) {
    writeResult(out, result);
  }
}
