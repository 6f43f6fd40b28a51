// Reading a finished (or interrupted) run folder back: its resolved config and a model with the
// chosen weights, rebuilt from the files alone.
import * as fs from "node:fs";
import * as path from "node:path";
import { loadSafetensors } from "../export/safetensors";
import { createModel, type ModelOptions } from "../models";
import type { Module } from "../nn/module";
import type { TrainConfig } from "./config";

export interface RunConfig {
  recipe: TrainConfig;
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

export function readRunConfig(runDir: string): RunConfig {
  const file = path.join(runDir, "config.json");
  if (!fs.existsSync(file))
    throw new Error(
      `${runDir} is not a budgetnet run folder (no config.json). Give the folder that \`budgetnet train --out\` wrote.`,
    );
  return JSON.parse(fs.readFileSync(file, "utf8")) as RunConfig;
}

export type WeightsChoice = "best" | "final";

/** The run's model in eval mode with its best (by validation accuracy) or final weights. */
export function loadRunModel(runDir: string, weights: WeightsChoice = "best"): { model: Module; config: RunConfig } {
  const config = readRunConfig(runDir);
  const order = weights === "best" ? ["best.safetensors", "model.safetensors"] : ["model.safetensors"];
  const file = order.map((f) => path.join(runDir, f)).find((f) => fs.existsSync(f));
  if (file === undefined)
    throw new Error(`${runDir} has no ${order.join(" or ")}: the run has not finished an epoch yet.`);
  const model = createModel(config.model.name, config.model.options);
  const { tensors } = loadSafetensors(file);
  try {
    model.loadStateDict(tensors);
  } catch (e) {
    model.dispose();
    throw new Error(`${file} does not fit the model in ${path.join(runDir, "config.json")}: ${(e as Error).message}`);
  } finally {
    for (const t of tensors.values()) t.dispose();
  }
  model.eval();
  return { model, config };
}
