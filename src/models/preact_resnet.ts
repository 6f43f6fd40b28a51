// Deep CIFAR ResNets with bottleneck units, and the pre-activation family.
//   resnet164: He et al. 2015 ("Deep Residual Learning", Sec. 4.2) CIFAR bottleneck net as
//     evaluated in He et al. 2016: 3 stages of n = 18 bottleneck units (1x1, 3x3, 1x1, expansion 4)
//     on 16/32/64 planes, post-activation, projection shortcuts where the shape changes.
//     depth = 9n + 2 → 1,704,154 parameters (10 classes).
//   preact_resnet164 / preact_resnet1001: He et al. 2016 ("Identity Mappings in Deep Residual
//     Networks") full pre-activation units, same layout, n = 18 / 111; BN-ReLU after the last
//     stage; 1,703,258 and 10,327,706 parameters (the paper's Table 3 lists 1.7M and 10.2M).
//   resnet29: the same pre-activation bottleneck net with n = 3 (depth 29), the small ResNet
//     that CIFAR-100 studies set against ResNet-164.
//   preact_resnet18: kuangliu/pytorch-cifar's PreActResNet18: pre-activation basic blocks on
//     64/128/256/512 planes, [2, 2, 2, 2], no BN-ReLU before the pool; 11,171,146 parameters.
// Every variant takes se and seReduction (SE on every block, Hu et al. 2018): the se_* names use r = 16.

import { ArgumentError } from "../tensor/errors";
import { resnetCost } from "./cost";
import { defineOptions, readOptions } from "./options";
import { type ModelEntry, type ModelOptions, registerModel } from "./registry";
import { doubling, RESNET_TAIL_OPTIONS, ResNet, type ResNetConfig, resnetConfig } from "./resnet_network";

const FAMILY = "preact_resnet";

/**
 * Blocks per stage of a 3-stage CIFAR ResNet of the given depth: 6n + 2 with basic blocks
 * (2 convs each), 9n + 2 with bottlenecks (3 convs each); the 2 are the stem and the classifier.
 */
export function cifarBlocksPerStage(depth: number, block: "basic" | "bottleneck"): number {
  const perBlock = block === "basic" ? 6 : 9;
  const n = (depth - 2) / perBlock;
  if (!Number.isInteger(n) || n < 1)
    throw new ArgumentError(
      `${FAMILY}: depth must be ${perBlock}n + 2 for ${block} blocks (e.g. ${block === "basic" ? "20, 56, 110" : "29, 164, 1001"}). Received: depth=${depth}`,
    );
  return n;
}

export const PREACT_RESNET_OPTIONS = defineOptions(
  FAMILY,
  {
    block: { type: "choice", choices: ["basic", "bottleneck"], default: "bottleneck", help: "residual unit" },
    preact: { type: "boolean", default: true, help: "pre-activation units (BN-ReLU-conv; bare-conv stem)" },
    depth: {
      type: "int",
      min: 2,
      default: 164,
      help: "9n+2 with bottlenecks, 6n+2 with basic blocks (3 stages of n); unused when layers is given",
    },
    layers: { type: "intList", min: 1, help: "blocks per stage (default: 3 stages from depth)" },
    baseWidth: { type: "int", min: 1, default: 16, help: "planes of the first stage, doubling per stage" },
    widths: { type: "intList", min: 1, help: "planes per stage (default: doubling from baseWidth)" },
    stemWidth: { type: "int", min: 1, help: "stem channels (default: the first stage's planes)" },
    finalNorm: { type: "boolean", help: "BN-ReLU after the last stage (default: preact)" },
    ...RESNET_TAIL_OPTIONS,
  },
  { legacySeReductionSwitch: true },
);

/** The family's factory: layers from `layers` or `depth`, widths from `widths` or `baseWidth`. */
export function createPreActResNet(options: ModelOptions): ResNet {
  return new ResNet(preactResNetConfig(options));
}

/** The family's options as a ResNetConfig (the network and its analytic cost both read it). */
export function preactResNetConfig(options: ModelOptions): ResNetConfig {
  const o = readOptions(PREACT_RESNET_OPTIONS, options);
  const block = o.block;
  const layers = o.layers ?? new Array<number>(3).fill(cifarBlocksPerStage(o.depth, block));
  const widths = o.widths ?? doubling(o.baseWidth, layers.length);
  return resnetConfig(o, {
    block,
    preact: o.preact,
    layers,
    widths,
    stemWidth: o.stemWidth ?? widths[0] ?? o.baseWidth,
    finalNorm: o.finalNorm ?? o.preact,
  });
}

const HE_2015 = "He et al. 2015, Deep Residual Learning for Image Recognition (CIFAR bottleneck, Sec. 4.2)";
const HE_2016 = "He et al. 2016, Identity Mappings in Deep Residual Networks";
const SENET = "Hu et al. 2018, Squeeze-and-Excitation Networks";
const KUANGLIU = "kuangliu/pytorch-cifar PreActResNet18 (after He et al. 2016)";

const VARIANTS: Omit<ModelEntry, "family" | "create" | "options">[] = [
  {
    name: "resnet164",
    description: "ResNet-164, post-activation bottleneck, 18 blocks/stage, 16/32/64 planes x4",
    source: HE_2015,
    defaults: { depth: 164, preact: false },
  },
  {
    name: "preact_resnet164",
    description: "Pre-activation ResNet-164, bottleneck, 18 blocks/stage",
    source: HE_2016,
    defaults: { depth: 164 },
  },
  {
    name: "preact_resnet1001",
    description: "Pre-activation ResNet-1001, bottleneck, 111 blocks/stage (10.3M params)",
    source: HE_2016,
    defaults: { depth: 1001 },
    large: true,
  },
  {
    name: "resnet29",
    description: "Pre-activation ResNet-29, bottleneck, 3 blocks/stage, 16/32/64 planes x4",
    source: HE_2016,
    defaults: { depth: 29 },
  },
  {
    name: "preact_resnet18",
    description: "PreActResNet18: pre-activation basic blocks, [2,2,2,2], 64-512 planes",
    source: KUANGLIU,
    defaults: { block: "basic", layers: [2, 2, 2, 2], baseWidth: 64, finalNorm: false },
  },
  {
    name: "se_resnet164",
    description: "ResNet-164 with squeeze-and-excitation (r=16) in every block",
    source: `${HE_2015}; ${SENET}`,
    defaults: { depth: 164, preact: false, se: true, seReduction: 16 },
  },
  {
    name: "se_preact_resnet164",
    description: "Pre-activation ResNet-164 with squeeze-and-excitation (r=16) in every block",
    source: `${HE_2016}; ${SENET}`,
    defaults: { depth: 164, se: true, seReduction: 16 },
  },
  {
    name: "se_resnet29",
    description: "Pre-activation ResNet-29 with squeeze-and-excitation (r=16) in every block",
    source: `${HE_2016}; ${SENET}`,
    defaults: { depth: 29, se: true, seReduction: 16 },
  },
  {
    name: "se_preact_resnet18",
    description: "PreActResNet18 with squeeze-and-excitation (r=16) in every block",
    source: `${KUANGLIU}; ${SENET}`,
    defaults: { block: "basic", layers: [2, 2, 2, 2], baseWidth: 64, finalNorm: false, se: true, seReduction: 16 },
  },
];

for (const v of VARIANTS)
  registerModel({
    ...v,
    family: FAMILY,
    options: PREACT_RESNET_OPTIONS,
    create: createPreActResNet,
    cost: (options, [, height, width]) => resnetCost(preactResNetConfig(options), height, width),
  });
