// The training checkpoint: model, optimizer and EMA tensors plus the RNG state in one
// safetensors file, and the loop position in its metadata. One file written by temp + rename,
// so a crash at any moment leaves the last good checkpoint.
import * as fs from "node:fs";
import { loadSafetensors, saveSafetensors } from "../export/safetensors";
import type { Module } from "../nn/module";
import { CONV_KERNELS, CONV_PHASES, type ConvPhaseChoices } from "../ops/nn";
import type { Tensor } from "../tensor/tensor";

export interface CheckpointMeta {
  /** The next epoch to run and the batch to start it at. */
  epoch: number;
  nextBatch: number;
  /** Optimizer steps taken so far (drives the schedule). */
  step: number;
  bestValAccuracy: number;
  bestEpoch: number;
  optimizer: unknown;
  ema: unknown;
  /** How many tensors each part holds, so a checkpoint with a part removed is refused (absent in older checkpoints). */
  tensors?: { model: number; optimizer: number; ema: number };
  /** The training convolutions' kernels per shape and phase (convChoices()), preset on resume so it computes alike. */
  convKernels?: Record<string, ConvPhaseChoices>;
}

export interface CheckpointParts {
  model: Map<string, Tensor>;
  optimizer: Map<string, Tensor>;
  ema: Map<string, Tensor> | null;
  rng: Tensor;
  meta: CheckpointMeta;
}

const PREFIX = { model: "model.", optimizer: "optim.", ema: "ema." } as const;

export function saveCheckpoint(file: string, parts: CheckpointParts): void {
  const record = new Map<string, Tensor>();
  for (const [k, t] of parts.model) record.set(PREFIX.model + k, t);
  for (const [k, t] of parts.optimizer) record.set(PREFIX.optimizer + k, t);
  if (parts.ema) for (const [k, t] of parts.ema) record.set(PREFIX.ema + k, t);
  record.set("rng", parts.rng);
  const tensors = { model: parts.model.size, optimizer: parts.optimizer.size, ema: parts.ema?.size ?? 0 };
  saveSafetensors(file, record, { budgetnet_checkpoint: JSON.stringify({ ...parts.meta, tensors }) });
}

/** Loads a checkpoint; the caller owns (and must dispose) the returned tensors. */
export function loadCheckpoint(file: string): CheckpointParts {
  if (!fs.existsSync(file))
    throw new Error(`no checkpoint at ${file}: nothing to resume. Start the run without --resume.`);
  const { tensors, metadata } = loadSafetensors(file);
  const metaText = metadata.budgetnet_checkpoint;
  if (metaText === undefined) {
    for (const t of tensors.values()) t.dispose();
    throw new Error(`${file} is a safetensors file but not a budgetnet checkpoint (no budgetnet_checkpoint metadata).`);
  }
  let meta: CheckpointMeta;
  try {
    meta = parseMeta(metaText);
    if (!tensors.has("rng")) throw new Error("it has no rng tensor");
  } catch (e) {
    for (const t of tensors.values()) t.dispose();
    throw new Error(
      `${file} is damaged: ${(e as Error).message}. Resume from a good copy, or start the run again in a new --out.`,
    );
  }
  const parts: CheckpointParts = {
    model: new Map(),
    optimizer: new Map(),
    ema: null,
    rng: tensors.get("rng") as Tensor,
    meta,
  };
  for (const [k, t] of tensors) {
    if (k.startsWith(PREFIX.model)) parts.model.set(k.slice(PREFIX.model.length), t);
    else if (k.startsWith(PREFIX.optimizer)) parts.optimizer.set(k.slice(PREFIX.optimizer.length), t);
    else if (k.startsWith(PREFIX.ema)) {
      parts.ema ??= new Map();
      parts.ema.set(k.slice(PREFIX.ema.length), t);
    }
  }
  return parts;
}

function isKernelTable(v: unknown): v is Record<string, ConvPhaseChoices> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return false;
  return Object.values(v).every(
    (phases) =>
      typeof phases === "object" &&
      phases !== null &&
      !Array.isArray(phases) &&
      Object.entries(phases).every(
        ([phase, k]) =>
          (CONV_PHASES as readonly string[]).includes(phase) &&
          (CONV_KERNELS as readonly string[]).includes(k as string),
      ),
  );
}

const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;

/** The loop position must be whole numbers in range; everything else is checked against the run (checkCheckpointFits). */
function parseMeta(text: string): CheckpointMeta {
  let m: unknown;
  try {
    m = JSON.parse(text);
  } catch {
    throw new Error("its budgetnet_checkpoint metadata is not JSON");
  }
  if (typeof m !== "object" || m === null || Array.isArray(m))
    throw new Error("its budgetnet_checkpoint metadata is not an object");
  const meta = m as Record<string, unknown>;
  for (const k of ["epoch", "nextBatch", "step"])
    if (!isCount(meta[k])) throw new Error(`its ${k} is ${JSON.stringify(meta[k])}, not a whole number >= 0`);
  if (!(Number.isSafeInteger(meta.bestEpoch) && (meta.bestEpoch as number) >= -1))
    throw new Error(`its bestEpoch is ${JSON.stringify(meta.bestEpoch)}, not a whole number >= -1`);
  const best = meta.bestValAccuracy;
  if (!(typeof best === "number" && best >= -1 && best <= 1))
    throw new Error(`its bestValAccuracy is ${JSON.stringify(best)}, not a number in [-1, 1]`);
  const t = meta.tensors as Record<string, unknown> | undefined;
  if (
    t !== undefined &&
    !(typeof t === "object" && t !== null && isCount(t.model) && isCount(t.optimizer) && isCount(t.ema))
  )
    throw new Error(`its tensors record is ${JSON.stringify(t)}, not {model, optimizer, ema} counts`);
  const kernels = meta.convKernels;
  if (kernels !== undefined && !isKernelTable(kernels))
    throw new Error(
      `its convKernels is ${JSON.stringify(kernels).slice(0, 200)}, not { [shape]: { forward?, backwardData?, backwardWeights? } } ` +
        `with kernels ${CONV_KERNELS.join(", ")}`,
    );
  return meta as unknown as CheckpointMeta;
}

/**
 * Refuses a checkpoint that would make the resumed run differ from the uninterrupted one: a loop
 * position that the run's schedule cannot reach, model tensors of another dtype, a part missing.
 */
export function checkCheckpointFits(
  file: string,
  ck: CheckpointParts,
  run: { model: Module; epochs: number; stepsPerEpoch: number; optimizerKeepsState: boolean },
): void {
  const problems: string[] = [];
  const { epoch, nextBatch, step } = ck.meta;
  if (epoch > run.epochs) problems.push(`its epoch ${epoch} is past the run's ${run.epochs} epochs`);
  if (nextBatch > run.stepsPerEpoch)
    problems.push(`its next batch ${nextBatch} is past the ${run.stepsPerEpoch} batches of an epoch`);
  if (step !== epoch * run.stepsPerEpoch + nextBatch)
    problems.push(
      `its step ${step} is not epoch x batches per epoch + next batch (${epoch} x ${run.stepsPerEpoch} + ${nextBatch})`,
    );
  const own = run.model.stateDict();
  for (const [k, t] of ck.model) {
    const mine = own.get(k);
    if (mine !== undefined && mine.dtype !== t.dtype)
      problems.push(`model tensor ${k} is ${t.dtype}, the model's is ${mine.dtype}`);
  }
  const counts = ck.meta.tensors;
  if (counts !== undefined) {
    if (ck.model.size !== counts.model) problems.push(`it holds ${ck.model.size} of its ${counts.model} model tensors`);
    if (ck.optimizer.size !== counts.optimizer)
      problems.push(`it holds ${ck.optimizer.size} of its ${counts.optimizer} optimizer tensors`);
    if ((ck.ema?.size ?? 0) !== counts.ema)
      problems.push(`it holds ${ck.ema?.size ?? 0} of its ${counts.ema} EMA tensors`);
  } else if (step > 0 && run.optimizerKeepsState && ck.optimizer.size === 0)
    problems.push("it has no optimizer state although the optimizer keeps some (momentum or moments)");
  if (problems.length > 0)
    throw new Error(
      `${file} cannot resume this run exactly: ${problems.join("; ")}. Resume from a good copy, or start the run again in a new --out.`,
    );
}

export function disposeCheckpoint(parts: CheckpointParts): void {
  for (const t of parts.model.values()) t.dispose();
  for (const t of parts.optimizer.values()) t.dispose();
  if (parts.ema) for (const t of parts.ema.values()) t.dispose();
  parts.rng.dispose();
}
