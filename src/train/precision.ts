// Precision and memory format for a training or evaluation step, from the config's
// `precision` ("fp32" | "bf16" | "auto") and `channelsLast` (true | false | "auto") fields.
// precision "auto" is bf16 autocast where the CPU computes bfloat16 natively (AVX-512 BF16 or AMX
// on x86, the BF16 extension on Arm) and float32 elsewhere, where bf16 is emulated and slower
// (ResNet-20 training on a Xeon without AVX-512 BF16, 2 threads: 198 images/s bf16, 240 fp32).
//
// In the trainer (once, after the model is built, before or after the optimizer):
//     const channelsLast = preparePrecision(model, cfg, [channels, height, width]);
// and in the step, instead of model.forward(batch.x):
//     const logits = forwardWithPrecision(model, batch.x, cfg);
// The logits come back float32, so the loss, argmax and metrics after it are unchanged.

import { modelSpec } from "../models/registry";
import type { Module } from "../nn/module";
import { to } from "../ops/shape";
import { autocast } from "../perf/autocast";
import { toChannelsLast, toChannelsLastInput } from "../perf/channels_last";
import { bestSetting, fastBf16, type ImageShape, nativeBf16, preferChannelsLast } from "../perf/choices";
import { ArgumentError } from "../tensor/errors";

export { fastBf16, nativeBf16 };

import type { Tensor } from "../tensor/tensor";

export interface PrecisionConfig {
  /** "auto": bf16 where the CPU runs bfloat16 faster than float32 (fastBf16()), else fp32; bf16 on a GPU. */
  precision: "fp32" | "bf16" | "auto";
  /** "auto": the measured choice for this model, input shape and precision (src/perf/choices.ts). */
  channelsLast: boolean | "auto";
  /** Where the model trains ("cpu" when absent); autocast follows the device of the batch. */
  device?: string;
}

const resolved = new WeakMap<Module, { channelsLast: boolean; precision: "fp32" | "bf16" }>();
/**
 * The precision a config runs at. "auto": bf16 on a CUDA device (Ampere and later compute
 * bfloat16 natively); float32 on a CPU where bfloat16 does not pay (emulated, or Intel's
 * avx512_bf16 without AMX: fastBf16()); on one where it does, the precision measured fastest for
 * training this model on images of this shape (src/perf/choices.ts; bf16 where the model or
 * shape is unmeasured or not given).
 */
export function effectivePrecision(
  cfg: Pick<PrecisionConfig, "precision" | "device">,
  model?: string,
  shape?: ImageShape,
): "fp32" | "bf16" {
  if (cfg.precision !== "auto") return cfg.precision;
  if (cfg.device?.startsWith("cuda")) return "bf16";
  if (!fastBf16()) return "fp32";
  return model !== undefined && shape !== undefined ? bestSetting(model, shape, "train").precision : "bf16";
}

function checkConfig(cfg: PrecisionConfig, fn: string): void {
  if (cfg.precision !== "fp32" && cfg.precision !== "bf16" && cfg.precision !== "auto")
    throw new ArgumentError(
      `${fn}: precision must be "fp32", "bf16" or "auto". Received: precision=${String(cfg.precision)}`,
    );
  if (typeof cfg.channelsLast !== "boolean" && cfg.channelsLast !== "auto")
    throw new ArgumentError(
      `${fn}: channelsLast must be true, false or "auto". Received: channelsLast=${String(cfg.channelsLast)}`,
    );
}

/**
 * Whether model runs channels-last under cfg on images of inputShape ([channels, height, width]);
 * "auto" looks the model's registry name up at that shape.
 */
export function resolveChannelsLast(model: Module, cfg: PrecisionConfig, inputShape: ImageShape): boolean {
  checkConfig(cfg, "resolveChannelsLast");
  if (cfg.channelsLast !== "auto") return cfg.channelsLast;
  const name = modelSpec(model)?.name;
  return name === undefined
    ? false
    : preferChannelsLast(name, inputShape, effectivePrecision(cfg, name, inputShape), "train");
}

/** Converts the model's conv weights to channels-last when cfg asks for it (on images of inputShape). Returns the choice. */
export function preparePrecision(model: Module, cfg: PrecisionConfig, inputShape: ImageShape): boolean {
  const cl = resolveChannelsLast(model, cfg, inputShape);
  if (cl) toChannelsLast(model);
  resolved.set(model, { channelsLast: cl, precision: effectivePrecision(cfg, modelSpec(model)?.name, inputShape) });
  return cl;
}

/** The batch in the layout the model was prepared for (a channels-last copy, or x itself). */
export function prepareInput(model: Module, x: Tensor): Tensor {
  return resolved.get(model)?.channelsLast === true && x.rank === 4 ? toChannelsLastInput(x) : x;
}

/**
 * model.forward(x) under cfg's precision: with "bf16", inside autocast of x's device type, CPU or
 * CUDA (bfloat16 convs and matmuls, float32 master weights and BN statistics). Returns float32 logits either way.
 */
export function forwardWithPrecision(model: Module, x: Tensor, cfg: PrecisionConfig): Tensor {
  checkConfig(cfg, "forwardWithPrecision");
  const input = prepareInput(model, x);
  // "auto" as preparePrecision resolved it for this model and image shape
  const precision =
    cfg.precision === "auto" ? (resolved.get(model)?.precision ?? effectivePrecision(cfg)) : cfg.precision;
  if (precision === "fp32") return model.forward(input);
  const device = input.device.startsWith("cuda") ? "cuda" : "cpu";
  const logits = autocast(() => model.forward(input), { dtype: "bfloat16", device });
  return logits.dtype === "float32" ? logits : to(logits, "float32");
}
