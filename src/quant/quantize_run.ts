// Quantizing a trained run folder: fold, calibrate on its own training images, quantize the
// weights, optionally fine-tune with fake quantization (QAT), measure float32 and simulated int8
// accuracy on its validation split, and write RUN/int8/. `budgetnet quantize` is a thin CLI over
// quantizeRun.
import * as fs from "node:fs";
import * as path from "node:path";
import { DataNotFoundError, type ImageDataset } from "../data/dataset";
import type { Module } from "../nn/module";
import { randn } from "../ops/creation";
import { foldBatchNorm } from "../perf/fold";
import { scope } from "../tensor/scope";
import type { Tensor } from "../tensor/tensor";
import type { TrainConfig } from "../train/config";
import { evaluate } from "../train/evaluate";
import { loadRunModel, runRecipe, type WeightsChoice } from "../train/run";
import { prepareData } from "../train/trainer";
import {
  type CalibrateOptions,
  calibrateActivations,
  calibrationBatches,
  FEW_CALIBRATION_IMAGES,
  quantizeWeights,
  quantLayout,
} from "./calibrate";
import { QUANT_FILE, QUANT_WEIGHTS_FILE, saveQuantized } from "./files";
import { type QatOptions, quantizationAwareTraining } from "./qat";
import { applyQuantizedWeights, simulatedForward } from "./simulate";
import type { QuantSpec } from "./spec";

export interface QuantizeRunOptions extends CalibrateOptions {
  /** Training images to calibrate on (default 1024). */
  calibration: number;
  /** Output folder (default RUN/int8). */
  out?: string;
  /** Replace an existing output folder. */
  force?: boolean;
  weights?: WeightsChoice;
  /** Fine-tune with fake quantization after calibration. */
  qat?: QatOptions;
  /** Warnings (few calibration images, ops left in float): printed by the CLI. */
  onWarning?: (message: string) => void;
  /** Progress lines (QAT epochs). */
  onProgress?: (message: string) => void;
}

export interface QuantizeRunResult {
  dir: string;
  spec: QuantSpec;
  /** Validation accuracy, float32 and simulated int8, and the number of images. */
  floatAccuracy: number;
  int8Accuracy: number;
  valImages: number;
  /** The run's float32 weights file and the int8 model.safetensors, in bytes. */
  floatBytes: number;
  int8Bytes: number;
  floatFile: string;
}

function checkRunDir(runDir: string): void {
  if (fs.existsSync(path.join(runDir, QUANT_FILE)))
    throw new Error(
      `${runDir} is an int8 folder written by \`budgetnet quantize\` (it holds ${QUANT_FILE}), not a run folder; give the run folder it belongs to (its parent, by default).`,
    );
}

function accuracyOf(
  model: Module,
  val: ImageDataset,
  data: { mean: number[]; std: number[] },
  forward?: (x: Tensor) => Tensor,
): number {
  return evaluate(model, val, { mean: data.mean, std: data.std, batchSize: 256, forward }).accuracy;
}

/** The run's training and validation data; a clear error naming the fetch command when it is missing. */
function calibrationData(recipe: TrainConfig): ReturnType<typeof prepareData> {
  try {
    return prepareData(recipe);
  } catch (e) {
    if (e instanceof DataNotFoundError) throw e; // the CLI prints it with the command that fetches it
    const where = recipe.dataRoot === null ? "" : ` in ${recipe.dataRoot} (the recipe's dataRoot)`;
    throw new Error(
      `quantize calibrates on the run's training images, but ${recipe.dataset}${where} could not be read: ${(e as Error).message}. ` +
        `Fetch it with \`budgetnet data download ${recipe.dataset}${recipe.dataRoot === null ? "" : ` --root ${recipe.dataRoot}`}\`, or correct dataRoot in the run's config.json.`,
    );
  }
}

export function quantizeRun(runDir: string, opts: QuantizeRunOptions): QuantizeRunResult {
  checkRunDir(runDir);
  const warn = opts.onWarning ?? (() => {});
  const dir = opts.out ?? path.join(runDir, "int8");
  if (fs.existsSync(path.join(dir, QUANT_FILE)) && opts.force !== true)
    throw new Error(
      `${dir} already holds a quantization (${QUANT_FILE}); pass --force to replace it, or --out DIR for another folder.`,
    );
  if (!Number.isInteger(opts.calibration) || opts.calibration < 1)
    throw new Error(
      `--calibration must be a positive number of training images. Received: --calibration=${opts.calibration}`,
    );
  const weightsChoice = opts.weights ?? "best";
  const { model, config } = loadRunModel(runDir, weightsChoice);
  const floatFile = ["best.safetensors", "model.safetensors"]
    .map((f) => path.join(runDir, f))
    .find((f) => fs.existsSync(f) && (weightsChoice === "best" || f.endsWith("model.safetensors"))) as string;
  let folded: Module | undefined;
  try {
    const recipe = runRecipe(config, runDir);
    const { train, val } = calibrationData(recipe);
    const data = { mean: config.data.mean, std: config.data.std, numClasses: config.data.numClasses };
    const n = Math.min(opts.calibration, train.n);
    if (opts.calibration > train.n)
      warn(`--calibration ${opts.calibration} is more than the ${train.n} training images; using all of them.`);
    if (n < FEW_CALIBRATION_IMAGES)
      warn(
        `calibrating on ${n} image${n === 1 ? "" : "s"}: activation ranges from so few images are unreliable (values the images did not show are clipped). Use --calibration 512 or more; the int8 accuracy below shows the effect.`,
      );
    const inputShape = config.data.imageShape;
    folded = foldBatchNorm(model, { inputShape: [2, ...inputShape] }).model;
    const f = folded;
    const layout = scope(() => quantLayout(f, randn([2, ...inputShape])));
    for (const fl of layout.float) warn(`${fl.key} stays float32: ${fl.reason}`);
    const floatAccuracy = accuracyOf(model, val, data);
    let weights = quantizeWeights(folded, layout.weights, opts.perChannel);
    let activations = calibrateActivations(folded, layout, calibrationBatches(train, n, data), opts);
    if (opts.qat !== undefined) {
      const tuned = quantizationAwareTraining(folded, layout, train, activations, {
        ...opts.qat,
        perChannel: opts.perChannel,
        data,
        // the run's crop and flip; mixed-label augmentations (mixup, cutmix) are left out
        augment: { ...(recipe.augment.crop ? { crop: recipe.augment.crop } : {}), flip: recipe.augment.flip === true },
        onProgress: opts.onProgress,
      });
      weights = quantizeWeights(folded, layout.weights, opts.perChannel);
      activations = tuned.activations;
    }
    applyQuantizedWeights(folded, weights);
    const int8Accuracy = accuracyOf(folded, val, data, simulatedForward(folded, activations));
    const spec: QuantSpec = {
      format: "budgetnet-int8",
      version: 1,
      model: config.model.name,
      modelOptions: config.model.options as Record<string, unknown>,
      inputShape: [...inputShape],
      observer: opts.observer,
      calibrationImages: n,
      perChannel: opts.perChannel,
      method: opts.qat === undefined ? "ptq" : "qat",
      activations,
      weights: Object.fromEntries([...weights].map(([name, w]) => [name, w.quant])),
      float: layout.float,
    };
    saveQuantized(dir, spec, folded, weights);
    return {
      dir,
      spec,
      floatAccuracy,
      int8Accuracy,
      valImages: val.n,
      floatBytes: fs.statSync(floatFile).size,
      int8Bytes: fs.statSync(path.join(dir, QUANT_WEIGHTS_FILE)).size,
      floatFile,
    };
  } finally {
    folded?.dispose();
    model.dispose();
  }
}
