// Training recipes: one typed config, JSON files under recipes/, and command-line overrides
// (`--epochs 2 --batch-size 256 --model resnet56`). An unknown field lists the known ones.
import * as fs from "node:fs";
import * as path from "node:path";
import { packageRoot } from "../paths";
import { ArgumentError, checkArg, isPlainObject } from "../tensor/errors";

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

/** Largest image side a recipe or a run may declare; larger is a mistake or a damaged file, not a data set. */
export const MAX_IMAGE_SIDE = 4096;

/** Folder of the built-in recipes (recipes/ at the package root). */
export function recipesDir(): string {
  const dir = path.join(packageRoot(), "recipes");
  if (fs.existsSync(dir) && fs.statSync(dir).isDirectory()) return dir;
  throw new Error(`budgetnet: the recipes/ folder was not found at ${dir}; reinstall budgetnet.`);
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

/**
 * Deep-merges `patch` into `base`, refusing keys `base` does not have as its own (modelOptions and
 * augment are open): "toString" or "constructor" are not fields just because every object inherits them.
 */
function merge(base: Record<string, unknown>, patch: Record<string, unknown>, where: string): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  const open = where === "modelOptions" || where === "augment";
  for (const [k, v] of Object.entries(patch)) {
    if (k === "__proto__" || (!open && !Object.hasOwn(base, k))) {
      const known = Object.keys(base).join(", ");
      throw new ArgumentError(
        `unknown recipe field "${where ? `${where}.` : ""}${k}". Known fields${where ? ` of ${where}` : ""}: ${known}`,
      );
    }
    const cur = Object.hasOwn(base, k) ? base[k] : undefined;
    out[k] = isObject(cur) && isObject(v) ? merge(cur, v, where ? `${where}.${k}` : k) : v;
  }
  return out;
}

/** A recipe object (parsed JSON) merged over the defaults and checked; errors name `source`. */
export function recipeFromObject(raw: unknown, source: string): TrainConfig {
  try {
    if (!isObject(raw)) throw new ArgumentError(`must hold a JSON object. Received: ${JSON.stringify(raw)}`);
    return validate(merge(DEFAULT_CONFIG as unknown as Record<string, unknown>, raw, "") as unknown as TrainConfig);
  } catch (e) {
    if (e instanceof ArgumentError) throw new ArgumentError(`${source}: ${e.message}`);
    throw e;
  }
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
  return recipeFromObject(raw, `recipe ${file}`);
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

/** The value at a dotted path of cfg, following own properties only (undefined where there is none). */
function valueAt(cfg: Record<string, unknown>, dotted: string[]): unknown {
  let v: unknown = cfg;
  for (const k of dotted) v = isObject(v) && Object.hasOwn(v, k) ? v[k] : undefined;
  return v;
}

/** A text field keeps the text as given: --name 2024 names the run "2024", --data-root 10 is a folder (null is none). */
function isText(dotted: string[], raw: string): boolean {
  const d = valueAt(DEFAULT_CONFIG as unknown as Record<string, unknown>, dotted);
  return typeof d === "string" || (dotted.length === 1 && dotted[0] === "dataRoot" && raw !== "null");
}

/**
 * Applies command-line overrides: { "batch-size": "256", "optimizer.lr": "0.05" } (kebab or camel case,
 * dotted paths for nested fields, a few aliases such as --lr and --weight-decay).
 */
export function applyOverrides(cfg: TrainConfig, overrides: Record<string, string>): TrainConfig {
  checkArg(
    isPlainObject(cfg),
    "applyOverrides",
    "cfg must be a TrainConfig object (from loadRecipe or withDefaults)",
    "cfg",
    cfg,
  );
  checkArg(
    isPlainObject(overrides) && Object.values(overrides).every((v) => typeof v === "string"),
    "applyOverrides",
    'overrides must map flag names to string values, as parsed from the command line: {"lr-peak": "0.1"}',
    "overrides",
    overrides,
  );
  let out = cfg as unknown as Record<string, unknown>;
  for (const [flag, raw] of Object.entries(overrides)) {
    const dotted = (ALIASES[flag] ?? flag).split(".").map(camel);
    let patch: unknown = isText(dotted, raw) ? raw : parseValue(raw);
    for (let i = dotted.length - 1; i >= 0; i--) patch = { [dotted[i] as string]: patch };
    out = merge(out, patch as Record<string, unknown>, "");
  }
  return validate(out as unknown as TrainConfig);
}

function need(cond: boolean, field: string, what: string, value: unknown): void {
  if (!cond) throw new ArgumentError(`recipe field ${field} ${what}. Received: ${field}=${JSON.stringify(value)}`);
}

function kindOf(v: unknown): string {
  return v === null ? "null" : Array.isArray(v) ? "array" : typeof v;
}

/** Fields whose default is null but which take a value of this kind (objects are checked in validate). */
const NULLABLE: Record<string, string> = {
  dataRoot: "string",
  imageSize: "number",
  trainSubset: "number",
  valSubset: "number",
  threads: "number",
  lookahead: "object",
  ema: "object",
  clip: "object",
};

/**
 * Every field holds the kind of value its default has (a number for a number, finite; a string
 * for a string; ...): a recipe's "labelSmoothing": "0.1" is refused here, not at the first step.
 */
function checkKinds(c: Record<string, unknown>, defaults: Record<string, unknown>, where: string): void {
  for (const [k, d] of Object.entries(defaults)) {
    const field = where ? `${where}.${k}` : k;
    const v = c[k];
    if (k === "channelsLast") continue; // true, false or "auto": validate checks it
    const kind = d === null ? NULLABLE[k] : kindOf(d);
    if (d === null && v === null) continue;
    need(kindOf(v) === kind, field, `must be ${d === null ? `null or a ${kind}` : `a ${kind}`}`, v);
    if (kind === "number") need(Number.isFinite(v), field, "must be a finite number", v);
    if (kind === "object" && d !== null && where === "" && k !== "modelOptions" && k !== "augment")
      checkKinds(v as Record<string, unknown>, d as Record<string, unknown>, field);
  }
}

const inRange = (v: unknown, lo: number, hi: number, loOpen = false, hiOpen = false): boolean =>
  typeof v === "number" && (loOpen ? v > lo : v >= lo) && (hiOpen ? v < hi : v <= hi);
const isCount = (v: unknown, min = 1): boolean => Number.isInteger(v) && (v as number) >= min;

/** Fields of an optional sub-object ({ k, alpha } of lookahead, ...): known keys only, each checked. */
function checkSub(
  field: string,
  value: unknown,
  checks: Record<string, [(v: unknown) => boolean, string, boolean?]>,
): void {
  if (value === null || value === undefined) return;
  need(isObject(value), field, "must be null or an object", value);
  const obj = value as Record<string, unknown>;
  for (const k of Object.keys(obj))
    need(
      Object.hasOwn(checks, k),
      `${field}.${k}`,
      `is not a field of ${field} (known: ${Object.keys(checks).join(", ")})`,
      obj[k],
    );
  for (const [k, [ok, what, optional]] of Object.entries(checks))
    if (!(optional && obj[k] === undefined)) need(ok(obj[k]), `${field}.${k}`, what, obj[k]);
}

function validateAugment(a: AugmentConfig): void {
  const known = ["crop", "flip", "cutout", "randomErasing", "mixup", "cutmix"];
  for (const k of Object.keys(a))
    need(
      known.includes(k),
      `augment.${k}`,
      `is not an augmentation (known: ${known.join(", ")})`,
      (a as Record<string, unknown>)[k],
    );
  checkSub("augment.crop", a.crop, {
    padding: [(v) => isCount(v, 0), "must be an integer >= 0"],
    mode: [(v) => v === "zero" || v === "reflect", 'must be "zero" or "reflect"'],
  });
  need(a.flip === undefined || typeof a.flip === "boolean", "augment.flip", "must be true or false", a.flip);
  checkSub("augment.cutout", a.cutout, { size: [(v) => isCount(v), "must be an integer >= 1"] });
  checkSub("augment.randomErasing", a.randomErasing, { p: [(v) => inRange(v, 0, 1), "must be in [0, 1]"] });
  checkSub("augment.mixup", a.mixup, { alpha: [(v) => inRange(v, 0, Number.MAX_VALUE, true), "must be a number > 0"] });
  checkSub("augment.cutmix", a.cutmix, {
    alpha: [(v) => inRange(v, 0, Number.MAX_VALUE, true), "must be a number > 0"],
    p: [(v) => inRange(v, 0, 1), "must be in [0, 1]", true],
  });
}

/** Checks every field's kind and range; throws an ArgumentError naming the first wrong field and its value. */
export function validate(c: TrainConfig): TrainConfig {
  checkKinds(c as unknown as Record<string, unknown>, DEFAULT_CONFIG as unknown as Record<string, unknown>, "");
  need(c.model !== "", "model", "must name a model (budgetnet models lists them)", c.model);
  need(
    ["fashion-mnist", "mnist", "cifar10", "cifar100", "folder"].includes(c.dataset),
    "dataset",
    "must be fashion-mnist, mnist, cifar10, cifar100 or folder",
    c.dataset,
  );
  need(
    c.imageSize === null || (isCount(c.imageSize) && c.imageSize <= MAX_IMAGE_SIDE),
    "imageSize",
    `must be null or an integer in [1, ${MAX_IMAGE_SIDE}]`,
    c.imageSize,
  );
  need(
    inRange(c.valFraction, 0, 1, true, true),
    "valFraction",
    "must be in (0, 1) (best weights are chosen on the validation part)",
    c.valFraction,
  );
  for (const k of ["trainSubset", "valSubset"] as const)
    need(c[k] === null || isCount(c[k]), k, "must be null or an integer >= 1", c[k]);
  need(isCount(c.epochs), "epochs", "must be an integer >= 1", c.epochs);
  need(isCount(c.batchSize), "batchSize", "must be an integer >= 1", c.batchSize);
  const o = c.optimizer;
  need(["sgd", "adam", "adamw"].includes(o.type), "optimizer.type", "must be sgd, adam or adamw", o.type);
  need(o.lr > 0, "optimizer.lr", "must be positive", o.lr);
  need(inRange(o.momentum, 0, 1), "optimizer.momentum", "must be in [0, 1]", o.momentum);
  need(o.weightDecay >= 0, "optimizer.weightDecay", "must be >= 0", o.weightDecay);
  need(
    o.betas.length === 2 && o.betas.every((b) => inRange(b, 0, 1, false, true)),
    "optimizer.betas",
    "must be two numbers in [0, 1)",
    o.betas,
  );
  const s = c.schedule;
  need(
    ["constant", "multistep", "cosine", "onecycle", "linear"].includes(s.type),
    "schedule.type",
    "must be constant, multistep, cosine, onecycle or linear",
    s.type,
  );
  need(s.per === "epoch" || s.per === "iteration", "schedule.per", 'must be "epoch" or "iteration"', s.per);
  need(
    s.milestones.every((m) => Number.isFinite(m)),
    "schedule.milestones",
    "must be a list of epochs (numbers)",
    s.milestones,
  );
  for (const k of ["gamma", "divFactor", "finalDivFactor"] as const)
    need(s[k] > 0, `schedule.${k}`, "must be > 0", s[k]);
  need(s.warmupEpochs >= 0, "schedule.warmupEpochs", "must be >= 0", s.warmupEpochs);
  need(s.minLr >= 0, "schedule.minLr", "must be >= 0", s.minLr);
  need(inRange(s.pctStart, 0, 1, true, true), "schedule.pctStart", "must be in (0, 1)", s.pctStart);
  checkSub("lookahead", c.lookahead, {
    k: [(v) => isCount(v), "must be an integer >= 1"],
    alpha: [(v) => inRange(v, 0, 1), "must be in [0, 1]"],
  });
  checkSub("ema", c.ema, { decay: [(v) => inRange(v, 0, 1), "must be in [0, 1]"] });
  checkSub("clip", c.clip, {
    value: [(v) => inRange(v, 0, Number.MAX_VALUE, true), "must be a finite number > 0", true],
    norm: [(v) => inRange(v, 0, Number.MAX_VALUE, true), "must be a finite number > 0", true],
  });
  validateAugment(c.augment);
  need(inRange(c.labelSmoothing, 0, 1, false, true), "labelSmoothing", "must be in [0, 1)", c.labelSmoothing);
  need(Number.isSafeInteger(c.seed) && c.seed >= 0, "seed", "must be a non-negative integer", c.seed);
  need(c.threads === null || isCount(c.threads), "threads", "must be null or an integer >= 1", c.threads);
  need(isCount(c.logEvery), "logEvery", "must be an integer >= 1", c.logEvery);
  need(["fp32", "bf16"].includes(c.precision), "precision", "must be fp32 or bf16", c.precision);
  need([true, false, "auto"].includes(c.channelsLast), "channelsLast", 'must be true, false or "auto"', c.channelsLast);
  return c;
}

/** What checkConfigAgainstData needs to know of the training data. */
export interface DataShape {
  channels: number;
  height: number;
  width: number;
  /** Training images (after any subset). */
  n: number;
}

/**
 * The recipe's checks that need the data: a batch larger than the training split, a crop padding
 * or cutout the size of the image or more (which leaves little or nothing of it to learn from;
 * a padding of 2 on 1x1 images diverges). Call once the training split is loaded.
 */
export function checkConfigAgainstData(cfg: TrainConfig, data: DataShape): void {
  const { height, width } = data;
  need(
    cfg.batchSize <= data.n,
    "batchSize",
    `must not exceed the ${data.n} training images (a step takes a full batch); lower --batch-size`,
    cfg.batchSize,
  );
  const side = Math.min(height, width);
  const crop = cfg.augment.crop;
  if (crop)
    need(
      crop.padding < side,
      "augment.crop.padding",
      `must be smaller than the image side (${height}x${width} images: at most ${side - 1}; 4 is usual for 32x32)`,
      crop.padding,
    );
  const cutout = cfg.augment.cutout;
  if (cutout)
    need(
      cutout.size <= Math.max(height, width),
      "augment.cutout.size",
      `must not exceed the image (${height}x${width})`,
      cutout.size,
    );
}
