// The epochs of a run: each step (batch -> forward under the run's precision -> loss -> backward ->
// gradient all-reduce in a data-parallel job -> clip -> optimizer step) in its own scope, the
// epoch's validation, metrics and progress, the best and final weights, the checkpoint after each
// epoch and on a stop request (SIGINT/SIGTERM, also agreed by every rank), and divergence.
// trainer.ts sets a Session up (data, model, optimization, resume) and hands it here.
import * as fs from "node:fs";
import * as path from "node:path";
import type { Batch, DataLoader } from "../data/loader";
import { saveSafetensors } from "../export/safetensors";
import { modelSpec } from "../models";
import type { Module } from "../nn/module";
import { convChoices, crossEntropy } from "../ops/nn";
import { argmax } from "../ops/reduce";
import { stack, to } from "../ops/shape";
import { ArgumentError, describe } from "../tensor/errors";
import type { GradientReducer } from "../tensor/process_group";
import { keep, scope } from "../tensor/scope";
import { getRngState, type Tensor } from "../tensor/tensor";
import { type CheckpointMeta, saveCheckpoint } from "./checkpoint";
import type { TrainConfig } from "./config";
import { agreeToStop, type DataParallel } from "./ddp";
import { evaluate } from "./evaluate";
import type { MetricsLog, Progress } from "./metrics";
import { forwardWithPrecision } from "./precision";
import { type EpochResources, ResourceMeter } from "./resources";
import type { Optimization } from "./setup";
import type { DerivedOption } from "./sizing";
import type { RunData, TrainOptions, TrainResult } from "./trainer";

export class TrainingDivergedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TrainingDivergedError";
  }
}

export function modelMetadata(model: Module, data: RunData): Record<string, string> {
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

export interface Session {
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

export interface StopSignals {
  /** The signal that asked the run to stop, if any. */
  requested(): NodeJS.Signals | undefined;
  dispose(): void;
}

/**
 * SIGINT (Ctrl-C) and SIGTERM (job schedulers, `docker stop`) ask the run to stop after the
 * current step with a checkpoint. A second signal while stopping ends the process at once (the
 * checkpoint on disk is always whole: it is written by temp + rename).
 */
export function watchStopSignals(enabled: boolean): StopSignals {
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

export async function runEpochs(s: Session, opts: TrainOptions, stop: StopSignals): Promise<TrainResult> {
  s.model.train();
  const meter = new ResourceMeter();
  try {
    return await epochs(s, opts, stop, meter);
  } finally {
    meter.stop();
  }
}

async function epochs(s: Session, opts: TrainOptions, stop: StopSignals, meter: ResourceMeter): Promise<TrainResult> {
  const every = opts.statisticsEvery ?? (s.model.device === "cpu" ? 1 : GPU_STATISTICS_EVERY);
  if (!(Number.isInteger(every) && every >= 1))
    throw new ArgumentError(
      `train: statisticsEvery must be an integer >= 1 (steps whose losses are read at once). Received: statisticsEvery=${describe(every)}`,
    );
  while (s.meta.epoch < s.cfg.epochs) {
    const epoch = s.meta.epoch;
    const stats = await trainEpoch(s, meter, every, stop, () => {
      return (
        stop.requested() !== undefined || (opts.stopAfterSteps !== undefined && s.meta.step >= opts.stopAfterSteps)
      );
    });
    if (stats.stopped) {
      if (s.lead) saveTrainingCheckpoint(s);
      const why = stop.requested() ?? stats.signal ?? "";
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
  /** The signal that stopped a data-parallel job, as the ranks agreed (this rank's may not have arrived yet). */
  signal?: NodeJS.Signals;
  resources?: EpochResources;
}

/** One step's statistics as the journal and the progress line take them. */
interface StepRecord {
  loss: number;
  hits: number;
  bs: number;
  /** The run's step count after this step, and the batch's index in the epoch. */
  step: number;
  batchIndex: number;
  lr: number;
  /** When the step was issued (ms). */
  at: number;
}

/** A step issued on a GPU whose loss and hits are still there. */
interface PendingStep extends Omit<StepRecord, "loss" | "hits"> {
  loss: Tensor;
  hits: Tensor;
}

/**
 * On a GPU the step statistics are read this many steps at a time: reading a loss each step
 * (`.item()`) would wait for the GPU to finish the step and leave it idle while the next is issued.
 */
export const GPU_STATISTICS_EVERY = 25;

/** Runs the rest of the current epoch's steps, or until shouldStop() says so after a step. */
async function trainEpoch(
  s: Session,
  meter: ResourceMeter,
  statisticsEvery: number,
  signals: StopSignals,
  shouldStop: () => boolean,
): Promise<EpochStats> {
  const { cfg, meta } = s;
  const epoch = meta.epoch;
  const stats: EpochStats = { seen: 0, correct: 0, lossSum: 0, seconds: 0, stopped: false };
  const epochStart = Date.now();
  // a data-parallel rank checks each loss before the step's all-reduce (its job is on CPUs)
  const deferred = s.dist === undefined && statisticsEvery > 1;
  const pending: PendingStep[] = [];
  const account = (r: StepRecord): void => {
    if (!Number.isFinite(r.loss)) {
      // the journal says why the run ended (the dashboard shows it as diverged)
      s.metrics.write({ type: "diverged", epoch, step: r.step, loss: String(r.loss) });
      throw new TrainingDivergedError(
        `the loss became ${r.loss} at epoch ${epoch + 1}, step ${r.batchIndex + 1}. Training stopped; the last good checkpoint ` +
          `(${fs.existsSync(s.checkpointFile) ? s.checkpointFile : "none yet: the run diverged in its first epoch"}) is kept. ` +
          `Lower the learning rate (--lr) or clip gradients (--clip '{"norm":1}').`,
      );
    }
    stats.seen += r.bs;
    stats.correct += r.hits;
    stats.lossSum += r.loss * r.bs;
    // every rank steps in lockstep: the job's throughput is this rank's times the world size
    const ips = ((s.dist?.worldSize ?? 1) * stats.seen) / Math.max((r.at - epochStart) / 1000, 1e-9);
    const remainingSteps = (cfg.epochs - epoch) * s.stepsPerEpoch - (r.batchIndex + 1);
    s.progress.update({
      epoch,
      epochs: cfg.epochs,
      step: r.batchIndex + 1,
      steps: s.stepsPerEpoch,
      loss: stats.lossSum / stats.seen,
      accuracy: stats.correct / stats.seen,
      imagesPerSec: ips,
      etaSec: (remainingSteps * cfg.batchSize) / ips,
    });
    if (r.step % cfg.logEvery === 0)
      s.metrics.write({ type: "step", epoch, step: r.step, loss: r.loss, lr: r.lr, imagesPerSec: ips });
  };
  // reads the pending steps' losses and hits in one copy (one wait for the GPU), then accounts them in order
  const flush = (): void => {
    if (pending.length === 0) return;
    const steps = pending.splice(0, pending.length);
    let values: number[];
    try {
      values = scope(
        () => stack([...steps.map((p) => p.loss), ...steps.map((p) => to(p.hits, "float32"))]).toArray() as number[],
      );
    } finally {
      for (const p of steps) {
        p.loss.dispose();
        p.hits.dispose();
      }
    }
    steps.forEach((p, k) => {
      account({ ...p, loss: values[k], hits: values[steps.length + k], at: p.at });
    });
  };
  meter.start();
  try {
    for (const batch of s.loader.batches(epoch, meta.nextBatch)) {
      const bs = batch.y.shape[0] as number;
      const batchIndex = batch.index;
      // the lr journaled is the one the step used: read after the step set it
      if (deferred) {
        const issued = issueStep(s, batch);
        pending.push({ ...issued, bs, step: meta.step + 1, batchIndex, lr: s.opt.lr(), at: Date.now() });
        if (pending.length >= statisticsEvery) flush();
      } else {
        const { lossValue, hits } = trainStep(s, batch);
        account({ loss: lossValue, hits, bs, step: meta.step + 1, batchIndex, lr: s.opt.lr(), at: Date.now() });
      }
      meta.step++;
      meta.nextBatch = batchIndex + 1;
      await new Promise<void>((resolve) => setImmediate(resolve)); // lets Ctrl-C through
      if (s.dist !== undefined) {
        const agreed = agreeToStop(s.dist, shouldStop(), meta.step, signals.requested());
        if (agreed.stop) {
          stats.stopped = true;
          stats.signal = agreed.signal;
          break;
        }
      } else if (shouldStop()) {
        stats.stopped = true;
        break;
      }
    }
    flush();
  } finally {
    for (const p of pending) {
      p.loss.dispose();
      p.hits.dispose();
    }
  }
  stats.seconds = (Date.now() - epochStart) / 1000;
  stats.resources = meter.take();
  return stats;
}

/** One optimizer step on a batch (consumed: its tensors are freed). A non-finite loss takes no step. */
function trainStep(s: Session, batch: Batch): { lossValue: number; hits: number } {
  s.opt.setStep(s.meta.step);
  try {
    return scope(() => {
      const { logits, loss } = forwardLoss(s, batch);
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
  } finally {
    disposeBatch(batch);
  }
}

/**
 * One optimizer step on a GPU without waiting for it: the loss and the hits stay on the device
 * (kept; the caller disposes them). The loss is not known before the step, so a non-finite loss
 * is found when the statistics are read (up to statisticsEvery steps later) and stops the run
 * there, naming the same step as on a CPU; the last good checkpoint is on disk either way.
 */
function issueStep(s: Session, batch: Batch): { loss: Tensor; hits: Tensor } {
  s.opt.setStep(s.meta.step);
  try {
    return scope(() => {
      const { logits, loss } = forwardLoss(s, batch);
      s.opt.zeroGrad();
      loss.backward();
      s.opt.step();
      const hits = argmax(logits, 1).eq(batch.y).sum();
      return { loss: keep(loss.detach()), hits: keep(hits) };
    });
  } finally {
    disposeBatch(batch);
  }
}

/** The step's forward under the run's precision and its (label-smoothed) loss. */
function forwardLoss(s: Session, batch: Batch): { logits: Tensor; loss: Tensor } {
  const logits = forwardWithPrecision(s.model, batch.x, s.cfg);
  return { logits, loss: crossEntropy(logits, batch.target, { labelSmoothing: s.cfg.labelSmoothing }) };
}

function disposeBatch(batch: Batch): void {
  batch.x.dispose();
  batch.y.dispose();
  batch.target.dispose();
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
  const valStart = Date.now();
  const val = s.opt.withEvalWeights(() =>
    evaluate(s.model, data.val, { mean: data.mean, std: data.std, precision: cfg, tta: cfg.tta }),
  );
  const valSeconds = (Date.now() - valStart) / 1000;
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
    valSeconds,
    ...st.resources,
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
      meta: { ...s.meta, optimizer: optMeta, ema: emaMeta, convKernels: convChoices() },
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
