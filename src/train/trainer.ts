// train(): a run from a recipe. Sets a run up (data split and normalization, the model sized to
// the data by sizing.ts, optimization, precision, the loader, a data-parallel reducer), locks its
// folder and writes config.json, or resumes it from its checkpoint (refused when settings or state
// would make it inexact; resume.ts says which settings may change), then hands it to loop.ts for
// the epochs. Resuming reproduces the uninterrupted run exactly.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { loadDataset, splitTrainVal } from "../data";
import type { ImageDataset } from "../data/dataset";
import { DataLoader } from "../data/loader";
import { normalizationStats } from "../data/split";
import { writeFileAtomic } from "../export/atomic";
import { createModel, type ModelOptions, modelSpec } from "../models";
import { setConvChoices } from "../ops/nn";
import { packageVersion } from "../paths";
import { buildInfo, manualSeed, requireCuda, setNumThreads, setRngState } from "../tensor/tensor";
import { checkCheckpointFits, disposeCheckpoint, loadCheckpoint } from "./checkpoint";
import { checkConfigAgainstData, type TrainConfig } from "./config";
import { checkResumedWorldSize, type DataParallel, startDataParallel } from "./ddp";
import { runEpochs, type Session, watchStopSignals } from "./loop";
import { MetricsLog, Progress, trimMetrics } from "./metrics";
import { effectivePrecision, preparePrecision } from "./precision";
import { checkEpochsChange, checkResumedSettings, recordResumedChanges } from "./resume";
import { lockRunFolder } from "./run_lock";
import { buildOptimization } from "./setup";
import { checkImageSizeSetting, type DerivedOption, type ModelSize, modelSize, sizeModelToData } from "./sizing";

export { TrainingDivergedError } from "./loop";

export interface TrainOptions {
  runDir: string;
  /** Continue from runDir/checkpoint.safetensors. */
  resume?: boolean;
  /** Stop (with a checkpoint, as on Ctrl-C) once this many optimizer steps have run in total. */
  stopAfterSteps?: number;
  /** Handle SIGINT by checkpointing and stopping (default true). */
  handleSignals?: boolean;
  progress?: Progress;
  /** Called once the run is set up (data read, model built, checkpoint loaded), before the first step. */
  onStart?: (start: TrainStart) => void;
  /** Data-parallel training (ddp.ts): this process is one rank; only rank 0 writes the run folder. */
  dist?: DataParallel;
  /**
   * Read the steps' losses and hits this many steps at a time: default 1 on a CPU (the step then
   * checks its loss before it updates the weights), GPU_STATISTICS_EVERY on a GPU, where a read
   * waits for the device. The journal and the progress line are the same either way.
   */
  statisticsEvery?: number;
}

/** What a run trains, known once it is set up: for the start line and `--dry-run`-like reports. */
export interface TrainStart {
  model: string;
  /** The options the model was built with (the recipe's and what the data decided). */
  options: ModelOptions;
  /** Options the data decided, with the reason (also in config.json's derivedModelOptions). */
  derived: Record<string, DerivedOption>;
  size: ModelSize;
  inputShape: [number, number, number];
  dataset: TrainConfig["dataset"];
  train: number;
  val: number;
  numClasses: number;
  /** Where a resumed run continues; null for a fresh one. */
  resumedAt: { epoch: number; step: number } | null;
}

export interface TrainResult {
  status: "completed" | "interrupted";
  runDir: string;
  epochs: number;
  steps: number;
  bestValAccuracy: number;
  bestEpoch: number;
  finalValAccuracy: number;
  trainSeconds: number;
}

export interface RunData {
  train: ImageDataset;
  val: ImageDataset;
  mean: number[];
  std: number[];
}

/** The training split, its held-out validation part and the training split's channel statistics. */
export function prepareData(cfg: TrainConfig): RunData {
  const full = loadDataset(cfg.dataset, {
    split: "train",
    root: cfg.dataRoot ?? undefined,
    size: cfg.imageSize ?? undefined,
  });
  const split = splitTrainVal(full, { valFraction: cfg.valFraction, seed: cfg.seed });
  const train = takeSubset(split.train, cfg.trainSubset, cfg.seed);
  const val = takeSubset(split.val, cfg.valSubset, cfg.seed);
  if (val.n === 0) throw new Error("the validation split is empty: raise valFraction (best weights are chosen on it).");
  checkConfigAgainstData(cfg, { channels: train.channels, height: train.height, width: train.width, n: train.n });
  const { mean, std } = normalizationStats(train);
  return { train, val, mean, std };
}

/** A stratified, seeded selection of n images (the whole set when n is null or not smaller). */
function takeSubset(ds: ImageDataset, n: number | null, seed: number): ImageDataset {
  if (n === null || n >= ds.n) return ds;
  return splitTrainVal(ds, { valFraction: n / ds.n, seed: seed + 1 }).val;
}

function writeJsonAtomic(file: string, value: unknown): void {
  writeFileAtomic(file, [`${JSON.stringify(value, null, 2)}\n`]);
}

/** Everything one training run holds while it runs (set up once, used by each phase). */

/**
 * libtorch threads for a run: the recipe's when it sets them, else BUDGETNET_THREADS (docs/threads.md),
 * else one per core. A recipe's `threads: null` means "not set", so the environment wins over it.
 */
function threadsFor(cfg: TrainConfig): number {
  const env = Number(process.env.BUDGETNET_THREADS);
  return cfg.threads ?? (Number.isInteger(env) && env >= 1 ? env : os.availableParallelism());
}

export async function train(cfg: TrainConfig, opts: TrainOptions): Promise<TrainResult> {
  const runDir = path.resolve(opts.runDir);
  // in a data-parallel job only rank 0 owns (and locks) the run folder
  const lock = (opts.dist?.rank ?? 0) === 0 ? lockRunFolder(runDir) : { release() {} };
  try {
    const s = setUp(cfg, opts, runDir);
    const stop = watchStopSignals(opts.handleSignals ?? true);
    try {
      opts.onStart?.(startInfo(s, opts.resume === true));
      return await runEpochs(s, opts, stop);
    } finally {
      stop.dispose();
      s.dist?.reducer.dispose();
      s.metrics.close();
      s.opt.dispose();
      s.model.dispose();
    }
  } finally {
    lock.release();
  }
}

/** Data, model, optimization and loader; then the checkpoint's state (resume) or a fresh config.json. */
function setUp(cfg: TrainConfig, opts: TrainOptions, runDir: string): Session {
  const checkpointFile = path.join(runDir, "checkpoint.safetensors");
  if (!opts.resume && fs.existsSync(checkpointFile))
    throw new Error(
      `${runDir} already holds a run (checkpoint.safetensors). Resume it with --resume, or choose another --out.`,
    );
  const stored = opts.resume ? checkResumedSettings(runDir, cfg) : undefined;
  if (opts.resume) checkResumedWorldSize(runDir, opts.dist?.worldSize ?? 1);
  const lead = (opts.dist?.rank ?? 0) === 0;
  checkDevice(cfg, opts.dist);
  setNumThreads(threadsFor(cfg));
  manualSeed(cfg.seed);

  const data = prepareData(cfg);
  const { train: t } = data;
  // A resumed run keeps its folder's settings; a new one may not ask for a resize that cannot happen.
  if (!opts.resume) checkImageSizeSetting(cfg, t.height, t.width);
  const sized = sizeModelToData(cfg.model, cfg.modelOptions, {
    channels: t.channels,
    height: t.height,
    width: t.width,
    numClasses: t.numClasses,
  });
  const model = createModel(cfg.model, sized.options);
  try {
    // channels-last weights when the recipe (or "auto", measured for this model and image shape) asks for them
    preparePrecision(model, cfg, [t.channels, t.height, t.width]);
    // before the optimizer is built: its state tensors are made like the parameters, on their device
    if (cfg.device !== "cpu") model.to(cfg.device);
    const loader = makeLoader(cfg, data, opts.dist);
    const stepsPerEpoch = Math.floor(loader.size / cfg.batchSize);
    if (stepsPerEpoch < 1)
      throw new Error(
        `batchSize ${cfg.batchSize} is larger than the training split${opts.dist ? `'s shard per rank` : ""} (${loader.size} images). Lower --batch-size.`,
      );
    const opt = buildOptimization(cfg, model, stepsPerEpoch);
    const base: Omit<Session, "metrics"> = {
      cfg,
      runDir,
      checkpointFile,
      data,
      model,
      opt,
      loader,
      stepsPerEpoch,
      meta: { epoch: 0, nextBatch: 0, step: 0, bestValAccuracy: -1, bestEpoch: -1, optimizer: null, ema: null },
      progress: lead ? (opts.progress ?? new Progress(process.stderr, cfg.logEvery)) : Progress.silent(),
      started: Date.now(),
      finalValAccuracy: Number.NaN,
      derived: sized.derived,
      lead,
    };
    let s: Session;
    try {
      if (stored !== undefined) {
        resumeFromCheckpoint(base, stored);
        if (lead) recordResumedChanges(runDir, stored, cfg, base.meta, threadsFor(cfg));
      } else if (lead) writeRunConfig(base, opts.dist?.worldSize ?? 1);
      // A fresh run starts its journal empty (a run killed before its first checkpoint left lines);
      // a resumed one drops what was journaled after its checkpoint.
      const metricsFile = lead ? path.join(runDir, "metrics.jsonl") : os.devNull;
      if (opts.resume && lead) trimMetrics(metricsFile, base.meta);
      s = { ...base, metrics: new MetricsLog(metricsFile, opts.resume || !lead ? "append" : "truncate") };
      if (opts.dist !== undefined)
        s.dist = {
          ...opts.dist,
          reducer: startDataParallel(model, opts.dist, { bucketMb: cfg.bucketMb, syncBatchNorm: cfg.syncBatchNorm }),
        };
    } catch (e) {
      opt.dispose();
      throw e;
    }
    return s;
  } catch (e) {
    model.dispose();
    throw e;
  }
}

function makeLoader(cfg: TrainConfig, data: RunData, dist?: DataParallel): DataLoader {
  return new DataLoader(data.train, {
    shard: dist === undefined ? undefined : { rank: dist.rank, world: dist.worldSize },
    batchSize: cfg.batchSize,
    shuffle: true,
    seed: cfg.seed,
    dropLast: true,
    mean: data.mean,
    std: data.std,
    // A recipe may switch an augmentation off with null; the loader takes absent fields for that.
    augment: Object.fromEntries(Object.entries(cfg.augment).filter(([, v]) => v !== null)),
    numClasses: data.train.numClasses,
    device: cfg.device,
  });
}

/** A device the addon can train on: "cuda" needs a CUDA libtorch and a visible GPU, and no data-parallel job. */
function checkDevice(cfg: TrainConfig, dist?: DataParallel): void {
  if (cfg.device === "cpu") return;
  requireCuda(`device "${cfg.device}"`, "train with --device cpu");
  if (dist !== undefined)
    throw new Error(
      `device "${cfg.device}" with data-parallel training is not supported (the job all-reduces over Gloo on CPUs). ` +
        "Drop --device or run one process.",
    );
}

/** Loads the checkpoint into the session; `stored` is the run's own recipe (a changed epoch count is judged against it). */
function resumeFromCheckpoint(s: Omit<Session, "metrics">, stored: TrainConfig): void {
  const ck = loadCheckpoint(s.checkpointFile);
  try {
    checkEpochsChange(stored, s.cfg, ck.meta, s.stepsPerEpoch);
    checkCheckpointFits(s.checkpointFile, ck, {
      model: s.model,
      epochs: s.cfg.epochs,
      stepsPerEpoch: s.stepsPerEpoch,
      optimizerKeepsState: optimizerKeepsState(s.cfg),
    });
    s.model.loadStateDict(ck.model);
    s.opt.loadState(ck.optimizer, ck.meta.optimizer, ck.ema, ck.meta.ema);
    setRngState(ck.rng);
    // the kernels the run computed with, so that it goes on computing alike (native/conv_train.cc)
    if (ck.meta.convKernels !== undefined) setConvChoices(ck.meta.convKernels);
    s.meta = ck.meta;
  } finally {
    disposeCheckpoint(ck);
  }
}

/** Whether the optimizer carries state between steps (momentum buffers, Adam moments). */
function optimizerKeepsState(cfg: TrainConfig): boolean {
  return cfg.optimizer.type !== "sgd" || cfg.optimizer.momentum > 0;
}

function writeRunConfig(s: Omit<Session, "metrics">, worldSize: number): void {
  const { cfg, data, model } = s;
  writeJsonAtomic(path.join(s.runDir, "config.json"), {
    recipe: cfg,
    model: modelSpec(model),
    derivedModelOptions: s.derived,
    parameters: model.numParameters(),
    data: {
      dataset: cfg.dataset,
      train: data.train.n,
      val: data.val.n,
      numClasses: data.train.numClasses,
      classNames: data.train.classNames,
      imageShape: [data.train.channels, data.train.height, data.train.width],
      mean: data.mean,
      std: data.std,
    },
    seed: cfg.seed,
    // what "auto" became on this CPU
    precisionUsed: effectivePrecision(cfg, cfg.model, [data.train.channels, data.train.height, data.train.width]),
    threads: threadsFor(cfg),
    ...(worldSize > 1
      ? { distributed: { worldSize, batchPerRank: cfg.batchSize, globalBatch: cfg.batchSize * worldSize } }
      : {}),
    versions: { budgetnet: packageVersion(), node: process.version, libtorch: buildInfo().torchVersion },
    createdAt: new Date().toISOString(),
  });
}

function startInfo(s: Session, resumed: boolean): TrainStart {
  const { cfg, data, model } = s;
  const spec = modelSpec(model);
  const inputShape: [number, number, number] = [data.train.channels, data.train.height, data.train.width];
  const options = spec?.options ?? {};
  return {
    model: cfg.model,
    options,
    derived: s.derived,
    size: modelSize(cfg.model, options, inputShape, model),
    inputShape,
    dataset: cfg.dataset,
    train: data.train.n,
    val: data.val.n,
    numClasses: data.train.numClasses,
    resumedAt: resumed ? { epoch: s.meta.epoch, step: s.meta.step } : null,
  };
}
