// `budgetnet eval --run DIR [--split val|test] [--tta] [--weights best|final] [--json]`
import { loadDataset } from "../data";
import type { CompiledInference } from "../perf/plan";
import { ArgumentError } from "../tensor/errors";
import { type EvalResult, evaluate } from "../train/evaluate";
import { loadRunModel, runRecipe } from "../train/run";
import { prepareData } from "../train/trainer";
import { defineCommand } from "./args";
import { compileForEngine, ENGINE_FLAG } from "./engine";

export const evalCommand = defineCommand({
  name: "eval",
  summary:
    "Evaluate a trained run on its validation split or the test set: accuracy, per-class accuracy, confusion matrix.",
  positionals: [],
  flags: {
    run: { type: "string", valueName: "DIR", description: "the run folder written by `budgetnet train`" },
    split: { type: "string", valueName: "val|test", description: "which data to evaluate on", default: "test" },
    tta: {
      type: "boolean",
      description:
        "average the predictions on each image and its mirror (only for runs trained with horizontal flips: --augment.flip true)",
    },
    weights: {
      type: "string",
      valueName: "best|final",
      description: "best (by validation accuracy) or final weights",
      default: "best",
    },
    "batch-size": { type: "integer", valueName: "N", description: "evaluation batch size", default: 256 },
    engine: ENGINE_FLAG,
    json: { type: "boolean", description: "print JSON" },
  },
  run(args) {
    const runDir = args.flags.run;
    if (!runDir) throw new Error("eval needs --run DIR (a folder written by `budgetnet train`).");
    const split = args.flags.split;
    if (split !== "val" && split !== "test") throw new Error(`--split must be val or test. Received: --split=${split}`);
    const weights = args.flags.weights;
    if (weights !== "best" && weights !== "final")
      throw new Error(`--weights must be best or final. Received: --weights=${weights}`);
    const batchSize = args.flags["batch-size"];
    if (!(batchSize >= 1)) throw new Error(`--batch-size must be >= 1. Received: --batch-size=${batchSize}`);
    const started = Date.now();
    const { model, config } = loadRunModel(runDir, weights);
    try {
      const r = runRecipe(config, runDir);
      // The mirrored view is one of the training views only when the run trained with flips; for
      // digits, text or signs a mirror is another image, and averaging it in lowers the accuracy.
      if (args.flags.tta && r.augment.flip !== true)
        throw new ArgumentError(
          `--tta averages each image with its mirror, but the run in ${runDir} trained without horizontal flips ` +
            "(its recipe's augment.flip is not true), so a mirrored image is not one it learned from. " +
            "Evaluate without --tta, or train with --augment.flip true where a mirrored image keeps its class.",
        );
      const loadOpts = { root: r.dataRoot ?? undefined, size: r.imageSize ?? undefined };
      // val is exactly the run's validation set (same split, seed and subset as during training).
      const ds = split === "test" ? loadDataset(r.dataset, { split: "test", ...loadOpts }) : prepareData(r).val;
      const [c, h, w] = config.data.imageShape;
      if (ds.channels !== c || ds.height !== h || ds.width !== w || ds.numClasses !== config.data.numClasses)
        throw new Error(
          `the ${split} data (${ds.numClasses} classes of ${ds.channels}x${ds.height}x${ds.width} images) is not what the run was trained on ` +
            `(${config.data.numClasses} classes of ${c}x${h}x${w}, config.json data); check the recipe's dataset, dataRoot and imageSize in ${runDir}/config.json.`,
        );
      // float32 plan: the same numbers as the model's own forward (to ~1e-6), only faster
      const plan = compileForEngine(args.flags.engine, model, {
        inputShape: [batchSize, ...config.data.imageShape],
        precision: "fp32",
      });
      // Normalize with the statistics the model was trained with (config.json), not the evaluated split's.
      let result: EvalResult;
      try {
        result = evaluate(model, ds, {
          mean: config.data.mean,
          std: config.data.std,
          tta: args.flags.tta === true,
          batchSize,
          forward: plan.compiled ? (x) => (plan.compiled as CompiledInference).forward(x) : undefined,
        });
      } finally {
        plan.compiled?.dispose();
      }
      const seconds = (Date.now() - started) / 1000;
      if (args.flags.json) {
        process.stdout.write(
          `${JSON.stringify({ run: runDir, split, weights, seconds, engine: plan.engine, engineNote: plan.note, ...result }, null, 2)}\n`,
        );
        return 0;
      }
      const lines = [
        `${config.model.name} on ${r.dataset} ${split} (${result.n} images, ${weights} weights${result.tta ? ", flip TTA" : ""}, ${plan.engine}): ` +
          `accuracy ${(100 * result.accuracy).toFixed(2)}%, loss ${result.loss.toFixed(4)}, ${seconds.toFixed(1)} s`,
        "per class:",
        ...result.perClass.map((c) => `  ${c.name.padEnd(14)} ${(100 * c.accuracy).toFixed(2).padStart(6)}%  (${c.n})`),
        "confusion (rows: true class, columns: predicted):",
        ...result.confusion.map((row) => `  ${row.map((v) => String(v).padStart(5)).join("")}`),
      ];
      if (plan.note !== undefined) lines.push(`(libtorch, not the fused plan: ${plan.note})`);
      process.stdout.write(`${lines.join("\n")}\n`);
      return 0;
    } finally {
      model.dispose();
    }
  },
});
