// The CPU benchmark: budgetnet at its best settings against two PyTorch peers on the same
// libtorch — eager float32 (what a user writes first) and PyTorch at its best on this CPU
// (bfloat16 autocast, channels-last, inference_mode) — on five CIFAR nets, batch 128, 32x32,
// training and inference images/s. Every measurement is its own process; the three variants
// alternate in a rotating order, round by round, and medians are reported, because these
// machines are shared with other jobs. `--sweep` measures budgetnet's four precision x layout
// combinations instead (the numbers behind src/perf/choices.ts); `--profile` runs budgetnet
// and PyTorch-best once each under libtorch's operator profiler and prints where each spends
// its step, operator by operator (bench/results/cpu_profile.json).
//
//   npm run bench -- cpu [--models a,b] [--rounds N] [--quick] [--sweep] [--profile] [--out FILE]
import { spawnSync } from "node:child_process";
import * as os from "node:os";
import * as path from "node:path";
import { bestSetting } from "../src/perf/choices";
import { type BenchOptions, parseBenchArgs, UsageError } from "./args";
import type { CpuConfig, CpuMeasurement, CpuSetting, ProfileRow } from "./cpu_budgetnet";
import { writeResult } from "./results";
import { median } from "./stats";

const ROOT = path.resolve(__dirname, "..", "..");
const PYTHON = process.env.BUDGETNET_PYTHON ?? "/usr/bin/python3";
const MODELS = ["resnet20", "resnet56", "efficient_resnet", "mobilenetv2", "preact_resnet164"];
// The floors of the issue, on the two models it names (ratios to PyTorch at its best).
const FLOORS: Record<string, { train: number; infer: number }> = {
  resnet20: { train: 1.0, infer: 1.1 },
  efficient_resnet: { train: 1.0, infer: 1.1 },
};
// Iterations per process, fewer for the slow nets so one round stays near a minute.
const ITERS: Record<string, { train: number; infer: number }> = {
  resnet20: { train: 12, infer: 20 },
  resnet56: { train: 6, infer: 10 },
  efficient_resnet: { train: 4, infer: 8 },
  mobilenetv2: { train: 4, infer: 8 },
  preact_resnet164: { train: 3, infer: 6 },
};

const FLAGS = {
  models: {
    type: "string",
    valueName: "a,b",
    default: MODELS.join(","),
    description: "comma-separated nets to measure",
  },
  rounds: { type: "integer", valueName: "N", min: 1, default: 3, description: "interleaved rounds, 1 with --quick" },
  quick: { type: "boolean", description: "one short round, nothing written unless --out" },
  sweep: { type: "boolean", description: "budgetnet's four precision x layout combinations instead" },
  profile: { type: "boolean", description: "budgetnet and PyTorch-best once each under the operator profiler" },
  out: {
    type: "string",
    valueName: "FILE",
    description: "where to write the record (default bench/results/cpu*.json)",
  },
} as const;

type Options = Omit<BenchOptions<typeof FLAGS>, "models"> & { models: string[] };

function parseOptions(args: string[]): Options | undefined {
  const o = parseBenchArgs("cpu", FLAGS, args);
  if (o === undefined) return undefined;
  const models = o.models.split(",").filter((m) => m !== "");
  const unknown = models.filter((m) => ITERS[m] === undefined);
  if (unknown.length > 0 || models.length === 0)
    throw new UsageError(`--models takes names from ${MODELS.join(", ")}. Received: models=${models.join(",")}`);
  return { ...o, models };
}

function spawnJson(cmd: string, args: string[], what: string): CpuMeasurement {
  const env = { ...process.env, OMP_NUM_THREADS: "2", BUDGETNET_THREADS: "2" };
  const r = spawnSync(cmd, args, { env, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`cpu benchmark: the ${what} measurement failed (exit ${r.status}).\n${r.stderr}`);
  const lines = r.stdout.trim().split("\n");
  return JSON.parse(lines[lines.length - 1] as string) as CpuMeasurement;
}

function baseConfig(model: string, quick: boolean): Omit<CpuConfig, "train" | "infer"> {
  const it = ITERS[model] as { train: number; infer: number };
  return {
    model,
    batch: 128,
    threads: 2,
    warmup: quick ? 1 : 2,
    trainIters: quick ? 2 : it.train,
    inferIters: quick ? 2 : it.infer,
    seed: 0,
  };
}

function runBudgetnet(cfg: CpuConfig): CpuMeasurement {
  return spawnJson(
    process.execPath,
    [path.join(__dirname, "cpu_budgetnet.js"), JSON.stringify(cfg)],
    `budgetnet ${cfg.model}`,
  );
}

function runPytorch(cfg: CpuConfig, setting: "default" | "best", config: unknown): CpuMeasurement {
  const peerCfg = { ...cfg, setting, config };
  return spawnJson(
    PYTHON,
    [path.join(ROOT, "bench", "peers", "cpu.py"), JSON.stringify(peerCfg)],
    `pytorch-${setting} ${cfg.model}`,
  );
}

const ips = (ms: number[], batch: number): number => (ms.length === 0 ? Number.NaN : batch / (median(ms) / 1000));
const r3 = (x: number): number => Math.round(x * 1000) / 1000;

type Variant = { name: string; run: () => CpuMeasurement };

/** Runs every variant once per round, in an order rotated each round; returns each one's runs. */
function interleave(variants: Variant[], rounds: number, label: string): Map<string, CpuMeasurement[]> {
  const runs = new Map<string, CpuMeasurement[]>(variants.map((v) => [v.name, []]));
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < variants.length; i++) {
      const v = variants[(i + r) % variants.length] as Variant;
      const m = v.run();
      runs.get(v.name)?.push(m);
      console.error(
        `round ${r + 1}/${rounds} ${label.padEnd(17)} ${v.name.padEnd(22)} train ${ips(m.trainMs, 128).toFixed(0).padStart(6)}  infer ${ips(m.inferMs, 128).toFixed(0).padStart(6)} img/s`,
      );
    }
  }
  return runs;
}

function medianIps(runs: CpuMeasurement[], phase: "trainMs" | "inferMs"): number {
  return median(runs.map((m) => ips(m[phase], 128)));
}

function sweep(opts: Options): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const model of opts.models) {
    const base = baseConfig(model, opts.quick);
    const variants: Variant[] = [];
    for (const precision of ["fp32", "bf16"] as const)
      for (const channelsLast of [false, true]) {
        const s: CpuSetting = { precision, channelsLast, fold: true, inferenceMode: true };
        variants.push({
          name: `${precision}${channelsLast ? "-cl" : ""}`,
          run: () => runBudgetnet({ ...base, train: s, infer: s }),
        });
      }
    const runs = interleave(variants, opts.quick ? 1 : opts.rounds, model);
    const row: Record<string, { train: number; infer: number }> = {};
    for (const [name, ms] of runs)
      row[name] = { train: Math.round(medianIps(ms, "trainMs")), infer: Math.round(medianIps(ms, "inferMs")) };
    console.log(`${model}: ${JSON.stringify(row)}`);
    out[model] = row;
  }
  return out;
}

/** Per-operator self time per step, keyed by name. */
function perStep(rows: ProfileRow[] | undefined, steps: number): Map<string, { ms: number; calls: number }> {
  return new Map((rows ?? []).map((r) => [r.name, { ms: r.selfMs / steps, calls: r.calls / steps }]));
}

/**
 * budgetnet against PyTorch at its best, operator by operator: one run each under libtorch's
 * profiler (the same legacy CPU profiler on both sides), self milliseconds per step, the
 * operators with the largest differences first. Profiling adds overhead to every operator on
 * both sides; the table is for finding where the time goes, the ratios come from plain runs.
 */
function profileCompare(opts: Options): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const model of opts.models) {
    const base = baseConfig(model, opts.quick);
    const cfg: CpuConfig = {
      ...base,
      train: bestSetting(model, "train"),
      infer: bestSetting(model, "infer"),
      profile: true,
    };
    const bn = runBudgetnet(cfg);
    const pt = runPytorch(cfg, "best", bn.config);
    const res: Record<string, unknown> = {};
    for (const phase of ["train", "infer"] as const) {
      const steps = phase === "train" ? cfg.trainIters : cfg.inferIters;
      const a = perStep(phase === "train" ? bn.trainProfile : bn.inferProfile, steps);
      const b = perStep(phase === "train" ? pt.trainProfile : pt.inferProfile, steps);
      const names = new Set([...a.keys(), ...b.keys()]);
      const rows = [...names]
        .map((name) => ({
          name,
          budgetnetMs: a.get(name)?.ms ?? 0,
          pytorchMs: b.get(name)?.ms ?? 0,
          budgetnetCalls: a.get(name)?.calls ?? 0,
          pytorchCalls: b.get(name)?.calls ?? 0,
        }))
        .sort((x, y) => Math.abs(y.budgetnetMs - y.pytorchMs) - Math.abs(x.budgetnetMs - x.pytorchMs));
      const sum = (m: Map<string, { ms: number }>) => [...m.values()].reduce((t, v) => t + v.ms, 0);
      const stepMs = (ms: number[]) => median(ms);
      const bnStep = stepMs(phase === "train" ? bn.trainMs : bn.inferMs);
      const ptStep = stepMs(phase === "train" ? pt.trainMs : pt.inferMs);
      console.log(
        `\n${model} ${phase}: step ${bnStep.toFixed(1)} ms budgetnet vs ${ptStep.toFixed(1)} ms PyTorch-best (profiled); operator self time ${sum(a).toFixed(1)} vs ${sum(b).toFixed(1)} ms/step`,
      );
      console.log("operator                                         budgetnet ms (calls)   PyTorch ms (calls)    diff");
      for (const r of rows.slice(0, 25))
        console.log(
          `${r.name.slice(0, 48).padEnd(48)} ${r.budgetnetMs.toFixed(2).padStart(9)} (${r.budgetnetCalls.toFixed(0).padStart(4)})  ${r.pytorchMs.toFixed(2).padStart(9)} (${r.pytorchCalls.toFixed(0).padStart(4)})  ${(r.budgetnetMs - r.pytorchMs).toFixed(2).padStart(8)}`,
        );
      res[phase] = {
        stepMs: { budgetnet: bnStep, pytorchBest: ptStep },
        operatorMs: { budgetnet: sum(a), pytorchBest: sum(b) },
        rows,
      };
    }
    out[model] = res;
  }
  return out;
}

function compare(opts: Options): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  console.log("model              phase  budgetnet  PT-default  PT-best   vs best  vs default");
  for (const model of opts.models) {
    const base = baseConfig(model, opts.quick);
    const cfg: CpuConfig = { ...base, train: bestSetting(model, "train"), infer: bestSetting(model, "infer") };
    let peerConfig: unknown;
    const bnRun = (): CpuMeasurement => {
      const m = runBudgetnet(cfg);
      peerConfig = m.config;
      return m;
    };
    if (model !== "resnet20" && model !== "resnet56" && model !== "mobilenetv2") bnRun(); // peer needs the config first
    const runs = interleave(
      [
        { name: "budgetnet", run: bnRun },
        { name: "pytorch-default", run: () => runPytorch(cfg, "default", peerConfig) },
        { name: "pytorch-best", run: () => runPytorch(cfg, "best", peerConfig) },
      ],
      opts.quick ? 1 : opts.rounds,
      model,
    );
    const get = (v: string) => runs.get(v) as CpuMeasurement[];
    const params = [...runs.values()].map((r) => r[0]?.params);
    if (new Set(params).size !== 1)
      throw new Error(`cpu benchmark: ${model} has different parameter counts: ${JSON.stringify(params)}`);
    const res: Record<string, unknown> = {
      params: params[0],
      settings: { train: cfg.train, infer: cfg.infer },
      inferencePlan: get("budgetnet").map((m) => m.plan),
    };
    for (const phase of ["train", "infer"] as const) {
      const key = phase === "train" ? "trainMs" : "inferMs";
      const bn = medianIps(get("budgetnet"), key);
      const pd = medianIps(get("pytorch-default"), key);
      const pb = medianIps(get("pytorch-best"), key);
      res[`${phase}ImagesPerSec`] = {
        budgetnet: Math.round(bn),
        pytorchDefault: Math.round(pd),
        pytorchBest: Math.round(pb),
      };
      res[`${phase}RatioVsBest`] = r3(bn / pb);
      res[`${phase}RatioVsDefault`] = r3(bn / pd);
      const floor = FLOORS[model]?.[phase];
      if (floor !== undefined) res[`${phase}Floor`] = { ratio: floor, pass: bn / pb >= floor };
      console.log(
        `${model.padEnd(18)} ${phase.padEnd(6)}${bn.toFixed(0).padStart(10)}${pd.toFixed(0).padStart(12)}${pb.toFixed(0).padStart(9)}${(bn / pb).toFixed(3).padStart(10)}${(bn / pd).toFixed(3).padStart(12)}${floor !== undefined ? (bn / pb >= floor ? `  floor ${floor} PASS` : `  floor ${floor} FAIL`) : ""}`,
      );
    }
    res.runs = Object.fromEntries(
      [...runs].map(([k, v]) => [k, v.map((m) => ({ trainMs: m.trainMs, inferMs: m.inferMs }))]),
    );
    out[model] = res;
  }
  return out;
}

export async function main(args: string[]): Promise<void> {
  const opts = parseOptions(args);
  if (opts === undefined) return;
  const loadStart = os.loadavg();
  const kind = opts.profile ? "cpu-profile" : opts.sweep ? "cpu-sweep" : "cpu";
  const models = opts.profile ? profileCompare(opts) : opts.sweep ? sweep(opts) : compare(opts);
  const result = {
    benchmark: kind,
    timestamp: new Date().toISOString(),
    quick: opts.quick,
    rounds: opts.quick ? 1 : opts.rounds,
    batch: 128,
    threads: 2,
    machine: { cores: os.availableParallelism(), loadAverageAtStart: loadStart, loadAverageAtEnd: os.loadavg() },
    note: "medians over interleaved rounds, each variant in its own process; the load averages at start and end tell how quiet the machine was",
    models,
  };
  const name = `${kind.replace("-", "_")}.json`;
  const out = opts.out ?? (opts.quick ? undefined : path.join(ROOT, "bench", "results", name));
  if (out !== undefined) {
    writeResult(out, result);
  }
}
