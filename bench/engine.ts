// The engine benchmark: CIFAR ResNet-20 (272,474 parameters, option B), batch 128, float32,
// 2 threads, random 3x32x32 images and labels; training (SGD with momentum, one step per
// iteration) and inference (eval mode, no grad) in images/s, for budgetnet, budgetnet with
// the allocator tuning off (BUDGETNET_ALLOCATOR=default, read at addon load) and PyTorch on the
// same libtorch. Each measurement is its own process; the three alternate round by round (in a
// rotating order) because these machines are shared and noisy, and medians are reported.
//
//   npm run bench -- engine [--rounds N] [--quick] [--diagnose] [--out FILE]
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { type BenchOptions, parseBenchArgs } from "./args";
import type { EngineConfig, EngineMeasurement } from "./engine_budgetnet";
import { writeResult } from "./results";
import { median, ratio, spread } from "./stats";

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

const FLAGS = {
  rounds: {
    type: "integer",
    valueName: "N",
    min: 1,
    default: 5,
    description: "rounds of the three measurements, 1 with --quick",
  },
  quick: { type: "boolean", description: "one short round, nothing written unless --out" },
  diagnose: {
    type: "boolean",
    description: "also run budgetnet freeing the handles' native wrappers between steps",
  },
  out: {
    type: "string",
    valueName: "FILE",
    description: "where to write the record (default bench/results/engine.json)",
  },
} as const;

type Phase = "train" | "infer";
const PHASES = ["train", "infer"] as const;
type Runs = Record<Variant, EngineMeasurement[]>;

/** One invocation, from its flags: what runs, how often, and where the record goes. */
interface Settings {
  cfg: EngineConfig;
  rounds: number;
  variants: Variant[];
  quick: boolean;
  diagnose: boolean;
  out: string | undefined;
}

function settings(opts: BenchOptions<typeof FLAGS>): Settings {
  const cfg: EngineConfig = opts.quick
    ? { ...CONFIG, trainWarmup: 1, trainIters: 3, inferWarmup: 1, inferIters: 3 }
    : CONFIG;
  return {
    cfg,
    rounds: opts.quick ? 1 : opts.rounds,
    // --diagnose adds a run that frees the handles' native wrappers between steps (outside the timing).
    variants: opts.diagnose ? [...VARIANTS, "budgetnet-gc-between-steps"] : VARIANTS,
    quick: opts.quick,
    diagnose: opts.diagnose,
    out: opts.out ?? (opts.quick ? undefined : path.join(ROOT, "bench", "results", "engine.json")),
  };
}

const fmt = (n: number): string => n.toFixed(0).padStart(9);

/** Every variant `rounds` times, each in its own process, the order rotating round by round. */
function measureRounds({ variants, cfg, rounds }: Settings): Runs {
  const runs = Object.fromEntries(variants.map((v) => [v, []])) as unknown as Runs;
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
  return runs;
}

/** Median images/s of one variant in one phase. */
const medianIps = (runs: Runs, v: Variant, phase: Phase): number =>
  median(runs[v].map((m) => m[phase].imagesPerSecMedian));

function throughput(runs: Runs) {
  const phase = (p: Phase) => ({
    budgetnet: medianIps(runs, "budgetnet", p),
    budgetnetUntuned: medianIps(runs, "budgetnet-untuned", p),
    pytorch: medianIps(runs, "pytorch", p),
  });
  return { train: phase("train"), infer: phase("infer") };
}
type Throughput = ReturnType<typeof throughput>;

/** Per-iteration process CPU time or page faults: less sensitive to other processes than wall time. */
function perIteration(runs: Runs, variants: Variant[], key: "cpuMsPerIter" | "minorFaultsPerIter") {
  return Object.fromEntries(
    PHASES.map((phase) => [
      phase,
      Object.fromEntries(variants.map((v) => [v, median(runs[v].map((m) => m[phase][key]))])),
    ]),
  ) as Record<Phase, Record<Variant, number>>;
}

function ratiosOf(runs: Runs, t: Throughput, cpuMsPerIter: Record<Phase, Record<Variant, number>>) {
  // Paired ratios: the two measurements of one round ran back to back under similar load.
  const paired = (a: Variant, b: Variant, phase: Phase) =>
    median(
      runs[a].map((m, i) => m[phase].imagesPerSecMedian / (runs[b][i] as EngineMeasurement)[phase].imagesPerSecMedian),
    );
  return {
    trainVsPytorch: ratio(t.train.budgetnet, t.train.pytorch),
    inferVsPytorch: ratio(t.infer.budgetnet, t.infer.pytorch),
    trainTunedVsUntuned: ratio(t.train.budgetnet, t.train.budgetnetUntuned),
    inferTunedVsUntuned: ratio(t.infer.budgetnet, t.infer.budgetnetUntuned),
    pairedTrainVsPytorch: ratio(paired("budgetnet", "pytorch", "train"), 1),
    pairedInferVsPytorch: ratio(paired("budgetnet", "pytorch", "infer"), 1),
    untunedTrainVsPytorch: ratio(t.train.budgetnetUntuned, t.train.pytorch),
    untunedInferVsPytorch: ratio(t.infer.budgetnetUntuned, t.infer.pytorch),
    /** PyTorch's CPU time per iteration over budgetnet's (above 1: budgetnet spends less CPU). */
    cpuTimeTrainVsPytorch: ratio(cpuMsPerIter.train.pytorch, cpuMsPerIter.train.budgetnet),
    cpuTimeInferVsPytorch: ratio(cpuMsPerIter.infer.pytorch, cpuMsPerIter.infer.budgetnet),
  };
}

/** Medians, ratios, the floor's verdict and how noisy the rounds were. */
function summarize(runs: Runs, variants: Variant[]) {
  const imagesPerSec = throughput(runs);
  const cpuMsPerIter = perIteration(runs, variants, "cpuMsPerIter");
  const minorFaultsPerIter = perIteration(runs, variants, "minorFaultsPerIter");
  const ratios = ratiosOf(runs, imagesPerSec, cpuMsPerIter);
  // Both the ratio of medians and the median of per-round paired ratios must clear the floor.
  const pass =
    Math.min(ratios.trainVsPytorch, ratios.pairedTrainVsPytorch) >= FLOOR &&
    Math.min(ratios.inferVsPytorch, ratios.pairedInferVsPytorch) >= FLOOR;
  // Largest max/min spread of one variant's throughput across rounds: above 1.25 the machine was
  // busy with other work and the ratios say little.
  const roundSpread = Math.max(
    ...variants.flatMap((v) => PHASES.map((ph) => spread(runs[v].map((m) => m[ph].imagesPerSecMedian)))),
  );
  return { imagesPerSec, cpuMsPerIter, minorFaultsPerIter, ratios, pass, roundSpread };
}
type Summary = ReturnType<typeof summarize>;

function printTable(s: Summary, { cfg, rounds, variants }: Settings): void {
  const t = s.imagesPerSec;
  console.log(`\nCIFAR ResNet-20, batch ${cfg.batch}, ${cfg.threads} threads, median of ${rounds} rounds (images/s)`);
  console.log("            budgetnet  untuned   PyTorch   bn/PT  untuned/PT  tuned/untuned");
  for (const phase of PHASES) {
    const p = phase === "train" ? "Train" : "Infer";
    console.log(
      `${(phase === "train" ? "training" : "inference").padEnd(10)}${fmt(t[phase].budgetnet)}${fmt(t[phase].budgetnetUntuned)}${fmt(t[phase].pytorch)}` +
        `   ${s.ratios[`${phase}VsPytorch`].toFixed(3)}       ${s.ratios[`untuned${p}VsPytorch`].toFixed(3)}          ${s.ratios[`${phase}TunedVsUntuned`].toFixed(3)}`,
    );
  }
  console.log(
    `paired per-round ratios bn/PT: training ${s.ratios.pairedTrainVsPytorch.toFixed(3)}, inference ${s.ratios.pairedInferVsPytorch.toFixed(3)}`,
  );
  for (const [label, table] of [
    ["CPU ms / iteration", s.cpuMsPerIter],
    ["minor page faults / iteration", s.minorFaultsPerIter],
  ] as const)
    console.log(
      `${label}: ${PHASES.map((ph) => `${ph} ${variants.map((v) => `${v} ${table[ph][v].toFixed(1)}`).join(", ")}`).join("; ")}`,
    );
}

function printVerdict(s: Summary, runs: Runs, diagnose: boolean): void {
  if (diagnose) {
    const gc = (phase: Phase) => medianIps(runs, "budgetnet-gc-between-steps", phase);
    console.log(
      `diagnostic, handles' native wrappers freed between steps: training ${gc("train").toFixed(0)} img/s (${ratio(gc("train"), s.imagesPerSec.train.pytorch).toFixed(3)} of PyTorch), inference ${gc("infer").toFixed(0)} img/s (${ratio(gc("infer"), s.imagesPerSec.infer.pytorch).toFixed(3)} of PyTorch)`,
    );
  }
  console.log(`floor ${FLOOR} on both ratios (median and paired): ${s.pass ? "PASS" : "FAIL"}`);
  if (s.roundSpread > 1.25)
    console.log(
      `warning: throughput varied ${s.roundSpread.toFixed(1)}x between rounds; the machine was busy, rerun when idle`,
    );
}

/** The JSON record: settings, machine, versions, every summary figure and every raw run. */
function record(s: Summary, runs: Runs, { cfg, rounds, quick, diagnose }: Settings, loadStart: number[]) {
  const bn = runs.budgetnet[0] as EngineMeasurement;
  const pt = runs.pytorch[0] as EngineMeasurement;
  return {
    benchmark: "engine",
    timestamp: new Date().toISOString(),
    quick,
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
    imagesPerSec: s.imagesPerSec,
    imagesPerSecGcBetweenSteps: diagnose
      ? {
          train: medianIps(runs, "budgetnet-gc-between-steps", "train"),
          infer: medianIps(runs, "budgetnet-gc-between-steps", "infer"),
        }
      : undefined,
    cpuMsPerIter: s.cpuMsPerIter,
    minorFaultsPerIter: s.minorFaultsPerIter,
    ratios: s.ratios,
    floor: {
      ratio: FLOOR,
      pass: s.pass,
      roundSpread: Math.round(s.roundSpread * 100) / 100,
      reliable: s.roundSpread <= 1.25,
    },
    runs,
  };
}

export async function main(args: string[]): Promise<void> {
  const opts = parseBenchArgs("engine", FLAGS, args);
  if (opts === undefined) return;
  const run = settings(opts);
  const loadStart = os.loadavg();
  const runs = measureRounds(run);
  const summary = summarize(runs, run.variants);
  printTable(summary, run);
  printVerdict(summary, runs, run.diagnose);
  if (run.out !== undefined) writeResult(run.out, record(summary, runs, run, loadStart));
}
