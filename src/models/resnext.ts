// ResNeXt for CIFAR (Xie et al., "Aggregated Residual Transformations for Deep Neural
// Networks", CVPR 2017, arXiv:1611.05431, Section 5.3): a 3x3 conv to 64 channels, three stages
// of bottleneck blocks with outputs 256, 512, 1024 (strides 1, 2, 2), global average pool, linear.
// ResNeXt-29 has 3 blocks per stage (depth = 9 per block-row + 2). A block is 1x1 conv → grouped
// 3x3 conv (cardinality C groups, C·d channels, d doubling each stage with the stage's width)
// → 1x1 conv, each followed by BN, ReLU after all but the last; the shortcut is a 1x1 conv + BN
// projection where the shape changes (option B). The `se` option adds a squeeze-and-excitation
// gate on the residual branch before the addition (Hu et al., SENet). An argument set of the one
// ResNet (resnet_network.ts).
import { ArgumentError } from "../tensor/errors";
import { resnetCost } from "./cost";
import { defineOptions, type ResolvedOptions, readOptions } from "./options";
import { type ModelOptions, registerModel } from "./registry";
import { ResNeXtBlock } from "./resnet_blocks";
import { ResNet, type ResNetConfig, type ResNetLayout, TORCHVISION_LAYOUT, threeStageConfig } from "./resnet_network";

const FN = "ResNeXt";

export const RESNEXT_OPTIONS = defineOptions(FN, {
  depth: { type: "int", min: 1, default: 29, help: "9N+2 for N blocks per stage (ResNeXt-29: N = 3)" },
  cardinality: { type: "int", min: 1, default: 8, help: "C: groups of the 3x3 conv" },
  bottleneckWidth: { type: "int", min: 1, default: 64, help: "d: channels per group in the first stage" },
  baseChannels: { type: "int", min: 1, default: 64, help: "stem width; stages output 4x, 8x, 16x this" },
  se: { type: "boolean", default: false, help: "squeeze-and-excitation before each residual add" },
  seReduction: { type: "int", min: 1, default: 16, help: "reduction r of the SE gates" },
});

/** The resolved options: numClasses, inChannels, depth, cardinality (C), bottleneckWidth (d), ... */
export type ResNeXtOptions = ResolvedOptions<(typeof RESNEXT_OPTIONS)["specs"]>;

/** The authors' key order (SE before the shortcut) and init (zero fc bias). */
const RESNEXT_LAYOUT: ResNetLayout = { ...TORCHVISION_LAYOUT, unit: () => ResNeXtBlock, zeroLinearBias: true };

/** ResNeXt-29 as a ResNet argument set: bottlenecks with a grouped 3x3 of C·d·2^s channels. */
export function resnextConfig(o: ResNeXtOptions): ResNetConfig {
  if ((o.depth - 2) % 9 !== 0 || o.depth < 11)
    throw new ArgumentError(
      `${FN}: depth must be 9N+2 with N >= 1 blocks per stage (11, 20, 29, 38, ...; the paper's CIFAR model is 29). Received: depth=${o.depth}`,
    );
  const n = (o.depth - 2) / 9;
  const stages = [0, 1, 2];
  return threeStageConfig(n, {
    numClasses: o.numClasses,
    inChannels: o.inChannels,
    block: "bottleneck",
    preact: false,
    widths: stages.map((s) => o.baseChannels * 2 ** s),
    bottleneckWidths: stages.map((s) => o.cardinality * o.bottleneckWidth * 2 ** s),
    cardinality: o.cardinality,
    stemWidth: o.baseChannels,
    seReduction: o.se ? o.seReduction : 0,
  });
}

export class ResNeXt extends ResNet {
  constructor(readonly options: ResNeXtOptions) {
    super(resnextConfig(options), RESNEXT_LAYOUT, options);
  }
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
    create: (options: ModelOptions) => new ResNeXt(readOptions(RESNEXT_OPTIONS, options)),
    cost: (options, [, height, width]) =>
      resnetCost(resnextConfig(readOptions(RESNEXT_OPTIONS, options)), height, width),
    large,
  });
