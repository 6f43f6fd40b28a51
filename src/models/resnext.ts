// ResNeXt for CIFAR (Xie et al., "Aggregated Residual Transformations for Deep Neural
// Networks", CVPR 2017, arXiv:1611.05431, Section 5.3): a 3x3 conv to 64 channels, three stages
// of bottleneck blocks with outputs 256, 512, 1024 (strides 1, 2, 2), global average pool, linear.
// ResNeXt-29 has 3 blocks per stage (depth = 9 per block-row + 2). A block is 1x1 conv → grouped
// 3x3 conv (cardinality C groups, C·d channels, d doubling each stage with the stage's width)
// → 1x1 conv, each followed by BN, ReLU after all but the last; the shortcut is a 1x1 conv + BN
// projection where the shape changes (option B). The `se` option adds a squeeze-and-excitation
// gate on the residual branch before the addition (Hu et al., SENet).
import { ModuleList, Sequential } from "../nn/containers";
import { BatchNorm2d, Conv2d, Linear } from "../nn/layers";
import { Module, type ModuleConfig } from "../nn/module";
import { SqueezeExcite } from "../nn/se";
import { adaptiveAvgPool2d, relu } from "../ops/nn";
import { ArgumentError } from "../tensor/errors";
import type { Tensor } from "../tensor/tensor";
import { heInit } from "./building_blocks";
import { defineOptions, readOptions } from "./options";
import { type ModelOptions, registerModel } from "./registry";

const FN = "ResNeXt";

export interface ResNeXtOptions {
  numClasses: number;
  inChannels: number;
  /** 9N+2 for N blocks per stage (ResNeXt-29: N = 3). */
  depth: number;
  /** C: groups of the 3x3 conv. */
  cardinality: number;
  /** d: channels per group in the first stage (doubles each stage). */
  bottleneckWidth: number;
  /** Stem width; the stages output 4x, 8x, 16x this (64 → 256, 512, 1024 as in the paper). */
  baseChannels: number;
  se: boolean;
  seReduction: number;
}

class ResNeXtBlock extends Module {
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly conv2: Conv2d;
  readonly bn2: BatchNorm2d;
  readonly conv3: Conv2d;
  readonly bn3: BatchNorm2d;
  readonly se: SqueezeExcite | undefined;
  readonly downsample: Sequential | undefined;

  constructor(cin: number, groupWidth: number, cout: number, stride: number, cardinality: number, seReduction = 0) {
    super();
    const conv = (i: number, o: number, k: number, s = 1, groups = 1) =>
      new Conv2d({
        inChannels: i,
        outChannels: o,
        kernelSize: k,
        stride: s,
        padding: (k - 1) / 2,
        groups,
        bias: false,
      });
    this.conv1 = this.registerModule("conv1", conv(cin, groupWidth, 1));
    this.bn1 = this.registerModule("bn1", new BatchNorm2d({ numFeatures: groupWidth }));
    this.conv2 = this.registerModule("conv2", conv(groupWidth, groupWidth, 3, stride, cardinality));
    this.bn2 = this.registerModule("bn2", new BatchNorm2d({ numFeatures: groupWidth }));
    this.conv3 = this.registerModule("conv3", conv(groupWidth, cout, 1));
    this.bn3 = this.registerModule("bn3", new BatchNorm2d({ numFeatures: cout }));
    if (seReduction > 0)
      this.se = this.registerModule("se", new SqueezeExcite({ channels: cout, reduction: seReduction }));
    if (stride !== 1 || cin !== cout)
      this.downsample = this.registerModule(
        "downsample",
        new Sequential([conv(cin, cout, 1, stride), new BatchNorm2d({ numFeatures: cout })]),
      );
  }

  forward(x: Tensor): Tensor {
    let y = relu(this.bn1.forward(this.conv1.forward(x)));
    y = relu(this.bn2.forward(this.conv2.forward(y)));
    y = this.bn3.forward(this.conv3.forward(y));
    if (this.se) y = this.se.forward(y);
    const identity = this.downsample ? this.downsample.forward(x) : x;
    return relu(y.add(identity));
  }

  toConfig(): ModuleConfig {
    return { groups: this.conv2.options.groups, stride: this.conv2.options.stride, se: this.se !== undefined };
  }
}

export class ResNeXt extends Module {
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly layer1: ModuleList<ResNeXtBlock>;
  readonly layer2: ModuleList<ResNeXtBlock>;
  readonly layer3: ModuleList<ResNeXtBlock>;
  readonly fc: Linear;

  constructor(readonly options: ResNeXtOptions) {
    super();
    const o = options;
    if ((o.depth - 2) % 9 !== 0 || o.depth < 11)
      throw new ArgumentError(
        `${FN}: depth must be 9N+2 with N >= 1 blocks per stage (11, 20, 29, 38, ...; the paper's CIFAR model is 29). Received: depth=${o.depth}`,
      );
    const blocksPerStage = (o.depth - 2) / 9;
    const base = o.baseChannels;
    this.conv1 = this.registerModule(
      "conv1",
      new Conv2d({ inChannels: o.inChannels, outChannels: base, kernelSize: 3, padding: 1, bias: false }),
    );
    this.bn1 = this.registerModule("bn1", new BatchNorm2d({ numFeatures: base }));
    let cin = base;
    const stages = [0, 1, 2].map((s) => {
      const groupWidth = o.cardinality * o.bottleneckWidth * 2 ** s;
      const cout = base * 4 * 2 ** s;
      const blocks = new ModuleList<ResNeXtBlock>();
      for (let b = 0; b < blocksPerStage; b++) {
        const stride = b === 0 && s > 0 ? 2 : 1;
        blocks.append(new ResNeXtBlock(cin, groupWidth, cout, stride, o.cardinality, o.se ? o.seReduction : 0));
        cin = cout;
      }
      return blocks;
    });
    this.layer1 = this.registerModule("layer1", stages[0] as ModuleList<ResNeXtBlock>);
    this.layer2 = this.registerModule("layer2", stages[1] as ModuleList<ResNeXtBlock>);
    this.layer3 = this.registerModule("layer3", stages[2] as ModuleList<ResNeXtBlock>);
    this.fc = this.registerModule("fc", new Linear({ inFeatures: cin, outFeatures: o.numClasses }));
    heInit(this);
  }

  forward(x: Tensor): Tensor {
    let y = relu(this.bn1.forward(this.conv1.forward(x)));
    for (const block of this.layer1) y = block.forward(y);
    for (const block of this.layer2) y = block.forward(y);
    for (const block of this.layer3) y = block.forward(y);
    return this.fc.forward(adaptiveAvgPool2d(y, 1).flatten(1));
  }

  toConfig(): ModuleConfig {
    return { ...this.options };
  }
}

export const RESNEXT_OPTIONS = defineOptions(FN, {
  depth: { type: "int", min: 1, default: 29, help: "9N+2 for N blocks per stage (ResNeXt-29: N = 3)" },
  cardinality: { type: "int", min: 1, default: 8, help: "C: groups of the 3x3 conv" },
  bottleneckWidth: { type: "int", min: 1, default: 64, help: "d: channels per group in the first stage" },
  baseChannels: { type: "int", min: 1, default: 64, help: "stem width; stages output 4x, 8x, 16x this" },
  se: { type: "boolean", default: false, help: "squeeze-and-excitation before each residual add" },
  seReduction: { type: "int", min: 1, default: 16, help: "reduction r of the SE gates" },
});

export function createResNeXt(options: ModelOptions): ResNeXt {
  return new ResNeXt(readOptions(RESNEXT_OPTIONS, options));
}

const SOURCE = "Xie et al., Aggregated Residual Transformations for Deep Neural Networks, CVPR 2017 (arXiv:1611.05431)";
// [name, C, d, baseChannels, large, description]; published sizes are the paper's Table 7.
const VARIANTS: [string, number, number, number, boolean, string][] = [
  ["resnext29_2x64d", 2, 64, 64, false, "ResNeXt-29 2x64d (9.1M params)"],
  ["resnext29_4x64d", 4, 64, 64, false, "ResNeXt-29 4x64d (17.6M params)"],
  ["resnext29_8x64d", 8, 64, 64, true, "ResNeXt-29 8x64d (34.4M params in the paper)"],
  ["resnext29_16x64d", 16, 64, 64, true, "ResNeXt-29 16x64d (68.1M params in the paper)"],
  ["resnext29_32x4d", 32, 4, 64, false, "ResNeXt-29 32x4d (4.8M params)"],
  [
    "resnext29_8x8d_w32",
    8,
    8,
    32,
    false,
    "ResNeXt-29 8x8d on a 32-channel stem (stages 128/256/512; a small budget variant)",
  ],
];
for (const [name, cardinality, bottleneckWidth, baseChannels, large, what] of VARIANTS)
  registerModel({
    name,
    family: "resnext",
    description: `${what}: grouped-conv bottlenecks, 1x1+BN projection shortcuts, option se`,
    source: SOURCE,
    defaults: { depth: 29, cardinality, bottleneckWidth, baseChannels },
    options: RESNEXT_OPTIONS,
    create: createResNeXt,
    large,
  });
