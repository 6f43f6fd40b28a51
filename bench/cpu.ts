// The CPU benchmark: budgetnet at its best settings against two PyTorch peers on the same
// libtorch — eager float32 (what a user writes first) and PyTorch at its best on this CPU
// (channels-last and inference_mode, in float32 and, where the CPU has native bf16, also under
// bfloat16 autocast: each phase takes the faster of the two by measurement) — on five
// CIFAR nets, training and inference images/s, at one input shape (--shape CxHxW: 3x32x32, CIFAR, by default; 1x28x28 for
// Fashion-MNIST/MNIST) and one or more batch sizes (--batch 128,256,512; 128 by default). Each
// model is sized to the shape as the trainer sizes it (src/train/sizing.ts: inChannels, and
// efficient_resnet's image size and pool), the PyTorch peers build the same network, and the
// parameter counts of both sides are printed and must agree before anything is timed. Every
// measurement is its own process; within a round each batch size's variants run next to each
// other in an order rotated round by round, and medians are reported, because these machines are
// shared with other jobs. Iterations per process shrink with the batch (about as many images per
// process at every size). `--sweep` measures budgetnet's four precision x layout combinations
// instead (the numbers behind src/perf/choices.ts, keyed there by model and shape); `--profile`
// runs budgetnet and PyTorch-best once each (one batch size) under libtorch's operator profiler
// and prints where each spends its step, operator by operator; `--params` only builds the models
// on both sides and compares their parameter counts. Records: bench/results/cpu.json,
// cpu_sweep.json, cpu_profile.json, with -CxHxW for another shape and -bN-M for other batches
// (cpu_sweep-1x28x28-b128-256-512.json).
//
//   npm run bench -- cpu [--models a,b] [--shape CxHxW] [--batch N,M] [--rounds N] [--quick]
//                        [--sweep | --profile | --params] [--out FILE]
import { spawnSync } from "node:child_process";
import * as os from "node:os";
import * as path from "node:path";
import { bestSetting, MEASURED_SHAPE, nativeBf16, shapeKey } from "../src/perf/choices";
import { type BenchOptions, parseBenchArgs, UsageError } from "./args";
import type { CpuConfig, CpuMeasurement, CpuSetting, ProfileRow } from "./cpu_budgetnet";
import { writeResult } from "./results";
import { median } from "./stats";

const ROOT = path.resolve(__dirname, "..", "..");
const PYTHON = process.env.BUDGETNET_PYTHON ?? "/usr/bin/python3";
const MODELS = ["resnet20", "resnet56", "efficient_resnet", "mobilenetv2", "preact_resnet164"];
// The floors of the issue, on the two models it names (ratios to PyTorch at its best), at the
// setting it names: 3x32x32, batch 128. Other shapes and batches are reported without a floor.
const FLOORS: Record<string, { train: number; infer: number }> = {
  resnet20: { train: 1.0, infer: 1.1 },
  efficient_resnet: { train: 1.0, infer: 1.1 },
};
const FLOOR_BATCH = 128;
// Iterations per process at batch 128, fewer for the slow nets so one round stays near a minute;
// scaled by 128 / batch for other batch sizes.
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
  shape: {
    type: "string",
    valueName: "CxHxW",
    default: MEASURED_SHAPE,
    description: "one input image: 3x32x32 (CIFAR) or 1x28x28 (Fashion-MNIST)",
  },
  batch: {
    type: "string",
    valueName: "N,M",
    default: "128",
    description: "comma-separated batch sizes, each measured",
  },
  rounds: { type: "integer", valueName: "N", min: 1, default: 3, description: "interleaved rounds, 1 with --quick" },
  quick: { type: "boolean", description: "one short round, nothing written unless --out" },
  sweep: { type: "boolean", description: "budgetnet's four precision x layout combinations instead" },
  profile: { type: "boolean", description: "budgetnet and PyTorch-best once each under the operator profiler" },
  shapes: { type: "boolean", description: "with --profile: one row per operator and input shapes" },
  params: { type: "boolean", description: "only build the models on both sides and compare parameter counts" },
  out: {
    type: "string",
    valueName: "FILE",
    description: "where to write the record (default bench/results/cpu*.json)",
  },
} as const;

type Shape = [number, number, number];
type Options = Omit<BenchOptions<typeof FLAGS>, "models" | "shape" | "batch"> & {
  models: string[];
  shape: Shape;
  batches: number[];
};

function parseShape(text: string): Shape {
  const m = /^(\d+)x(\d+)x(\d+)$/.exec(text);
  const dims = m === null ? [] : m.slice(1).map(Number);
  if (dims.length !== 3 || dims.some((d) => d < 1))
    throw new UsageError(
      `--shape takes one image's channels x height x width, e.g. 1x28x28 or 3x32x32. Received: shape=${text}`,
    );
  return dims as Shape;
}

function parseBatches(text: string): number[] {
  const batches = text.split(",").filter((b) => b !== "");
  const sizes = batches.map(Number);
  if (sizes.length === 0 || sizes.some((b) => !Number.isInteger(b) || b < 1))
    throw new UsageError(`--batch takes positive integers, comma-separated, e.g. 128,256,512. Received: batch=${text}`);
  return [...new Set(sizes)];
}

function parseOptions(args: string[]): Options | undefined {
  const o = parseBenchArgs("cpu", FLAGS, args);
  if (o === undefined) return undefined;
  const models = o.models.split(",").filter((m) => m !== "");
  const unknown = models.filter((m) => ITERS[m] === undefined);
  if (unknown.length > 0 || models.length === 0)
    throw new UsageError(`--models takes names from ${MODELS.join(", ")}. Received: models=${models.join(",")}`);
  if ([o.sweep, o.profile, o.params].filter(Boolean).length > 1)
    throw new UsageError("--sweep, --profile and --params are different runs: give one of them.");
  const batches = parseBatches(o.batch);
  if (o.shapes && !o.profile) throw new UsageError("--shapes belongs to --profile: give both.");
  if (o.profile && batches.length > 1)
    throw new UsageError(`--profile measures one batch size. Received: batch=${o.batch}`);
  return { ...o, models, shape: parseShape(o.shape), batches };
}

function spawnJson(cmd: string, args: string[], what: string): CpuMeasurement {
  const env = { ...process.env, OMP_NUM_THREADS: "2", BUDGETNET_THREADS: "2" };
  const r = spawnSync(cmd, args, { env, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`cpu benchmark: the ${what} measurement failed (exit ${r.status}).\n${r.stderr}`);
  const lines = r.stdout.trim().split("\n");
  return JSON.parse(lines[lines.length - 1] as string) as CpuMeasurement;
}

function baseConfig(model: string, opts: Options, batch: number): Omit<CpuConfig, "train" | "infer"> {
  const it = ITERS[model] as { train: number; infer: number };
  const scaled = (n: number) => Math.max(2, Math.round((n * 128) / batch));
  return {
    model,
    shape: opts.shape,
    batch,
    threads: 2,
    warmup: opts.quick ? 1 : 2,
    trainIters: opts.quick ? 2 : scaled(it.train),
    inferIters: opts.quick ? 2 : scaled(it.infer),
    seed: 0,
  };
}

/** budgetnet's measured best settings for the model at the run's shape. */
function bestConfig(model: string, opts: Options, batch: number): CpuConfig {
  const base = baseConfig(model, opts, batch);
  return { ...base, train: bestSetting(model, opts.shape, "train"), infer: bestSetting(model, opts.shape, "infer") };
}

function runBudgetnet(cfg: CpuConfig): CpuMeasurement {
  return spawnJson(
    process.execPath,
    [path.join(__dirname, "cpu_budgetnet.js"), JSON.stringify(cfg)],
    `budgetnet ${cfg.model}`,
  );
}

/**
 * One PyTorch peer run. "best" is channels-last and inference mode, with bf16 autocast when bf16
 * is true (only worth trying where the CPU has native bf16).
 */
function runPytorch(cfg: CpuConfig, setting: "default" | "best", config: unknown, bf16 = false): CpuMeasurement {
  const peerCfg = { ...cfg, setting, config, bf16 };
  return spawnJson(
    PYTHON,
    [path.join(ROOT, "bench", "peers", "cpu.py"), JSON.stringify(peerCfg)],
    `pytorch-${setting}${bf16 ? "-bf16" : ""} ${cfg.model}`,
  );
}

/**
 * The PyTorch-at-its-best variants: float32 channels-last everywhere, and bf16 autocast too where
 * the CPU has native bf16. Each phase's "best" is then the faster of them by measurement (bf16 is
 * not always faster even there: on a 2-core Xeon with avx512_bf16 PyTorch's float32 trained
 * resnet20 faster than its bf16 autocast).
 */
function pytorchBestVariants(cfg: CpuConfig, config: unknown): Variant[] {
  const fp32: Variant = { name: "pytorch-best-fp32", run: () => runPytorch(cfg, "best", config, false) };
  if (!nativeBf16()) return [fp32];
  return [fp32, { name: "pytorch-best-bf16", run: () => runPytorch(cfg, "best", config, true) }];
}

/**
 * Builds the model on both sides at the run's shape, nothing timed: budgetnet sized as the
 * trainer sizes it, PyTorch's peer from the same shape (and budgetnet's ResNet config). Prints
 * both parameter counts and throws when they differ. Returns the count and the config.
 */
function checkParameters(model: string, opts: Options): { params: number; config: unknown } {
  const cfg: CpuConfig = { ...bestConfig(model, opts, 1), warmup: 0, trainIters: 0, inferIters: 0 };
  const bn = runBudgetnet(cfg);
  const pt = runPytorch(cfg, "default", bn.config);
  const same = bn.params === pt.params;
  console.log(
    `${model.padEnd(18)} ${shapeKey(opts.shape)}  parameters: budgetnet ${bn.params}, PyTorch ${pt.params}${same ? "" : "  DIFFER"}`,
  );
  if (!same)
    throw new Error(
      `cpu benchmark: ${model} at ${shapeKey(opts.shape)} has ${bn.params} parameters in budgetnet but ${pt.params} in the PyTorch peer (bench/peers/cpu.py): the two sides do not build the same network, so their speeds cannot be compared.`,
    );
  return { params: bn.params, config: bn.config };
}

const ips = (ms: number[], batch: number): number => (ms.length === 0 ? Number.NaN : batch / (median(ms) / 1000));
const r3 = (x: number): number => Math.round(x * 1000) / 1000;

type Variant = { name: string; run: () => CpuMeasurement };
/** The variants measured at one batch size. */
type BatchGroup = { batch: number; variants: Variant[] };

/**
 * Runs every variant once per round: batch size after batch size, each one's variants next to
 * each other in an order rotated each round. Returns each group's runs by variant name.
 */
function interleave(groups: BatchGroup[], rounds: number, label: string): Map<string, CpuMeasurement[]>[] {
  const runs = groups.map((g) => new Map<string, CpuMeasurement[]>(g.variants.map((v) => [v.name, []])));
  for (let r = 0; r < rounds; r++) {
    groups.forEach(({ batch, variants }, g) => {
      for (let i = 0; i < variants.length; i++) {
        const v = variants[(i + r) % variants.length] as Variant;
        const m = v.run();
        runs[g]?.get(v.name)?.push(m);
        console.error(
          `round ${r + 1}/${rounds} ${`${label} b${batch}`.padEnd(22)} ${v.name.padEnd(22)} train ${ips(m.trainMs, batch).toFixed(0).padStart(6)}  infer ${ips(m.inferMs, batch).toFixed(0).padStart(6)} img/s`,
        );
      }
    });
  }
  return runs;
}

function medianIps(runs: CpuMeasurement[], phase: "trainMs" | "inferMs", batch: number): number {
  return median(runs.map((m) => ips(m[phase], batch)));
}

function sweep(opts: Options): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const model of opts.models) {
    const { params } = checkParameters(model, opts);
    const groups: BatchGroup[] = opts.batches.map((batch) => {
      const base = baseConfig(model, opts, batch);
      const variants: Variant[] = [];
      for (const precision of ["fp32", "bf16"] as const)
        for (const channelsLast of [false, true]) {
          const s: CpuSetting = { precision, channelsLast, fold: true, inferenceMode: true };
          variants.push({
            name: `${precision}${channelsLast ? "-cl" : ""}`,
            run: () => runBudgetnet({ ...base, train: s, infer: s }),
          });
        }
      return { batch, variants };
    });
    const runs = interleave(groups, opts.quick ? 1 : opts.rounds, model);
    const measurements = groups.map(({ batch }, g) => {
      const imagesPerSec: Record<string, { train: number; infer: number }> = {};
      for (const [name, ms] of runs[g] ?? [])
        imagesPerSec[name] = {
          train: Math.round(medianIps(ms, "trainMs", batch)),
          infer: Math.round(medianIps(ms, "inferMs", batch)),
        };
      console.log(`${model} ${shapeKey(opts.shape)} batch ${batch}: ${JSON.stringify(imagesPerSec)}`);
      return { shape: shapeKey(opts.shape), batch, imagesPerSec };
    });
    out[model] = { params, measurements };
  }
  return out;
}

/** Per-operator self time per step, keyed by name. */
function perStep(rows: ProfileRow[] | undefined, steps: number): Map<string, { ms: number; calls: number }> {
  // names with input shapes are written "[[a,b], [c]]" by one side and "[[a,b],[c]]" by the other
  return new Map(
    (rows ?? []).map((r) => [r.name.replace(/, /g, ","), { ms: r.selfMs / steps, calls: r.calls / steps }]),
  );
}

/**
 * budgetnet against PyTorch at its best, operator by operator: one run each under libtorch's
 * profiler (the same legacy CPU profiler on both sides), self milliseconds per step, the
 * operators with the largest differences first. Profiling adds overhead to every operator on
 * both sides; the table is for finding where the time goes, the ratios come from plain runs.
 * PyTorch runs at the precision budgetnet trains at, so the operators compare like for like.
 */
function profileCompare(opts: Options): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const model of opts.models) {
    const { config } = checkParameters(model, opts);
    const batch = opts.batches[0] as number;
    const cfg: CpuConfig = { ...bestConfig(model, opts, batch), profile: opts.shapes ? "shapes" : true };
    const bn = runBudgetnet(cfg);
    const pt = runPytorch(cfg, "best", config, cfg.train.precision === "bf16");
    const res: Record<string, unknown> = { shape: shapeKey(opts.shape), batch };
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
        `\n${model} ${shapeKey(opts.shape)} batch ${batch} ${phase}: step ${bnStep.toFixed(1)} ms budgetnet vs ${ptStep.toFixed(1)} ms PyTorch-best (profiled); operator self time ${sum(a).toFixed(1)} vs ${sum(b).toFixed(1)} ms/step`,
      );
      console.log("operator                                         budgetnet ms (calls)   PyTorch ms (calls)    diff");
      for (const r of rows.slice(0, 25))
        console.log(
          `${r.name.slice(0, 48).padEnd(48)} ${r.budgetnetMs.toFixed(2).padStart(9)} (${r.budgetnetCalls.toFixed(0).padStart(4)})  ${r.pytorchMs.toFixed(2).padStart(9)} (${r.pytorchCalls.toFixed(0).padStart(4)})  ${(r.budgetnetMs - r.pytorchMs).toFixed(2).padStart(8)}${opts.shapes ? `  ${r.name.slice(48)}` : ""}`,
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

/** One batch size's figures for a model: images/s on each side, the ratios, the floor where one is set. */
function compareBatch(model: string, opts: Options, batch: number, runs: Map<string, CpuMeasurement[]>) {
  const get = (v: string) => runs.get(v) as CpuMeasurement[];
  const params = [...runs.values()].map((r) => r[0]?.params);
  if (new Set(params).size !== 1)
    throw new Error(`cpu benchmark: ${model} has different parameter counts: ${JSON.stringify(params)}`);
  const floors = shapeKey(opts.shape) === MEASURED_SHAPE && batch === FLOOR_BATCH ? FLOORS[model] : undefined;
  const res: Record<string, unknown> = {
    shape: shapeKey(opts.shape),
    batch,
    inferencePlan: get("budgetnet").map((m) => m.plan),
  };
  for (const phase of ["train", "infer"] as const) {
    const key = phase === "train" ? "trainMs" : "inferMs";
    const bn = medianIps(get("budgetnet"), key, batch);
    const pd = medianIps(get("pytorch-default"), key, batch);
    // PyTorch at its best: the faster of its best variants in this phase, by median
    const bests = [...runs.keys()]
      .filter((k) => k.startsWith("pytorch-best"))
      .map((k) => ({ precision: k.replace("pytorch-best-", ""), ips: medianIps(get(k), key, batch) }));
    const top = bests.reduce((a, b) => (b.ips > a.ips ? b : a));
    const pb = top.ips;
    res[`${phase}ImagesPerSec`] = {
      budgetnet: Math.round(bn),
      pytorchDefault: Math.round(pd),
      pytorchBest: Math.round(pb),
      ...Object.fromEntries(bests.map((b) => [`pytorchBest_${b.precision}`, Math.round(b.ips)])),
    };
    res[`${phase}PytorchBestPrecision`] = top.precision;
    res[`${phase}RatioVsBest`] = r3(bn / pb);
    res[`${phase}RatioVsDefault`] = r3(bn / pd);
    const floor = floors?.[phase];
    if (floor !== undefined) res[`${phase}Floor`] = { ratio: floor, pass: bn / pb >= floor };
    console.log(
      `${model.padEnd(18)} ${String(batch).padStart(5)} ${phase.padEnd(6)}${bn.toFixed(0).padStart(10)}${pd.toFixed(0).padStart(12)}${pb.toFixed(0).padStart(9)}${(bn / pb).toFixed(3).padStart(10)}${(bn / pd).toFixed(3).padStart(12)}${floor !== undefined ? (bn / pb >= floor ? `  floor ${floor} PASS` : `  floor ${floor} FAIL`) : ""}`,
    );
  }
  res.runs = Object.fromEntries(
    [...runs].map(([k, v]) => [k, v.map((m) => ({ trainMs: m.trainMs, inferMs: m.inferMs }))]),
  );
  return res;
}

function compare(opts: Options): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  // Both sides built and counted for every model before anything is timed.
  const built = new Map(opts.models.map((model) => [model, checkParameters(model, opts)]));
  console.log(`\ninput ${shapeKey(opts.shape)}, images/s`);
  console.log("model              batch phase  budgetnet  PT-default  PT-best   vs best  vs default");
  for (const model of opts.models) {
    const { params, config } = built.get(model) as { params: number; config: unknown };
    const groups: BatchGroup[] = opts.batches.map((batch) => {
      const cfg = bestConfig(model, opts, batch);
      return {
        batch,
        variants: [
          { name: "budgetnet", run: () => runBudgetnet(cfg) },
          { name: "pytorch-default", run: () => runPytorch(cfg, "default", config) },
          ...pytorchBestVariants(cfg, config),
        ],
      };
    });
    const runs = interleave(groups, opts.quick ? 1 : opts.rounds, model);
    out[model] = {
      params,
      settings: { train: bestSetting(model, opts.shape, "train"), infer: bestSetting(model, opts.shape, "infer") },
      measurements: groups.map(({ batch }, g) =>
        compareBatch(model, opts, batch, runs[g] as Map<string, CpuMeasurement[]>),
      ),
    };
  }
  return out;
}

/** Parameter counts on both sides only. */
function paramsOnly(opts: Options): Record<string, unknown> {
  return Object.fromEntries(opts.models.map((model) => [model, { params: checkParameters(model, opts).params }]));
}

/** bench/results/KIND[-CxHxW][-bN-M].json: the default shape and batch keep the plain name. */
function resultName(kind: string, opts: Options): string {
  const shape = shapeKey(opts.shape) === MEASURED_SHAPE ? "" : `-${shapeKey(opts.shape)}`;
  const batches = opts.batches.length === 1 && opts.batches[0] === 128 ? "" : `-b${opts.batches.join("-")}`;
  return `${kind.replace("-", "_")}${shape}${batches}.json`;
}

export async function main(args: string[]): Promise<void> {
  const opts = parseOptions(args);
  if (opts === undefined) return;
  const loadStart = os.loadavg();
  const kind = opts.profile ? "cpu-profile" : opts.sweep ? "cpu-sweep" : opts.params ? "cpu-params" : "cpu";
  const run = opts.profile ? profileCompare : opts.sweep ? sweep : opts.params ? paramsOnly : compare;
  const models = run(opts);
  const result = {
    benchmark: kind,
    timestamp: new Date().toISOString(),
    quick: opts.quick,
    rounds: opts.quick ? 1 : opts.rounds,
    shape: shapeKey(opts.shape),
    batches: opts.batches,
    threads: 2,
    machine: { cores: os.availableParallelism(), loadAverageAtStart: loadStart, loadAverageAtEnd: os.loadavg() },
    note: "medians over interleaved rounds, each variant in its own process; the load averages at start and end tell how quiet the machine was",
    models,
  };
  // --params is a check, not a measurement: written only where --out says
  const defaultOut =
    opts.quick || opts.params ? undefined : path.join(ROOT, "bench", "results", resultName(kind, opts));
  const out = opts.out ?? defaultOut;
  if (out !== undefined) {
    writeResult(out, result);
  }
}
