// `budgetnet export --run DIR --format onnx|safetensors`: ships a trained run's model. ONNX gets
// the run's image shape, class names and normalization (in the metadata, or in the graph with
// --with-normalization); safetensors gets the weights with the model's name and options in its
// metadata, so either file alone rebuilds or runs the model.
import * as fs from "node:fs";
import * as path from "node:path";
import { readOnnx, saveOnnx, summarizeOnnx } from "../export/onnx";
import { saveSafetensors } from "../export/safetensors";
import { defaultInt8Dir, loadInt8Model } from "../quant/engine";
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
    int8: {
      type: "boolean",
      description:
        "onnx: the int8 quantization of `budgetnet quantize` (RUN/int8) in QDQ form (default file DIR/model.int8.onnx)",
    },
    "int8-dir": { type: "string", valueName: "DIR", description: "with --int8: the quantization's folder" },
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
    const int8 = args.flags.int8 === true;
    if (int8 && format !== "onnx")
      throw new UsageError(
        "--int8 applies only to --format onnx (the int8 safetensors file is RUN/int8/model.safetensors).",
      );
    if (int8 && args.flags["fold-bn"])
      throw new UsageError("--int8 exports the folded model already; leave --fold-bn out.");
    if (args.flags["int8-dir"] !== undefined && !int8) throw new UsageError("--int8-dir applies only with --int8.");
    const defaultName = format === "onnx" ? (int8 ? "model.int8.onnx" : "model.onnx") : "export.safetensors";
    const out = args.flags.out ?? path.join(runDir, defaultName);
    if (!fs.existsSync(path.dirname(path.resolve(out))))
      throw new UsageError(`the folder of --out does not exist. Received: --out=${out}`);

    const { model: floatModel, config } = loadRunModel(runDir, weights);
    let model = floatModel;
    let spec: ReturnType<typeof loadInt8Model>["spec"] | undefined;
    if (int8) {
      floatModel.dispose();
      ({ model, spec } = loadInt8Model(args.flags["int8-dir"] ?? defaultInt8Dir(runDir)));
    }
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
        int8: spec,
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
