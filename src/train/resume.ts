// What a resumed run may change. `--resume` continues a run exactly as it was configured: the
// result must be the run an uninterrupted start would have given. So settings that do not alter
// the numbers (threads, logEvery, dataRoot) may change, and so may the epoch count when the
// learning rate of every step already taken does not depend on it (constant and multistep
// schedules: the resumed run is then exactly a run started with the new count). A schedule laid
// out over the whole run (cosine, linear, onecycle) is refused with the rates that would jump.
// Accepted changes are recorded in config.json (its recipe, and a `resumes` list).
import * as fs from "node:fs";
import * as path from "node:path";
import { writeFileAtomic } from "../export/atomic";
import { ArgumentError } from "../tensor/errors";
import type { CheckpointMeta } from "./checkpoint";
import { DEFAULT_CONFIG, type TrainConfig } from "./config";
import { readRunConfig, runRecipe } from "./run";
import { buildSchedule } from "./setup";

/** Settings that a resumed run may change: they do not alter the numbers it computes. */
const RESUMABLE_CHANGES = new Set(["threads", "logEvery", "dataRoot", "bucketMb"]);

export interface ConfigDifference {
  field: string;
  stored: unknown;
  given: unknown;
}

/** Leaf-by-leaf differences between two configs (absent and undefined are the same). */
export function configDifferences(a: unknown, b: unknown, prefix = ""): ConfigDifference[] {
  const isObj = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
  if (isObj(a) && isObj(b)) {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    return [...keys].flatMap((k) => configDifferences(a[k], b[k], prefix ? `${prefix}.${k}` : k));
  }
  return JSON.stringify(a) === JSON.stringify(b) ? [] : [{ field: prefix, stored: a, given: b }];
}

const show = (v: unknown): string => (v === undefined ? "absent" : JSON.stringify(v));

/**
 * Refuses a resume whose settings differ from the run's own (the result would not be the run's),
 * except the resumable ones and the epoch count, which checkEpochsChange judges once the
 * checkpoint is read. Returns the run's stored recipe.
 */
export function checkResumedSettings(runDir: string, cfg: TrainConfig): TrainConfig {
  // a field added after the run was made counts as its default (what the run did without it)
  const stored = { ...DEFAULT_CONFIG, ...runRecipe(readRunConfig(runDir), runDir) };
  const differences = configDifferences(stored, cfg);
  const changed = differences.filter(
    (d) => d.field !== "epochs" && !RESUMABLE_CHANGES.has(d.field.split(".")[0] as string),
  );
  const epochs = differences.find((d) => d.field === "epochs");
  if (changed.length > 0)
    throw new ArgumentError(
      `--resume continues the run in ${runDir} exactly as it was configured, but these settings differ from its ` +
        `config.json: ${changed.map((d) => `${d.field} (${show(d.stored)} -> ${show(d.given)})`).join(", ")}. ` +
        "Drop them to resume, or start a new run (another --out) to change them." +
        (epochs === undefined
          ? ""
          : ` (The change of epochs, ${show(epochs.stored)} -> ${show(epochs.given)}, is judged once the rest matches: ` +
            "it is allowed when the schedule does not depend on the run's length.)"),
    );
  return stored;
}

const fmtLr = (lr: number): string => (lr === 0 ? "0" : lr.toPrecision(3));

/**
 * A changed epoch count is accepted when the resumed run is exactly the run a fresh start with
 * the new count gives: the checkpoint has not passed the new end, and every step already taken
 * had the same learning rate under the new count.
 */
export function checkEpochsChange(
  stored: TrainConfig,
  cfg: TrainConfig,
  meta: CheckpointMeta,
  stepsPerEpoch: number,
): void {
  const was = stored.epochs;
  const now = cfg.epochs;
  if (was === now) return;
  const begun = meta.epoch + (meta.nextBatch > 0 ? 1 : 0);
  if (now < begun)
    throw new ArgumentError(
      `--epochs ${now} on resume: the run has already begun ${begun} of its ${was} epochs (its checkpoint is at epoch ${meta.epoch + 1}, ` +
        `step ${meta.step}). Give --epochs ${begun} or more, or leave --epochs out to finish the run's ${was}.`,
    );
  const before = buildSchedule(stored, stepsPerEpoch);
  const after = buildSchedule(cfg, stepsPerEpoch);
  for (let step = 0; step < meta.step; step++) {
    const a = before.lrAt(step);
    const b = after.lrAt(step);
    if (Math.abs(a - b) > 1e-12 * Math.max(Math.abs(a), Math.abs(b)))
      throw new ArgumentError(
        `--epochs ${now} on resume: the run's ${stored.schedule.type} schedule spreads the learning rate over all ${was} epochs, ` +
          `so with ${now} epochs the ${meta.step} steps already taken would have had other rates (step ${step + 1}: ` +
          `${fmtLr(a)} as trained, ${fmtLr(b)} with ${now} epochs), and continuing would move the rate from ` +
          `${fmtLr(before.lrAt(meta.step - 1))} (the last step) to ${fmtLr(after.lrAt(meta.step))}. ` +
          `Leave --epochs out to finish the run's ${was} epochs, or start a new run (another --out) with --epochs ${now}. ` +
          "(Runs with a constant or multistep schedule can change --epochs on resume.)",
      );
  }
}

/**
 * Writes the settings a resume changed into config.json: its recipe becomes the resumed one, its
 * threads the ones now used, and `resumes` gains { epoch, step, changed, time }.
 */
export function recordResumedChanges(
  runDir: string,
  stored: TrainConfig,
  cfg: TrainConfig,
  meta: CheckpointMeta,
  threads: number,
): void {
  const file = path.join(runDir, "config.json");
  const raw = JSON.parse(fs.readFileSync(file, "utf8")) as Record<string, unknown>;
  const changes = configDifferences(stored, cfg);
  if (changes.length === 0 && raw.threads === threads) return;
  const resumes = Array.isArray(raw.resumes) ? raw.resumes : [];
  const entry = {
    epoch: meta.epoch,
    step: meta.step,
    changed: Object.fromEntries(changes.map((d) => [d.field, { from: d.stored ?? null, to: d.given ?? null }])),
    time: new Date().toISOString(),
  };
  const updated = { ...raw, recipe: cfg, threads, resumes: changes.length > 0 ? [...resumes, entry] : resumes };
  writeFileAtomic(file, [`${JSON.stringify(updated, null, 2)}\n`]);
}
