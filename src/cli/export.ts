// `budgetnet export --run DIR --format onnx|safetensors`: ships a trained run's model. ONNX gets
// the run's image shape, class names and normalization (in the metadata, or in the graph with
// --with-normalization); safetensors gets the weights with the model's name and options in its
// metadata, so either file alone rebuilds or runs the model.
import * as fs from "node:fs";
import * as path from "node:path";
import { readOnnx, saveOnnx, summarizeOnnx } from "../export/onnx";
import { saveSafetensors } from "../export/safetensors";
import { loadRunModel } from "../train/run";
import { defineCommand, UsageError } from "./args";

const FORMATS = ["onnx", "safetensors"];
/** The switches that only the onnx format takes. */
const ONNX_ONLY = ["fold-bn", "with-normalization", "probabilities"] as const;

export const exportCommand = defineCommand({
  name: "export",
  summary: "Write a trained run's model as ONNX (opset 17, for onnxruntime and friends) or safetensors.",
  positionals: [],
  flags: {
    run: { type: "string", valueName: "DIR", description: "the run folder `budgetnet train` wrote (required)" },
    format: { type: "string", valueName: "FORMAT", description: "onnx or safetensors", default: "onnx" },
    out: {
      type: "string",
      valueName: "FILE",
      description: "output file (default DIR/model.onnx or DIR/export.safetensors)",
    },
    weights: {
      type: "string",
      valueName: "WHICH",
      description: "best (by validation accuracy) or final",
      default: "best",
    },
    "fold-bn": { type: "boolean", description: "onnx: merge each BatchNorm into the convolution before it" },
    "with-normalization": {
      type: "boolean",
      description: "onnx: put (x - mean) / std in the graph, so it takes [0, 1] pixels",
    },
    probabilities: { type: "boolean", description: "onnx: add a softmax output named probabilities" },
  },
  run(args) {
    const runDir = args.flags.run;
    if (runDir === undefined) throw new UsageError("--run DIR is required: the folder `budgetnet train` wrote.");
    const format = args.flags.format;
    if (!FORMATS.includes(format))
      throw new UsageError(`--format must be one of ${FORMATS.join(", ")}. Received: --format=${format}`);
    const weights = args.flags.weights;
    if (weights !== "best" && weights !== "final")
      throw new UsageError(`--weights must be best or final. Received: --weights=${weights}`);
    const onnxOnly = ONNX_ONLY.filter((f) => args.flags[f]);
    if (format !== "onnx" && onnxOnly.length > 0)
      throw new UsageError(
        `${onnxOnly.map((f) => `--${f}`).join(", ")} ${onnxOnly.length > 1 ? "apply" : "applies"} only to --format onnx.`,
      );
    const out = args.flags.out ?? path.join(runDir, format === "onnx" ? "model.onnx" : "export.safetensors");
    if (!fs.existsSync(path.dirname(path.resolve(out))))
      throw new UsageError(`the folder of --out does not exist. Received: --out=${out}`);

    const { model, config } = loadRunModel(runDir, weights);
    try {
      const data = config.data;
      if (format === "safetensors") {
        saveSafetensors(out, model.stateDict(), {
          format: "pt",
          model_name: config.model.name,
          model_options: JSON.stringify(config.model.options),
          class_names: JSON.stringify(data.classNames),
          mean: JSON.stringify(data.mean),
          std: JSON.stringify(data.std),
          input_shape: JSON.stringify(data.imageShape),
        });
        process.stdout.write(`wrote ${out} (${model.stateDict().size} tensors, ${fs.statSync(out).size} bytes)\n`);
        return 0;
      }
      const options = {
        inputShape: data.imageShape,
        foldBn: args.flags["fold-bn"] === true,
        withNormalization: args.flags["with-normalization"] ? { mean: data.mean, std: data.std } : undefined,
        probabilities: args.flags.probabilities === true,
        classNames: data.classNames,
        metadata: {
          mean: JSON.stringify(data.mean),
          std: JSON.stringify(data.std),
          source_run: path.resolve(runDir),
          weights,
        },
      };
      saveOnnx(out, model, options);
      const s = summarizeOnnx(readOnnx(fs.readFileSync(out), out));
      const ops = Object.entries(s.ops)
        .map(([op, n]) => `${op} ${n}`)
        .join(", ");
      process.stdout.write(
        `wrote ${out} (${fs.statSync(out).size} bytes, opset ${s.opset}, ${s.parameters} weights)\n` +
          `  input  ${s.inputs.map((i) => `${i.name} [${i.shape.join(", ")}]`).join(", ")}` +
          `${options.withNormalization ? " pixels in [0, 1]" : " normalized with the run's mean/std"}\n` +
          `  output ${s.outputs.map((o) => `${o.name} [${o.shape.join(", ")}]`).join(", ")}\n` +
          `  ops    ${ops}\n`,
      );
      return 0;
    } finally {
      model.dispose();
    }
  },
});
