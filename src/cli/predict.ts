// `budgetnet predict --run DIR IMAGE... [--top-k K] [--tta] [--int8] [--json]`: top-k classes with
// names; --int8 classifies with the run's int8 quantization (the int8 plan, src/quant/engine.ts).
import { checkImageSize, decoderMessage, MAX_IMAGE_PIXELS, readRegularFile } from "../data/image-file";
import { tensor } from "../ops/creation";
import { topk } from "../ops/reduce";
import { defaultInt8Dir, int8Forward } from "../quant/engine";
import { ArgumentError } from "../tensor/errors";
import { scope } from "../tensor/scope";
import { noGrad, type Tensor } from "../tensor/tensor";
import { predictProbabilities } from "../train/evaluate";
import { loadRunModel } from "../train/run";
import { defineCommand } from "./args";
import { compileForEngine, ENGINE_FLAG } from "./engine";

/**
 * Decodes an image file to uint8 CHW at the model's input size (grayscale for 1 channel). Only a
 * regular file is opened, and its header's size is checked before any pixel is decoded.
 */
export async function decodeImage(file: string, channels: number, height: number, width: number): Promise<Uint8Array> {
  const sharp = (await import("sharp")).default;
  const bytes = readRegularFile(file, "predict");
  let raw: Buffer;
  try {
    // The header only (sharp's pixel limit would refuse it without saying the limit); then decode.
    const meta = await sharp(bytes, { limitInputPixels: false }).metadata();
    checkImageSize(file, meta.width, meta.height, "predict");
    let img = sharp(bytes, { limitInputPixels: MAX_IMAGE_PIXELS }).resize(width, height, { fit: "fill" }).removeAlpha();
    img = channels === 1 ? img.grayscale() : img.toColourspace("srgb");
    raw = await img.raw().toBuffer();
  } catch (e) {
    if (e instanceof ArgumentError) throw e;
    throw new Error(`could not read the image ${file}: ${decoderMessage(e)}. Give a PNG or JPEG file.`);
  }
  const hw = height * width;
  if (raw.length !== hw * channels)
    throw new Error(`decoding ${file} gave ${raw.length} bytes, expected ${hw * channels}.`);
  const chw = new Uint8Array(hw * channels);
  for (let c = 0; c < channels; c++) for (let i = 0; i < hw; i++) chw[c * hw + i] = raw[i * channels + c] as number;
  return chw;
}

export const predictCommand = defineCommand({
  name: "predict",
  summary: "Classify image files with a trained run: the top-k classes and their probabilities.",
  positionals: [{ name: "IMAGE...", description: "PNG or JPEG files", variadic: true }],
  flags: {
    run: { type: "string", valueName: "DIR", description: "the run folder written by `budgetnet train`" },
    "top-k": { type: "integer", valueName: "K", description: "how many classes to show", default: 5 },
    tta: { type: "boolean", description: "average the predictions on each image and its mirror" },
    json: { type: "boolean", description: "print JSON" },
    engine: ENGINE_FLAG,
    int8: {
      type: "boolean",
      description: "classify with the int8 quantization `budgetnet quantize` wrote (RUN/int8, or --int8-dir)",
    },
    "int8-dir": { type: "string", valueName: "DIR", description: "with --int8: the quantization's folder" },
  },
  async run(args) {
    const runDir = args.flags.run;
    if (!runDir) throw new Error("predict needs --run DIR (a folder written by `budgetnet train`).");
    if (args.flags["int8-dir"] !== undefined && args.flags.int8 !== true)
      throw new Error("--int8-dir applies only with --int8.");
    if (args.flags.int8 === true && args.flags.engine !== "auto")
      throw new Error("--int8 chooses the int8 engine itself (the int8 plan where built); leave --engine out.");
    const { model, config } = loadRunModel(runDir, "best");
    const [c, h, w] = config.data.imageShape;
    let plan: { compiled: { forward(x: Tensor): Tensor; dispose(): void } | undefined } | undefined;
    try {
      plan = args.flags.int8
        ? { compiled: int8Forward(args.flags["int8-dir"] ?? defaultInt8Dir(runDir), { batchSize: 1 }) }
        : compileForEngine(args.flags.engine, model, { inputShape: [1, c, h, w], precision: "fp32" });
      const compiled = plan.compiled;
      const names = config.data.classNames;
      const k = Math.min(args.flags["top-k"], names.length);
      if (!(k >= 1)) throw new Error(`--top-k must be >= 1. Received: --top-k=${String(args.flags["top-k"])}`);
      const results = [];
      for (const file of args.positionals) {
        const pixels = await decodeImage(file, c, h, w);
        const top = noGrad(() =>
          scope(() => {
            const mean = tensor(config.data.mean).reshape([1, c, 1, 1]);
            const std = tensor(config.data.std).reshape([1, c, 1, 1]);
            const x = tensor(pixels, [1, c, h, w]).to("float32").div(255).sub(mean).div(std);
            const probs = predictProbabilities(
              model,
              x,
              args.flags.tta === true,
              undefined,
              compiled ? (input) => compiled.forward(input) : undefined,
            );
            const { values, indices } = topk(probs.reshape([-1]), k);
            return { p: values.toArray(), i: indices.toArray() };
          }),
        );
        results.push({
          file,
          top: top.i.map((cls, j) => ({
            class: names[cls] ?? String(cls),
            index: cls,
            probability: top.p[j] as number,
          })),
        });
      }
      if (args.flags.json) process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
      else
        for (const r of results)
          process.stdout.write(
            `${r.file}\n${r.top.map((t) => `  ${t.class.padEnd(14)} ${(100 * t.probability).toFixed(2).padStart(6)}%`).join("\n")}\n`,
          );
      return 0;
    } finally {
      plan?.compiled?.dispose();
      model.dispose();
    }
  },
});
