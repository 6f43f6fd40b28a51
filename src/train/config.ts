// Training recipes: one typed config, JSON files under recipes/, and command-line overrides
// (`--epochs 2 --batch-size 256 --model resnet56 --lookahead.k 5`). Every field is declared once
// in schema.ts; this file completes a recipe from the defaults, applies overrides and checks the
// result against the declaration: an unknown field at any depth is refused with the known ones and
// a did-you-mean, a value of the wrong type or range names its dotted path, the value and what is
// allowed, and the model options are checked against the model family's schema, all before any
// data is read.
//
// Merging: an object value (a recipe's "optimizer": {...}, or `--clip '{"norm": 1}'`) merges into
// the current one field by field; where the current one is null or absent (an optional object
// switched off), it starts from its fields' defaults, so `--lookahead.k 5 --lookahead.alpha 0.5`
// and `--clip.value 0.1 --clip.norm 1` compose. null switches an optional object off.
import * as fs from "node:fs";
import * as path from "node:path";
import { getModelEntry, readOptions, unknownModelMessage, upgradeLegacyOptions } from "../models";
import { packageRoot } from "../paths";
import { ArgumentError, checkArg, describe, didYouMean, isPlainObject } from "../tensor/errors";
import {
  type ConfigOf,
  defaultConfig,
  describeAllowed,
  fitsLeaf,
  MAX_IMAGE_SIDE,
  type ObjectNode,
  RECIPE_SCHEMA,
  type SchemaNode,
  templateOf,
} from "./schema";

export { MAX_IMAGE_SIDE };

/** A complete, checked training configuration: the type schema.ts declares (RECIPE_SCHEMA). */
export type TrainConfig = ConfigOf<typeof RECIPE_SCHEMA>;
export type AugmentConfig = TrainConfig["augment"];

function deepFreeze<T>(v: T): T {
  if (v !== null && typeof v === "object") {
    for (const x of Object.values(v)) deepFreeze(x);
    Object.freeze(v);
  }
  return v;
}

/** Every field's default (frozen; recipeFromObject and applyOverrides never share it). */
export const DEFAULT_CONFIG: Readonly<TrainConfig> = deepFreeze(defaultConfig() as TrainConfig);

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

/** A copy of objects and arrays at every depth; a "__proto__" key stays a key (defineProperty), never a prototype. */
function copyData(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(copyData);
  if (!isObject(v)) return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v))
    Object.defineProperty(out, k, { value: copyData(x), enumerable: true, writable: true, configurable: true });
  return out;
}

const join = (where: string, key: string): string => (where ? `${where}.${key}` : key);

/** A value as the user wrote it: JSON, with numbers such as Infinity and absent values named. */
function shown(v: unknown): string {
  if (v === undefined || typeof v === "number") return String(v);
  try {
    return JSON.stringify(v) ?? describe(v);
  } catch {
    return describe(v);
  }
}

function fieldError(field: string, node: SchemaNode, v: unknown): ArgumentError {
  return new ArgumentError(`recipe field ${field} must be ${describeAllowed(node)}. Received: ${field}=${shown(v)}`);
}

/** `unknown recipe field "clip.nrom". Known fields of clip: value, norm. Received: clip.nrom=1 (did you mean "clip.norm"?)` */
function unknownField(node: ObjectNode, where: string, key: string, value: unknown): ArgumentError {
  const known = Object.keys(node.fields);
  const field = join(where, key);
  const hint = didYouMean(key, known);
  return new ArgumentError(
    `unknown recipe field "${field}". Known fields${where ? ` of ${where}` : ""}: ${known.join(", ")}. ` +
      `Received: ${field}=${shown(value)}${where ? hint.replace('"', `"${where}.`) : hint}`,
  );
}

/** The field's declaration, or undefined where it is unknown or inside modelOptions. */
function fieldNode(node: ObjectNode, key: string): SchemaNode | undefined {
  return Object.hasOwn(node.fields, key) ? node.fields[key] : undefined;
}

/**
 * `patch` merged into `current` as the declaration says: objects field by field (an absent or null
 * one starts from its fields' defaults), modelOptions key by key, anything else replaced. Refuses
 * keys the declaration does not have ("toString" is not a field because objects inherit it).
 */
function mergeInto(node: SchemaNode, current: unknown, patch: unknown, where: string): unknown {
  if (node.kind === "open" && isObject(patch))
    return { ...(isObject(current) ? current : {}), ...(copyData(patch) as object) };
  if (node.kind !== "object" || !isObject(patch)) return copyData(patch);
  const out = isObject(current) ? { ...current } : templateOf(node);
  for (const [k, v] of Object.entries(patch)) {
    const field = fieldNode(node, k);
    if (field === undefined) throw unknownField(node, where, k, v);
    out[k] = mergeInto(field, Object.hasOwn(out, k) ? out[k] : undefined, v, join(where, k));
  }
  return out;
}

/**
 * A recipe object (parsed JSON) merged over the defaults and checked; errors name `source`. A
 * "$schema" key (the JSON Schema editors read) is ignored.
 */
export function recipeFromObject(raw: unknown, source: string): TrainConfig {
  try {
    if (!isObject(raw)) throw new ArgumentError(`must hold a JSON object. Received: ${shown(raw)}`);
    const { $schema: _editorsOnly, ...fields } = raw;
    return validate(mergeInto(RECIPE_SCHEMA, defaultConfig(), fields, "") as TrainConfig);
  } catch (e) {
    if (e instanceof ArgumentError) throw new ArgumentError(`${source}: ${e.message}`);
    throw e;
  }
}

/**
 * A recipe with a partial recipe object merged over it as a recipe file would be (objects field by
 * field, modelOptions key by key, null switches an entry off), then checked; errors name `source`.
 */
export function patchRecipe(base: TrainConfig, patch: Record<string, unknown>, source: string): TrainConfig {
  try {
    return validate(mergeInto(RECIPE_SCHEMA, base, patch, "") as TrainConfig);
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

function parseValue(raw: string, flag: string): unknown {
  if (raw === "null") return null;
  if (raw === "true") return true;
  if (raw === "false") return false;
  if (raw !== "" && !Number.isNaN(Number(raw))) return Number(raw);
  if (raw.startsWith("[") || raw.startsWith("{")) {
    try {
      return JSON.parse(raw);
    } catch (e) {
      throw new ArgumentError(`--${flag}: could not parse the JSON value ${raw} (${(e as Error).message})`);
    }
  }
  return raw;
}

/** The declaration at a dotted path (undefined where unknown or inside modelOptions). */
function nodeAt(dotted: string[]): SchemaNode | undefined {
  let node: SchemaNode | undefined = RECIPE_SCHEMA;
  for (const k of dotted) node = node?.kind === "object" ? fieldNode(node, k) : undefined;
  return node;
}

/**
 * Applies command-line overrides: { "batch-size": "256", "optimizer.lr": "0.05" } (kebab or camel case,
 * dotted paths for nested fields, a few aliases such as --lr and --weight-decay), in order, then
 * checks the result. A text field keeps the text as given (--name 2024 names the run "2024";
 * --data-root 10 is a folder; null is none); JSON values ([...], {...}) are parsed.
 */
export function applyOverrides(cfg: TrainConfig, overrides: Record<string, string>): TrainConfig {
  checkArg(
    isPlainObject(cfg),
    "applyOverrides",
    "cfg must be a TrainConfig object (from loadRecipe or recipeFromObject)",
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
  let out = copyData(cfg);
  for (const [flag, raw] of Object.entries(overrides)) {
    const dotted = (ALIASES[flag] ?? flag).split(".").map(camel);
    const node = nodeAt(dotted);
    let patch: unknown = node?.kind === "text" && !(node.nullable && raw === "null") ? raw : parseValue(raw, flag);
    for (let i = dotted.length - 1; i >= 0; i--) patch = { [dotted[i] as string]: patch };
    out = mergeInto(RECIPE_SCHEMA, out, patch, "");
  }
  return validate(out as TrainConfig);
}

/** Known keys only, each value of its declared type and range, at every depth. */
function checkNode(node: SchemaNode, v: unknown, field: string): void {
  if (node.kind === "open") {
    if (!isObject(v)) throw fieldError(field, node, v);
  } else if (node.kind === "object") {
    if (v === null && node.nullable) return;
    if (!isObject(v)) throw fieldError(field || "(the whole recipe)", node, v);
    for (const k of Object.keys(v)) if (fieldNode(node, k) === undefined) throw unknownField(node, field, k, v[k]);
    let set = 0;
    for (const [k, f] of Object.entries(node.fields)) {
      const x = Object.hasOwn(v, k) ? v[k] : undefined;
      if (x === undefined && f.optional) continue;
      set++;
      checkNode(f, x, join(field, k));
    }
    const min = node.minFields ?? 0;
    if (set < min)
      throw new ArgumentError(
        `recipe field ${field} must set at least ${min === 1 ? "one" : min} of ${Object.keys(node.fields).join(", ")}` +
          `${node.nullable ? " (null switches it off)" : ""}. Received: ${field}=${shown(v)}`,
      );
  } else if (!fitsLeaf(node, v)) throw fieldError(field, node, v);
}

/**
 * The model is registered and its options fit the family's schema (unknown options with a
 * did-you-mean, types and ranges), as createModel will check them, but before any data is read.
 * numClasses and inChannels, which the trainer takes from the data, are checked only when set.
 */
function checkModel(model: string, options: Record<string, unknown>): void {
  const entry = getModelEntry(model);
  if (entry === undefined) throw new ArgumentError(`recipe field model: ${unknownModelMessage(model)}`);
  try {
    readOptions(entry.options, {
      numClasses: 10,
      inChannels: 3,
      ...entry.defaults,
      ...upgradeLegacyOptions(entry.options, options),
    });
  } catch (e) {
    if (e instanceof ArgumentError)
      throw new ArgumentError(`recipe field modelOptions does not fit model "${model}": ${e.message}`);
    throw e;
  }
}

/**
 * Checks every field against the declaration and the model options against the model; throws an
 * ArgumentError naming the first wrong field, its value and what is allowed.
 */
export function validate(c: TrainConfig): TrainConfig {
  checkNode(RECIPE_SCHEMA, c, "");
  checkModel(c.model, c.modelOptions);
  // a mirror is one of the training views only when the run trains with flips (digits, text and
  // signs change meaning when mirrored); evaluate_run.ts refuses `eval --tta` on such runs too
  need(
    !c.tta || c.augment.flip === true,
    "tta",
    "averages each image with its mirror, which needs training with flips: set augment.flip true, or tta false",
    c.tta,
  );
  return c;
}

function need(cond: boolean, field: string, what: string, value: unknown): void {
  if (!cond) throw new ArgumentError(`recipe field ${field} ${what}. Received: ${field}=${shown(value)}`);
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
