// Pieces shared by the efficient families (WRN, ResNeXt, DenseNet, MobileNets, EfficientNet):
// conv-BN-activation, the channel rounding of the MobileNet/EfficientNet reference code, drop
// path (stochastic depth) composed from rand + mul, He initialization, the inverted residual
// block of MobileNet v2/v3 and EfficientNet and the CIFAR stride rule. Options are read by the
// declared schemas of options.ts.
import "../ops/methods";
import { Sequential } from "../nn/containers";
import { constant, kaimingNormal } from "../nn/init";
import { BatchNorm2d, Conv2d, Dropout, Linear } from "../nn/layers";
import { Module, type ModuleConfig } from "../nn/module";
import { SqueezeExcite, type SqueezeExciteOptions } from "../nn/se";
import { rand } from "../ops/creation";
import { adaptiveAvgPool2d } from "../ops/nn";
import type { Tensor } from "../tensor/tensor";

export interface ConvBnActOptions {
  inChannels: number;
  outChannels: number;
  kernelSize: number;
  stride?: number;
  groups?: number;
  /** Built after the norm; undefined for a linear (projection) layer. */
  activation?: () => Module;
}

/** conv (no bias, "same" padding for odd kernels) → BatchNorm → activation; keys conv/bn/act. */
export class ConvBnAct extends Module {
  readonly conv: Conv2d;
  readonly bn: BatchNorm2d;
  readonly act: Module | undefined;

  constructor(opts: ConvBnActOptions) {
    super();
    this.conv = this.registerModule(
      "conv",
      new Conv2d({
        inChannels: opts.inChannels,
        outChannels: opts.outChannels,
        kernelSize: opts.kernelSize,
        stride: opts.stride ?? 1,
        padding: Math.floor((opts.kernelSize - 1) / 2),
        groups: opts.groups ?? 1,
        bias: false,
      }),
    );
    this.bn = this.registerModule("bn", new BatchNorm2d({ numFeatures: opts.outChannels }));
    this.act = opts.activation ? this.registerModule("act", opts.activation()) : undefined;
  }

  forward(x: Tensor): Tensor {
    const y = this.bn.forward(this.conv.forward(x));
    return this.act ? this.act.forward(y) : y;
  }

  toConfig(): ModuleConfig {
    return { ...this.conv.toConfig(), activation: this.act?.constructor.name ?? null };
  }
}

/**
 * Rounds a channel count to a multiple of `divisor`, never below `divisor` and never more than
 * 10% under v (MobileNet v2/v3 `_make_divisible`, EfficientNet `round_filters`).
 */
export function makeDivisible(v: number, divisor = 8): number {
  const rounded = Math.max(divisor, Math.floor((v + divisor / 2) / divisor) * divisor);
  return rounded < 0.9 * v ? rounded + divisor : rounded;
}

/**
 * Drop path / stochastic depth (Huang et al. 2016; EfficientNet's "drop connect"): in training,
 * each sample's residual branch is zeroed with probability p and the survivors scaled by 1/(1-p),
 * so the expectation is unchanged; identity at evaluation.
 */
export function dropPath(x: Tensor, p: number, training: boolean): Tensor {
  if (!training || p === 0) return x;
  const keep = 1 - p;
  const shape = [x.shape[0] as number, ...x.shape.slice(1).map(() => 1)];
  const mask = rand(shape, { dtype: x.dtype, device: x.device }).lt(keep).to(x.dtype).div(keep);
  return x.mul(mask);
}

export interface HeInitOptions {
  /**
   * Zero every Linear bias, as the reference code of WRN, ResNeXt, DenseNet, the MobileNets and
   * EfficientNet does (default true). torchvision's ResNets keep PyTorch's default fc init (false).
   */
  zeroLinearBias?: boolean;
}

/**
 * The one He initialization (He et al. 2015) every family uses: kaiming-normal (fan_out, ReLU
 * gain) for every convolution, zero conv biases, BatchNorm weight 1 and bias 0, and (unless
 * zeroLinearBias is false) zero Linear biases. Only the convolutions draw random numbers, so the
 * ResNets' former conv-only loop gives the same tensors for the same seed.
 */
export function heInit(model: Module, { zeroLinearBias = true }: HeInitOptions = {}): void {
  for (const [, m] of model.namedModules()) {
    if (m instanceof Conv2d) {
      kaimingNormal(m.weight, { mode: "fan_out", nonlinearity: "relu" });
      if (m.bias) constant(m.bias, 0);
    } else if (m instanceof BatchNorm2d) {
      if (m.weight) constant(m.weight, 1);
      if (m.bias) constant(m.bias, 0);
    } else if (m instanceof Linear && m.bias && zeroLinearBias) {
      constant(m.bias, 0);
    }
  }
}

export type StrideLayout = "cifar" | "imagenet";
export const STRIDE_LAYOUTS: readonly StrideLayout[] = ["cifar", "imagenet"];

/** The CIFAR rule: the first stride-2 stage after the stem runs at stride 1. */
export function adaptStrides(strides: readonly number[], layout: StrideLayout): number[] {
  const out = [...strides];
  const first = out.indexOf(2);
  if (layout === "cifar" && first >= 0) out[first] = 1;
  return out;
}

export interface InvertedResidualOptions {
  inChannels: number;
  expandedChannels: number;
  outChannels: number;
  kernelSize: number;
  stride: number;
  activation: () => Module;
  /** Squeeze-and-excitation on the expanded features, after the depthwise conv. */
  se?: Omit<SqueezeExciteOptions, "channels">;
  /** Stochastic depth on the residual branch (EfficientNet). */
  dropPath?: number;
}

/** Expand (1x1, skipped when t = 1) → depthwise k x k → [SE] → linear 1x1 projection (+ x). */
export class InvertedResidual extends Module {
  readonly expand: ConvBnAct | undefined;
  readonly depthwise: ConvBnAct;
  readonly se: SqueezeExcite | undefined;
  readonly project: ConvBnAct;
  readonly useResidual: boolean;

  constructor(readonly options: InvertedResidualOptions) {
    super();
    const o = options;
    const exp = o.expandedChannels;
    if (exp !== o.inChannels)
      this.expand = this.registerModule(
        "expand",
        new ConvBnAct({ inChannels: o.inChannels, outChannels: exp, kernelSize: 1, activation: o.activation }),
      );
    this.depthwise = this.registerModule(
      "depthwise",
      new ConvBnAct({
        inChannels: exp,
        outChannels: exp,
        kernelSize: o.kernelSize,
        stride: o.stride,
        groups: exp,
        activation: o.activation,
      }),
    );
    if (o.se) this.se = this.registerModule("se", new SqueezeExcite({ channels: exp, ...o.se }));
    this.project = this.registerModule(
      "project",
      new ConvBnAct({ inChannels: exp, outChannels: o.outChannels, kernelSize: 1 }),
    );
    this.useResidual = o.stride === 1 && o.inChannels === o.outChannels;
  }

  forward(x: Tensor): Tensor {
    let y = this.expand ? this.expand.forward(x) : x;
    y = this.depthwise.forward(y);
    if (this.se) y = this.se.forward(y);
    y = this.project.forward(y);
    if (!this.useResidual) return y;
    return dropPath(y, this.options.dropPath ?? 0, this.training).add(x);
  }

  toConfig(): ModuleConfig {
    const { activation, ...rest } = this.options;
    return { ...rest, activation: activation().constructor.name };
  }
}

/**
 * The end of MobileNet v2 and EfficientNet: a 1x1 conv-BN-activation to `width` channels (their
 * key `head`) and dropout + linear (their key `classifier`).
 */
export function convHead(o: {
  inChannels: number;
  width: number;
  activation: () => Module;
  dropout: number;
  numClasses: number;
}): { head: ConvBnAct; classifier: Sequential } {
  return {
    head: new ConvBnAct({ inChannels: o.inChannels, outChannels: o.width, kernelSize: 1, activation: o.activation }),
    classifier: new Sequential([
      new Dropout(o.dropout),
      new Linear({ inFeatures: o.width, outFeatures: o.numClasses }),
    ]),
  };
}

/** Global average pool → flatten → head (shared by every MobileNet and EfficientNet). */
export function poolAndClassify(x: Tensor, head: Module): Tensor {
  return head.forward(adaptiveAvgPool2d(x, 1).flatten(1));
}
