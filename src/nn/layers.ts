// Layers with PyTorch's parameter names and default initialization.
import { empty, ones, zeros } from "../ops/creation";
import { addInPlace } from "../ops/inplace";
import { linear } from "../ops/math";
import * as F from "../ops/nn";
import { flatten } from "../ops/shape";
import { check, isInt, optionsArg, pair } from "../ops/util";
import type { ProcessGroup } from "../tensor/process_group";
import type { Tensor } from "../tensor/tensor";
import { torchDefault } from "./init";
import { Module, type ModuleConfig } from "./module";

type Pair = number | [number, number];

export interface Conv2dOptions {
  inChannels: number;
  outChannels: number;
  kernelSize: Pair;
  stride?: Pair;
  padding?: Pair;
  dilation?: Pair;
  groups?: number;
  bias?: boolean;
}
const CONV_DEFAULTS = Object.freeze({ stride: 1, padding: 0, dilation: 1, groups: 1, bias: true });

function checkChannels(o: { inChannels: number; outChannels: number; groups?: number }, fn: string): void {
  check(
    isInt(o.inChannels) && o.inChannels >= 1,
    fn,
    "inChannels must be a positive integer",
    "inChannels",
    o.inChannels,
  );
  check(
    isInt(o.outChannels) && o.outChannels >= 1,
    fn,
    "outChannels must be a positive integer",
    "outChannels",
    o.outChannels,
  );
  const g = o.groups ?? 1;
  check(
    isInt(g) && g >= 1 && o.inChannels % g === 0 && o.outChannels % g === 0,
    fn,
    `groups must divide inChannels (${o.inChannels}) and outChannels (${o.outChannels})`,
    "groups",
    g,
  );
}

export class Conv2d extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | undefined;
  readonly options: Required<Conv2dOptions>;

  constructor(opts: Conv2dOptions) {
    super();
    optionsArg(opts, "Conv2d", "opts", "{inChannels: 3, outChannels: 16, kernelSize: 3}");
    const o = { ...CONV_DEFAULTS, ...opts };
    checkChannels(o, "Conv2d");
    const [kh, kw] = pair(o.kernelSize, "Conv2d", "kernelSize", 1);
    pair(o.stride, "Conv2d", "stride", 1);
    pair(o.padding, "Conv2d", "padding", 0);
    pair(o.dilation, "Conv2d", "dilation", 1);
    this.options = o;
    this.weight = this.registerParameter("weight", empty([o.outChannels, o.inChannels / o.groups, kh, kw]));
    this.bias = this.registerParameter("bias", o.bias ? empty([o.outChannels]) : undefined);
    torchDefault(this.weight, this.bias);
  }

  forward(x: Tensor): Tensor {
    const o = this.options;
    return F.conv2d(x, this.weight, this.bias, {
      stride: o.stride,
      padding: o.padding,
      dilation: o.dilation,
      groups: o.groups,
    });
  }

  toConfig(): ModuleConfig {
    return { ...this.options };
  }
}

export interface ConvTranspose2dOptions extends Conv2dOptions {
  outputPadding?: Pair;
}
export class ConvTranspose2d extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | undefined;
  readonly options: Required<ConvTranspose2dOptions>;

  constructor(opts: ConvTranspose2dOptions) {
    super();
    optionsArg(opts, "ConvTranspose2d", "opts", "{inChannels: 16, outChannels: 3, kernelSize: 2}");
    const o = { ...CONV_DEFAULTS, outputPadding: 0, ...opts };
    checkChannels(o, "ConvTranspose2d");
    const [kh, kw] = pair(o.kernelSize, "ConvTranspose2d", "kernelSize", 1);
    this.options = o;
    this.weight = this.registerParameter("weight", empty([o.inChannels, o.outChannels / o.groups, kh, kw]));
    this.bias = this.registerParameter("bias", o.bias ? empty([o.outChannels]) : undefined);
    torchDefault(this.weight, this.bias);
  }

  forward(x: Tensor): Tensor {
    const o = this.options;
    return F.convTranspose2d(x, this.weight, this.bias, {
      stride: o.stride,
      padding: o.padding,
      outputPadding: o.outputPadding,
      dilation: o.dilation,
      groups: o.groups,
    });
  }

  toConfig(): ModuleConfig {
    return { ...this.options };
  }
}

export interface LinearOptions {
  inFeatures: number;
  outFeatures: number;
  bias?: boolean;
}
export class Linear extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | undefined;
  readonly options: Required<LinearOptions>;

  constructor(opts: LinearOptions) {
    super();
    optionsArg(opts, "Linear", "opts", "{inFeatures: 512, outFeatures: 10}");
    const o = { bias: true, ...opts };
    check(
      isInt(o.inFeatures) && o.inFeatures >= 1,
      "Linear",
      "inFeatures must be a positive integer",
      "inFeatures",
      o.inFeatures,
    );
    check(
      isInt(o.outFeatures) && o.outFeatures >= 1,
      "Linear",
      "outFeatures must be a positive integer",
      "outFeatures",
      o.outFeatures,
    );
    this.options = o;
    this.weight = this.registerParameter("weight", empty([o.outFeatures, o.inFeatures]));
    this.bias = this.registerParameter("bias", o.bias ? empty([o.outFeatures]) : undefined);
    torchDefault(this.weight, this.bias);
  }

  forward(x: Tensor): Tensor {
    return linear(x, this.weight, this.bias);
  }

  toConfig(): ModuleConfig {
    return { ...this.options };
  }
}

export interface BatchNorm2dOptions {
  numFeatures: number;
  eps?: number;
  momentum?: number;
  affine?: boolean;
  trackRunningStats?: boolean;
}
export class BatchNorm2d extends Module {
  readonly weight: Tensor | undefined;
  readonly bias: Tensor | undefined;
  readonly runningMean: Tensor | undefined;
  readonly runningVar: Tensor | undefined;
  readonly numBatchesTracked: Tensor | undefined;
  readonly options: Required<BatchNorm2dOptions>;

  constructor(opts: BatchNorm2dOptions) {
    super();
    optionsArg(opts, "BatchNorm2d", "opts", "{numFeatures: 64}");
    const o = { eps: 1e-5, momentum: 0.1, affine: true, trackRunningStats: true, ...opts };
    check(
      isInt(o.numFeatures) && o.numFeatures >= 1,
      "BatchNorm2d",
      "numFeatures must be a positive integer",
      "numFeatures",
      o.numFeatures,
    );
    check(o.momentum >= 0 && o.momentum <= 1, "BatchNorm2d", "momentum must be in [0, 1]", "momentum", o.momentum);
    this.options = o;
    const c = o.numFeatures;
    this.weight = this.registerParameter("weight", o.affine ? ones([c]) : undefined);
    this.bias = this.registerParameter("bias", o.affine ? zeros([c]) : undefined);
    if (o.trackRunningStats) {
      this.runningMean = this.registerBuffer("running_mean", zeros([c]));
      this.runningVar = this.registerBuffer("running_var", ones([c]));
      this.numBatchesTracked = this.registerBuffer("num_batches_tracked", zeros([], { dtype: "int64" }));
    }
  }

  /**
   * With a process group, training-mode batches are normalized with the statistics of the whole
   * job's batch (SyncBatchNorm; set by convertSyncBatchNorm in src/train/ddp.ts). Evaluation and
   * the saved weights are those of a plain BatchNorm2d.
   */
  syncGroup: ProcessGroup | undefined;

  forward(x: Tensor): Tensor {
    check(x.rank === 4, "BatchNorm2d", "input must be 4-d [N, C, H, W]", "x", x);
    const useBatchStats = this.training || this.runningMean === undefined;
    if (this.training && this.numBatchesTracked !== undefined) addInPlace(this.numBatchesTracked, 1);
    if (this.training && this.syncGroup !== undefined) return this.syncGroup.syncBatchNorm(x, this.normOptions());
    return F.batchNorm(x, { ...this.normOptions(), training: useBatchStats });
  }

  /** Weight, bias, running statistics, momentum and eps, as every batch-norm op takes them. */
  private normOptions() {
    return {
      weight: this.weight,
      bias: this.bias,
      runningMean: this.runningMean,
      runningVar: this.runningVar,
      momentum: this.options.momentum,
      eps: this.options.eps,
    };
  }

  /**
   * relu(this.forward(x) [+ residual]), where `relu` (if given) is the ReLU module the caller
   * would run. In training, on float32 channels-last CPU activations, one fused kernel
   * (F.batchNormReluTrain) does it all; hooks on this module or on `relu`, a sync group, a module
   * without affine parameters or any other input run the plain ops, with the same result.
   */
  forwardRelu(x: Tensor, residual?: Tensor, relu?: Module): Tensor {
    const plain =
      this.forward === BatchNorm2d.prototype.forward && (relu === undefined || relu.forward === ReLU.prototype.forward);
    if (this.training && this.syncGroup === undefined && plain && x.rank === 4) {
      const y = F.batchNormReluTrain(x, { ...this.normOptions(), residual });
      if (y !== undefined) {
        if (this.numBatchesTracked !== undefined) addInPlace(this.numBatchesTracked, 1);
        return y;
      }
    }
    let out = this.forward(x);
    if (residual !== undefined) out = out.add(residual);
    return relu === undefined ? F.reluInPlace(out) : relu.forward(out);
  }

  toConfig(): ModuleConfig {
    return { ...this.options };
  }
}

export class Dropout extends Module {
  constructor(readonly p = 0.5) {
    super();
    check(p >= 0 && p < 1, "Dropout", "p must be in [0, 1)", "p", p);
  }
  forward(x: Tensor): Tensor {
    return this.p === 0 ? x : F.dropout(x, this.p, this.training);
  }
  toConfig(): ModuleConfig {
    return { p: this.p };
  }
}

/** Zeroes whole channels. */
export class Dropout2d extends Module {
  constructor(readonly p = 0.5) {
    super();
    check(p >= 0 && p < 1, "Dropout2d", "p must be in [0, 1)", "p", p);
  }
  forward(x: Tensor): Tensor {
    return this.p === 0 ? x : F.dropout2d(x, this.p, this.training);
  }
  toConfig(): ModuleConfig {
    return { p: this.p };
  }
}

/** A stateless layer around one function of x. */
abstract class Stateless extends Module {
  toConfig(): ModuleConfig {
    return {};
  }
}
export class ReLU extends Module {
  /** inplace: overwrite the input (for a fresh intermediate such as a BatchNorm output), as PyTorch's ReLU(inplace=True). */
  constructor(readonly options: { inplace?: boolean } = {}) {
    super();
  }
  forward(x: Tensor): Tensor {
    return this.options.inplace ? F.reluInPlace(x) : F.relu(x);
  }
  toConfig(): ModuleConfig {
    return { inplace: this.options.inplace ?? false };
  }
}
export class ReLU6 extends Stateless {
  forward(x: Tensor): Tensor {
    return F.relu6(x);
  }
}
export class Sigmoid extends Stateless {
  forward(x: Tensor): Tensor {
    return F.sigmoid(x);
  }
}
export class Tanh extends Stateless {
  forward(x: Tensor): Tensor {
    return F.tanh(x);
  }
}
export class SiLU extends Stateless {
  forward(x: Tensor): Tensor {
    return F.silu(x);
  }
}
export class Hardswish extends Stateless {
  forward(x: Tensor): Tensor {
    return F.hardswish(x);
  }
}
export class Hardsigmoid extends Stateless {
  forward(x: Tensor): Tensor {
    return F.hardsigmoid(x);
  }
}
export class GELU extends Stateless {
  forward(x: Tensor): Tensor {
    return F.gelu(x);
  }
}
export class Identity extends Stateless {
  forward(x: Tensor): Tensor {
    return x;
  }
}

export class Flatten extends Module {
  constructor(
    readonly startDim = 1,
    readonly endDim = -1,
  ) {
    super();
  }
  forward(x: Tensor): Tensor {
    return flatten(x, this.startDim, this.endDim);
  }
  toConfig(): ModuleConfig {
    return { startDim: this.startDim, endDim: this.endDim };
  }
}

export interface Pool2dOptions {
  kernelSize: Pair;
  stride?: Pair;
  padding?: Pair;
  ceilMode?: boolean;
}
export class MaxPool2d extends Module {
  constructor(readonly options: Pool2dOptions) {
    super();
    optionsArg(options, "MaxPool2d", "options", "{kernelSize: 2}");
    pair(options.kernelSize, "MaxPool2d", "kernelSize", 1);
  }
  forward(x: Tensor): Tensor {
    return F.maxPool2d(x, this.options.kernelSize, this.options);
  }
  toConfig(): ModuleConfig {
    return { ...this.options };
  }
}
export class AvgPool2d extends Module {
  constructor(readonly options: Pool2dOptions & { countIncludePad?: boolean }) {
    super();
    optionsArg(options, "AvgPool2d", "options", "{kernelSize: 2}");
    pair(options.kernelSize, "AvgPool2d", "kernelSize", 1);
  }
  forward(x: Tensor): Tensor {
    return F.avgPool2d(x, this.options.kernelSize, this.options);
  }
  toConfig(): ModuleConfig {
    return { ...this.options };
  }
}
export class AdaptiveAvgPool2d extends Module {
  constructor(readonly outputSize: Pair = 1) {
    super();
    pair(outputSize, "AdaptiveAvgPool2d", "outputSize", 1);
  }
  forward(x: Tensor): Tensor {
    return F.adaptiveAvgPool2d(x, this.outputSize);
  }
  toConfig(): ModuleConfig {
    return { outputSize: this.outputSize };
  }
}
