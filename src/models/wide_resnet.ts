// Wide Residual Networks, WRN-n-k (Zagoruyko & Komodakis, BMVC 2016, arXiv:1605.07146).
// A 3x3 conv to 16 channels, three groups of N = (n-4)/6 pre-activation blocks at widths
// 16k, 32k, 64k (strides 1, 2, 2), then BN-ReLU, global average pool and a linear classifier.
// Every block is BN-ReLU-conv repeated, with dropout between the convolutions; the shortcut is
// a 1x1 conv when the shape changes. Convs have no bias (the authors' code removes them).
// Block types B(3,3) (basic), B(3,1,3), B(1,3,1), B(1,3), B(3,1), B(3,1,1) list the kernel
// sizes of the block's convs, all at the group's width, the stride on the first conv, as in
// the paper's Table 1 (and the authors' Torch code, where depth is 6N+4 for every block type).

import { ModuleList } from "../nn/containers";
import { BatchNorm2d, Conv2d, Dropout, Linear } from "../nn/layers";
import { Module, type ModuleConfig } from "../nn/module";
import { adaptiveAvgPool2d, relu } from "../ops/nn";
import { ArgumentError } from "../tensor/errors";
import type { Tensor } from "../tensor/tensor";
import { heInit } from "./building_blocks";
import { defineOptions, readOptions } from "./options";
import { type ModelOptions, registerModel } from "./registry";

const FN = "WideResNet";

/** Kernel sizes of the convs in one block, by the paper's block-type name. */
export const WRN_BLOCK_TYPES = {
  "3,3": [3, 3],
  "3,1,3": [3, 1, 3],
  "1,3,1": [1, 3, 1],
  "1,3": [1, 3],
  "3,1": [3, 1],
  "3,1,1": [3, 1, 1],
} as const;
export type WrnBlockType = keyof typeof WRN_BLOCK_TYPES;

export interface WideResNetOptions {
  numClasses: number;
  inChannels: number;
  /** n in WRN-n-k: 6N+4 (N blocks per group). */
  depth: number;
  /** k in WRN-n-k: group widths 16k, 32k, 64k. */
  widenFactor: number;
  /** Dropout between the convs of each block (the paper uses 0.3 on CIFAR; default 0). */
  dropout: number;
  blockType: WrnBlockType;
}

/** One pre-activation block: (BN-ReLU-[dropout]-conv) per kernel, plus the shortcut. */
class WideBlock extends Module {
  private readonly norms: BatchNorm2d[] = [];
  private readonly convs: Conv2d[] = [];
  readonly dropout: Dropout;
  readonly shortcut: Conv2d | undefined;

  constructor(inPlanes: number, outPlanes: number, stride: number, kernels: readonly number[], dropout: number) {
    super();
    kernels.forEach((k, i) => {
      const cin = i === 0 ? inPlanes : outPlanes;
      this.norms.push(this.registerModule(`bn${i + 1}`, new BatchNorm2d({ numFeatures: cin })));
      const conv = new Conv2d({
        inChannels: cin,
        outChannels: outPlanes,
        kernelSize: k,
        stride: i === 0 ? stride : 1,
        padding: (k - 1) / 2,
        bias: false,
      });
      this.convs.push(this.registerModule(`conv${i + 1}`, conv));
    });
    this.dropout = this.registerModule("dropout", new Dropout(dropout));
    if (stride !== 1 || inPlanes !== outPlanes)
      this.shortcut = this.registerModule(
        "shortcut",
        new Conv2d({ inChannels: inPlanes, outChannels: outPlanes, kernelSize: 1, stride, bias: false }),
      );
  }

  forward(x: Tensor): Tensor {
    // When the shape changes, the projection sees the activated input (as in the authors' code).
    const pre = relu((this.norms[0] as BatchNorm2d).forward(x));
    const identity = this.shortcut ? this.shortcut.forward(pre) : x;
    let y = (this.convs[0] as Conv2d).forward(pre);
    for (let i = 1; i < this.convs.length; i++) {
      const act = relu((this.norms[i] as BatchNorm2d).forward(y));
      y = (this.convs[i] as Conv2d).forward(this.dropout.forward(act));
    }
    return y.add(identity);
  }

  toConfig(): ModuleConfig {
    return { kernels: this.convs.map((c) => c.options.kernelSize), shortcut: this.shortcut !== undefined };
  }
}

export class WideResNet extends Module {
  readonly conv1: Conv2d;
  readonly layer1: ModuleList<WideBlock>;
  readonly layer2: ModuleList<WideBlock>;
  readonly layer3: ModuleList<WideBlock>;
  readonly bn: BatchNorm2d;
  readonly fc: Linear;

  constructor(readonly options: WideResNetOptions) {
    super();
    const { depth, widenFactor: k, blockType } = options;
    if ((depth - 4) % 6 !== 0 || depth < 10)
      throw new ArgumentError(
        `${FN}: depth must be 6N+4 with N >= 1 blocks per group (10, 16, 22, 28, 40, ...), for every block type including B(${blockType}). Received: depth=${depth}`,
      );
    const blocksPerGroup = (depth - 4) / 6;
    const kernels = WRN_BLOCK_TYPES[blockType];
    const widths = [16 * k, 32 * k, 64 * k];
    this.conv1 = this.registerModule(
      "conv1",
      new Conv2d({ inChannels: options.inChannels, outChannels: 16, kernelSize: 3, padding: 1, bias: false }),
    );
    let cin = 16;
    const groups = widths.map((width, g) => {
      const blocks = new ModuleList<WideBlock>();
      for (let b = 0; b < blocksPerGroup; b++) {
        const stride = b === 0 && g > 0 ? 2 : 1;
        blocks.append(new WideBlock(cin, width, stride, kernels, options.dropout));
        cin = width;
      }
      return blocks;
    });
    this.layer1 = this.registerModule("layer1", groups[0] as ModuleList<WideBlock>);
    this.layer2 = this.registerModule("layer2", groups[1] as ModuleList<WideBlock>);
    this.layer3 = this.registerModule("layer3", groups[2] as ModuleList<WideBlock>);
    this.bn = this.registerModule("bn", new BatchNorm2d({ numFeatures: cin }));
    this.fc = this.registerModule("fc", new Linear({ inFeatures: cin, outFeatures: options.numClasses }));
    heInit(this);
  }

  forward(x: Tensor): Tensor {
    let y = this.conv1.forward(x);
    for (const block of this.layer1) y = block.forward(y);
    for (const block of this.layer2) y = block.forward(y);
    for (const block of this.layer3) y = block.forward(y);
    y = relu(this.bn.forward(y));
    return this.fc.forward(adaptiveAvgPool2d(y, 1).flatten(1));
  }

  toConfig(): ModuleConfig {
    return { ...this.options };
  }
}

export const WIDE_RESNET_OPTIONS = defineOptions(FN, {
  depth: { type: "int", min: 1, default: 28, help: "n in WRN-n-k: 6N+4 for N blocks per group" },
  widenFactor: { type: "int", min: 1, default: 10, help: "k in WRN-n-k: group widths 16k, 32k, 64k" },
  dropout: {
    type: "number",
    min: 0,
    max: 1,
    maxExclusive: true,
    default: 0,
    help: "dropout between the convs of each block (0.3 in the paper on CIFAR)",
  },
  blockType: {
    type: "choice",
    choices: Object.keys(WRN_BLOCK_TYPES) as WrnBlockType[],
    default: "3,3",
    help: "kernel sizes of a block's convs, the paper's B(3,3), B(3,1,3), ...",
  },
});

export function createWideResNet(options: ModelOptions): WideResNet {
  const o = readOptions(WIDE_RESNET_OPTIONS, options);
  return new WideResNet({ ...o, blockType: o.blockType as WrnBlockType });
}

const SOURCE = "Zagoruyko & Komodakis, Wide Residual Networks, BMVC 2016 (arXiv:1605.07146)";
// Published sizes (paper, Table 4 / Figure 4): WRN-40-4 8.9M, WRN-16-8 11.0M, WRN-28-10 36.5M.
const VARIANTS: [string, number, number, boolean, string][] = [
  ["wrn16_2", 16, 2, false, "WRN-16-2 (0.69M params)"],
  ["wrn16_4", 16, 4, false, "WRN-16-4 (2.7M params)"],
  ["wrn16_8", 16, 8, false, "WRN-16-8 (11.0M params in the paper)"],
  ["wrn16_10", 16, 10, true, "WRN-16-10 (17.1M params)"],
  ["wrn28_2", 28, 2, false, "WRN-28-2 (1.5M params; the semi-supervised learning baseline)"],
  ["wrn28_10", 28, 10, true, "WRN-28-10 (36.5M params in the paper)"],
  ["wrn40_2", 40, 2, false, "WRN-40-2 (2.2M params)"],
  ["wrn40_4", 40, 4, false, "WRN-40-4 (8.9M params in the paper)"],
  ["wrn40_8", 40, 8, true, "WRN-40-8 (35.7M params)"],
];
for (const [name, depth, widenFactor, large, what] of VARIANTS)
  registerModel({
    name,
    family: "wide_resnet",
    description: `${what}: pre-activation B(3,3) blocks, 1x1 projection shortcuts, options dropout and blockType`,
    source: SOURCE,
    defaults: { depth, widenFactor },
    options: WIDE_RESNET_OPTIONS,
    create: createWideResNet,
    large,
  });
