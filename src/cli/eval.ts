// `budgetnet eval --run DIR [--split val|test] [--tta] [--weights best|final] [--json]`
import { defaultInt8Dir, int8Forward } from "../quant/engine";
import { evaluateRun } from "../train/evaluate_run";
import { runRecipe } from "../train/run";
import { defineCommand, UsageError } from "./args";
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
        "average the predictions on each image and its mirror (only for runs trained with horizontal flips: --augment.flip true); absent: the recipe's tta",
    },
    "no-tta": { type: "boolean", description: "the image alone, even where the recipe sets tta" },
    weights: {
      type: "string",
      valueName: "best|final",
      description: "best (by validation accuracy) or final weights",
      default: "best",
    },
    "batch-size": { type: "integer", valueName: "N", description: "evaluation batch size", default: 256 },
    engine: ENGINE_FLAG,
    int8: {
      type: "boolean",
      description: "evaluate the int8 quantization `budgetnet quantize` wrote (RUN/int8, or --int8-dir)",
    },
    "int8-dir": { type: "string", valueName: "DIR", description: "with --int8: the quantization's folder" },
    device: {
      type: "string",
      valueName: "cpu|cuda",
      description: "where to evaluate (cuda: the first GPU, with an addon built against a CUDA libtorch)",
      default: "cpu",
    },
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
    const device = args.flags.device;
    if (device !== "cpu" && device !== "cuda")
      throw new Error(`--device must be cpu or cuda. Received: --device=${device}`);
    if (device === "cuda" && (args.flags.int8 || args.flags.engine !== "auto"))
      throw new Error("--device cuda evaluates with libtorch's own forward; leave --engine and --int8 out.");
    const batchSize = args.flags["batch-size"];
    if (!(batchSize >= 1)) throw new Error(`--batch-size must be >= 1. Received: --batch-size=${batchSize}`);
    if (args.flags["int8-dir"] !== undefined && !args.flags.int8)
      throw new Error("--int8-dir applies only with --int8.");
    if (args.flags.int8 && args.flags.engine !== "auto")
      throw new Error(
        "--int8 chooses the int8 engine itself (the int8 plan where built, else a simulation); leave --engine out.",
      );
    if (args.flags.tta && args.flags["no-tta"])
      throw new UsageError("--tta and --no-tta contradict each other; give one, or neither for the recipe's tta.");
    const started = Date.now();
    const {
      config,
      engine,
      engineNote,
      split: _split,
      weights: _weights,
      ...result
    } = evaluateRun(runDir, {
      split,
      weights,
      tta: args.flags["no-tta"] ? false : args.flags.tta ? true : undefined,
      batchSize,
      device,
      compile: (model, opts) => {
        if (!args.flags.int8) return compileForEngine(args.flags.engine, model, opts);
        const int8 = int8Forward(args.flags["int8-dir"] ?? defaultInt8Dir(runDir), { batchSize });
        return { compiled: int8, engine: int8.engine, note: int8.note };
      },
    });
    const seconds = (Date.now() - started) / 1000;
    if (args.flags.json) {
      process.stdout.write(
        `${JSON.stringify({ run: runDir, split, weights, seconds, engine, engineNote, ...result }, null, 2)}\n`,
      );
      return 0;
    }
    const dataset = runRecipe(config, runDir).dataset;
    const lines = [
      `${config.model.name} on ${dataset} ${split} (${result.n} images, ${weights} weights${result.tta ? ", flip TTA" : ""}, ${engine}): ` +
        `accuracy ${(100 * result.accuracy).toFixed(2)}%, loss ${result.loss.toFixed(4)}, ${seconds.toFixed(1)} s`,
      "per class:",
      ...result.perClass.map((c) => `  ${c.name.padEnd(14)} ${(100 * c.accuracy).toFixed(2).padStart(6)}%  (${c.n})`),
      "confusion (rows: true class, columns: predicted):",
      ...result.confusion.map((row) => `  ${row.map((v) => String(v).padStart(5)).join("")}`),
    ];
    if (engineNote !== undefined)
      lines.push(engine === "int8-simulated" ? `(${engineNote})` : `(libtorch, not the fused plan: ${engineNote})`);
    process.stdout.write(`${lines.join("\n")}\n`);
    return 0;
  },
});
