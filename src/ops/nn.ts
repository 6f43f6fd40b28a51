// Neural-network ops (the functional layer under src/nn): convolution, normalization,
// activations, pooling, dropout, softmax and losses.
import {
  CONV_KERNELS,
  CONV_PHASES,
  type ConvKernel,
  type ConvPhaseChoices,
  native,
  type Reduction,
} from "../tensor/binding";

export { CONV_KERNELS, CONV_PHASES, type ConvKernel, type ConvPhaseChoices };

import type { Tensor } from "../tensor/tensor";
import { arrayArg, check, handleOf, isInt, optHandle, optionsArg, pair, tensorArg, wrap } from "./util";

type Pair = number | readonly [number, number];

export interface Conv2dOptions {
  stride?: Pair;
  padding?: Pair;
  dilation?: Pair;
  groups?: number;
}

function checkConvInput(
  x: Tensor,
  w: Tensor,
  groups: number,
  fn: string,
  inFromWeight: (ws: number[]) => number,
): void {
  const xs = tensorArg(x, fn, "x").shape;
  const ws = tensorArg(w, fn, "weight").shape;
  check(xs.length === 4, fn, "input must be 4-d [N, C, H, W]", "x", x);
  check(ws.length === 4, fn, "weight must be 4-d", "weight", w);
  check(isInt(groups) && groups >= 1, fn, "groups must be a positive integer", "groups", groups);
  check(
    xs[1] === inFromWeight(ws),
    fn,
    `input has ${xs[1]} channels but the weight expects ${inFromWeight(ws)} (groups=${groups})`,
    "x",
    x,
  );
}

/** 2-d convolution; weight [out, in/groups, kh, kw]. */
export function conv2d(x: Tensor, weight: Tensor, bias?: Tensor, opts: Conv2dOptions = {}): Tensor {
  optionsArg(opts, "conv2d");
  const groups = opts.groups ?? 1;
  checkConvInput(x, weight, groups, "conv2d", (ws) => (ws[1] as number) * groups);
  return wrap(
    native.conv2d(
      handleOf(x, "conv2d", "x"),
      handleOf(weight, "conv2d", "weight"),
      optHandle(bias, "conv2d", "bias"),
      pair(opts.stride ?? 1, "conv2d", "stride", 1),
      pair(opts.padding ?? 0, "conv2d", "padding", 0),
      pair(opts.dilation ?? 1, "conv2d", "dilation", 1),
      groups,
    ),
  );
}

/**
 * How conv2d runs a float32 channels-last convolution on the CPU (groups 1, dilation 1, no bias;
 * native/conv_train.cc): "auto" (the default; BUDGETNET_TRAIN_CONV overrides it) times oneDNN's
 * direct kernel on NHWC and on 16-channel blocks, Winograd F(4x4, 3x3) and libtorch's own
 * convolution on the first call of each shape and phase (forward, backward to the input, to the
 * weights) and keeps the fastest; "off" always runs libtorch's; a kernel's name takes it wherever
 * oneDNN implements it. The choices hold for the process (every run in it computes alike); a
 * checkpoint records them and a resumed run presets them. Returns the previous mode; the choices
 * and presets so far are forgotten.
 */
export function setTrainConvMode(mode: "auto" | "off" | ConvKernel): string {
  check(
    mode === "auto" || mode === "off" || (CONV_KERNELS as readonly string[]).includes(mode),
    "setTrainConvMode",
    `mode must be auto, off, ${CONV_KERNELS.join(", ")}`,
    "mode",
    mode,
  );
  return native.setTrainConvMode(mode);
}

/** The kernels chosen so far, per convolution shape (key) and phase; a resumed run presets them with setConvChoices. */
export function convChoices(): Record<string, ConvPhaseChoices> {
  return native.convChoices();
}

/** Presets the kernels of the shapes named (a checkpoint's convChoices()); other shapes keep this process's choices. */
export function setConvChoices(choices: Record<string, ConvPhaseChoices>): void {
  check(
    typeof choices === "object" && choices !== null && !Array.isArray(choices),
    "setConvChoices",
    "choices must be an object (convChoices()'s result)",
    "choices",
    choices,
  );
  native.setConvChoices(choices);
}

export interface ConvTranspose2dOptions extends Conv2dOptions {
  outputPadding?: Pair;
}
/** Transposed 2-d convolution; weight [in, out/groups, kh, kw]. */
export function convTranspose2d(x: Tensor, weight: Tensor, bias?: Tensor, opts: ConvTranspose2dOptions = {}): Tensor {
  optionsArg(opts, "convTranspose2d");
  const groups = opts.groups ?? 1;
  checkConvInput(x, weight, groups, "convTranspose2d", (ws) => ws[0] as number);
  return wrap(
    native.convTranspose2d(
      handleOf(x, "convTranspose2d", "x"),
      handleOf(weight, "convTranspose2d", "weight"),
      optHandle(bias, "convTranspose2d", "bias"),
      pair(opts.stride ?? 1, "convTranspose2d", "stride", 1),
      pair(opts.padding ?? 0, "convTranspose2d", "padding", 0),
      pair(opts.outputPadding ?? 0, "convTranspose2d", "outputPadding", 0),
      groups,
      pair(opts.dilation ?? 1, "convTranspose2d", "dilation", 1),
    ),
  );
}

export interface BatchNormOptions {
  weight?: Tensor;
  bias?: Tensor;
  runningMean?: Tensor;
  runningVar?: Tensor;
  /** Batch statistics (and running-stat updates) when true; running statistics when false. */
  training: boolean;
  momentum?: number;
  eps?: number;
}
/** The checks every batch-norm op makes: an options object, a channel dimension, momentum and eps. */
function normArgs(
  x: Tensor,
  opts: Pick<BatchNormOptions, "momentum" | "eps">,
  fn: string,
): { momentum: number; eps: number } {
  optionsArg(opts, fn, "opts", "{training: true, runningMean, runningVar}");
  const momentum = opts.momentum ?? 0.1;
  const eps = opts.eps ?? 1e-5;
  check(tensorArg(x, fn, "x").rank >= 2, fn, "input must have a channel dimension [N, C, ...]", "x", x);
  check(
    typeof momentum === "number" && momentum >= 0 && momentum <= 1,
    fn,
    "momentum must be in [0, 1]",
    "momentum",
    momentum,
  );
  check(typeof eps === "number" && eps > 0, fn, "eps must be positive", "eps", eps);
  return { momentum, eps };
}

export function batchNorm(x: Tensor, opts: BatchNormOptions): Tensor {
  const { momentum, eps } = normArgs(x, opts, "batchNorm");
  if (!opts.training)
    check(
      opts.runningMean !== undefined && opts.runningVar !== undefined,
      "batchNorm",
      "eval mode needs runningMean and runningVar",
      "training",
      false,
    );
  return wrap(
    native.batchNorm(
      handleOf(x, "batchNorm", "x"),
      optHandle(opts.weight, "batchNorm", "weight"),
      optHandle(opts.bias, "batchNorm", "bias"),
      optHandle(opts.runningMean, "batchNorm", "runningMean"),
      optHandle(opts.runningVar, "batchNorm", "runningVar"),
      opts.training,
      momentum,
      eps,
    ),
  );
}

export function layerNorm(
  x: Tensor,
  normalizedShape: readonly number[],
  weight?: Tensor,
  bias?: Tensor,
  eps = 1e-5,
): Tensor {
  const shape = arrayArg<number>(normalizedShape, "layerNorm", "normalizedShape", "positive integers");
  check(
    shape.every((d) => isInt(d) && d >= 1),
    "layerNorm",
    "normalizedShape must hold positive integers",
    "normalizedShape",
    shape,
  );
  return wrap(
    native.layerNorm(
      handleOf(x, "layerNorm", "x"),
      [...shape],
      optHandle(weight, "layerNorm", "weight"),
      optHandle(bias, "layerNorm", "bias"),
      eps,
    ),
  );
}

// ---- activations
const act =
  (name: "relu" | "relu6" | "sigmoid" | "tanh" | "silu" | "hardswish" | "hardsigmoid" | "mish" | "softplus") =>
  (x: Tensor): Tensor =>
    wrap(native[name](handleOf(x, name, "x")));
export const relu = act("relu");
/** min(max(x, 0), 6), MobileNet v2's activation. */
export const relu6 = act("relu6");
export const sigmoid = act("sigmoid");
export const tanh = act("tanh");
/** x * sigmoid(x) (swish). */
export const silu = act("silu");
/** x * relu6(x + 3) / 6, MobileNet v3. */
export const hardswish = act("hardswish");
export const hardsigmoid = act("hardsigmoid");
export const mish = act("mish");
export const softplus = act("softplus");
/**
 * max(x, 0) written into x itself and returned (PyTorch's ReLU(inplace=True)): saves a buffer and
 * its memory traffic. Only for a fresh intermediate nothing else reads (e.g. a BatchNorm output);
 * autograd raises if the tensor was saved for backward.
 */
let fusedBatchNormRelu = process.env.BUDGETNET_FUSED_BN !== "0";

/**
 * Turns the fused training-mode BatchNorm+ReLU kernel (batchNormReluTrain) on or off for this
 * process; on by default, off with BUDGETNET_FUSED_BN=0. Returns the previous setting.
 */
export function setFusedBatchNormRelu(on: boolean): boolean {
  const was = fusedBatchNormRelu;
  fusedBatchNormRelu = on;
  return was;
}

/**
 * relu(batchNorm(x) [+ residual]) with batch statistics in one fused kernel (native/fused_bn.cc:
 * one pass for the statistics, one for normalization, addition and ReLU; backward in two passes),
 * updating the running statistics as batchNorm does. Returns undefined where the kernel does not
 * apply (not float32 channels-last on the CPU, autocast on, weight or bias missing, a residual of
 * another shape or layout, fusion turned off): the caller runs the unfused ops instead.
 */
export function batchNormReluTrain(
  x: Tensor,
  opts: Pick<BatchNormOptions, "weight" | "bias" | "runningMean" | "runningVar" | "momentum" | "eps"> & {
    residual?: Tensor;
  },
): Tensor | undefined {
  const { momentum, eps } = normArgs(x, opts, "batchNormReluTrain");
  if (!fusedBatchNormRelu || opts.weight === undefined || opts.bias === undefined) return undefined;
  const h = native.batchNormReluTrain(
    handleOf(x, "batchNormReluTrain", "x"),
    handleOf(opts.weight, "batchNormReluTrain", "weight"),
    handleOf(opts.bias, "batchNormReluTrain", "bias"),
    optHandle(opts.runningMean, "batchNormReluTrain", "runningMean"),
    optHandle(opts.runningVar, "batchNormReluTrain", "runningVar"),
    momentum,
    eps,
    optHandle(opts.residual, "batchNormReluTrain", "residual"),
  );
  return h === null ? undefined : wrap(h);
}

export function reluInPlace(x: Tensor): Tensor {
  native.relu_(handleOf(x, "reluInPlace", "x"));
  return x;
}
export function leakyRelu(x: Tensor, negativeSlope = 0.01): Tensor {
  return wrap(native.leakyRelu(handleOf(x, "leakyRelu", "x"), negativeSlope));
}
export function elu(x: Tensor, alpha = 1): Tensor {
  return wrap(native.elu(handleOf(x, "elu", "x"), alpha));
}
export function gelu(x: Tensor, approximate: "none" | "tanh" = "none"): Tensor {
  check(
    approximate === "none" || approximate === "tanh",
    "gelu",
    "approximate must be 'none' or 'tanh'",
    "approximate",
    approximate,
  );
  return wrap(native.gelu(handleOf(x, "gelu", "x"), approximate));
}

// ---- pooling
export interface Pool2dOptions {
  stride?: Pair;
  padding?: Pair;
  ceilMode?: boolean;
}
function poolArgs(x: Tensor, kernel: Pair, opts: Pool2dOptions, fn: string): [number[], number[], number[]] {
  optionsArg(opts, fn);
  check(tensorArg(x, fn, "x").rank === 4 || x.rank === 3, fn, "input must be 3-d or 4-d", "x", x);
  const k = pair(kernel, fn, "kernelSize", 1);
  const s = pair(opts.stride ?? k, fn, "stride", 1);
  const p = pair(opts.padding ?? 0, fn, "padding", 0);
  check(p[0] * 2 <= k[0] && p[1] * 2 <= k[1], fn, "padding must be at most half the kernel size", "padding", p);
  return [k, s, p];
}
export function maxPool2d(x: Tensor, kernelSize: Pair, opts: Pool2dOptions & { dilation?: Pair } = {}): Tensor {
  const [k, s, p] = poolArgs(x, kernelSize, opts, "maxPool2d");
  return wrap(
    native.maxPool2d(
      handleOf(x, "maxPool2d", "x"),
      k,
      s,
      p,
      pair(opts.dilation ?? 1, "maxPool2d", "dilation", 1),
      opts.ceilMode ?? false,
    ),
  );
}
export function avgPool2d(
  x: Tensor,
  kernelSize: Pair,
  opts: Pool2dOptions & { countIncludePad?: boolean } = {},
): Tensor {
  const [k, s, p] = poolArgs(x, kernelSize, opts, "avgPool2d");
  return wrap(
    native.avgPool2d(handleOf(x, "avgPool2d", "x"), k, s, p, opts.ceilMode ?? false, opts.countIncludePad ?? true),
  );
}
export function adaptiveAvgPool2d(x: Tensor, outputSize: Pair): Tensor {
  return wrap(
    native.adaptiveAvgPool2d(
      handleOf(x, "adaptiveAvgPool2d", "x"),
      pair(outputSize, "adaptiveAvgPool2d", "outputSize", 1),
    ),
  );
}
export function adaptiveMaxPool2d(x: Tensor, outputSize: Pair): Tensor {
  return wrap(
    native.adaptiveMaxPool2d(
      handleOf(x, "adaptiveMaxPool2d", "x"),
      pair(outputSize, "adaptiveMaxPool2d", "outputSize", 1),
    ),
  );
}

// ---- dropout
function checkP(p: number, fn: string): void {
  check(typeof p === "number" && p >= 0 && p < 1, fn, "p must be in [0, 1)", "p", p);
}
/** Zeroes elements with probability p and scales the rest by 1/(1-p) when training. */
export function dropout(x: Tensor, p: number, training: boolean): Tensor {
  checkP(p, "dropout");
  return wrap(native.dropout(handleOf(x, "dropout", "x"), p, training));
}
/** Zeroes whole channels (Dropout2d). */
export function dropout2d(x: Tensor, p: number, training: boolean): Tensor {
  checkP(p, "dropout2d");
  return wrap(native.featureDropout(handleOf(x, "dropout2d", "x"), p, training));
}

// ---- softmax and losses
export function softmax(x: Tensor, dim = -1): Tensor {
  return wrap(native.softmax(handleOf(x, "softmax", "x"), dim));
}
export function logSoftmax(x: Tensor, dim = -1): Tensor {
  return wrap(native.logSoftmax(handleOf(x, "logSoftmax", "x"), dim));
}

export interface CrossEntropyOptions {
  weight?: Tensor;
  reduction?: Reduction;
  ignoreIndex?: number;
  labelSmoothing?: number;
}
/**
 * Cross entropy of logits [N, C] against class indices (int64 [N]) or class probabilities
 * (float [N, C], e.g. from mixup), with PyTorch's label smoothing and reductions.
 */
export function crossEntropy(logits: Tensor, target: Tensor, opts: CrossEntropyOptions = {}): Tensor {
  optionsArg(opts, "crossEntropy");
  const ls = opts.labelSmoothing ?? 0;
  check(ls >= 0 && ls <= 1, "crossEntropy", "labelSmoothing must be in [0, 1]", "labelSmoothing", ls);
  tensorArg(target, "crossEntropy", "target");
  check(
    tensorArg(logits, "crossEntropy", "logits").rank >= 1,
    "crossEntropy",
    "logits must be [N, C] or [C]",
    "logits",
    logits,
  );
  const soft = target.dtype !== "int64";
  if (soft)
    check(
      target.rank === logits.rank,
      "crossEntropy",
      "float targets are class probabilities and must match the logits' shape; class indices must be int64",
      "target",
      target,
    );
  else
    check(
      target.rank === logits.rank - 1,
      "crossEntropy",
      "class-index targets must have one dimension less than the logits",
      "target",
      target,
    );
  return wrap(
    native.crossEntropy(
      handleOf(logits, "crossEntropy", "logits"),
      handleOf(target, "crossEntropy", "target"),
      optHandle(opts.weight, "crossEntropy", "weight"),
      opts.reduction ?? "mean",
      opts.ignoreIndex ?? -100,
      ls,
    ),
  );
}
export function nllLoss(
  logProbs: Tensor,
  target: Tensor,
  opts: Omit<CrossEntropyOptions, "labelSmoothing"> = {},
): Tensor {
  return wrap(
    native.nllLoss(
      handleOf(logProbs, "nllLoss", "logProbs"),
      handleOf(target, "nllLoss", "target"),
      optHandle(opts.weight, "nllLoss", "weight"),
      opts.reduction ?? "mean",
      opts.ignoreIndex ?? -100,
    ),
  );
}
export function mseLoss(x: Tensor, y: Tensor, reduction: Reduction = "mean"): Tensor {
  return wrap(native.mseLoss(handleOf(x, "mseLoss", "x"), handleOf(y, "mseLoss", "y"), reduction));
}
