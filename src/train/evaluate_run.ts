// Evaluating a finished run folder on its validation split or the test set, with the weights and
// normalization it trained with: `budgetnet eval` and the trials of `budgetnet ablate` (which
// report test accuracy beside the validation accuracy they decide on) both call evaluateRun.
import { loadDataset } from "../data";
import type { Module } from "../nn/module";
import type { CompiledInference, PlanOptions } from "../perf/plan";
import { ArgumentError } from "../tensor/errors";
import { requireCuda } from "../tensor/tensor";
import { type EvalResult, evaluate } from "./evaluate";
import { loadRunModel, type RunConfig, runRecipe, type WeightsChoice } from "./run";
import { prepareData } from "./trainer";

/** The engine an evaluation ran on: the float32 plan, libtorch, or an int8 forward (src/quant/engine.ts). */
export type EvalEngine = "plan" | "libtorch" | "int8-plan" | "int8-simulated";

export interface CompiledForward {
  compiled: Pick<CompiledInference, "forward" | "dispose"> | undefined;
  engine: EvalEngine;
  note?: string;
}

export interface EvaluateRunOptions {
  split: "val" | "test";
  weights?: WeightsChoice;
  tta?: boolean;
  batchSize?: number;
  /** Compiles the model for inference (the --engine choice); absent: libtorch's own forward. */
  compile?: (model: Module, opts: PlanOptions) => CompiledForward;
  /** "cuda": the model and the batches on the GPU (libtorch's forward; the compiled plans are CPU-only). Default "cpu". */
  device?: "cpu" | "cuda";
}

export interface RunEvaluation extends EvalResult {
  split: "val" | "test";
  weights: WeightsChoice;
  engine: EvalEngine;
  engineNote?: string;
  config: RunConfig;
}

/** Evaluates the run in runDir (its best or final weights) on its validation split or the test set. */
export function evaluateRun(runDir: string, opts: EvaluateRunOptions): RunEvaluation {
  const weights = opts.weights ?? "best";
  const batchSize = opts.batchSize ?? 256;
  const { model, config } = loadRunModel(runDir, weights);
  try {
    const r = runRecipe(config, runDir);
    // The mirrored view is one of the training views only when the run trained with flips; for
    // digits, text or signs a mirror is another image, and averaging it in lowers the accuracy.
    // absent: the recipe's choice (tta: true validates and evaluates with the mirror)
    const tta = opts.tta ?? r.tta;
    if (tta && r.augment.flip !== true)
      throw new ArgumentError(
        `--tta averages each image with its mirror, but the run in ${runDir} trained without horizontal flips ` +
          "(its recipe's augment.flip is not true), so a mirrored image is not one it learned from. " +
          "Evaluate without --tta, or train with --augment.flip true where a mirrored image keeps its class.",
      );
    const loadOpts = { root: r.dataRoot ?? undefined, size: r.imageSize ?? undefined };
    // val is exactly the run's validation set (same split, seed and subset as during training).
    const ds = opts.split === "test" ? loadDataset(r.dataset, { split: "test", ...loadOpts }) : prepareData(r).val;
    const [c, h, w] = config.data.imageShape;
    if (ds.channels !== c || ds.height !== h || ds.width !== w || ds.numClasses !== config.data.numClasses)
      throw new Error(
        `the ${opts.split} data (${ds.numClasses} classes of ${ds.channels}x${ds.height}x${ds.width} images) is not what the run was trained on ` +
          `(${config.data.numClasses} classes of ${c}x${h}x${w}, config.json data); check the recipe's dataset, dataRoot and imageSize in ${runDir}/config.json.`,
      );
    if (opts.device === "cuda") {
      requireCuda("--device cuda", "evaluate with --device cpu");
      model.to("cuda");
    }
    // float32 plan: the same numbers as the model's own forward (to ~1e-6), only faster
    const plan: CompiledForward = (opts.device !== "cuda"
      ? opts.compile?.(model, {
          inputShape: [batchSize, ...config.data.imageShape],
          precision: "fp32",
        })
      : undefined) ?? { compiled: undefined, engine: "libtorch" };
    try {
      // Normalize with the statistics the model was trained with (config.json), not the evaluated split's.
      const result = evaluate(model, ds, {
        mean: config.data.mean,
        std: config.data.std,
        tta,
        batchSize,
        forward: plan.compiled ? (x) => (plan.compiled as CompiledForward["compiled"] & object).forward(x) : undefined,
      });
      return { ...result, split: opts.split, weights, engine: plan.engine, engineNote: plan.note, config };
    } finally {
      plan.compiled?.dispose();
    }
  } finally {
    model.dispose();
  }
}
