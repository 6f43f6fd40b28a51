// The ImageNet ResNets of He et al. 2015 (Table 1: ResNet-18/34/50) adapted to 32x32 inputs, as
// kuangliu/pytorch-cifar does: the 7x7 stride-2 stem and its max-pool become one 3x3 stride-1
// convolution, so the four stages run at 32, 16, 8 and 4 pixels. Post-activation blocks,
// projection shortcuts (1x1 conv + BN) where the shape changes, global average pool, fc.
//   resnet18: [2,2,2,2] basic, 64/128/256/512 → 11,173,962 parameters (10 classes)
//   resnet34: [3,4,6,3] basic → 21,282,122;  resnet50: [3,4,6,3] bottleneck x4 → 23,520,842
//   mini_resnet34: ResNet-34 at a quarter of the width (16/32/64/128), same 3x3 stride-1 stem.
import { resnetCost } from "./cost";
import { defineOptions, readOptions } from "./options";
import { type ModelEntry, type ModelOptions, registerModel } from "./registry";
import { doubling, RESNET_TAIL_OPTIONS, ResNet, type ResNetConfig, resnetConfig } from "./resnet_network";

const FAMILY = "resnet_imagenet";

export const RESNET_IMAGENET_OPTIONS = defineOptions(
  FAMILY,
  {
    block: { type: "choice", choices: ["basic", "bottleneck"], default: "basic", help: "residual unit" },
    preact: { type: "boolean", default: false, help: "pre-activation units (BN-ReLU-conv; bare-conv stem)" },
    layers: { type: "intList", min: 1, default: [2, 2, 2, 2], help: "blocks per stage" },
    baseWidth: { type: "int", min: 1, default: 64, help: "planes of the first stage, doubling per stage" },
    widths: { type: "intList", min: 1, help: "planes per stage (default: doubling from baseWidth)" },
    stemWidth: { type: "int", min: 1, help: "stem channels (default: the first stage's planes)" },
    finalNorm: { type: "boolean", default: false, help: "BN-ReLU after the last stage" },
    ...RESNET_TAIL_OPTIONS,
  },
  { legacySeReductionSwitch: true },
);

/** The family's factory: `layers` and `block` pick the depth, `baseWidth` (or `widths`) the width. */
export function createImageNetResNet(options: ModelOptions): ResNet {
  return new ResNet(imageNetResNetConfig(options));
}

/** The family's options as a ResNetConfig (the network and its analytic cost both read it). */
export function imageNetResNetConfig(options: ModelOptions): ResNetConfig {
  const o = readOptions(RESNET_IMAGENET_OPTIONS, options);
  const widths = o.widths ?? doubling(o.baseWidth, o.layers.length);
  return resnetConfig(o, {
    block: o.block,
    preact: o.preact,
    layers: o.layers,
    widths,
    stemWidth: o.stemWidth ?? widths[0] ?? o.baseWidth,
    finalNorm: o.finalNorm,
  });
}

const HE =
  "He et al. 2015, Deep Residual Learning for Image Recognition (Table 1), 32x32 stem as kuangliu/pytorch-cifar";

const VARIANTS: Omit<ModelEntry, "family" | "create" | "options">[] = [
  {
    name: "resnet18",
    description: "ResNet-18 for 32x32 inputs (3x3 stride-1 stem, no max-pool), 64-512 planes",
    source: HE,
    defaults: { layers: [2, 2, 2, 2] },
  },
  {
    name: "resnet34",
    description: "ResNet-34 for 32x32 inputs (3x3 stride-1 stem, no max-pool), 64-512 planes",
    source: HE,
    defaults: { layers: [3, 4, 6, 3] },
  },
  {
    name: "resnet50",
    description: "ResNet-50 for 32x32 inputs: bottleneck x4, [3,4,6,3], 64-512 planes",
    source: HE,
    defaults: { layers: [3, 4, 6, 3], block: "bottleneck" },
  },
  {
    name: "mini_resnet34",
    description: "ResNet-34 at a quarter of the width (16/32/64/128), 3x3 stride-1 stem",
    source: HE,
    defaults: { layers: [3, 4, 6, 3], baseWidth: 16 },
  },
  {
    name: "se_resnet18",
    description: "ResNet-18 for 32x32 inputs with squeeze-and-excitation (r=16) in every block",
    source: `${HE}; Hu et al. 2018, Squeeze-and-Excitation Networks`,
    defaults: { layers: [2, 2, 2, 2], se: true, seReduction: 16 },
  },
];

for (const v of VARIANTS)
  registerModel({
    ...v,
    family: FAMILY,
    options: RESNET_IMAGENET_OPTIONS,
    create: createImageNetResNet,
    cost: (options, [, height, width]) => resnetCost(imageNetResNetConfig(options), height, width),
  });
