// Residual blocks shared by the ResNet family files, with torchvision's names (conv1, bn1, ...,
// downsample.0/.1) so their weights load into the same network written in PyTorch.
//   post-activation (He et al. 2015): conv-BN-ReLU inside, ReLU after the addition.
//   pre-activation (He et al. 2016, "Identity Mappings"): BN-ReLU-conv inside, nothing after the
//   addition; a projection shortcut reads the pre-activated input (the paper's appendix shares
//   the first BN-ReLU between both paths).
// Every block can carry a squeeze-and-excitation gate on its residual branch, before the addition
// (Hu et al. 2018), named `se`.
// Every ReLU here is in place (PyTorch's ReLU(inplace=True)) on a fresh BatchNorm or addition
// output that nothing else reads; a BN that foldBatchNorm turned into the identity passes on its
// conv's output, which the fold only allows when nothing else reads it either.
import { Sequential } from "../nn/containers";
import { BatchNorm2d, Conv2d, Dropout } from "../nn/layers";
import { Module, type ModuleConfig } from "../nn/module";
import { SqueezeExcite } from "../nn/se";
import { reluInPlace } from "../ops/nn";
import { check, isInt } from "../ops/util";
import { ArgumentError } from "../tensor/errors";
import type { Tensor } from "../tensor/tensor";

export interface BlockOptions {
  inChannels: number;
  /** Width of the block's 3x3 convolutions; the output has planes * expansion channels. */
  planes: number;
  stride?: number;
  /** Kernel of the 3x3 convolutions (Efficient ResNets' F_i), padding kernel // 2. */
  kernelSize?: number;
  /** Kernel of the projection shortcut (Efficient ResNets' K_i), padding kernel // 2. */
  skipKernelSize?: number;
  /** Squeeze-and-excitation reduction r; 0 = no SE. */
  seReduction?: number;
  /** Dropout after the block's output (Efficient ResNets); 0 = none. */
  dropout?: number;
}

const BLOCK_DEFAULTS = Object.freeze({ stride: 1, kernelSize: 3, skipKernelSize: 1, seReduction: 0, dropout: 0 });

/** A bias-free convolution with "same" padding (kernel // 2), as every ResNet uses. */
export function convBN(inChannels: number, outChannels: number, kernelSize: number, stride = 1): Conv2d {
  return new Conv2d({ inChannels, outChannels, kernelSize, stride, padding: Math.floor(kernelSize / 2), bias: false });
}

export function checkKernel(fn: string, name: string, k: unknown): void {
  check(
    isInt(k) && k >= 1 && k % 2 === 1,
    fn,
    `${name} must be a positive odd integer (padding ${name} // 2 keeps the feature map's size)`,
    name,
    k,
  );
}

function resolve(opts: BlockOptions): Required<BlockOptions> {
  const o = { ...BLOCK_DEFAULTS, ...opts };
  checkKernel("ResNet block", "kernelSize", o.kernelSize);
  checkKernel("ResNet block", "skipKernelSize", o.skipKernelSize);
  check(
    isInt(o.seReduction) && o.seReduction >= 0,
    "ResNet block",
    "seReduction must be an integer >= 0",
    "seReduction",
    o.seReduction,
  );
  return o;
}

/** Shared by the four block kinds: shortcut, optional SE and dropout, and the config. */
abstract class ResidualBlock extends Module {
  readonly downsample: Sequential | undefined;
  se: SqueezeExcite | undefined;
  dropout: Dropout | undefined;
  readonly outChannels: number;
  protected readonly options: Required<BlockOptions>;

  constructor(opts: BlockOptions, expansion: number, shortcutNorm: boolean) {
    super();
    this.options = resolve(opts);
    this.outChannels = opts.planes * expansion;
    const { inChannels, stride, skipKernelSize } = this.options;
    if (stride !== 1 || inChannels !== this.outChannels) {
      const proj = convBN(inChannels, this.outChannels, skipKernelSize, stride);
      this.downsample = new Sequential(
        shortcutNorm ? [proj, new BatchNorm2d({ numFeatures: this.outChannels })] : [proj],
      );
    }
  }

  /** Registers the shortcut, SE and dropout after the subclass's own layers, in PyTorch's order. */
  protected registerTail(): void {
    if (this.downsample !== undefined) this.registerModule("downsample", this.downsample);
    const { seReduction, dropout } = this.options;
    if (seReduction > 0)
      this.se = this.registerModule("se", new SqueezeExcite({ channels: this.outChannels, reduction: seReduction }));
    if (dropout > 0) this.dropout = this.registerModule("dropout", new Dropout(dropout));
  }

  protected gate(x: Tensor): Tensor {
    return this.se === undefined ? x : this.se.forward(x);
  }

  protected drop(x: Tensor): Tensor {
    return this.dropout === undefined ? x : this.dropout.forward(x);
  }

  toConfig(): ModuleConfig {
    return { ...this.options, type: this.constructor.name };
  }
}

/** Two kxk convolutions (He et al. 2015, Fig. 2); ReLU after the addition. */
export class BasicBlock extends ResidualBlock {
  static readonly expansion = 1;
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly conv2: Conv2d;
  readonly bn2: BatchNorm2d;

  constructor(opts: BlockOptions) {
    super(opts, 1, true);
    const { inChannels, planes, stride, kernelSize } = this.options;
    this.conv1 = this.registerModule("conv1", convBN(inChannels, planes, kernelSize, stride));
    this.bn1 = this.registerModule("bn1", new BatchNorm2d({ numFeatures: planes }));
    this.conv2 = this.registerModule("conv2", convBN(planes, planes, kernelSize));
    this.bn2 = this.registerModule("bn2", new BatchNorm2d({ numFeatures: planes }));
    this.registerTail();
  }

  forward(x: Tensor): Tensor {
    const shortcut = this.downsample === undefined ? x : this.downsample.forward(x);
    let out = reluInPlace(this.bn1.forward(this.conv1.forward(x)));
    out = this.bn2.forward(this.conv2.forward(out));
    out = this.gate(out);
    return this.drop(reluInPlace(out.add(shortcut)));
  }
}

/** 1x1 reduce, 3x3 (carrying the stride, as torchvision and fb.resnet.torch do), 1x1 expand x4. */
export class Bottleneck extends ResidualBlock {
  static readonly expansion = 4;
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly conv2: Conv2d;
  readonly bn2: BatchNorm2d;
  readonly conv3: Conv2d;
  readonly bn3: BatchNorm2d;

  constructor(opts: BlockOptions) {
    super(opts, 4, true);
    const { inChannels, planes, stride, kernelSize } = this.options;
    this.conv1 = this.registerModule("conv1", convBN(inChannels, planes, 1));
    this.bn1 = this.registerModule("bn1", new BatchNorm2d({ numFeatures: planes }));
    this.conv2 = this.registerModule("conv2", convBN(planes, planes, kernelSize, stride));
    this.bn2 = this.registerModule("bn2", new BatchNorm2d({ numFeatures: planes }));
    this.conv3 = this.registerModule("conv3", convBN(planes, this.outChannels, 1));
    this.bn3 = this.registerModule("bn3", new BatchNorm2d({ numFeatures: this.outChannels }));
    this.registerTail();
  }

  forward(x: Tensor): Tensor {
    const shortcut = this.downsample === undefined ? x : this.downsample.forward(x);
    let out = reluInPlace(this.bn1.forward(this.conv1.forward(x)));
    out = reluInPlace(this.bn2.forward(this.conv2.forward(out)));
    out = this.bn3.forward(this.conv3.forward(out));
    out = this.gate(out);
    return this.drop(reluInPlace(out.add(shortcut)));
  }
}

/** BN-ReLU-conv twice (He et al. 2016, Fig. 4e); the projection shortcut is a bare conv. */
export class PreActBasicBlock extends ResidualBlock {
  static readonly expansion = 1;
  readonly bn1: BatchNorm2d;
  readonly conv1: Conv2d;
  readonly bn2: BatchNorm2d;
  readonly conv2: Conv2d;

  constructor(opts: BlockOptions) {
    super(opts, 1, false);
    const { inChannels, planes, stride, kernelSize } = this.options;
    this.bn1 = this.registerModule("bn1", new BatchNorm2d({ numFeatures: inChannels }));
    this.conv1 = this.registerModule("conv1", convBN(inChannels, planes, kernelSize, stride));
    this.bn2 = this.registerModule("bn2", new BatchNorm2d({ numFeatures: planes }));
    this.conv2 = this.registerModule("conv2", convBN(planes, planes, kernelSize));
    this.registerTail();
  }

  forward(x: Tensor): Tensor {
    const pre = reluInPlace(this.bn1.forward(x));
    const shortcut = this.downsample === undefined ? x : this.downsample.forward(pre);
    let out = this.conv1.forward(pre);
    out = this.conv2.forward(reluInPlace(this.bn2.forward(out)));
    out = this.gate(out);
    return this.drop(out.add(shortcut));
  }
}

/** BN-ReLU-conv 1x1, 3x3, 1x1 (He et al. 2016): the unit of ResNet-164 and ResNet-1001. */
export class PreActBottleneck extends ResidualBlock {
  static readonly expansion = 4;
  readonly bn1: BatchNorm2d;
  readonly conv1: Conv2d;
  readonly bn2: BatchNorm2d;
  readonly conv2: Conv2d;
  readonly bn3: BatchNorm2d;
  readonly conv3: Conv2d;

  constructor(opts: BlockOptions) {
    super(opts, 4, false);
    const { inChannels, planes, stride, kernelSize } = this.options;
    this.bn1 = this.registerModule("bn1", new BatchNorm2d({ numFeatures: inChannels }));
    this.conv1 = this.registerModule("conv1", convBN(inChannels, planes, 1));
    this.bn2 = this.registerModule("bn2", new BatchNorm2d({ numFeatures: planes }));
    this.conv2 = this.registerModule("conv2", convBN(planes, planes, kernelSize, stride));
    this.bn3 = this.registerModule("bn3", new BatchNorm2d({ numFeatures: planes }));
    this.conv3 = this.registerModule("conv3", convBN(planes, this.outChannels, 1));
    this.registerTail();
  }

  forward(x: Tensor): Tensor {
    const pre = reluInPlace(this.bn1.forward(x));
    const shortcut = this.downsample === undefined ? x : this.downsample.forward(pre);
    let out = this.conv1.forward(pre);
    out = this.conv2.forward(reluInPlace(this.bn2.forward(out)));
    out = this.conv3.forward(reluInPlace(this.bn3.forward(out)));
    out = this.gate(out);
    return this.drop(out.add(shortcut));
  }
}

export type BlockKind = "basic" | "bottleneck";
export type BlockClass = typeof BasicBlock | typeof Bottleneck | typeof PreActBasicBlock | typeof PreActBottleneck;

export function blockClass(kind: BlockKind, preact: boolean): BlockClass {
  if (kind === "basic") return preact ? PreActBasicBlock : BasicBlock;
  if (kind === "bottleneck") return preact ? PreActBottleneck : Bottleneck;
  throw new ArgumentError(`ResNet: block must be "basic" or "bottleneck". Received: block=${String(kind)}`);
}

/**
 * One stage (torchvision's layer{i}): `count` blocks, the first one carrying the stride and the
 * change of width. Returns the stage and its output channels.
 */
export function makeStage(
  block: BlockClass,
  inChannels: number,
  planes: number,
  count: number,
  stride: number,
  extra: Omit<BlockOptions, "inChannels" | "planes" | "stride"> = {},
): { stage: Sequential; outChannels: number } {
  const blocks: ResidualBlock[] = [];
  let c = inChannels;
  for (let i = 0; i < count; i++) {
    const b = new block({ ...extra, inChannels: c, planes, stride: i === 0 ? stride : 1 });
    blocks.push(b);
    c = b.outChannels;
  }
  return { stage: new Sequential(blocks), outChannels: c };
}
