// The one residual network of the ResNet family: a 3x3 stride-1 stem (the CIFAR stem of He et
// al. 2015, no max-pool), stages of residual units (resnet_blocks.ts; the first stage at stride
// 1, the others halving the map), average pooling and a linear classifier. Names follow
// torchvision (conv1, bn1, layer1..layerN, fc), so state dicts load into the same network written
// in PyTorch. Every family is an argument set over ResNetConfig (timm's resnet.py does the same):
//   resnet_cifar.ts    ResNet-20..1202, se_resnet*: basic, post-activation, shortcut A or B
//   preact_resnet.ts   ResNet-164/1001/29, PreActResNet18: bottleneck or basic, pre-activation
//   resnet_imagenet.ts ResNet-18/34/50 and mini ResNet-34 at 32x32
//   resnext.ts         ResNeXt-29: grouped bottlenecks (cardinality, bottleneckWidths)
//   wide_resnet.ts     WRN-n-k: widened pre-activation units, block types, dropout between convs
//   efficient_resnet.ts Efficient ResNets: kernels F/K, pool P, SE after the stem
// The thin subclasses (ResNetCifar, ResNeXt, WideResNet) only pick a key layout (ResNetLayout).

import { Sequential } from "../nn/containers";
import { BatchNorm2d, type Conv2d, Dropout, Linear, ReLU } from "../nn/layers";
import { Module, type ModuleConfig } from "../nn/module";
import { SqueezeExcite } from "../nn/se";
import { adaptiveAvgPool2d, avgPool2d, reluInPlace } from "../ops/nn";
import { check, isInt } from "../ops/util";
import type { Tensor } from "../tensor/tensor";
import { heInit } from "./building_blocks";
import { type OptionSpecs, perStage } from "./options";
import {
  type BlockKind,
  checkKernel,
  convBN,
  type ResidualUnit,
  type Shortcut,
  torchvisionUnit,
  type UnitClass,
  type UnitConv,
} from "./resnet_blocks";

export interface ResNetConfig {
  numClasses: number;
  inChannels: number;
  block: BlockKind;
  /** Pre-activation units (He et al. 2016): the stem is a bare convolution. */
  preact: boolean;
  /** Blocks per stage. */
  layers: number[];
  /** Planes per stage; a stage outputs planes (basic) or planes * 4 (bottleneck) channels. */
  widths: number[];
  stemWidth: number;
  /** Kernel of each stage's 3x3 convolutions. */
  kernelSizes: number[];
  /** Kernel of each stage's projection shortcut. */
  skipKernelSizes: number[];
  /** SE reduction inside every block; 0 = none. */
  seReduction: number;
  /** SE reduction of one gate after the stem (Efficient ResNets); 0 = none. */
  seStemReduction: number;
  /** BN-ReLU after the last stage (He et al.'s pre-activation nets; kuangliu's PreActResNet18 has none). */
  finalNorm: boolean;
  /** Average-pool kernel P before the classifier; 0 = global average pooling. */
  poolSize: number;
  /** Input height and width; sizes the classifier when poolSize > 0. */
  imageSize: number;
  /** Dropout after every block and before the classifier; 0 = none. */
  dropout: number;
  /** Shortcut where the shape changes: "B" projection (default), "A" zero-padded identity. */
  shortcut?: Shortcut;
  /** Groups of a bottleneck's 3x3 (ResNeXt's C); default 1. */
  cardinality?: number;
  /** Width of a bottleneck's 3x3 per stage (ResNeXt's C·d·2^s); default the stage's planes. */
  bottleneckWidths?: number[];
  /** Kernels of a basic unit's convs, all at the stage's width (WRN's block types); default [k, k]. */
  blockKernels?: number[];
  /** Dropout between the convs of every block (WRN); 0 = none. */
  blockDropout?: number;
  /** Stochastic depth: drop rate of the last block, linear in depth from 0 (Huang et al. 2016). */
  dropPath?: number;
}

/** How a subclass names things: none of it changes the computation. */
export interface ResNetLayout {
  /** The unit class per block kind (its name is what summaries print). */
  unit: (kind: BlockKind, preact: boolean) => UnitClass;
  /** Key of the BN-ReLU after the last stage. */
  finalNormKey: "final_bn" | "bn";
  /** A `relu` child after the stem's bn1 (the CIFAR ResNet's PyTorch peer has one). */
  reluModule: boolean;
  /** Zero the fc bias at init (WRN's and ResNeXt's code) or keep PyTorch's default (torchvision). */
  zeroLinearBias: boolean;
}

export const TORCHVISION_LAYOUT: ResNetLayout = {
  unit: torchvisionUnit,
  finalNormKey: "final_bn",
  reluModule: false,
  zeroLinearBias: false,
};

const NAME = "ResNet";

/** Checks a config as a whole so a bad one fails before any tensor is allocated. */
export function checkResNetConfig(c: ResNetConfig): void {
  const n = c.layers.length;
  check(
    n >= 1 && c.layers.every((b) => isInt(b) && b >= 1),
    NAME,
    "layers must list at least one stage, each with >= 1 blocks",
    "layers",
    c.layers,
  );
  for (const [key, list] of [
    ["widths", c.widths],
    ["kernelSizes", c.kernelSizes],
    ["skipKernelSizes", c.skipKernelSizes],
    ["bottleneckWidths", c.bottleneckWidths ?? c.widths],
  ] as const)
    check(list.length === n, NAME, `${key} must have one entry per stage (${n}, as layers has)`, key, list);
  for (const [key, list] of [
    ["widths", c.widths],
    ["bottleneckWidths", c.bottleneckWidths ?? c.widths],
  ] as const)
    check(
      list.every((w) => isInt(w) && w >= 1),
      NAME,
      `${key} must be positive integers`,
      key,
      list,
    );
  for (const k of c.kernelSizes) checkKernel(NAME, "kernelSizes", k);
  for (const k of c.skipKernelSizes) checkKernel(NAME, "skipKernelSizes", k);
  for (const k of c.blockKernels ?? []) checkKernel(NAME, "blockKernels", k);
  for (const key of ["stemWidth", "numClasses", "inChannels", "cardinality"] as const)
    check(isInt(c[key] ?? 1) && (c[key] ?? 1) >= 1, NAME, `${key} must be a positive integer`, key, c[key]);
  for (const key of ["seReduction", "seStemReduction"] as const)
    check(isInt(c[key]) && c[key] >= 0, NAME, `${key} must be an integer >= 0`, key, c[key]);
  check(
    isInt(c.poolSize) && c.poolSize >= 0,
    NAME,
    "poolSize must be an integer >= 0 (0 = global pooling)",
    "poolSize",
    c.poolSize,
  );
  check(isInt(c.imageSize) && c.imageSize >= 1, NAME, "imageSize must be a positive integer", "imageSize", c.imageSize);
  for (const key of ["dropout", "blockDropout", "dropPath"] as const) {
    const p = c[key] ?? 0;
    check(typeof p === "number" && p >= 0 && p < 1, NAME, `${key} must be in [0, 1)`, key, p);
  }
  const finalSize = finalMapSize(c);
  check(
    c.poolSize <= finalSize,
    NAME,
    `poolSize must not exceed the last stage's ${finalSize}x${finalSize} feature map (imageSize ${c.imageSize} halved by ${n - 1} strided stages)`,
    "poolSize",
    c.poolSize,
  );
}

/** Height (= width) of the last stage's feature map: each strided stage maps H to floor((H + 2*(k//2) - k)/2) + 1. */
export function finalMapSize(c: Pick<ResNetConfig, "imageSize" | "kernelSizes">): number {
  let h = c.imageSize;
  for (let i = 1; i < c.kernelSizes.length; i++) {
    const k = c.kernelSizes[i] as number;
    h = Math.floor((h + 2 * Math.floor(k / 2) - k) / 2) + 1;
  }
  return h;
}

/**
 * The convolutions of one unit of stage `s`; the stride sits on the 3x3 (bottleneck) or the first
 * conv. The network and its analytic cost (cost.ts) both read it.
 */
export function unitConvs(c: ResNetConfig, s: number, stride: number): UnitConv[] {
  const planes = c.widths[s] as number;
  const k = c.kernelSizes[s] as number;
  if (c.block === "basic")
    return (c.blockKernels ?? [k, k]).map((kernelSize, i) => ({
      outChannels: planes,
      kernelSize,
      stride: i === 0 ? stride : 1,
    }));
  const inner = (c.bottleneckWidths ?? c.widths)[s] as number;
  return [
    { outChannels: inner, kernelSize: 1, stride: 1 },
    { outChannels: inner, kernelSize: k, stride, groups: c.cardinality ?? 1 },
    { outChannels: planes * 4, kernelSize: 1, stride: 1 },
  ];
}

/**
 * The stages (torchvision's layer{i}): each of `layers[s]` units, the first one carrying the
 * stride and the change of width. Stochastic depth rises linearly to dropPath over all blocks.
 */
function makeStages(c: ResNetConfig, unit: UnitClass): { stages: Sequential[]; outChannels: number } {
  const total = c.layers.reduce((a, b) => a + b, 0);
  let channels = c.stemWidth;
  let index = 0;
  const stages = c.layers.map((count, s) => {
    const blocks: ResidualUnit[] = [];
    for (let j = 0; j < count; j++) {
      const b = new unit({
        inChannels: channels,
        convs: unitConvs(c, s, j === 0 && s > 0 ? 2 : 1),
        preact: c.preact,
        shortcut: c.shortcut ?? "B",
        skipKernelSize: c.skipKernelSizes[s] as number,
        seReduction: c.seReduction,
        dropout: c.blockDropout === undefined ? c.dropout : c.blockDropout,
        dropoutBetweenConvs: c.blockDropout !== undefined,
        dropPath: total > 1 ? ((c.dropPath ?? 0) * index) / (total - 1) : 0,
      });
      blocks.push(b);
      channels = b.outChannels;
      index++;
    }
    return new Sequential(blocks);
  });
  return { stages, outChannels: channels };
}

export class ResNet extends Module {
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d | undefined;
  readonly relu: ReLU | undefined;
  readonly se: SqueezeExcite | undefined;
  readonly stages: Sequential[] = [];
  readonly finalBn: BatchNorm2d | undefined;
  readonly dropout: Dropout | undefined;
  readonly fc: Linear;
  private readonly config: ResNetConfig;
  private readonly familyOptions: ModuleConfig | undefined;

  /**
   * `familyOptions`: the options of the family that built this config (ResNetCifar, ResNeXt,
   * WideResNet); toConfig gives them back instead of the config.
   */
  constructor(config: ResNetConfig, layout: ResNetLayout = TORCHVISION_LAYOUT, familyOptions?: object) {
    super();
    checkResNetConfig(config);
    this.config = { ...config, layers: [...config.layers], widths: [...config.widths] };
    this.familyOptions = familyOptions === undefined ? undefined : { ...familyOptions };
    const c = this.config;
    this.conv1 = this.registerModule("conv1", convBN(c.inChannels, c.stemWidth, 3));
    if (!c.preact) this.bn1 = this.registerModule("bn1", new BatchNorm2d({ numFeatures: c.stemWidth }));
    if (layout.reluModule) this.relu = this.registerModule("relu", new ReLU({ inplace: true }));
    if (c.seStemReduction > 0)
      this.se = this.registerModule("se", new SqueezeExcite({ channels: c.stemWidth, reduction: c.seStemReduction }));
    const { stages, outChannels } = makeStages(c, layout.unit(c.block, c.preact));
    stages.forEach((stage, i) => {
      this.stages.push(this.registerModule(`layer${i + 1}`, stage));
    });
    if (c.finalNorm)
      this.finalBn = this.registerModule(layout.finalNormKey, new BatchNorm2d({ numFeatures: outChannels }));
    if (c.dropout > 0) this.dropout = this.registerModule("dropout", new Dropout(c.dropout));
    const pooled = c.poolSize === 0 ? 1 : Math.floor((finalMapSize(c) - c.poolSize) / c.poolSize) + 1;
    this.fc = this.registerModule(
      "fc",
      new Linear({ inFeatures: outChannels * pooled * pooled, outFeatures: c.numClasses }),
    );
    // He et al. 2015's initialization as torchvision does it (the fc keeps PyTorch's default
    // there; WRN's and ResNeXt's code zero its bias)
    heInit(this, { zeroLinearBias: layout.zeroLinearBias });
  }
  forward(x: Tensor): Tensor {
    const c = this.config;
    if (c.poolSize > 0)
      check(
        x.rank === 4 && x.shape[2] === c.imageSize && x.shape[3] === c.imageSize,
        NAME,
        `with poolSize ${c.poolSize} the classifier is sized for ${c.imageSize}x${c.imageSize} inputs; pass imageSize to build for other sizes`,
        "x",
        x,
      );
    let out = this.conv1.forward(x);
    if (this.bn1 !== undefined) out = this.bn1.forwardRelu(out, undefined, this.relu);
    if (this.se !== undefined) out = this.se.forward(out);
    for (const stage of this.stages) out = stage.forward(out);
    if (this.finalBn !== undefined) out = reluInPlace(this.finalBn.forward(out));
    out = c.poolSize === 0 ? adaptiveAvgPool2d(out, 1) : avgPool2d(out, c.poolSize);
    out = out.flatten(1);
    if (this.dropout !== undefined) out = this.dropout.forward(out);
    return this.fc.forward(out);
  }

  toConfig(): ModuleConfig {
    return { ...(this.familyOptions ?? this.config) };
  }
}

/**
 * The fixed parts of the 3-stage CIFAR nets (He et al. 2015 sec. 4.2, ResNeXt-29, WRN): n blocks
 * per stage, 3x3 convs, 1x1 projections, no stem SE, global pooling; the rest from `c`.
 */
export function threeStageConfig(
  n: number,
  c: Pick<ResNetConfig, "numClasses" | "inChannels" | "block" | "preact" | "widths" | "stemWidth"> &
    Partial<ResNetConfig>,
): ResNetConfig {
  return {
    layers: [n, n, n],
    kernelSizes: [3, 3, 3],
    skipKernelSizes: [1, 1, 1],
    seReduction: 0,
    seStemReduction: 0,
    finalNorm: false,
    poolSize: 0,
    imageSize: 32,
    dropout: 0,
    ...c,
  };
}

/** Options every family built on ResNetConfig takes unchanged (after its layout options). */
export const RESNET_TAIL_OPTIONS = {
  kernelSizes: {
    type: "intOrIntList",
    min: 1,
    default: 3,
    help: "kernel of the 3x3 convs, one or one per stage (odd)",
  },
  skipKernelSizes: {
    type: "intOrIntList",
    min: 1,
    default: 1,
    help: "kernel of the projection shortcuts, one or one per stage (odd)",
  },
  se: { type: "boolean", default: false, help: "squeeze-and-excitation on every block's residual branch" },
  seReduction: { type: "int", min: 1, default: 16, help: "reduction r of the SE gates" },
  seStemReduction: { type: "int", min: 0, default: 0, help: "reduction of one SE gate after the stem; 0 = none" },
  poolSize: { type: "int", min: 0, default: 0, help: "average-pool kernel before the classifier; 0 = global" },
  imageSize: {
    type: "int",
    min: 1,
    default: 32,
    help: "input height and width (sizes the classifier when poolSize > 0)",
  },
  dropout: {
    type: "number",
    min: 0,
    max: 1,
    maxExclusive: true,
    default: 0,
    help: "dropout after every block and before the classifier",
  },
} as const satisfies OptionSpecs;

/** The resolved values of RESNET_TAIL_OPTIONS plus numClasses and inChannels. */
export interface ResNetTail {
  numClasses: number;
  inChannels: number;
  kernelSizes: number | number[];
  skipKernelSizes: number | number[];
  se: boolean;
  seReduction: number;
  seStemReduction: number;
  poolSize: number;
  imageSize: number;
  dropout: number;
}

/** Channels doubling per stage from `base` (the design rule of He et al. 2015). */
export function doubling(base: number, n: number): number[] {
  return Array.from({ length: n }, (_, i) => base * 2 ** i);
}

/** A ResNetConfig from a family's layout plus the options any ResNet takes (already validated). */
export function resnetConfig(
  o: ResNetTail,
  base: Pick<ResNetConfig, "block" | "preact" | "layers" | "widths" | "stemWidth" | "finalNorm">,
): ResNetConfig {
  const n = base.layers.length;
  return {
    ...base,
    numClasses: o.numClasses,
    inChannels: o.inChannels,
    kernelSizes: perStage(o.kernelSizes, n),
    skipKernelSizes: perStage(o.skipKernelSizes, n),
    seReduction: o.se ? o.seReduction : 0,
    seStemReduction: o.seStemReduction,
    poolSize: o.poolSize,
    imageSize: o.imageSize,
    dropout: o.dropout,
  };
}
