// Reading a finished (or interrupted) run folder back: its resolved config and a model with the
// chosen weights, rebuilt from the files alone. Both are checked as they are read, so a damaged or
// hand-edited folder is an error naming the file and the field or tensor, not a confident wrong answer.
import * as fs from "node:fs";
import * as path from "node:path";
import { loadSafetensors } from "../export/safetensors";
import { createModel, type ModelOptions } from "../models";
import type { Module } from "../nn/module";
import { countNonFinite } from "../ops/reduce";
import type { Tensor } from "../tensor/tensor";
import { MAX_IMAGE_SIDE, recipeFromObject, type TrainConfig } from "./config";

export interface RunConfig {
  /**
   * The resolved recipe. Loading the model needs only model and data, so a run folder made by hand
   * may leave it out; what needs it (eval on the run's data, resume) asks runRecipe().
   */
  recipe?: TrainConfig;
  model: { name: string; options: ModelOptions };
  parameters: number;
  data: {
    dataset: TrainConfig["dataset"];
    numClasses: number;
    classNames: string[];
    imageShape: [number, number, number];
    mean: number[];
    std: number[];
  };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

const isInt = (v: unknown, lo: number, hi: number): boolean =>
  Number.isInteger(v) && (v as number) >= lo && (v as number) <= hi;

/** Checks the fields that eval, predict, serve and export read; throws naming the file and the field. */
function checkRunConfig(raw: unknown, file: string): RunConfig {
  const bad = (field: string, what: string, value: unknown): never => {
    throw new Error(
      `${file}: ${field} ${what}. Received: ${field}=${JSON.stringify(value)}. The file is written by \`budgetnet train\`; restore it or train the run again.`,
    );
  };
  if (!isObject(raw))
    throw new Error(`${file} must hold a JSON object (the run's config); restore it or train the run again.`);
  if (raw.recipe !== undefined && !isObject(raw.recipe))
    bad("recipe", "must be an object (the run's resolved recipe)", raw.recipe);
  const model = raw.model;
  if (!isObject(model)) return bad("model", "must be an object { name, options }", model);
  if (typeof model.name !== "string" || model.name === "") bad("model.name", "must be a model name", model.name);
  if (!isObject(model.options)) bad("model.options", "must be an object", model.options);
  const data = raw.data;
  if (!isObject(data)) return bad("data", "must be an object", data);
  const k = data.numClasses;
  if (!isInt(k, 1, 1e6)) bad("data.numClasses", "must be a positive integer", k);
  const names = data.classNames;
  if (!Array.isArray(names) || names.length !== k || !names.every((n) => typeof n === "string"))
    bad("data.classNames", `must be a list of ${k} class names (strings)`, names);
  const shape = data.imageShape;
  if (!Array.isArray(shape) || shape.length !== 3)
    return bad("data.imageShape", "must be [channels, height, width]", shape);
  const [c, h, w] = shape as unknown[];
  if (!isInt(c, 1, 4)) bad("data.imageShape", "must have 1 to 4 channels", shape);
  if (!isInt(h, 1, MAX_IMAGE_SIDE) || !isInt(w, 1, MAX_IMAGE_SIDE))
    bad("data.imageShape", `must have a height and width in [1, ${MAX_IMAGE_SIDE}]`, shape);
  for (const field of ["mean", "std"] as const) {
    const v = data[field];
    if (!Array.isArray(v) || v.length !== c || !v.every((x) => typeof x === "number" && Number.isFinite(x)))
      bad(`data.${field}`, `must be a list of ${c} finite numbers (one per channel)`, v);
  }
  const zero = (data.std as number[]).findIndex((s) => !(s > 0));
  if (zero >= 0)
    bad(
      "data.std",
      `must be > 0 in every channel; channel ${zero} is ${(data.std as number[])[zero]}, and normalizing would divide by it`,
      data.std,
    );
  const options = model.options as Record<string, unknown>;
  if (options.numClasses !== undefined && options.numClasses !== k)
    bad("model.options.numClasses", `must match data.numClasses (${k})`, options.numClasses);
  if (options.inChannels !== undefined && options.inChannels !== c)
    bad("model.options.inChannels", `must match data.imageShape's channels (${c})`, options.inChannels);
  const config = { ...(raw as unknown as RunConfig) };
  if (raw.recipe !== undefined) config.recipe = recipeFromObject(raw.recipe, file);
  return config;
}

/** The run's resolved recipe, or a clear error when its config.json has none (a folder made by hand). */
export function runRecipe(config: RunConfig, runDir: string): TrainConfig {
  if (config.recipe !== undefined) return config.recipe;
  throw new Error(
    `${path.join(runDir, "config.json")} has no recipe (the resolved training recipe \`budgetnet train\` writes there), which evaluating on the run's data and resuming need. Train the run with \`budgetnet train\`.`,
  );
}

export function readRunConfig(runDir: string): RunConfig {
  const file = path.join(runDir, "config.json");
  if (!fs.existsSync(file))
    throw new Error(
      `${runDir} is not a budgetnet run folder (no config.json). Give the folder that \`budgetnet train --out\` wrote.`,
    );
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (e) {
    throw new Error(`${file} is not valid JSON (${(e as Error).message}); restore it or train the run again.`);
  }
  return checkRunConfig(raw, file);
}

/** Names of the floating-point tensors holding NaN or infinite values, with how many each holds. */
function nonFiniteTensors(tensors: Map<string, Tensor>): string[] {
  const found: string[] = [];
  for (const [name, t] of tensors) {
    const n = countNonFinite(t);
    if (n > 0) found.push(`${name} (${n} of ${t.size})`);
  }
  return found;
}

export type WeightsChoice = "best" | "final";

/** The run's model in eval mode with its best (by validation accuracy) or final weights. */
export function loadRunModel(runDir: string, weights: WeightsChoice = "best"): { model: Module; config: RunConfig } {
  const config = readRunConfig(runDir);
  const order = weights === "best" ? ["best.safetensors", "model.safetensors"] : ["model.safetensors"];
  const file = order.map((f) => path.join(runDir, f)).find((f) => fs.existsSync(f));
  if (file === undefined)
    throw new Error(`${runDir} has no ${order.join(" or ")}: the run has not finished an epoch yet.`);
  const { tensors } = loadSafetensors(file);
  let model: Module | undefined;
  try {
    const broken = nonFiniteTensors(tensors);
    if (broken.length > 0)
      throw new Error(
        `${file} holds NaN or infinite values in ${broken.length} tensor(s): ${broken.slice(0, 5).join(", ")}${broken.length > 5 ? ", ..." : ""}. ` +
          "Predictions from these weights would be meaningless: the run diverged or the file is damaged. Train again (a lower learning rate, gradient clipping), or try the run's other weights file.",
      );
    model = createModel(config.model.name, config.model.options);
    try {
      model.loadStateDict(tensors);
    } catch (e) {
      throw new Error(`${file} does not fit the model in ${path.join(runDir, "config.json")}: ${(e as Error).message}`);
    }
  } catch (e) {
    model?.dispose();
    throw e;
  } finally {
    for (const t of tensors.values()) t.dispose();
  }
  model.eval();
  return { model, config };
}
