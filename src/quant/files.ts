// The int8 folder beside a run (default RUN/int8/): quant.json (the QuantSpec) and
// model.safetensors (the folded model, int8 weights as I8 with `${name}.scale` float32 beside
// them, everything else float32), written atomically; and the loader that rebuilds the folded
// float model with the dequantized weights, so a consumer computes with exactly the int8 values.
import * as fs from "node:fs";
import * as path from "node:path";
import { writeFileAtomic } from "../export/atomic";
import { Int8Tensor, loadSafetensors, saveSafetensors } from "../export/safetensors";
import { createModel } from "../models/registry";
import type { Module } from "../nn/module";
import { tensor } from "../ops/creation";
import { foldBatchNorm } from "../perf/fold";
import type { Tensor } from "../tensor/tensor";
import { dequantizeWeight, type QuantizedWeight } from "./quantize";
import type { QuantSpec } from "./spec";

export const QUANT_FILE = "quant.json";
export const QUANT_WEIGHTS_FILE = "model.safetensors";

/** Writes spec and the folded model's tensors (int8 where quantized) into dir (made if missing). */
export function saveQuantized(
  dir: string,
  spec: QuantSpec,
  folded: Module,
  weights: Map<string, QuantizedWeight>,
): void {
  fs.mkdirSync(dir, { recursive: true });
  const record = new Map<string, Tensor | Int8Tensor>();
  const owned: Tensor[] = [];
  try {
    for (const [name, t] of folded.stateDict()) {
      const w = weights.get(name);
      if (w === undefined) {
        record.set(name, t);
        continue;
      }
      record.set(name, new Int8Tensor(w.q, w.shape));
      const scales = tensor(Float32Array.from(w.quant.scales), [w.quant.scales.length]);
      owned.push(scales);
      record.set(`${name}.scale`, scales);
    }
    saveSafetensors(path.join(dir, QUANT_WEIGHTS_FILE), record, {
      format: "budgetnet-int8",
      model: spec.model,
      options: JSON.stringify(spec.modelOptions),
    });
  } finally {
    for (const t of owned) t.dispose();
  }
  writeFileAtomic(path.join(dir, QUANT_FILE), [`${JSON.stringify(spec, null, 2)}\n`]);
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v);

/** Checks quant.json's fields; throws naming the file and the field. */
export function checkQuantSpec(raw: unknown, file: string): QuantSpec {
  const bad = (field: string, what: string, value: unknown): never => {
    throw new Error(
      `${file}: ${field} ${what}. Received: ${field}=${JSON.stringify(value)?.slice(0, 200)}. The file is written by \`budgetnet quantize\`; run it again.`,
    );
  };
  if (!isObject(raw)) return bad("(file)", "must be a JSON object", raw);
  if (raw.format !== "budgetnet-int8") bad("format", 'must be "budgetnet-int8"', raw.format);
  if (raw.version !== 1) bad("version", "must be 1 (this budgetnet reads version 1)", raw.version);
  if (typeof raw.model !== "string" || raw.model === "") bad("model", "must be a model name", raw.model);
  if (!isObject(raw.modelOptions)) bad("modelOptions", "must be an object", raw.modelOptions);
  const shape = raw.inputShape;
  if (!Array.isArray(shape) || shape.length !== 3 || !shape.every((d) => Number.isInteger(d) && d > 0))
    bad("inputShape", "must be [C, H, W]", shape);
  if (!isObject(raw.activations)) return bad("activations", "must be an object", raw.activations);
  for (const [key, q] of Object.entries(raw.activations)) {
    const ok =
      isObject(q) &&
      typeof q.scale === "number" &&
      Number.isFinite(q.scale) &&
      q.scale > 0 &&
      Number.isInteger(q.zeroPoint) &&
      (q.dtype === "uint8" || q.dtype === "int8");
    if (!ok) bad(`activations["${key}"]`, "must be {scale > 0, zeroPoint (integer), dtype uint8|int8}", q);
  }
  if (!isObject(raw.weights)) return bad("weights", "must be an object", raw.weights);
  for (const [name, w] of Object.entries(raw.weights)) {
    const ok = isObject(w) && Array.isArray(w.scales) && w.scales.every((s) => typeof s === "number" && s > 0);
    if (!ok || (w as { axis?: unknown }).axis !== 0)
      bad(`weights["${name}"]`, "must be {scales: positive numbers, axis: 0}", w);
  }
  if (!Array.isArray(raw.float)) bad("float", "must be a list of {key, reason}", raw.float);
  return raw as unknown as QuantSpec;
}

export function readQuantSpec(dir: string): QuantSpec {
  const file = path.join(dir, QUANT_FILE);
  if (!fs.existsSync(file))
    throw new Error(`${dir} holds no ${QUANT_FILE}: quantize the run first with \`budgetnet quantize --run RUN\`.`);
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (e) {
    throw new Error(`${file} is not valid JSON (${(e as Error).message}); run \`budgetnet quantize\` again.`);
  }
  return checkQuantSpec(raw, file);
}

/**
 * The quantized model in dir: the folded model (eval mode, no gradients) whose int8 weights hold
 * scale * q, and its spec.
 */
export function loadQuantized(dir: string): { model: Module; spec: QuantSpec } {
  const spec = readQuantSpec(dir);
  const file = path.join(dir, QUANT_WEIGHTS_FILE);
  if (!fs.existsSync(file))
    throw new Error(`${dir} has ${QUANT_FILE} but no ${QUANT_WEIGHTS_FILE}; run \`budgetnet quantize\` again.`);
  const { tensors, int8 } = loadSafetensors(file);
  const model = createModel(spec.model, spec.modelOptions);
  try {
    model.eval();
    foldBatchNorm(model, { copy: false, inputShape: [2, ...spec.inputShape] });
    for (const [name, q] of int8) {
      const quant = spec.weights[name];
      const scaleTensor = tensors.get(`${name}.scale`);
      if (quant === undefined || scaleTensor === undefined)
        throw new Error(
          `${file}: int8 tensor "${name}" has no scales (${name}.scale and quant.json weights["${name}"])`,
        );
      const fromFile = Array.from(scaleTensor.toFloat32Array());
      if (
        fromFile.length !== quant.scales.length ||
        fromFile.some((s, i) => Math.fround(quant.scales[i] as number) !== s)
      )
        throw new Error(
          `${file}: the scales of "${name}" differ from quant.json's; the folder is damaged, run \`budgetnet quantize\` again.`,
        );
      tensors.delete(`${name}.scale`);
      scaleTensor.dispose();
      tensors.set(name, tensor(dequantizeWeight(q.data, q.shape, quant), q.shape));
    }
    for (const name of Object.keys(spec.weights))
      if (!int8.has(name))
        throw new Error(
          `${file} lacks the int8 weight "${name}" that quant.json lists; run \`budgetnet quantize\` again.`,
        );
    try {
      model.loadStateDict(tensors);
    } catch (e) {
      throw new Error(`${file} does not fit the model in ${path.join(dir, QUANT_FILE)}: ${(e as Error).message}`);
    }
  } catch (e) {
    model.dispose();
    throw e;
  } finally {
    for (const t of tensors.values()) t.dispose();
  }
  return { model, spec };
}
