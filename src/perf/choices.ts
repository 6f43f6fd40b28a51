// The settings budgetnet runs each model at on the CPU: precision and layout per phase, chosen
// by measurement (npm run bench -- cpu --sweep), not assumed, per model and input shape (one
// image's channels x height x width): an entry "model@CxHxW" measured at that shape, else the
// model's 3x32x32 entry, else DEFAULT_CHOICE. Inference always folds Conv+BN and runs under
// c10::InferenceMode.
import * as fs from "node:fs";
import { planAvailable } from "./plan";

/** What /proc/cpuinfo says about bfloat16, read once (false where it cannot be read). */
let cpuBf16: { native: boolean; fast: boolean } | undefined;
function cpuBf16Flags(): { native: boolean; fast: boolean } {
  if (cpuBf16 === undefined) {
    let info = "";
    try {
      info = fs.readFileSync("/proc/cpuinfo", "utf8");
    } catch {
      // unreadable: no native bf16
    }
    const native = /^(flags|Features)\s*:.*\b(avx512_bf16|amx_bf16|bf16)\b/m.test(info);
    const fast =
      native &&
      (/^flags\s*:.*\bamx_bf16\b/m.test(info) ||
        /^vendor_id\s*:\s*AuthenticAMD/m.test(info) ||
        /^Features\s*:.*\bbf16\b/m.test(info));
    cpuBf16 = { native, fast };
  }
  return cpuBf16;
}

/** BUDGETNET_NATIVE_BF16=1/0 as a boolean, undefined when unset. */
function bf16Override(): boolean | undefined {
  const env = process.env.BUDGETNET_NATIVE_BF16;
  return env === "1" || env === "0" ? env === "1" : undefined;
}

/**
 * Whether this CPU computes bfloat16 natively (/proc/cpuinfo flags avx512_bf16 or amx_bf16, or
 * Arm's bf16 feature); BUDGETNET_NATIVE_BF16=1/0 overrides. False where cpuinfo cannot be read.
 */
export function nativeBf16(): boolean {
  return bf16Override() ?? cpuBf16Flags().native;
}

/**
 * Whether bfloat16 pays on this CPU: native bf16 with units that run it faster than float32.
 * Intel with AMX (amx_bf16), AMD (avx512_bf16 on AMD; bf16 measured faster than float32 on a
 * Zen 5 for resnet20 and efficient_resnet) and Arm's bf16 count. An Intel CPU whose only bf16 is
 * avx512_bf16 does not: on a 2-core Xeon (family 6 model 207, AMX not exposed by its hypervisor)
 * float32 trained and inferred faster than bf16 autocast for every model measured, in budgetnet
 * and in PyTorch alike (resnet20 3x32x32 train 781 vs 535 images/s, see the table).
 * BUDGETNET_NATIVE_BF16=1/0 overrides this too (a CPU where bf16 pays, or not at all).
 */
export function fastBf16(): boolean {
  return bf16Override() ?? cpuBf16Flags().fast;
}

export type Phase = "train" | "infer";
export type Precision = "fp32" | "bf16";
/** One input image: [channels, height, width]. */
export type ImageShape = readonly [channels: number, height: number, width: number];

/** "1x28x28": how a shape is written in the table's keys, the bench's --shape and its records. */
export function shapeKey(shape: ImageShape): string {
  return shape.join("x");
}

/** The shape the model-wide entries were measured at (CIFAR), and what a shape falls back to. */
export const MEASURED_SHAPE = "3x32x32";

export interface PhaseChoice {
  precision: Precision;
  channelsLast: boolean;
}

// Models without a measured entry: bf16 + channels-last, the setting that measured fastest for
// resnet20 in the trainer here (946 images/s against 910 bf16, 704 fp32 channels-last, 462 fp32)
// and that doubles PyTorch's own speed on resnet56 (bench/results/cpu.json: 341 vs 157 training).
const DEFAULT_CHOICE: PhaseChoice = { precision: "bf16", channelsLast: true };

// Measured images/s (batch 128, 2 threads), `npm run bench -- cpu --sweep`, on a 2-core Zen 5
// shared with other jobs (load average 3.5-6: absolute numbers are 5-20x below a quiet machine's,
// only orderings within one sweep mean anything). Rerun on a quiet machine and update.
//   resnet20, sweep A (fold off, 6 iters):   fp32 34/80  fp32-cl 520/384  bf16 823/2244  bf16-cl 903/2594
//   resnet20, sweep B (--quick, fold on):    fp32 44/288 fp32-cl 93/372   bf16 65/134    bf16-cl 46/583
//   efficient_resnet, sweep B:               fp32 11/31  fp32-cl 12/44    bf16 24/57     bf16-cl 13/63
// (train/infer). Inference: bf16 channels-last was fastest in every sweep. Training: resnet20
// takes sweep A's bf16 channels-last (the less loaded run). efficient_resnet training, quiet
// machine (load < 1.4), 2 x 5 steps alternating: bf16 channels-last 1586-1787 ms/step against
// bf16 contiguous 1725-2074 ms/step, so channels-last (the loaded sweep B had it the other way).
// Models not listed are unmeasured and run bf16 channels-last (DEFAULT_CHOICE below).
// The same sweep on a quiet 2-core Xeon with avx512_bf16 but no AMX exposed (family 6 model 207,
// 2026-12-04, 2 rounds, bench/results/cpu_sweep.json), train/infer images/s:
//   resnet20          fp32 621/2469  fp32-cl 781/2995  bf16 490/1686  bf16-cl 535/1847
//   efficient_resnet  fp32 49/177    fp32-cl 58/185    bf16 34/108    bf16-cl 34/111
// float32 channels-last first for both models in both phases: the "best" entries below hold for
// CPUs where bf16 pays (fastBf16()); elsewhere bestSetting takes float32 and its measured layout.
export type ModelChoices = Record<Phase, Record<Precision, boolean>> & { best: Record<Phase, PhaseChoice> };
const MEASURED_CL_TRAIN: ModelChoices = {
  train: { fp32: true, bf16: true },
  infer: { fp32: true, bf16: true },
  best: { train: { precision: "bf16", channelsLast: true }, infer: { precision: "bf16", channelsLast: true } },
};

// 1x28x28 (Fashion-MNIST, MNIST): `npm run bench -- cpu --sweep --shape 1x28x28 --batch
// 128,256,512 --models resnet20,efficient_resnet --rounds 1` (bench/results/
// cpu_sweep-1x28x28-b128-256-512.json), on a quiet 2-core Xeon with AVX-512 but no native bf16,
// images/s train/infer at batch 128 / 256 / 512:
//   resnet20          fp32 379/1659 360/1393 383/1689   fp32-cl 564/1706 518/1658 481/1794
//                     bf16 275/819  243/882  244/854    bf16-cl 273/912  256/809  241/886
//   efficient_resnet  fp32 31/106   30/113   35/100     fp32-cl 38/156   36/146   41/180
//                     bf16 16/48    14/41    16/29      bf16-cl 15/52    14/48    10/49
// float32: channels-last wins training (1.2-1.5x) and inference at every batch on both models.
// bfloat16 is emulated on that CPU (2x slower than fp32, layouts within noise), so its layout
// entries keep the native-bf16 3x32x32 measurement; "best" is for a CPU with native bf16
// (precision "auto" runs fp32 elsewhere and takes the fp32 layout).
const MEASURED_28: ModelChoices = {
  train: { fp32: true, bf16: true },
  infer: { fp32: true, bf16: true },
  best: { train: { precision: "bf16", channelsLast: true }, infer: { precision: "bf16", channelsLast: true } },
};

// Training at 1x28x28 on a 2-core Xeon WITH native bf16 (avx512_bf16), 2026-12-04, batch 128,
// 2 threads, channels-last, median ms per training step (20 steps after 5 of warm-up, twice):
//   resnet20   budgetnet fp32 124.7-129.2 (the fused BatchNorm+ReLU kernel, float32 only)
//              against bf16 185.1-186.2; PyTorch 1.13 fp32 138.8 against bf16 184.4
//   speednet   (stem 8, widths 24/64/128, the speedrun's) budgetnet fp32 50.7-50.9 against bf16
//              81.8-83.4; PyTorch fp32 58.4 against bf16 84.6
// At 16-128 channels on 28x28 maps bf16 autocast costs more in casts and reorders than its
// arithmetic saves, in both frameworks: precision "auto" trains these two in float32 there.
const MEASURED_28_FP32_TRAIN: ModelChoices = {
  train: { fp32: true, bf16: true },
  infer: { fp32: true, bf16: true },
  best: { train: { precision: "fp32", channelsLast: true }, infer: { precision: "bf16", channelsLast: true } },
};

// Keyed "model@CxHxW". The entries above and below are 3x32x32 (CIFAR, batch 128) unless keyed
// 1x28x28; an unmeasured shape falls back to the model's 3x32x32 entry.
const CHOICES: Record<string, ModelChoices> = {
  "resnet20@1x28x28": MEASURED_28_FP32_TRAIN,
  "speednet@1x28x28": MEASURED_28_FP32_TRAIN,
  "efficient_resnet@1x28x28": MEASURED_28,
  "resnet20@3x32x32": {
    train: { fp32: true, bf16: true },
    infer: { fp32: true, bf16: true },
    best: { train: { precision: "bf16", channelsLast: true }, infer: { precision: "bf16", channelsLast: true } },
  },
  "efficient_resnet@3x32x32": {
    train: { fp32: true, bf16: true },
    infer: { fp32: true, bf16: true },
    best: { train: { precision: "bf16", channelsLast: true }, infer: { precision: "bf16", channelsLast: true } },
  },
  // bf16 training, channels-last against contiguous, 2 x 5 steps per model alternating (ms/step,
  // 2026-11-22 ~08:35, load average 1.4-2): resnet56 455-515 vs 519-641; mobilenetv2 1208-1482 vs
  // 1527-1642; preact_resnet164 (8 steps) 1362-1562 vs 1679-2013. Inference runs through the
  // fused plan (src/perf/plan.ts); the infer entries are the libtorch fallback, unmeasured here.
  "resnet56@3x32x32": MEASURED_CL_TRAIN,
  "mobilenetv2@3x32x32": MEASURED_CL_TRAIN,
  "preact_resnet164@3x32x32": MEASURED_CL_TRAIN,
};

/**
 * The measured entry for a model on inputs of `shape`: "model@CxHxW" when that shape was measured,
 * else the model's 3x32x32 entry, else undefined (the caller uses DEFAULT_CHOICE).
 */
export function measuredChoices(
  model: string,
  shape: ImageShape,
  table: Readonly<Record<string, ModelChoices>> = CHOICES,
): ModelChoices | undefined {
  return table[`${model}@${shapeKey(shape)}`] ?? table[`${model}@${MEASURED_SHAPE}`];
}

/** Whether channels-last measured faster for this model, input shape, precision and phase (DEFAULT_CHOICE when unmeasured). */
export function preferChannelsLast(model: string, shape: ImageShape, precision: Precision, phase: Phase): boolean {
  return measuredChoices(model, shape)?.[phase][precision] ?? DEFAULT_CHOICE.channelsLast;
}

/** The fastest measured setting for a model on inputs of `shape` and a phase (DEFAULT_CHOICE when unmeasured). */
export function bestSetting(
  model: string,
  shape: ImageShape,
  phase: Phase,
): { precision: Precision; channelsLast: boolean; fold: boolean; inferenceMode: boolean; plan?: "auto" } {
  const measured = measuredChoices(model, shape);
  let c = measured?.best[phase] ?? DEFAULT_CHOICE;
  // bf16 measured best where the CPU runs it fast; emulated it is slower than float32 (resnet20
  // at 1x28x28, batch 128, on a Xeon without AVX-512 BF16: 273 against 564 images/s), and so is
  // avx512_bf16 alone on Intel (fastBf16())
  if (c.precision === "bf16" && !fastBf16())
    c = { precision: "fp32", channelsLast: measured?.[phase].fp32 ?? DEFAULT_CHOICE.channelsLast };
  const base = { ...c, fold: phase === "infer", inferenceMode: phase === "infer" };
  // Inference runs as a fused oneDNN plan where the addon has one (src/perf/plan.ts), its
  // precision timed per model when it is built; precision/channelsLast above are the fallback.
  return phase === "infer" && planAvailable() ? { ...base, plan: "auto" } : base;
}
