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
// The paper's best model (96.04% on CIFAR-10): N=3, B=[4,4,3], C_1=64, F=3, K=1, P=8, SE after
// the stem, no dropout → 4,697,742 parameters. The stem is conv3x3(C_1)-BN-ReLU, as in the paper.

import { ArgumentError, describe } from "../tensor/errors";
import { intOption, type ModelOptions, registerModel } from "./registry";
import { boolOption, checkOptionKeys, doubling, perStage, ResNet, resnetConfig } from "./resnet_network";

const FAMILY = "efficient_resnet";
const ALIASES = ["blocks", "channels", "convKernels", "skipKernels", "se"] as const;

function blocksOption(o: ModelOptions): number[] {
  const b = o.blocks ?? o.layers;
  if (!Array.isArray(b) || b.length === 0 || !b.every((n) => Number.isInteger(n) && (n as number) >= 1))
    throw new ArgumentError(
      `${FAMILY}: blocks (B) must be a non-empty list of block counts >= 1, one per residual layer. Received: blocks=${describe(b)}`,
    );
  return b as number[];
}

/** The family's factory: the paper's symbols as options; anything ResNetConfig takes also works. */
export function createEfficientResNet(o: ModelOptions): ResNet {
  checkOptionKeys(FAMILY, o, ALIASES);
  const blocks = blocksOption(o);
  const n = blocks.length;
  const channels = intOption(o, "channels", 1, 64);
  const se = boolOption(FAMILY, o, "se", true);
  const seReduction = intOption(o, "seReduction", 1, 16);
  const withKernels: ModelOptions = {
    ...o,
    kernelSizes: perStage(FAMILY, "convKernels", o.convKernels ?? o.kernelSizes ?? 3, n),
    skipKernelSizes: perStage(FAMILY, "skipKernels", o.skipKernels ?? o.skipKernelSizes ?? 1, n),
    // the paper's SE sits after the stem only; seReduction sizes that gate
    seReduction: 0,
    seStemReduction: se ? seReduction : 0,
    poolSize: o.poolSize ?? 8,
  };
  const config = resnetConfig(FAMILY, withKernels, {
    block: "basic",
    preact: false,
    layers: blocks,
    widths: Array.isArray(o.widths) ? (o.widths as number[]) : doubling(channels, n),
    stemWidth: channels,
    finalNorm: false,
  });
  return new ResNet(config);
}

const PAPER = "Thakur, Chauhan, Gupta 2023, Efficient ResNets: Residual Network Design (arXiv 2306.12100)";

registerModel({
  name: "efficient_resnet",
  family: FAMILY,
  description: "Efficient ResNet: N=3, B=[4,4,3], C=64/128/256, F=3, K=1, P=8, SE after the stem (4.70M)",
  source: PAPER,
  defaults: { blocks: [4, 4, 3], channels: 64, convKernels: 3, skipKernels: 1, poolSize: 8, se: true, imageSize: 32 },
  create: createEfficientResNet,
});
