// The training loop: data → model (sized to the data, sizing.ts) → loss → backward → clip → step,
// one scope per step, a run folder (locked while it trains) with config.json, metrics.jsonl,
// best/final weights and an atomic checkpoint every epoch and on Ctrl-C or SIGTERM. Resuming from
// the checkpoint reproduces the uninterrupted run exactly, and is refused when settings or state
// would make it inexact (resume.ts says which settings may change).
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { loadDataset, splitTrainVal } from "../data";
import type { ImageDataset } from "../data/dataset";
import { type Batch, DataLoader } from "../data/loader";
import { normalizationStats } from "../data/split";
import { writeFileAtomic } from "../export/atomic";
import { saveSafetensors } from "../export/safetensors";
import { createModel, type ModelOptions, modelSpec } from "../models";
import type { Module } from "../nn/module";
import { crossEntropy } from "../ops/nn";
import { argmax } from "../ops/reduce";
import { packageVersion } from "../paths";
import type { GradientReducer } from "../tensor/process_group";
import { scope } from "../tensor/scope";
import { buildInfo, getRngState, manualSeed, setNumThreads, setRngState } from "../tensor/tensor";
import {
  type CheckpointMeta,
  checkCheckpointFits,
  disposeCheckpoint,
  loadCheckpoint,
  saveCheckpoint,
} from "./checkpoint";
import { checkConfigAgainstData, type TrainConfig } from "./config";
import { anyRankStops, checkResumedWorldSize, type DataParallel, startDataParallel } from "./ddp";
import { evaluate } from "./evaluate";
import { MetricsLog, Progress, trimMetrics } from "./metrics";
import { effectivePrecision, forwardWithPrecision, preparePrecision } from "./precision";
import { checkEpochsChange, checkResumedSettings, recordResumedChanges } from "./resume";
import { lockRunFolder } from "./run_lock";
import { buildOptimization, type Optimization } from "./setup";
import { checkImageSizeSetting, type DerivedOption, type ModelSize, modelSize, sizeModelToData } from "./sizing";

export class TrainingDivergedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TrainingDivergedError";
  }
}

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

function modelMetadata(model: Module, data: RunData): Record<string, string> {
  const spec = modelSpec(model);
  return {
    format: "budgetnet",
    model: spec?.name ?? "",
    options: JSON.stringify(spec?.options ?? {}),
    classNames: JSON.stringify(data.train.classNames),
    mean: JSON.stringify(data.mean),
    std: JSON.stringify(data.std),
  };
}

/** Everything one training run holds while it runs (set up once, used by each phase). */
interface Session {
  cfg: TrainConfig;
  runDir: string;
  checkpointFile: string;
  data: RunData;
  model: Module;
  opt: Optimization;
  loader: DataLoader;
  stepsPerEpoch: number;
  meta: CheckpointMeta;
  metrics: MetricsLog;
  progress: Progress;
  started: number;
  finalValAccuracy: number;
  derived: Record<string, DerivedOption>;
  /** Data-parallel: this rank, its gradient reducer; lead = rank 0, the one that writes. */
  dist?: DataParallel & { reducer: GradientReducer };
  lead: boolean;
}

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
  });
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
    precisionUsed: effectivePrecision(cfg),
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

interface StopSignals {
  /** The signal that asked the run to stop, if any. */
  requested(): NodeJS.Signals | undefined;
  dispose(): void;
}

/**
 * SIGINT (Ctrl-C) and SIGTERM (job schedulers, `docker stop`) ask the run to stop after the
 * current step with a checkpoint. A second signal while stopping ends the process at once (the
 * checkpoint on disk is always whole: it is written by temp + rename).
 */
function watchStopSignals(enabled: boolean): StopSignals {
  let got: NodeJS.Signals | undefined;
  const signals: NodeJS.Signals[] = ["SIGINT", "SIGTERM"];
  const onSignal = (sig: NodeJS.Signals): void => {
    if (got !== undefined) {
      for (const x of signals) process.off(x, onSignal);
      process.kill(process.pid, sig);
      return;
    }
    got = sig;
  };
  if (enabled) for (const x of signals) process.on(x, onSignal);
  return {
    requested: () => got,
    dispose() {
      if (enabled) for (const x of signals) process.off(x, onSignal);
    },
  };
}

async function runEpochs(s: Session, opts: TrainOptions, stop: StopSignals): Promise<TrainResult> {
  s.model.train();
  while (s.meta.epoch < s.cfg.epochs) {
    const epoch = s.meta.epoch;
    const stats = await trainEpoch(s, () => {
      return (
        stop.requested() !== undefined || (opts.stopAfterSteps !== undefined && s.meta.step >= opts.stopAfterSteps)
      );
    });
    if (stats.stopped) {
      if (s.lead) saveTrainingCheckpoint(s);
      const why = stop.requested() ?? "";
      s.progress.line(
        `stopped${why ? ` by ${why}` : ""} at epoch ${epoch + 1}, step ${s.meta.nextBatch}; checkpoint saved. Resume with --resume.`,
      );
      return result(s, "interrupted");
    }
    endEpoch(s, epoch, stats);
  }
  if (s.dist !== undefined && s.lead) {
    // what the reducer moved, for `npm run bench -- ddp`
    const { bytesReduced, launchedDuringBackward } = s.dist.reducer.stats();
    s.metrics.write({
      type: "distributed",
      worldSize: s.dist.worldSize,
      buckets: s.dist.reducer.buckets().length,
      bytesReduced,
      launchedDuringBackward,
      steps: s.meta.step,
    });
  }
  if (s.lead)
    s.opt.withEvalWeights(() =>
      saveSafetensors(path.join(s.runDir, "model.safetensors"), s.model.stateDict(), modelMetadata(s.model, s.data)),
    );
  return result(s, "completed");
}

interface EpochStats {
  seen: number;
  correct: number;
  lossSum: number;
  seconds: number;
  stopped: boolean;
}

/** Runs the rest of the current epoch's steps, or until shouldStop() says so after a step. */
async function trainEpoch(s: Session, shouldStop: () => boolean): Promise<EpochStats> {
  const { cfg, meta } = s;
  const epoch = meta.epoch;
  const stats: EpochStats = { seen: 0, correct: 0, lossSum: 0, seconds: 0, stopped: false };
  const epochStart = Date.now();
  for (const batch of s.loader.batches(epoch, meta.nextBatch)) {
    const { lossValue, hits, bs } = trainStep(s, batch);
    if (!Number.isFinite(lossValue)) {
      // the journal says why the run ended (the dashboard shows it as diverged)
      s.metrics.write({ type: "diverged", epoch, step: meta.step + 1, loss: String(lossValue) });
      throw new TrainingDivergedError(
        `the loss became ${lossValue} at epoch ${epoch + 1}, step ${batch.index + 1}. Training stopped; the last good checkpoint ` +
          `(${fs.existsSync(s.checkpointFile) ? s.checkpointFile : "none yet: the run diverged in its first epoch"}) is kept. ` +
          `Lower the learning rate (--lr) or clip gradients (--clip '{"norm":1}').`,
      );
    }
    meta.step++;
    meta.nextBatch = batch.index + 1;
    stats.seen += bs;
    stats.correct += hits;
    stats.lossSum += lossValue * bs;
    // every rank steps in lockstep: the job's throughput is this rank's times the world size
    const ips = ((s.dist?.worldSize ?? 1) * stats.seen) / Math.max((Date.now() - epochStart) / 1000, 1e-9);
    const remainingSteps = (cfg.epochs - epoch) * s.stepsPerEpoch - meta.nextBatch;
    s.progress.update({
      epoch,
      epochs: cfg.epochs,
      step: meta.nextBatch,
      steps: s.stepsPerEpoch,
      loss: stats.lossSum / stats.seen,
      accuracy: stats.correct / stats.seen,
      imagesPerSec: ips,
      etaSec: (remainingSteps * cfg.batchSize) / ips,
    });
    if (meta.step % cfg.logEvery === 0)
      s.metrics.write({ type: "step", epoch, step: meta.step, loss: lossValue, lr: s.opt.lr(), imagesPerSec: ips });
    await new Promise<void>((resolve) => setImmediate(resolve)); // lets Ctrl-C through
    if (s.dist !== undefined ? anyRankStops(s.dist, shouldStop()) : shouldStop()) {
      stats.stopped = true;
      break;
    }
  }
  stats.seconds = (Date.now() - epochStart) / 1000;
  return stats;
}

/** One optimizer step on a batch (consumed: its tensors are freed). A non-finite loss takes no step. */
function trainStep(s: Session, batch: Batch): { lossValue: number; hits: number; bs: number } {
  s.opt.setStep(s.meta.step);
  try {
    const { lossValue, hits } = scope(() => {
      const logits = forwardWithPrecision(s.model, batch.x, s.cfg);
      const loss = crossEntropy(logits, batch.target, { labelSmoothing: s.cfg.labelSmoothing });
      const lossValue = loss.item();
      // a rank of a data-parallel job takes part in the step's all-reduce even so; the job then stops
      if (!Number.isFinite(lossValue) && s.dist === undefined) return { lossValue, hits: 0 };
      s.opt.zeroGrad();
      loss.backward();
      s.dist?.reducer.finalize();
      if (!Number.isFinite(lossValue)) return { lossValue, hits: 0 };
      s.opt.step();
      const hits = argmax(logits, 1).eq(batch.y).sum().item();
      return { lossValue, hits };
    });
    return { lossValue, hits, bs: batch.y.shape[0] as number };
  } finally {
    batch.x.dispose();
    batch.y.dispose();
    batch.target.dispose();
  }
}

/** Validation, the epoch's journal line, best weights when improved, and the checkpoint. */
function endEpoch(s: Session, epoch: number, st: EpochStats): void {
  const { cfg, data, meta } = s;
  if (!s.lead) {
    // rank 0 validates and writes; the others go on to the next epoch (its first all-reduce waits for rank 0)
    meta.epoch = epoch + 1;
    meta.nextBatch = 0;
    return;
  }
  const val = s.opt.withEvalWeights(() =>
    evaluate(s.model, data.val, { mean: data.mean, std: data.std, precision: cfg }),
  );
  s.finalValAccuracy = val.accuracy;
  const trainLoss = st.lossSum / Math.max(st.seen, 1);
  const trainAccuracy = st.correct / Math.max(st.seen, 1);
  s.metrics.write({
    type: "epoch",
    epoch,
    trainLoss,
    trainAccuracy,
    valLoss: val.loss,
    valAccuracy: val.accuracy,
    lr: s.opt.lr(),
    imagesPerSec: ((s.dist?.worldSize ?? 1) * st.seen) / st.seconds,
    seconds: st.seconds,
  });
  s.progress.line(
    `epoch ${epoch + 1}/${cfg.epochs}: train loss ${trainLoss.toFixed(4)} acc ${(100 * trainAccuracy).toFixed(2)}%, ` +
      `val acc ${(100 * val.accuracy).toFixed(2)}%, ${st.seconds.toFixed(1)} s`,
  );
  if (val.accuracy > meta.bestValAccuracy) {
    meta.bestValAccuracy = val.accuracy;
    meta.bestEpoch = epoch;
    s.opt.withEvalWeights(() =>
      saveSafetensors(path.join(s.runDir, "best.safetensors"), s.model.stateDict(), modelMetadata(s.model, data)),
    );
  }
  meta.epoch = epoch + 1;
  meta.nextBatch = 0;
  saveTrainingCheckpoint(s);
}

function saveTrainingCheckpoint(s: Session): void {
  const rng = getRngState();
  try {
    const { state, meta: optMeta, emaState, emaMeta } = s.opt.state();
    saveCheckpoint(s.checkpointFile, {
      model: s.model.stateDict(),
      optimizer: state,
      ema: emaState,
      rng,
      meta: { ...s.meta, optimizer: optMeta, ema: emaMeta },
    });
  } finally {
    rng.dispose();
  }
}

function result(s: Session, status: TrainResult["status"]): TrainResult {
  return {
    status,
    runDir: s.runDir,
    epochs: s.meta.epoch,
    steps: s.meta.step,
    bestValAccuracy: s.meta.bestValAccuracy,
    bestEpoch: s.meta.bestEpoch,
    finalValAccuracy: s.finalValAccuracy,
    trainSeconds: (Date.now() - s.started) / 1000,
  };
}
