// The training loop: data → model → loss → backward → clip → step, one scope per step, a run
// folder with config.json, metrics.jsonl, best/final weights and an atomic checkpoint every
// epoch and on Ctrl-C. Resuming from the checkpoint reproduces the uninterrupted run exactly.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { channelStats, loadDataset, splitTrainVal } from "../data";
import type { ImageDataset } from "../data/dataset";
import { DataLoader } from "../data/loader";
import { writeFileAtomic } from "../export/atomic";
import { saveSafetensors } from "../export/safetensors";
import { createModel, modelSpec } from "../models";
import type { Module } from "../nn/module";
import { crossEntropy } from "../ops/nn";
import { argmax } from "../ops/reduce";
import { native } from "../tensor/binding";
import { scope } from "../tensor/scope";
import { getRngState, manualSeed, setNumThreads, setRngState } from "../tensor/tensor";
import { type CheckpointMeta, disposeCheckpoint, loadCheckpoint, saveCheckpoint } from "./checkpoint";
import type { TrainConfig } from "./config";
import { evaluate } from "./evaluate";
import { MetricsLog, Progress } from "./metrics";
import { forwardWithPrecision, preparePrecision } from "./precision";
import { buildOptimization, type Optimization } from "./setup";

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
  const { mean, std } = channelStats(train);
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

export async function train(cfg: TrainConfig, opts: TrainOptions): Promise<TrainResult> {
  const runDir = path.resolve(opts.runDir);
  fs.mkdirSync(runDir, { recursive: true });
  const checkpointFile = path.join(runDir, "checkpoint.safetensors");
  if (!opts.resume && fs.existsSync(checkpointFile))
    throw new Error(
      `${runDir} already holds a run (checkpoint.safetensors). Resume it with --resume, or choose another --out.`,
    );
  setNumThreads(cfg.threads ?? os.availableParallelism());
  manualSeed(cfg.seed);

  const data = prepareData(cfg);
  const model = createModel(cfg.model, {
    numClasses: data.train.numClasses,
    inChannels: data.train.channels,
    ...cfg.modelOptions,
  });
  preparePrecision(model, cfg); // channels-last weights when the recipe (or "auto") asks for them
  const stepsPerEpoch = Math.floor(data.train.n / cfg.batchSize);
  if (stepsPerEpoch < 1)
    throw new Error(
      `batchSize ${cfg.batchSize} is larger than the training split (${data.train.n} images). Lower --batch-size.`,
    );
  const opt: Optimization = buildOptimization(cfg, model, stepsPerEpoch);
  const loader = new DataLoader(data.train, {
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

  let meta: CheckpointMeta = {
    epoch: 0,
    nextBatch: 0,
    step: 0,
    bestValAccuracy: -1,
    bestEpoch: -1,
    optimizer: null,
    ema: null,
  };
  if (opts.resume) {
    const ck = loadCheckpoint(checkpointFile);
    try {
      model.loadStateDict(ck.model);
      opt.loadState(ck.optimizer, ck.meta.optimizer, ck.ema, ck.meta.ema);
      setRngState(ck.rng);
      meta = ck.meta;
    } finally {
      disposeCheckpoint(ck);
    }
  } else {
    writeJsonAtomic(path.join(runDir, "config.json"), {
      recipe: cfg,
      model: modelSpec(model),
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
      threads: cfg.threads ?? os.availableParallelism(),
      versions: { budgetnet: packageVersion(), node: process.version, libtorch: native.buildInfo().torchVersion },
      createdAt: new Date().toISOString(),
    });
  }

  const metrics = new MetricsLog(path.join(runDir, "metrics.jsonl"));
  const progress = opts.progress ?? new Progress(process.stderr, cfg.logEvery);
  let stopRequested = false;
  const onSigint = (): void => {
    stopRequested = true;
  };
  if (opts.handleSignals ?? true) process.on("SIGINT", onSigint);

  const saveCk = (): void => {
    const rng = getRngState();
    try {
      const { state, meta: optMeta, emaState, emaMeta } = opt.state();
      saveCheckpoint(checkpointFile, {
        model: model.stateDict(),
        optimizer: state,
        ema: emaState,
        rng,
        meta: { ...meta, optimizer: optMeta, ema: emaMeta },
      });
    } finally {
      rng.dispose();
    }
  };

  const started = Date.now();
  let finalValAccuracy = Number.NaN;
  let status: TrainResult["status"] = "completed";
  try {
    model.train();
    while (meta.epoch < cfg.epochs) {
      const epoch = meta.epoch;
      let seen = 0;
      let correct = 0;
      let lossSum = 0;
      const epochStart = Date.now();
      for (const batch of loader.batches(epoch, meta.nextBatch)) {
        opt.setStep(meta.step);
        const { lossValue, hits } = scope(() => {
          const logits = forwardWithPrecision(model, batch.x, cfg);
          const loss = crossEntropy(logits, batch.target, { labelSmoothing: cfg.labelSmoothing });
          const lossValue = loss.item();
          if (!Number.isFinite(lossValue)) return { lossValue, hits: 0 };
          opt.zeroGrad();
          loss.backward();
          opt.step();
          const hits = argmax(logits, 1).eq(batch.y).sum().item();
          return { lossValue, hits };
        });
        const bs = batch.y.shape[0] as number;
        batch.x.dispose();
        batch.y.dispose();
        batch.target.dispose();
        if (!Number.isFinite(lossValue))
          throw new TrainingDivergedError(
            `the loss became ${lossValue} at epoch ${epoch + 1}, step ${batch.index + 1}. Training stopped; the last good checkpoint ` +
              `(${fs.existsSync(checkpointFile) ? checkpointFile : "none yet: the run diverged in its first epoch"}) is kept. ` +
              `Lower the learning rate (--lr) or clip gradients (--clip '{"norm":1}').`,
          );
        meta.step++;
        meta.nextBatch = batch.index + 1;
        seen += bs;
        correct += hits;
        lossSum += lossValue * bs;
        const elapsed = (Date.now() - epochStart) / 1000;
        const ips = seen / Math.max(elapsed, 1e-9);
        const remainingSteps = (cfg.epochs - epoch) * stepsPerEpoch - meta.nextBatch;
        progress.update({
          epoch,
          epochs: cfg.epochs,
          step: meta.nextBatch,
          steps: stepsPerEpoch,
          loss: lossSum / seen,
          accuracy: correct / seen,
          imagesPerSec: ips,
          etaSec: (remainingSteps * cfg.batchSize) / ips,
        });
        if (meta.step % cfg.logEvery === 0)
          metrics.write({ type: "step", epoch, step: meta.step, loss: lossValue, lr: opt.lr(), imagesPerSec: ips });
        await new Promise<void>((resolve) => setImmediate(resolve)); // lets Ctrl-C through
        if (stopRequested || (opts.stopAfterSteps !== undefined && meta.step >= opts.stopAfterSteps)) {
          saveCk();
          status = "interrupted";
          progress.line(
            `stopped at epoch ${epoch + 1}, step ${meta.nextBatch}; checkpoint saved. Resume with --resume.`,
          );
          return result();
        }
      }
      const val = opt.withEvalWeights(() =>
        evaluate(model, data.val, { mean: data.mean, std: data.std, precision: cfg }),
      );
      finalValAccuracy = val.accuracy;
      const seconds = (Date.now() - epochStart) / 1000;
      metrics.write({
        type: "epoch",
        epoch,
        trainLoss: lossSum / Math.max(seen, 1),
        trainAccuracy: correct / Math.max(seen, 1),
        valLoss: val.loss,
        valAccuracy: val.accuracy,
        lr: opt.lr(),
        imagesPerSec: seen / seconds,
        seconds,
      });
      progress.line(
        `epoch ${epoch + 1}/${cfg.epochs}: train loss ${(lossSum / Math.max(seen, 1)).toFixed(4)} ` +
          `acc ${((100 * correct) / Math.max(seen, 1)).toFixed(2)}%, val acc ${(100 * val.accuracy).toFixed(2)}%, ${seconds.toFixed(1)} s`,
      );
      if (val.accuracy > meta.bestValAccuracy) {
        meta.bestValAccuracy = val.accuracy;
        meta.bestEpoch = epoch;
        opt.withEvalWeights(() =>
          saveSafetensors(path.join(runDir, "best.safetensors"), model.stateDict(), modelMetadata(model, data)),
        );
      }
      meta.epoch = epoch + 1;
      meta.nextBatch = 0;
      saveCk();
    }
    opt.withEvalWeights(() =>
      saveSafetensors(path.join(runDir, "model.safetensors"), model.stateDict(), modelMetadata(model, data)),
    );
    return result();
  } finally {
    if (opts.handleSignals ?? true) process.off("SIGINT", onSigint);
    metrics.close();
    opt.dispose();
    model.dispose();
  }

  function result(): TrainResult {
    return {
      status,
      runDir,
      epochs: meta.epoch,
      steps: meta.step,
      bestValAccuracy: meta.bestValAccuracy,
      bestEpoch: meta.bestEpoch,
      finalValAccuracy,
      trainSeconds: (Date.now() - started) / 1000,
    };
  }
}

function packageVersion(): string {
  try {
    let dir = __dirname;
    for (let i = 0; i < 5; i++) {
      const p = path.join(dir, "package.json");
      if (fs.existsSync(p)) return (JSON.parse(fs.readFileSync(p, "utf8")) as { version: string }).version;
      dir = path.dirname(dir);
    }
  } catch {
    // fall through
  }
  return "unknown";
}
