// The dashboard's tensor work, one child process per job so the server's event loop stays free:
//   node worker_main.js eval RUNDIR val|test      evaluation as `budgetnet eval --json` computes it
//                                                 (best weights, batch 256, the fused plan where it
//                                                 fits), plus the misclassified images as PNGs
//   node worker_main.js model RUNDIR              per-layer summary and the block structure
//   node worker_main.js onnx RUNDIR OUTFILE       the model for the in-browser classifier
// It prints one JSON value on stdout. It only reads the run folder; OUTFILE is in the dashboard's
// own temporary folder.
import "../index"; // registers every model family
import { encodePng } from "../analysis/raster";
import { summary } from "../analysis/summary";
import { loadDataset } from "../data";
import type { ImageDataset } from "../data/dataset";
import { saveOnnx } from "../export/onnx";
import { createModel } from "../models";
import type { Module } from "../nn/module";
import { type CompiledInference, compileInference, planAvailable } from "../perf/plan";
import type { Tensor } from "../tensor/tensor";
import { evaluate } from "../train/evaluate";
import { loadRunModel, readRunConfig, runRecipe } from "../train/run";
import { prepareData } from "../train/trainer";

/** How many misclassified images the gallery gets (the most confident mistakes first). */
const GALLERY = 48;

export interface Misclassified {
  index: number;
  truth: number;
  predicted: number;
  confidence: number;
  png: string;
}

/** One image of the data set as a PNG data URL (grayscale or RGB, at its own size). */
function imagePng(ds: ImageDataset, i: number): string {
  const { channels: c, height: h, width: w } = ds;
  const px = ds.images.subarray(i * c * h * w, (i + 1) * c * h * w);
  const rgba = new Uint8Array(h * w * 4);
  for (let p = 0; p < h * w; p++) {
    for (let k = 0; k < 3; k++) rgba[p * 4 + k] = px[(c >= 3 ? k : 0) * h * w + p] as number;
    rgba[p * 4 + 3] = c === 4 ? (px[3 * h * w + p] as number) : 255;
  }
  return `data:image/png;base64,${encodePng(w, h, rgba).toString("base64")}`;
}

/** The fused plan where this build has it and the model fits it (eval's --engine auto), else undefined. */
function compileAuto(model: Module, shape: number[]): { compiled?: CompiledInference; engine: string } {
  if (!planAvailable()) return { engine: "libtorch" };
  try {
    return { compiled: compileInference(model, { inputShape: shape, precision: "fp32" }), engine: "plan" };
  } catch {
    return { engine: "libtorch" };
  }
}

function evalJob(runDir: string, split: "val" | "test"): unknown {
  const batchSize = 256;
  const { model, config } = loadRunModel(runDir, "best");
  try {
    const r = runRecipe(config, runDir);
    const opts = { root: r.dataRoot ?? undefined, size: r.imageSize ?? undefined };
    const ds = split === "test" ? loadDataset(r.dataset, { split: "test", ...opts }) : prepareData(r).val;
    const plan = compileAuto(model, [batchSize, ...config.data.imageShape]);
    const predicted: number[] = [];
    const confidence: number[] = [];
    const k = config.data.numClasses;
    // evaluate() walks the data in order, one forward per batch: the logits are read as they pass
    const forward = (x: Tensor): Tensor => {
      const y = plan.compiled ? plan.compiled.forward(x) : model.forward(x);
      const logits = y.toArray();
      for (let row = 0; row < logits.length / k; row++) {
        let best = 0;
        let max = -Infinity;
        for (let j = 0; j < k; j++)
          if ((logits[row * k + j] as number) > max) [max, best] = [logits[row * k + j] as number, j];
        let sum = 0;
        for (let j = 0; j < k; j++) sum += Math.exp((logits[row * k + j] as number) - max);
        predicted.push(best);
        confidence.push(1 / sum);
      }
      return y;
    };
    try {
      const started = Date.now();
      const result = evaluate(model, ds, { mean: config.data.mean, std: config.data.std, batchSize, forward });
      const wrong: number[] = [];
      for (let i = 0; i < ds.n; i++) if (predicted[i] !== ds.labels[i]) wrong.push(i);
      wrong.sort((a, b) => (confidence[b] as number) - (confidence[a] as number));
      const misclassified: Misclassified[] = wrong.slice(0, GALLERY).map((i) => ({
        index: i,
        truth: ds.labels[i] as number,
        predicted: predicted[i] as number,
        confidence: confidence[i] as number,
        png: imagePng(ds, i),
      }));
      return {
        split,
        weights: "best",
        engine: plan.engine,
        seconds: (Date.now() - started) / 1000,
        classNames: config.data.classNames,
        ...result,
        wrong: wrong.length,
        misclassified,
      };
    } finally {
      plan.compiled?.dispose();
    }
  } finally {
    model.dispose();
  }
}

interface BlockNode {
  name: string;
  type: string;
  params: number;
  macs: number;
  outputShape: number[];
  residual: boolean;
  children: BlockNode[];
}

function modelJob(runDir: string): unknown {
  const config = readRunConfig(runDir);
  const model = createModel(config.model.name, config.model.options);
  try {
    const s = summary(model, { inputShape: config.data.imageShape });
    const types = new Map(model.namedModules().map(([n, m]) => [n, m]));
    const within = (prefix: string) => s.rows.filter((r) => r.name === prefix || r.name.startsWith(`${prefix}.`));
    // The blocks: the model's children, and one level inside each container of blocks.
    const node = (name: string, m: Module, depth: number): BlockNode => {
      const rows = within(name);
      const kids = m.namedChildren();
      const childNames = kids.map(([n]) => n);
      const residual =
        /residual|bottleneck|basicblock|unit|inverted/i.test(m.constructor.name) ||
        childNames.some((n) => /shortcut|downsample|skip/i.test(n));
      const expand = depth === 0 && kids.length > 0 && !residual;
      return {
        name,
        type: m.constructor.name,
        params: rows.reduce((a, r) => a + r.params, 0),
        macs: rows.reduce((a, r) => a + r.macs, 0),
        outputShape: rows[rows.length - 1]?.outputShape.slice(1) ?? [],
        residual,
        children: expand ? kids.map(([n, c]) => node(`${name}.${n}`, c, depth + 1)) : [],
      };
    };
    const blocks = model
      .namedChildren()
      .map(([n, m]) => node(n, m, 0))
      .filter((b) => b.params > 0 || b.macs > 0 || b.outputShape.length > 0);
    return {
      model: config.model.name,
      options: config.model.options,
      inputShape: s.inputShape,
      outputShape: s.outputShape,
      params: s.params,
      macs: s.macs,
      activationBytes: s.activationBytes,
      paramBytes: s.paramBytes,
      rows: s.rows.map((r) => ({
        ...r,
        outputShape: r.outputShape.slice(1),
        type: types.get(r.name)?.constructor.name ?? r.type,
      })),
      blocks,
    };
  } finally {
    model.dispose();
  }
}

function onnxJob(runDir: string, file: string): unknown {
  const { model, config } = loadRunModel(runDir, "best");
  try {
    const data = config.data;
    // as `budgetnet serve` exports it: BatchNorm folded, normalization in the graph
    saveOnnx(file, model, {
      inputShape: data.imageShape,
      foldBn: true,
      withNormalization: { mean: data.mean, std: data.std },
      classNames: data.classNames,
      metadata: {
        mean: JSON.stringify(data.mean),
        std: JSON.stringify(data.std),
        parameters: String(model.numParameters()),
        weights: "best",
      },
    });
    return { file, model: config.model.name };
  } finally {
    model.dispose();
  }
}

function main(argv: string[]): number {
  const [job, runDir, extra] = argv;
  try {
    let out: unknown;
    if (job === "eval" && runDir !== undefined) out = evalJob(runDir, extra === "val" ? "val" : "test");
    else if (job === "model" && runDir !== undefined) out = modelJob(runDir);
    else if (job === "onnx" && runDir !== undefined && extra !== undefined) out = onnxJob(runDir, extra);
    else throw new Error("usage: worker_main.js eval|model|onnx RUNDIR [val|test|OUTFILE]");
    process.stdout.write(`${JSON.stringify(out)}\n`);
    return 0;
  } catch (e) {
    process.stdout.write(`${JSON.stringify({ error: (e as Error).message })}\n`);
    return 1;
  }
}

process.exitCode = main(process.argv.slice(2));
