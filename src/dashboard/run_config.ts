// A run folder's config.json as the dashboard shows it: model, options, parameters, MACs (from
// the analytic cost, no weights loaded), data set, seed, schedule length, and the seed group (runs
// whose recipes differ at most by seed and name), read without ever throwing.
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { analyticCost } from "../models/registry";

export interface RunConfigView {
  name: string;
  model: string;
  modelOptions: Record<string, unknown>;
  params: number | null;
  macs: number | null;
  dataset: string;
  seed: number | null;
  epochs: number | null;
  batchSize: number | null;
  stepsPerEpoch: number | null;
  imageShape: number[] | null;
  classNames: string[];
  /** Runs with the same key differ at most by their seed (and name). */
  seedGroup: string | null;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/** Reads config.json without throwing: the view, or why there is none. */
export function readConfigView(dir: string): { config: RunConfigView | null; problem: string | null } {
  const file = path.join(dir, "config.json");
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return { config: null, problem: code === "ENOENT" ? null : `config.json: ${(e as Error).message}` };
  }
  if (!isObject(raw) || !isObject(raw.model) || typeof raw.model.name !== "string")
    return { config: null, problem: "config.json has no model { name, options }" };
  const recipe = isObject(raw.recipe) ? raw.recipe : {};
  const data = isObject(raw.data) ? raw.data : {};
  const options = isObject(raw.model.options) ? raw.model.options : {};
  const shape = Array.isArray(data.imageShape) ? (data.imageShape as number[]) : null;
  const num = (v: unknown): number | null => (typeof v === "number" && Number.isFinite(v) ? v : null);
  let macs: number | null = null;
  if (shape !== null && shape.length === 3) {
    try {
      macs = analyticCost(raw.model.name, options, shape as [number, number, number])?.macs ?? null;
    } catch {
      macs = null; // an unknown model (a --require module) or options this version refuses
    }
  }
  const batchSize = num(recipe.batchSize);
  const trainImages = num(data.train);
  const { seed: _seed, name: _name, source: _source, threads: _threads, ...rest } = recipe;
  const seedGroup = crypto.createHash("sha1").update(JSON.stringify(rest)).digest("hex").slice(0, 12);
  return {
    config: {
      name: typeof recipe.name === "string" ? recipe.name : path.basename(dir),
      model: raw.model.name,
      modelOptions: options,
      params: num(raw.parameters),
      macs,
      dataset:
        typeof data.dataset === "string" ? data.dataset : typeof recipe.dataset === "string" ? recipe.dataset : "?",
      seed: num(raw.seed) ?? num(recipe.seed),
      epochs: num(recipe.epochs),
      batchSize,
      stepsPerEpoch: batchSize !== null && trainImages !== null ? Math.floor(trainImages / batchSize) : null,
      imageShape: shape,
      classNames: Array.isArray(data.classNames) ? data.classNames.map(String) : [],
      seedGroup: Object.keys(rest).length > 0 ? seedGroup : null,
    },
    problem: null,
  };
}
