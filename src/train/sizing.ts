// Sizing a model to its data: the classifier's outputs, the input channels and, for the families
// whose classifier depends on the input (efficient_resnet and the other ResNets that declare
// imageSize and poolSize), the image size and a pool that fits the last feature map. The trainer,
// `budgetnet summary --recipe` and `budgetnet train --dry-run` all size through sizeModelToData,
// so what they print is what trains. A value the user set is kept when it fits the data and
// refused, saying which values fit, when it does not; what the data decided is listed in `derived`.
import * as fs from "node:fs";
import * as path from "node:path";
import { summary } from "../analysis/summary";
import { listImageFolder } from "../data/folder";
import { analyticCost, createModel, getModelEntry, type ModelEntry, type ModelOptions } from "../models";
import type { Module } from "../nn/module";
import { ArgumentError, describe } from "../tensor/errors";
import type { TrainConfig } from "./config";

/** What a model must fit: one image's shape and the number of classes. */
export interface InputShape {
  channels: number;
  height: number;
  width: number;
  numClasses: number;
}

/** An option the data decided, with the reason in words (for config.json and the start line). */
export interface DerivedOption {
  value: unknown;
  reason: string;
}

export interface SizedModel {
  /** The options to build with: the user's, plus what came from the data. */
  options: ModelOptions;
  derived: Record<string, DerivedOption>;
}

/**
 * The options `name` is built with on data of shape `data`. numClasses and inChannels come from
 * the data; a family that declares imageSize gets the data's side; one that declares poolSize and
 * was not given one keeps the name's default pool where it fits the last feature map, and else gets
 * the pool that leaves the grid the default leaves on its default image size (efficient_resnet's 8
 * on 32x32 pools an 8x8 map to 1x1, so on 28x28, a 7x7 map, it becomes 7). User values that
 * contradict the data are refused with the values that fit.
 * An unknown name passes through: createModel lists the known ones.
 */
export function sizeModelToData(name: string, userOptions: Record<string, unknown>, data: InputShape): SizedModel {
  const user = userOptions ?? {};
  const entry = getModelEntry(name);
  const options: ModelOptions = { numClasses: data.numClasses, inChannels: data.channels, ...user };
  const derived: Record<string, DerivedOption> = {};
  const image = `${data.height}x${data.width}`;
  if (user.numClasses === undefined)
    derived.numClasses = { value: data.numClasses, reason: `the data's ${data.numClasses} classes` };
  else mustMatch("numClasses", user.numClasses, data.numClasses, `the data's ${data.numClasses} classes`);
  if (user.inChannels === undefined)
    derived.inChannels = { value: data.channels, reason: `the data's ${data.channels}-channel images` };
  else mustMatch("inChannels", user.inChannels, data.channels, `the data's ${data.channels}-channel images`);
  if (entry === undefined) return { options, derived };
  const specs = entry.options.specs;
  const square = data.height === data.width;
  const side = Math.min(data.height, data.width);
  if (specs.imageSize !== undefined) {
    if (user.imageSize === undefined) {
      options.imageSize = side;
      derived.imageSize = { value: side, reason: `the data's ${image} images` };
    } else if (user.imageSize !== data.height || !square)
      throw new ArgumentError(
        `modelOptions.imageSize ${describe(user.imageSize)} does not match the data's ${image} images. ` +
          "Leave it out (the model is sized to the data), or resize an image folder's images with --image-size.",
      );
  }
  if (specs.poolSize !== undefined) sizePool(name, entry, user, options, derived, data);
  return { options, derived };
}

function mustMatch(option: string, given: unknown, fromData: number, what: string): void {
  if (given !== fromData)
    throw new ArgumentError(
      `modelOptions.${option} ${describe(given)} does not match ${what}. Leave it out: the model is sized to the data.`,
    );
}

/** The name's default for an option, else the family's declared default. */
function defaultOf(entry: ModelEntry, option: string): unknown {
  return entry.defaults[option] ?? entry.options.specs[option]?.default;
}

/** Fills options.poolSize (derived, or the user's checked against the last feature map). */
function sizePool(
  name: string,
  entry: ModelEntry,
  user: Record<string, unknown>,
  options: ModelOptions,
  derived: Record<string, DerivedOption>,
  data: InputShape,
): void {
  const image = `${data.height}x${data.width}`;
  const given = user.poolSize;
  const square = data.height === data.width;
  if (!square) {
    // a pool before the classifier sizes it for one square input; other shapes need global pooling
    if (given !== undefined && given !== 0)
      throw new ArgumentError(
        `modelOptions.poolSize ${describe(given)} needs square images (the classifier is sized for one side), but the data's are ${image}. ` +
          "Use poolSize 0 (global average pooling), or resize an image folder to a square with --image-size.",
      );
    if (given === undefined && defaultOf(entry, "poolSize") !== 0) {
      options.poolSize = 0;
      derived.poolSize = { value: 0, reason: `global average pooling: the data's ${image} images are not square` };
    }
    return;
  }
  const side = data.height;
  const others: ModelOptions = Object.fromEntries(Object.entries(options).filter(([k]) => k !== "poolSize"));
  if (given !== undefined) {
    if (typeof given !== "number" || given === 0) return; // createModel checks the type; 0 always fits
    const last = lastMapSide(name, others, data.channels, side);
    if (last !== undefined && given > last)
      throw new ArgumentError(
        `modelOptions.poolSize ${given} does not fit ${name} on ${image} inputs: its last feature map is ${last}x${last}, ` +
          `so poolSize must be 0 (global average pooling) or 1 to ${last} (${last} pools the map to 1x1). ` +
          "Leave it out to have one chosen for the data.",
      );
    return;
  }
  const fallback = defaultOf(entry, "poolSize");
  if (typeof fallback !== "number" || fallback === 0) return;
  const last = lastMapSide(name, others, data.channels, side);
  // no analytic cost to size by (createModel checks the default itself), or the default fits
  if (last === undefined || fallback <= last) return;
  const grid = defaultGrid(name, entry, others, data.channels, fallback);
  const pool = grid <= last ? Math.floor(last / grid) : 1;
  const cells = Math.floor(last / pool);
  options.poolSize = pool;
  const defaultSide = defaultOf(entry, "imageSize");
  derived.poolSize = {
    value: pool,
    reason:
      `the default ${fallback} exceeds the last feature map, ${last}x${last} on ${image} inputs; ${pool} pools it to ${cells}x${cells}` +
      (typeof defaultSide === "number" ? `, as ${fallback} does on ${defaultSide}x${defaultSide}` : ""),
  };
}

/** Cells per side that the default pool leaves on the default image size (1 when it cannot be worked out). */
function defaultGrid(name: string, entry: ModelEntry, others: ModelOptions, channels: number, pool: number): number {
  const defaultSide = defaultOf(entry, "imageSize");
  if (typeof defaultSide !== "number") return 1;
  try {
    const last = lastMapSide(name, others, channels, defaultSide);
    return last !== undefined && last >= pool ? Math.floor(last / pool) : 1;
  } catch {
    return 1; // the user's other options do not fit the default size: pool to 1x1
  }
}

/**
 * Side of the last feature map for square inputs of `side`: the largest poolSize the family's
 * analytic cost accepts (its one check that depends on the pool is "pool <= last map"). Undefined
 * when the family has no analytic cost. Options wrong for another reason throw createModel's error.
 */
export function lastMapSide(name: string, options: ModelOptions, channels: number, side: number): number | undefined {
  const fits = (pool: number): boolean => {
    try {
      analyticCost(name, { ...options, imageSize: side, poolSize: pool }, [channels, side, side]);
      return true;
    } catch (e) {
      if (e instanceof ArgumentError) return false;
      throw e;
    }
  };
  if (analyticCost(name, { ...options, imageSize: side, poolSize: 1 }, [channels, side, side]) === undefined)
    return undefined;
  let lo = 1; // fits (just checked)
  let hi = side;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (fits(mid)) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** Shapes of the built-in data sets, known without reading them. */
const BUILTIN_SHAPES: Record<Exclude<TrainConfig["dataset"], "folder">, InputShape> = {
  "fashion-mnist": { channels: 1, height: 28, width: 28, numClasses: 10 },
  mnist: { channels: 1, height: 28, width: 28, numClasses: 10 },
  cifar10: { channels: 3, height: 32, width: 32, numClasses: 10 },
  cifar100: { channels: 3, height: 32, width: 32, numClasses: 100 },
};

/**
 * imageSize resizes image folders only: on a built-in data set it must be the images' own size
 * (or null). A different value would otherwise be silently ignored.
 */
export function checkImageSizeSetting(cfg: TrainConfig, height: number, width: number): void {
  if (cfg.dataset === "folder" || cfg.imageSize === null) return;
  if (cfg.imageSize !== height || cfg.imageSize !== width)
    throw new ArgumentError(
      `imageSize ${cfg.imageSize} resizes image folders only; ${cfg.dataset} images are ${height}x${width} and are used as they are. ` +
        "Drop --image-size (the model is sized to the data), or train on an image folder (--data DIR).",
    );
}

/** The folder the training images are read from: root/train when root has train/ or test/, else root. */
export function folderTrainRoot(root: string): string {
  const hasSplits = ["train", "test"].some((s) => fs.existsSync(path.join(root, s)));
  return hasSplits ? path.join(root, "train") : root;
}

export interface RecipeInput extends InputShape {
  /** Where the shape came from, in words. */
  description: string;
}

/**
 * The input a recipe's model will see, without loading the data set: the built-in data sets' known
 * shapes; for an image folder, its class folders and the image headers (the size of the first
 * image unless imageSize resizes them; 3 channels as soon as one image is in colour, as the
 * folder reader does).
 */
export async function recipeInput(cfg: TrainConfig): Promise<RecipeInput> {
  if (cfg.dataset !== "folder") {
    const shape = BUILTIN_SHAPES[cfg.dataset];
    checkImageSizeSetting(cfg, shape.height, shape.width);
    return {
      ...shape,
      description: `${cfg.dataset}: ${shape.numClasses} classes of ${shape.channels}x${shape.height}x${shape.width} images`,
    };
  }
  if (cfg.dataRoot === null)
    throw new ArgumentError(
      "the recipe trains on an image folder (dataset folder) but names none: give --data DIR, a folder with one sub-folder of images per class.",
    );
  const root = folderTrainRoot(cfg.dataRoot);
  const { classNames, files } = listImageFolder(root);
  const sharp = (await import("sharp")).default;
  let channels = 1;
  let first: { width: number; height: number } | undefined;
  for (const file of files) {
    let meta: { width?: number; height?: number; space?: string };
    try {
      meta = await sharp(file, { limitInputPixels: false }).metadata();
    } catch (e) {
      throw new ArgumentError(
        `image folder: cannot read image ${file}: ${(e as Error).message}. Replace it or remove it from the folder.`,
      );
    }
    first ??= { width: meta.width ?? 0, height: meta.height ?? 0 };
    // the folder reader keeps grayscale files one channel and makes the set RGB if any is colour
    if (!(meta.space === "b-w" || meta.space === "grey16")) {
      channels = 3;
      break;
    }
  }
  const height = cfg.imageSize ?? first?.height ?? 0;
  const width = cfg.imageSize ?? first?.width ?? 0;
  const resized = cfg.imageSize === null ? "" : `, resized to ${height}x${width}`;
  return {
    channels,
    height,
    width,
    numClasses: classNames.length,
    description: `image folder ${root}: ${files.length} images in ${classNames.length} classes${resized}`,
  };
}

/** Parameters and multiply-adds of a sized model on one input; "analytic" without building it. */
export interface ModelSize {
  parameters: number;
  macs: number;
  method: "analytic" | "built";
}

/**
 * The size of createModel(name, options) on one [c, h, w] input: analyticCost where the family has
 * one, else summary() of `built` (or of a model built here and disposed; summary changes nothing
 * of a model it measures, and building one here is only done outside training).
 */
export function modelSize(
  name: string,
  options: ModelOptions,
  inputShape: [number, number, number],
  built?: Module,
): ModelSize {
  let cost: ReturnType<typeof analyticCost>;
  try {
    cost = analyticCost(name, options, inputShape);
  } catch (e) {
    if (built === undefined) throw e; // the same error createModel would give
    // a model that built and runs is measured on itself rather than failing over a count
  }
  if (cost !== undefined) return { parameters: cost.params, macs: cost.macs, method: "analytic" };
  const model = built ?? createModel(name, options);
  try {
    const s = summary(model, { inputShape });
    return { parameters: s.params, macs: s.macs, method: "built" };
  } finally {
    if (built === undefined) model.dispose();
  }
}

/** "imageSize 28, poolSize 7" of the options the data decided beyond classes and channels. */
export function describeDerived(derived: Record<string, DerivedOption>): string {
  return Object.entries(derived)
    .filter(([k]) => k !== "numClasses" && k !== "inChannels")
    .map(([k, d]) => `${k} ${describe(d.value)}`)
    .join(", ");
}
