// Wide Residual Networks, WRN-n-k (Zagoruyko & Komodakis, BMVC 2016, arXiv:1605.07146).
// A 3x3 conv to 16 channels, three groups of N = (n-4)/6 pre-activation blocks at widths
// 16k, 32k, 64k (strides 1, 2, 2), then BN-ReLU, global average pool and a linear classifier.
// Every block is BN-ReLU-conv repeated, with dropout between the convolutions; the shortcut is
// a 1x1 conv when the shape changes. Convs have no bias (the authors' code removes them).
// Block types B(3,3) (basic), B(3,1,3), B(1,3,1), B(1,3), B(3,1), B(3,1,1) list the kernel
// sizes of the block's convs, all at the group's width, the stride on the first conv, as in
// the paper's Table 1 (and the authors' Torch code, where depth is 6N+4 for every block type).
// An argument set of the one ResNet (resnet_network.ts).

import { ArgumentError } from "../tensor/errors";
import { resnetCost } from "./cost";
import { defineOptions, type ResolvedOptions, readOptions } from "./options";
import { type ModelOptions, registerModel } from "./registry";
import { WideBlock } from "./resnet_blocks";
import {
  RESNET_TAIL_OPTIONS,
  ResNet,
  type ResNetConfig,
  type ResNetLayout,
  TORCHVISION_LAYOUT,
  threeStageConfig,
} from "./resnet_network";

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

export const WIDE_RESNET_OPTIONS = defineOptions(FN, {
  depth: { type: "int", min: 1, default: 28, help: "n in WRN-n-k: 6N+4 for N blocks per group" },
  widenFactor: { type: "int", min: 1, default: 10, help: "k in WRN-n-k: group widths 16k, 32k, 64k" },
  dropout: {
    ...RESNET_TAIL_OPTIONS.dropout,
    help: "dropout between the convs of each block (0.3 in the paper on CIFAR)",
  },
  blockType: {
    type: "choice",
    choices: Object.keys(WRN_BLOCK_TYPES) as WrnBlockType[],
    default: "3,3",
    help: "kernel sizes of a block's convs, the paper's B(3,3), B(3,1,3), ...",
  },
});

/** The resolved options: numClasses, inChannels, depth (n), widenFactor (k), dropout, blockType. */
export type WideResNetOptions = ResolvedOptions<(typeof WIDE_RESNET_OPTIONS)["specs"]>;

/** The authors' keys (a bare `shortcut` conv, the final BN `bn`) and init (zero fc bias). */
const WRN_LAYOUT: ResNetLayout = {
  ...TORCHVISION_LAYOUT,
  unit: () => WideBlock,
  finalNormKey: "bn",
  zeroLinearBias: true,
};

/** WRN-n-k as a ResNet argument set: pre-activation units of the block type's kernels. */
export function wideResNetConfig(o: WideResNetOptions): ResNetConfig {
  if ((o.depth - 4) % 6 !== 0 || o.depth < 10)
    throw new ArgumentError(
      `${FN}: depth must be 6N+4 with N >= 1 blocks per group (10, 16, 22, 28, 40, ...), for every block type including B(${o.blockType}). Received: depth=${o.depth}`,
    );
  const n = (o.depth - 4) / 6;
  return threeStageConfig(n, {
    numClasses: o.numClasses,
    inChannels: o.inChannels,
    block: "basic",
    preact: true,
    widths: [16, 32, 64].map((w) => w * o.widenFactor),
    blockKernels: [...WRN_BLOCK_TYPES[o.blockType]],
    blockDropout: o.dropout,
    stemWidth: 16,
    finalNorm: true,
  });
}

export class WideResNet extends ResNet {
  constructor(readonly options: WideResNetOptions) {
    super(wideResNetConfig(options), WRN_LAYOUT, options);
  }
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
    create: (options: ModelOptions) => new WideResNet(readOptions(WIDE_RESNET_OPTIONS, options)),
    cost: (options, [, height, width]) =>
      resnetCost(wideResNetConfig(readOptions(WIDE_RESNET_OPTIONS, options)), height, width),
    large,
  });
