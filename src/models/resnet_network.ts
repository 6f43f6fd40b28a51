// The residual network every ResNet family file builds: a 3x3 stride-1 stem (the CIFAR stem of
// He et al. 2015, no max-pool), stages of residual blocks (the first at stride 1, the others
// halving the map), average pooling and a linear classifier. Names follow torchvision (conv1,
// bn1, layer1..layerN, fc), so state dicts load into the same network written in PyTorch.
// The family files are argument sets over ResNetConfig.

import type { Sequential } from "../nn/containers";
import { BatchNorm2d, type Conv2d, Dropout, Linear } from "../nn/layers";
import { Module, type ModuleConfig } from "../nn/module";
import { SqueezeExcite } from "../nn/se";
import { adaptiveAvgPool2d, avgPool2d, reluInPlace } from "../ops/nn";
import { check, isInt } from "../ops/util";
import type { Tensor } from "../tensor/tensor";
import { heInit } from "./building_blocks";
import { type OptionSpecs, perStage } from "./options";
import { type BlockKind, blockClass, checkKernel, convBN, makeStage } from "./resnet_blocks";

export interface ResNetConfig {
  numClasses: number;
  inChannels: number;
  block: BlockKind;
  /** Pre-activation units (He et al. 2016): the stem is a bare convolution. */
  preact: boolean;
  /** Blocks per stage. */
  layers: number[];
  /** Planes (3x3 width) per stage; a stage outputs planes * expansion channels. */
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
}

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
  ] as const)
    check(list.length === n, NAME, `${key} must have one entry per stage (${n}, as layers has)`, key, list);
  check(
    c.widths.every((w) => isInt(w) && w >= 1),
    NAME,
    "widths must be positive integers",
    "widths",
    c.widths,
  );
  for (const k of c.kernelSizes) checkKernel(NAME, "kernelSizes", k);
  for (const k of c.skipKernelSizes) checkKernel(NAME, "skipKernelSizes", k);
  check(isInt(c.stemWidth) && c.stemWidth >= 1, NAME, "stemWidth must be a positive integer", "stemWidth", c.stemWidth);
  check(
    isInt(c.numClasses) && c.numClasses >= 1,
    NAME,
    "numClasses must be a positive integer",
    "numClasses",
    c.numClasses,
  );
  check(
    isInt(c.inChannels) && c.inChannels >= 1,
    NAME,
    "inChannels must be a positive integer",
    "inChannels",
    c.inChannels,
  );
  check(
    isInt(c.seReduction) && c.seReduction >= 0,
    NAME,
    "seReduction must be an integer >= 0",
    "seReduction",
    c.seReduction,
  );
  check(
    isInt(c.seStemReduction) && c.seStemReduction >= 0,
    NAME,
    "seStemReduction must be an integer >= 0",
    "seStemReduction",
    c.seStemReduction,
  );
  check(
    isInt(c.poolSize) && c.poolSize >= 0,
    NAME,
    "poolSize must be an integer >= 0 (0 = global pooling)",
    "poolSize",
    c.poolSize,
  );
  check(isInt(c.imageSize) && c.imageSize >= 1, NAME, "imageSize must be a positive integer", "imageSize", c.imageSize);
  check(
    typeof c.dropout === "number" && c.dropout >= 0 && c.dropout < 1,
    NAME,
    "dropout must be in [0, 1)",
    "dropout",
    c.dropout,
  );
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

export class ResNet extends Module {
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d | undefined;
  readonly se: SqueezeExcite | undefined;
  readonly stages: Sequential[] = [];
  readonly finalBn: BatchNorm2d | undefined;
  readonly dropout: Dropout | undefined;
  readonly fc: Linear;
  private readonly config: ResNetConfig;

  constructor(config: ResNetConfig) {
    super();
    checkResNetConfig(config);
    this.config = { ...config, layers: [...config.layers], widths: [...config.widths] };
    const c = this.config;
    this.conv1 = this.registerModule("conv1", convBN(c.inChannels, c.stemWidth, 3));
    if (!c.preact) this.bn1 = this.registerModule("bn1", new BatchNorm2d({ numFeatures: c.stemWidth }));
    if (c.seStemReduction > 0)
      this.se = this.registerModule("se", new SqueezeExcite({ channels: c.stemWidth, reduction: c.seStemReduction }));
    const block = blockClass(c.block, c.preact);
    let channels = c.stemWidth;
    for (let i = 0; i < c.layers.length; i++) {
      const { stage, outChannels } = makeStage(
        block,
        channels,
        c.widths[i] as number,
        c.layers[i] as number,
        i === 0 ? 1 : 2,
        {
          kernelSize: c.kernelSizes[i],
          skipKernelSize: c.skipKernelSizes[i],
          seReduction: c.seReduction,
          dropout: c.dropout,
        },
      );
      this.stages.push(this.registerModule(`layer${i + 1}`, stage));
      channels = outChannels;
    }
    if (c.finalNorm) this.finalBn = this.registerModule("final_bn", new BatchNorm2d({ numFeatures: channels }));
    if (c.dropout > 0) this.dropout = this.registerModule("dropout", new Dropout(c.dropout));
    const pooled = c.poolSize === 0 ? 1 : Math.floor((finalMapSize(c) - c.poolSize) / c.poolSize) + 1;
    this.fc = this.registerModule(
      "fc",
      new Linear({ inFeatures: channels * pooled * pooled, outFeatures: c.numClasses }),
    );
    // He et al. 2015's initialization as torchvision does it; the fc keeps PyTorch's default
    heInit(this, { zeroLinearBias: false });
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
    if (this.bn1 !== undefined) out = reluInPlace(this.bn1.forward(out));
    if (this.se !== undefined) out = this.se.forward(out);
    for (const stage of this.stages) out = stage.forward(out);
    if (this.finalBn !== undefined) out = reluInPlace(this.finalBn.forward(out));
    out = c.poolSize === 0 ? adaptiveAvgPool2d(out, 1) : avgPool2d(out, c.poolSize);
    out = out.flatten(1);
    if (this.dropout !== undefined) out = this.dropout.forward(out);
    return this.fc.forward(out);
  }

  toConfig(): ModuleConfig {
    return { ...this.config };
  }
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
