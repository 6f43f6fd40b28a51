// The design space of "Efficient ResNets: Residual Network Design" (Thakur, Chauhan, Gupta 2023,
// arXiv 2306.12100): a ResNet under a 5M-parameter budget described by
//   N    residual layers (stages)             → blocks.length
//   B_i  basic blocks in layer i              → blocks: [B_1, ..., B_N]
//   C_1  channels of layer 1, doubling        → channels (C_i = C_1 · 2^(i-1))
//   F_i  conv kernel in layer i, padding F//2 → convKernels (a number or one per layer)
//   K_i  skip (shortcut) kernel in layer i    → skipKernels, used where the shape changes
//   P    average-pool kernel before the fc    → poolSize (the fc takes C_N · (H_N / P)^2 inputs)
//   dropout after every block and before fc  → dropout
//   one SE block after the stem              → se (reduction seReduction, default 16)
//   SE in every block (SENet placement)      → seBlocks (not in the paper; a search option)
// The paper's best model (96.04% on CIFAR-10): N=3, B=[4,4,3], C_1=64, F=3, K=1, P=8, SE after
// the stem, no dropout → 4,697,742 parameters. The stem is conv3x3(C_1)-BN-ReLU, as in the paper.

import { resnetCost } from "./cost";
import { defineOptions, readOptions } from "./options";
import { type ModelOptions, registerModel } from "./registry";
import {
  doubling,
  RESNET_TAIL_OPTIONS,
  ResNet,
  type ResNetConfig,
  type ResNetTail,
  resnetConfig,
} from "./resnet_network";

const FAMILY = "efficient_resnet";
const { poolSize, imageSize, dropout, seReduction } = RESNET_TAIL_OPTIONS;

export const EFFICIENT_RESNET_OPTIONS = defineOptions(FAMILY, {
  blocks: { type: "intList", min: 1, default: [4, 4, 3], help: "B: basic blocks per residual layer (N = its length)" },
  channels: { type: "int", min: 1, default: 64, help: "C_1: channels of layer 1, doubling per layer" },
  widths: { type: "intList", min: 1, help: "channels per layer (default: doubling from channels)" },
  convKernels: { type: "intOrIntList", min: 1, default: 3, help: "F: conv kernel, one or one per layer (odd)" },
  skipKernels: { type: "intOrIntList", min: 1, default: 1, help: "K: skip kernel, one or one per layer (odd)" },
  poolSize: { ...poolSize, default: 8, help: "P: average-pool kernel before the fc; 0 = global" },
  imageSize,
  dropout,
  se: { type: "boolean", default: true, help: "one squeeze-and-excitation gate after the stem (the paper's)" },
  seBlocks: {
    type: "boolean",
    default: false,
    help: "a squeeze-and-excitation gate in every block, before the residual add (SENet's placement)",
  },
  seReduction,
  preact: { type: "boolean", default: false, help: "pre-activation blocks (BN-ReLU-conv; bare-conv stem)" },
  finalNorm: { type: "boolean", default: false, help: "BN-ReLU after the last layer" },
});

/** The family's factory: the paper's symbols as options. */
export function createEfficientResNet(options: ModelOptions): ResNet {
  return new ResNet(efficientResNetConfig(options));
}

/** The paper's symbols as a ResNetConfig (the network and its analytic cost both read it). */
export function efficientResNetConfig(options: ModelOptions): ResNetConfig {
  const o = readOptions(EFFICIENT_RESNET_OPTIONS, options);
  // listed field by field: a spread followed by more fields costs microseconds on Node 20, and
  // budgeted search reads this config thousands of times a second
  const tail: ResNetTail = {
    numClasses: o.numClasses,
    inChannels: o.inChannels,
    kernelSizes: o.convKernels,
    skipKernelSizes: o.skipKernels,
    // the paper's SE sits after the stem (se); seBlocks adds SENet's gate to every block; seReduction sizes both
    se: o.seBlocks,
    seReduction: o.seReduction,
    seStemReduction: o.se ? o.seReduction : 0,
    poolSize: o.poolSize,
    imageSize: o.imageSize,
    dropout: o.dropout,
  };
  return resnetConfig(tail, {
    block: "basic",
    preact: o.preact,
    layers: o.blocks,
    widths: o.widths ?? doubling(o.channels, o.blocks.length),
    stemWidth: o.channels,
    finalNorm: o.finalNorm,
  });
}

const PAPER = "Thakur, Chauhan, Gupta 2023, Efficient ResNets: Residual Network Design (arXiv 2306.12100)";

registerModel({
  name: "efficient_resnet",
  family: FAMILY,
  description: "Efficient ResNet: N=3, B=[4,4,3], C=64/128/256, F=3, K=1, P=8, SE after the stem (4.70M)",
  source: PAPER,
  defaults: { blocks: [4, 4, 3], channels: 64, convKernels: 3, skipKernels: 1, poolSize: 8, se: true, imageSize: 32 },
  options: EFFICIENT_RESNET_OPTIONS,
  create: createEfficientResNet,
  cost: (options, [, height, width]) => resnetCost(efficientResNetConfig(options), height, width),
});
