// `budgetnet quantize --run DIR [--calibration N] [--observer minmax|percentile|mse]
//   [--per-channel|--per-tensor] [--out DIR] [--qat [--epochs K] [--lr X]] [--json]`:
// int8 post-training quantization of a trained run (or quantization-aware fine-tuning with --qat),
// written to RUN/int8/ (quant.json + model.safetensors; docs/int8.md).
import * as path from "node:path";
import { OBSERVERS } from "../quant/observers";
import { quantizeRun } from "../quant/quantize_run";
import type { ObserverName } from "../quant/spec";
import { defineCommand, UsageError } from "./args";

const pct = (x: number): string => `${(100 * x).toFixed(2)}%`;

export const quantizeCommand = defineCommand({
  name: "quantize",
  summary: "Quantize a trained run to int8 (post-training calibration, or --qat fine-tuning); writes RUN/int8/.",
  positionals: [],
  flags: {
    run: { type: "string", valueName: "DIR", description: "the run folder written by `budgetnet train` (required)" },
    calibration: {
      type: "integer",
      valueName: "N",
      description: "training images to calibrate activation ranges on (eval transform, no augmentation)",
      default: 1024,
    },
    observer: {
      type: "string",
      valueName: "NAME",
      description:
        "how a range is chosen: minmax (all values), percentile (clip above --percentile of |x|) or mse (least quantization error)",
      default: "percentile",
    },
    percentile: { type: "number", valueName: "P", description: "percentile for --observer percentile", default: 99.99 },
    "per-channel": { type: "boolean", description: "weights with one scale per output channel (the default)" },
    "per-tensor": { type: "boolean", description: "weights with one scale per tensor (smaller spec, less accurate)" },
    out: { type: "string", valueName: "DIR", description: "output folder (default RUN/int8)" },
    force: { type: "boolean", description: "replace an existing quantization in the output folder" },
    weights: { type: "string", valueName: "best|final", description: "which of the run's weights", default: "best" },
    qat: {
      type: "boolean",
      description:
        "quantization-aware training: fine-tune with fake-quantized weights and activations after calibrating",
    },
    epochs: { type: "integer", valueName: "K", description: "--qat: epochs of fine-tuning", default: 1 },
    lr: {
      type: "number",
      valueName: "X",
      description: "--qat: peak learning rate (cosine decay to 0)",
      default: 0.002,
    },
    steps: { type: "integer", valueName: "N", description: "--qat: stop after N steps (a quick fine-tune)" },
    "freeze-observers-after": {
      type: "number",
      valueName: "F",
      description: "--qat: fraction of the steps after which activation ranges stop moving",
      default: 0.5,
    },
    json: { type: "boolean", description: "print JSON" },
  },
  run(args) {
    const f = args.flags;
    const runDir = f.run;
    if (runDir === undefined) throw new UsageError("--run DIR is required: the folder `budgetnet train` wrote.");
    if (!OBSERVERS.includes(f.observer as ObserverName))
      throw new UsageError(`--observer must be one of ${OBSERVERS.join(", ")}. Received: --observer=${f.observer}`);
    if (f["per-channel"] && f["per-tensor"]) throw new UsageError("give --per-channel or --per-tensor, not both.");
    if (!(f.percentile > 0 && f.percentile <= 100))
      throw new UsageError(`--percentile must be in (0, 100]. Received: --percentile=${f.percentile}`);
    if (f.weights !== "best" && f.weights !== "final")
      throw new UsageError(`--weights must be best or final. Received: --weights=${f.weights}`);
    if (f.calibration < 1)
      throw new UsageError(`--calibration must be at least 1 image. Received: --calibration=${f.calibration}`);
    const qatOnly = (["steps"] as const).filter((k) => f[k] !== undefined);
    if (!f.qat && qatOnly.length > 0) throw new UsageError(`--${qatOnly[0]} applies only with --qat.`);
    if (f.qat && !(f.epochs >= 1)) throw new UsageError(`--epochs must be >= 1. Received: --epochs=${f.epochs}`);
    if (f.qat && !(f.lr > 0 && f.lr < 1)) throw new UsageError(`--lr must be in (0, 1). Received: --lr=${f.lr}`);
    const fr = f["freeze-observers-after"];
    if (!(fr >= 0 && fr <= 1)) throw new UsageError(`--freeze-observers-after must be in [0, 1]. Received: ${fr}`);
    const log = (line: string): void => {
      process.stderr.write(`${line}\n`);
    };
    const started = Date.now();
    const r = quantizeRun(runDir, {
      calibration: f.calibration,
      observer: f.observer as ObserverName,
      percentile: f.percentile,
      perChannel: !f["per-tensor"],
      out: f.out,
      force: f.force,
      weights: f.weights,
      qat: f.qat ? { epochs: f.epochs, lr: f.lr, maxSteps: f.steps, freezeObserversAfter: fr } : undefined,
      onWarning: (m) => log(`warning: ${m}`),
      onProgress: log,
    });
    const seconds = (Date.now() - started) / 1000;
    const s = r.spec;
    if (f.json) {
      const { activations: _a, weights: _w, ...summary } = s;
      const out = {
        dir: r.dir,
        ...summary,
        sites: Object.keys(s.activations).length,
        weightTensors: Object.keys(s.weights).length,
      };
      const result = { floatAccuracy: r.floatAccuracy, int8Accuracy: r.int8Accuracy, valImages: r.valImages };
      const sizes = { floatBytes: r.floatBytes, int8Bytes: r.int8Bytes, ratio: r.int8Bytes / r.floatBytes };
      process.stdout.write(`${JSON.stringify({ ...out, ...result, ...sizes, seconds }, null, 2)}\n`);
      return 0;
    }
    const drop = 100 * (r.floatAccuracy - r.int8Accuracy);
    const dirFlag = path.resolve(r.dir) === path.resolve(runDir, "int8") ? "" : ` --int8-dir ${r.dir}`;
    const lines = [
      `${s.model} quantized to int8 (${s.method}, ${s.observer} observer on ${s.calibrationImages} training images, weights per ${s.perChannel ? "output channel" : "tensor"}) in ${seconds.toFixed(1)} s -> ${r.dir}`,
      `  validation accuracy  float32 ${pct(r.floatAccuracy)}, int8 (simulated) ${pct(r.int8Accuracy)} (${drop >= 0 ? "-" : "+"}${Math.abs(drop).toFixed(2)} points, ${r.valImages} images)`,
      `  size                 float32 ${r.floatBytes} bytes (${path.basename(r.floatFile)}), int8 ${r.int8Bytes} bytes (${(r.int8Bytes / r.floatBytes).toFixed(2)}x)`,
      `  quantized            ${Object.keys(s.activations).length} activations, ${Object.keys(s.weights).length} weight tensors`,
      `  ops in float32       ${s.float.length === 0 ? "none" : s.float.map((x) => x.key).join(", ")}`,
      `evaluate it with \`budgetnet eval --run ${runDir} --int8${dirFlag}\`; export it with \`budgetnet export --run ${runDir} --format onnx --int8${dirFlag}\``,
    ];
    process.stdout.write(`${lines.join("\n")}\n`);
    return 0;
  },
});
