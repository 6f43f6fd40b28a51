// The training checkpoint: model, optimizer and EMA tensors plus the RNG state in one
// safetensors file, and the loop position in its metadata. One file written by temp + rename,
// so a crash at any moment leaves the last good checkpoint.
import * as fs from "node:fs";
import { loadSafetensors, saveSafetensors } from "../export/safetensors";
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
  saveSafetensors(file, record, { budgetnet_checkpoint: JSON.stringify(parts.meta) });
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
  const parts: CheckpointParts = {
    model: new Map(),
    optimizer: new Map(),
    ema: null,
    rng: tensors.get("rng") as Tensor,
    meta: JSON.parse(metaText) as CheckpointMeta,
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

export function disposeCheckpoint(parts: CheckpointParts): void {
  for (const t of parts.model.values()) t.dispose();
  for (const t of parts.optimizer.values()) t.dispose();
  if (parts.ema) for (const t of parts.ema.values()) t.dispose();
  parts.rng.dispose();
}
