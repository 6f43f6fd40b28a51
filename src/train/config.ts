// Training recipes: one typed config, JSON files under recipes/, and command-line overrides
// (`--epochs 2 --batch-size 256 --model resnet56`). An unknown field lists the known ones.
import * as fs from "node:fs";
import * as path from "node:path";
import { ArgumentError } from "../tensor/errors";

export interface AugmentConfig {
  crop?: { padding: number; mode: "zero" | "reflect" } | null;
  flip?: boolean;
  cutout?: { size: number } | null;
  randomErasing?: { p: number } | null;
  mixup?: { alpha: number } | null;
  cutmix?: { alpha: number; p?: number } | null;
}

export interface TrainConfig {
  /** Recipe name, and the paper or code whose settings it reproduces. */
  name: string;
  source: string;
  model: string;
  modelOptions: Record<string, unknown>;
  dataset: "fashion-mnist" | "mnist" | "cifar10" | "cifar100" | "folder";
  dataRoot: string | null;
  /** Folder datasets: images are resized to imageSize x imageSize. */
  imageSize: number | null;
  /** Share of the training split held out (stratified, seeded) for validation and model choice. */
  valFraction: number;
  /** Train on this many images of the training part only (stratified, seeded); null = all. For quick runs. */
  trainSubset: number | null;
  /** Validate on this many images of the validation part only; null = all. */
  valSubset: number | null;
  epochs: number;
  batchSize: number;
  optimizer: {
    type: "sgd" | "adam" | "adamw";
    lr: number;
    momentum: number;
    nesterov: boolean;
    weightDecay: number;
    /** No weight decay on BatchNorm parameters and biases. */
    noDecayOnBnAndBias: boolean;
    betas: [number, number];
  };
  schedule: {
    type: "constant" | "multistep" | "cosine" | "onecycle" | "linear";
    per: "epoch" | "iteration";
    milestones: number[];
    gamma: number;
    warmupEpochs: number;
    minLr: number;
    pctStart: number;
    divFactor: number;
    finalDivFactor: number;
  };
  lookahead: { k: number; alpha: number } | null;
  ema: { decay: number } | null;
  clip: { value?: number; norm?: number } | null;
  augment: AugmentConfig;
  labelSmoothing: number;
  seed: number;
  /** libtorch intra-op threads; null = one per core. */
  threads: number | null;
  /** Write a step line to metrics.jsonl (and the plain progress log) every this many steps. */
  logEvery: number;
  /** Mixed precision: "fp32" or "bf16" (CPU autocast). */
  precision: "fp32" | "bf16";
  /** Channels-last memory format; "auto" takes the measured choice for the model (src/perf/choices.ts). */
  channelsLast: boolean | "auto";
}

export const DEFAULT_CONFIG: Readonly<TrainConfig> = Object.freeze({
  name: "custom",
  source: "",
  model: "resnet20",
  modelOptions: {},
  dataset: "fashion-mnist",
  dataRoot: null,
  imageSize: null,
  valFraction: 0.1,
  trainSubset: null,
  valSubset: null,
  epochs: 10,
  batchSize: 128,
  optimizer: {
    type: "sgd",
    lr: 0.1,
    momentum: 0.9,
    nesterov: false,
    weightDecay: 5e-4,
    noDecayOnBnAndBias: false,
    betas: [0.9, 0.999],
  },
  schedule: {
    type: "cosine",
    per: "iteration",
    milestones: [],
    gamma: 0.1,
    warmupEpochs: 0,
    minLr: 0,
    pctStart: 0.3,
    divFactor: 25,
    finalDivFactor: 1e4,
  },
  lookahead: null,
  ema: null,
  clip: null,
  augment: { crop: { padding: 4, mode: "zero" }, flip: true },
  labelSmoothing: 0,
  seed: 0,
  threads: null,
  logEvery: 50,
  precision: "fp32",
  channelsLast: false,
} as TrainConfig);

/** Folder of the built-in recipes (recipes/ at the package root). */
export function recipesDir(): string {
  let dir = __dirname;
  for (let i = 0; i < 5; i++) {
    const candidate = path.join(dir, "recipes");
    if (fs.existsSync(candidate) && fs.statSync(candidate).isDirectory()) return candidate;
    dir = path.dirname(dir);
  }
  throw new Error("budgetnet: the recipes/ folder was not found next to the package.");
}

export function listRecipes(): string[] {
  return fs
    .readdirSync(recipesDir())
    .filter((f) => f.endsWith(".json"))
    .map((f) => f.slice(0, -5))
    .sort();
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/** Deep-merges `patch` into `base`, refusing keys `base` does not have (modelOptions and augment are open). */
function merge(base: Record<string, unknown>, patch: Record<string, unknown>, where: string): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  const open = where === "modelOptions" || where === "augment";
  for (const [k, v] of Object.entries(patch)) {
    if (!(k in base) && !open) {
      const known = Object.keys(base).join(", ");
      throw new ArgumentError(
        `unknown recipe field "${where ? `${where}.` : ""}${k}". Known fields${where ? ` of ${where}` : ""}: ${known}`,
      );
    }
    const cur = base[k];
    out[k] = isObject(cur) && isObject(v) ? merge(cur, v, where ? `${where}.${k}` : k) : v;
  }
  return out;
}

/** A recipe by name (recipes/NAME.json) or path, merged over the defaults. */
export function loadRecipe(nameOrPath: string): TrainConfig {
  const file = nameOrPath.endsWith(".json") ? nameOrPath : path.join(recipesDir(), `${nameOrPath}.json`);
  if (!fs.existsSync(file))
    throw new ArgumentError(
      `unknown recipe "${nameOrPath}". Built-in recipes: ${listRecipes().join(", ")}; or give a path to a .json file.`,
    );
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (e) {
    throw new ArgumentError(`recipe ${file} is not valid JSON: ${(e as Error).message}`);
  }
  if (!isObject(raw)) throw new ArgumentError(`recipe ${file} must hold a JSON object.`);
  return validate(merge(DEFAULT_CONFIG as unknown as Record<string, unknown>, raw, "") as unknown as TrainConfig);
}

const ALIASES: Record<string, string> = {
  lr: "optimizer.lr",
  momentum: "optimizer.momentum",
  "weight-decay": "optimizer.weightDecay",
  optimizer: "optimizer.type",
  schedule: "schedule.type",
  "label-smoothing": "labelSmoothing",
  "num-classes": "modelOptions.numClasses",
};

function camel(s: string): string {
  return s.replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());
}

function parseValue(raw: string): unknown {
  if (raw === "null") return null;
  if (raw === "true") return true;
  if (raw === "false") return false;
  if (raw !== "" && !Number.isNaN(Number(raw))) return Number(raw);
  if (raw.startsWith("[") || raw.startsWith("{")) {
    try {
      return JSON.parse(raw);
    } catch {
      throw new ArgumentError(`could not parse the JSON value ${raw}`);
    }
  }
  return raw;
}

/**
 * Applies command-line overrides: { "batch-size": "256", "optimizer.lr": "0.05" } (kebab or camel case,
 * dotted paths for nested fields, a few aliases such as --lr and --weight-decay).
 */
export function applyOverrides(cfg: TrainConfig, overrides: Record<string, string>): TrainConfig {
  let out = cfg as unknown as Record<string, unknown>;
  for (const [flag, raw] of Object.entries(overrides)) {
    const dotted = (ALIASES[flag] ?? flag).split(".").map(camel);
    let patch: unknown = parseValue(raw);
    for (let i = dotted.length - 1; i >= 0; i--) patch = { [dotted[i] as string]: patch };
    out = merge(out, patch as Record<string, unknown>, "");
  }
  return validate(out as unknown as TrainConfig);
}

function need(cond: boolean, field: string, what: string, value: unknown): void {
  if (!cond) throw new ArgumentError(`recipe field ${field} ${what}. Received: ${field}=${JSON.stringify(value)}`);
}

export function validate(c: TrainConfig): TrainConfig {
  need(Number.isInteger(c.epochs) && c.epochs >= 1, "epochs", "must be an integer >= 1", c.epochs);
  need(Number.isInteger(c.batchSize) && c.batchSize >= 1, "batchSize", "must be an integer >= 1", c.batchSize);
  need(c.valFraction >= 0 && c.valFraction < 1, "valFraction", "must be in [0, 1)", c.valFraction);
  need(c.optimizer.lr > 0, "optimizer.lr", "must be positive", c.optimizer.lr);
  need(
    ["sgd", "adam", "adamw"].includes(c.optimizer.type),
    "optimizer.type",
    "must be sgd, adam or adamw",
    c.optimizer.type,
  );
  need(c.labelSmoothing >= 0 && c.labelSmoothing < 1, "labelSmoothing", "must be in [0, 1)", c.labelSmoothing);
  need(Number.isInteger(c.seed) && c.seed >= 0, "seed", "must be a non-negative integer", c.seed);
  need(["fp32", "bf16"].includes(c.precision), "precision", "must be fp32 or bf16", c.precision);
  need([true, false, "auto"].includes(c.channelsLast), "channelsLast", 'must be true, false or "auto"', c.channelsLast);
  need(
    ["fashion-mnist", "mnist", "cifar10", "cifar100", "folder"].includes(c.dataset),
    "dataset",
    "must be fashion-mnist, mnist, cifar10, cifar100 or folder",
    c.dataset,
  );
  need(
    c.threads === null || (Number.isInteger(c.threads) && c.threads >= 1),
    "threads",
    "must be null or >= 1",
    c.threads,
  );
  for (const k of ["trainSubset", "valSubset"] as const)
    need(
      c[k] === null || (Number.isInteger(c[k]) && (c[k] as number) >= 1),
      k,
      "must be null or an integer >= 1",
      c[k],
    );
  need(Number.isInteger(c.logEvery) && c.logEvery >= 1, "logEvery", "must be an integer >= 1", c.logEvery);
  return c;
}
