// What `budgetnet train` will do, worked out before it does it: the recipe (a named or file recipe,
// the image-folder defaults for --data DIR, or the run's own on --resume) with the command line's
// overrides, the run folder's name, the --dry-run report and the start line. `budgetnet summary
// --recipe/--data` resolves its recipe here too, so both see the same configuration.
import * as fs from "node:fs";
import * as path from "node:path";
import { fmtMillions } from "../analysis/summary";
import { ArgumentError } from "../tensor/errors";
import { applyOverrides, loadRecipe, type TrainConfig } from "../train/config";
import { effectivePrecision } from "../train/precision";
import { checkResumedSettings } from "../train/resume";
import { readRunConfig, runRecipe } from "../train/run";
import {
  checkImageSizeSetting,
  type DerivedOption,
  describeDerived,
  type ModelSize,
  modelSize,
  recipeInput,
  sizeModelToData,
} from "../train/sizing";
import { prepareData, type TrainStart } from "../train/trainer";

/** The recipe `train` uses without --recipe: the demo's, or with --data DIR the image-folder defaults. */
export const DEMO_RECIPE = "fashion-mnist-quick";
export const FOLDER_RECIPE = "folder-default";

export interface TrainFlags {
  recipe?: string;
  /** An image folder (one sub-folder per class) to train on. */
  data?: string;
  out?: string;
  resume?: boolean;
}

export interface ResolvedConfig {
  cfg: TrainConfig;
  /** The recipe as loaded, before --data and the overrides (for naming the run folder). */
  recipe: TrainConfig;
}

export interface TrainPlan extends ResolvedConfig {
  runDir: string;
  resume: boolean;
}

/** An override's field path in camel case ("augment.crop.padding" for --augment.crop.padding). */
function fieldOf(flag: string): string {
  return flag
    .split(".")
    .map((p) => p.replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase()))
    .join(".");
}

function checkDataFolder(dir: string): void {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory())
    throw new ArgumentError(
      `--data ${dir} is not a folder. Give a folder with one sub-folder of images (PNG or JPEG) per class, ` +
        "or train/ and test/ folders that each have them.",
    );
}

/**
 * The configuration `train` runs: the recipe (or, on --resume, the run's own from DIR/config.json),
 * --data DIR as an image folder, then the command line's overrides. Without --recipe, --data uses
 * recipes/folder-default.json, whose crop padding (1/8 of the side) follows the image size unless
 * the command line sets augment.crop.
 */
export async function resolveTrainConfig(flags: TrainFlags, extra: Record<string, string>): Promise<ResolvedConfig> {
  const fields = Object.keys(extra).map(fieldOf);
  if (flags.data !== undefined) {
    checkDataFolder(flags.data);
    const clash = fields.find((f) => f === "dataset" || f === "dataRoot");
    if (clash !== undefined)
      throw new ArgumentError(
        `--data ${flags.data} names the image folder to train on; drop --${clash === "dataRoot" ? "data-root" : "dataset"}, which says it again.`,
      );
  }
  if (flags.resume) {
    if (flags.out === undefined) throw new ArgumentError("--resume needs --out DIR: the run folder to continue.");
    if (flags.recipe !== undefined)
      throw new ArgumentError(
        `--resume continues the run in ${flags.out} with its own recipe (its config.json); drop --recipe.`,
      );
    const recipe = runRecipe(readRunConfig(flags.out), flags.out);
    if (flags.data !== undefined && recipe.dataset !== "folder")
      throw new ArgumentError(`--data: the run in ${flags.out} trains on ${recipe.dataset}, not on an image folder.`);
    const data: Record<string, string> = flags.data === undefined ? {} : { "data-root": flags.data };
    return { cfg: applyOverrides(recipe, { ...data, ...extra }), recipe };
  }
  const recipeName = flags.recipe ?? (flags.data === undefined ? DEMO_RECIPE : FOLDER_RECIPE);
  const recipe = loadRecipe(recipeName);
  const data: Record<string, string> = flags.data === undefined ? {} : { dataset: "folder", "data-root": flags.data };
  let cfg = applyOverrides(recipe, { ...data, ...extra });
  const cropSet = fields.some((f) => f === "augment" || f.startsWith("augment.crop"));
  if (recipeName === FOLDER_RECIPE && cfg.augment.crop && !cropSet) {
    // without imageSize the images keep their own size: the first one's (recipeInput) decides
    const input = cfg.imageSize === null && cfg.dataRoot !== null ? await recipeInput(cfg) : undefined;
    const side = input === undefined ? (cfg.imageSize ?? 32) : Math.min(input.height, input.width);
    const padding = Math.max(1, Math.round(side / 8));
    if (padding !== cfg.augment.crop.padding && padding < side)
      cfg = applyOverrides(cfg, { "augment.crop.padding": String(padding) });
  }
  return { cfg, recipe };
}

/** A file-name-safe form of a name (letters, digits, dot, dash, underscore). */
function slug(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]+/g, "-").replace(/^[-.]+|-+$/g, "") || "data";
}

/**
 * The run folder's name under runs/: what it trains and when. An image folder run is
 * <folder>-<model>-<time>; a recipe run on the recipe's own model and data keeps the recipe's
 * name; a recipe run with another model or data set is <data set>-<model>-<time>.
 */
export function runFolderName(cfg: TrainConfig, recipe: TrainConfig, now = new Date()): string {
  const time = now.toISOString().replace(/[:.]/g, "-");
  if (cfg.dataset === "folder" && cfg.dataRoot !== null)
    return `${slug(path.basename(path.resolve(cfg.dataRoot)))}-${slug(cfg.model)}-${time}`;
  if (cfg.model === recipe.model && cfg.dataset === recipe.dataset) return `${slug(cfg.name)}-${time}`;
  return `${cfg.dataset}-${slug(cfg.model)}-${time}`;
}

/** The configuration and the run folder of a `train` command line. */
export async function planTraining(
  flags: TrainFlags,
  extra: Record<string, string>,
  now = new Date(),
): Promise<TrainPlan> {
  const resolved = await resolveTrainConfig(flags, extra);
  const resume = flags.resume === true;
  const runDir = flags.out ?? path.join("runs", runFolderName(resolved.cfg, resolved.recipe, now));
  return { ...resolved, runDir, resume };
}

/** What `train --dry-run` found: the resolved config, the model's size and the data. */
export interface DryRun {
  dryRun: true;
  runDir: string;
  resume: boolean;
  config: TrainConfig;
  model: {
    name: string;
    /** Given in the recipe and decided by the data (the name's defaults fill the rest). */
    options: Record<string, unknown>;
    derived: Record<string, DerivedOption>;
  } & ModelSize;
  data: {
    dataset: TrainConfig["dataset"];
    name: string;
    train: number;
    val: number;
    imageShape: [number, number, number];
    numClasses: number;
    classNames: string[];
  };
}

/**
 * Everything `train` would start with, found as the trainer finds it (the data read and split, the
 * model sized to it), without creating the run folder or training. On --resume the run's settings
 * are checked as the trainer checks them.
 */
export function dryRun(plan: TrainPlan): DryRun {
  const { cfg } = plan;
  if (plan.resume) checkResumedSettings(plan.runDir, cfg);
  const data = prepareData(cfg);
  const t = data.train;
  if (!plan.resume) checkImageSizeSetting(cfg, t.height, t.width);
  const sized = sizeModelToData(cfg.model, cfg.modelOptions, {
    channels: t.channels,
    height: t.height,
    width: t.width,
    numClasses: t.numClasses,
  });
  const imageShape: [number, number, number] = [t.channels, t.height, t.width];
  return {
    dryRun: true,
    runDir: plan.runDir,
    resume: plan.resume,
    config: cfg,
    model: {
      name: cfg.model,
      options: sized.options,
      derived: sized.derived,
      ...modelSize(cfg.model, sized.options, imageShape),
    },
    data: {
      dataset: cfg.dataset,
      name: t.name,
      train: t.n,
      val: data.val.n,
      imageShape,
      numClasses: t.numClasses,
      classNames: t.classNames,
    },
  };
}

const fmtInt = (n: number): string => n.toLocaleString("en-US");

function sizeText(name: string, size: ModelSize, shape: readonly number[], derived: Record<string, DerivedOption>) {
  const fromData = describeDerived(derived);
  return (
    `${name} (${fmtInt(size.parameters)} parameters, ${fmtMillions(size.macs)} MACs per ${shape.join("x")} image` +
    `${fromData ? `; from the data: ${fromData}` : ""})`
  );
}

/** The --dry-run report as text. */
export function describeDryRun(d: DryRun): string {
  const shown = d.data.classNames.slice(0, 10).join(", ");
  const more = d.data.classNames.length > 10 ? `, ... (${d.data.classNames.length})` : "";
  const derived = Object.entries(d.model.derived).map(([k, v]) => `  ${k} ${JSON.stringify(v.value)}: ${v.reason}`);
  return [
    `dry run: nothing was trained and no run folder was made (the run would go to ${d.runDir}${d.resume ? ", resumed" : ""}).`,
    "",
    "config (resolved):",
    JSON.stringify(d.config, null, 2),
    "",
    `model: ${sizeText(d.model.name, d.model, d.data.imageShape, {})}, counted ${d.model.method === "analytic" ? "from its options" : "on the built model"}`,
    ...(derived.length > 0 ? ["model options from the data:", ...derived] : []),
    `data: ${d.data.dataset} (${d.data.name}): ${fmtInt(d.data.train)} training and ${fmtInt(d.data.val)} validation images ` +
      `(valFraction ${d.config.valFraction}), ${d.data.imageShape.join("x")}, ${d.data.numClasses} classes: ${shown}${more}`,
  ].join("\n");
}

/** The line `train` writes when the run is set up: model, size, data, recipe and folder. */
export function startLine(plan: TrainPlan, start: TrainStart): string {
  const { cfg } = plan;
  const data = cfg.dataset === "folder" && cfg.dataRoot !== null ? `image folder ${cfg.dataRoot}` : cfg.dataset;
  const resumed =
    start.resumedAt === null ? "" : `, resuming at epoch ${start.resumedAt.epoch + 1} (step ${start.resumedAt.step})`;
  return (
    `budgetnet: training ${sizeText(start.model, start.size, start.inputShape, start.derived)} on ${data} ` +
    `(${fmtInt(start.train)} training images, ${start.numClasses} classes; recipe ${cfg.name}${cfg.precision === "auto" ? `; precision auto: ${effectivePrecision(cfg, cfg.model, start.inputShape)} on this ${cfg.device === "cuda" ? "GPU" : "CPU"}` : ""}) into ${plan.runDir}${resumed}`
  );
}
