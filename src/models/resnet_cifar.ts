// The CIFAR ResNet of He et al. 2015, "Deep Residual Learning for Image Recognition", section
// 4.2: a 3x3 stem, three stages of n basic blocks at 16/32/64 channels (feature maps 32/16/8),
// global average pooling and one fully connected layer: 6n+2 weighted layers. State-dict keys
// follow torchvision's ResNet (conv1, bn1, layer1.0.conv1, layer2.0.downsample.0, fc), so the
// weights load into the same network written in PyTorch. Built by the one ResNet of
// resnet_network.ts with the key layout of the PyTorch peer (bench/peers/resnet_cifar.py).

import { ArgumentError } from "../tensor/errors";
import { type ModelCost, resnetCost } from "./cost";
import { defineOptions, readOptions } from "./options";
import { type ModelOptions, registerModel } from "./registry";
import { CifarBasicBlock, type Shortcut } from "./resnet_blocks";
import { ResNet, type ResNetConfig, type ResNetLayout, TORCHVISION_LAYOUT, threeStageConfig } from "./resnet_network";

export type CifarShortcut = Shortcut;

export interface ResNetCifarOptions {
  /** 6n+2: 20, 32, 44, 56, 110, 1202 in the paper. */
  depth: number;
  numClasses?: number;
  inChannels?: number;
  /** Default "B" (a 1x1 projection + BN; "A": zero-padded identity, resnet_blocks.ts). */
  shortcut?: CifarShortcut;
  /** Squeeze-and-excitation before each residual add (Hu et al. 2018). Default false. */
  se?: boolean;
  /** The SE gate's reduction r (default 16). */
  seReduction?: number;
  /** Channel multiplier on 16/32/64 (1 = the paper). */
  width?: number;
}

/** Keys of bench/peers/resnet_cifar.py: `relu` children, SE registered before the shortcut. */
const CIFAR_LAYOUT: ResNetLayout = { ...TORCHVISION_LAYOUT, unit: () => CifarBasicBlock, reluModule: true };

/** ResNet-(6n+2): basic post-activation units on 16/32/64 channels (times width). */
export class ResNetCifar extends ResNet {
  constructor(opts: ResNetCifarOptions) {
    const o = resolveCifarOptions(opts);
    super(resnetCifarConfig(o), CIFAR_LAYOUT, o);
  }
}

/** The options with their defaults, checked (what ResNetCifar records as its config). */
function resolveCifarOptions(opts: ResNetCifarOptions): Required<ResNetCifarOptions> {
  const o = {
    numClasses: 10,
    inChannels: 3,
    shortcut: "B" as CifarShortcut,
    se: false,
    seReduction: 16,
    width: 1,
    ...opts,
  };
  checkOptions(o);
  return o;
}

/** ResNet-(6n+2) as a ResNet argument set (the network and its analytic cost both read it). */
function resnetCifarConfig(o: Required<ResNetCifarOptions>): ResNetConfig {
  const widths = [16, 32, 64].map((c) => Math.max(1, Math.round(c * o.width)));
  const blocks = (o.depth - 2) / 6;
  return threeStageConfig(blocks, {
    numClasses: o.numClasses,
    inChannels: o.inChannels,
    block: "basic",
    preact: false,
    widths,
    stemWidth: widths[0] as number,
    shortcut: o.shortcut,
    seReduction: o.se ? o.seReduction : 0,
  });
}

function checkOptions(o: Required<ResNetCifarOptions>): void {
  const depth = o.depth;
  if (!Number.isInteger(depth) || depth < 8 || (depth - 2) % 6 !== 0)
    throw new ArgumentError(
      `ResNetCifar: depth must be 6n+2 with n >= 1 (20, 32, 44, 56, 110, 1202). Received: depth=${String(depth)}`,
    );
  if (o.shortcut !== "A" && o.shortcut !== "B")
    throw new ArgumentError(`ResNetCifar: shortcut must be "A" or "B". Received: shortcut=${String(o.shortcut)}`);
  if (typeof o.se !== "boolean")
    throw new ArgumentError(`ResNetCifar: se must be true or false. Received: se=${String(o.se)}`);
  if (!Number.isInteger(o.seReduction) || o.seReduction < 1)
    throw new ArgumentError(
      `ResNetCifar: seReduction must be an integer >= 1. Received: seReduction=${String(o.seReduction)}`,
    );
  if (typeof o.width !== "number" || !(o.width > 0) || !Number.isFinite(o.width))
    throw new ArgumentError(`ResNetCifar: width must be a positive number. Received: width=${String(o.width)}`);
  for (const key of ["numClasses", "inChannels"] as const)
    if (!Number.isInteger(o[key]) || o[key] < 1)
      throw new ArgumentError(`ResNetCifar: ${key} must be an integer >= 1. Received: ${key}=${String(o[key])}`);
}

export const RESNET_CIFAR_OPTIONS = defineOptions("ResNetCifar", {
  depth: {
    type: "int",
    min: 8,
    default: 20,
    help: "6n+2 layers: n basic blocks per stage (20, 32, 44, 56, 110, 1202)",
  },
  shortcut: {
    type: "choice",
    choices: ["A", "B"],
    default: "B",
    help: "A: zero-padded identity (no parameters); B: 1x1 conv + BN where the shape changes",
  },
  se: { type: "boolean", default: false, help: "squeeze-and-excitation before each residual add" },
  seReduction: { type: "int", min: 1, default: 16, help: "reduction r of the SE gates" },
  width: { type: "number", min: 0, minExclusive: true, default: 1, help: "channel multiplier on 16/32/64" },
});

/** The registry's factory: options arrive merged (name defaults under the caller's). */
export function resnetCifar(options: ModelOptions): ResNetCifar {
  return new ResNetCifar(readOptions(RESNET_CIFAR_OPTIONS, options));
}

/** The registry's analytic cost (cost.ts): the same config, no model built. */
export function resnetCifarCost(options: ModelOptions, [, height, width]: [number, number, number]): ModelCost {
  return resnetCost(resnetCifarConfig(resolveCifarOptions(readOptions(RESNET_CIFAR_OPTIONS, options))), height, width);
}

const SOURCE = "He et al. 2015, Deep Residual Learning for Image Recognition, sec. 4.2 (arXiv:1512.03385)";
for (const depth of [20, 32, 44, 56, 110, 1202])
  registerModel({
    name: `resnet${depth}`,
    family: "resnet_cifar",
    description: `CIFAR ResNet-${depth}: ${(depth - 2) / 6} basic blocks per stage at 16/32/64 channels`,
    source: SOURCE,
    defaults: { depth },
    options: RESNET_CIFAR_OPTIONS,
    create: resnetCifar,
    cost: resnetCifarCost,
    large: depth > 110,
  });
for (const depth of [20, 56, 110])
  registerModel({
    name: `se_resnet${depth}`,
    family: "resnet_cifar",
    description: `CIFAR ResNet-${depth} with squeeze-and-excitation (r=16) before each residual add`,
    source: `${SOURCE}; Hu et al. 2018, Squeeze-and-Excitation Networks (arXiv:1709.01507)`,
    defaults: { depth, se: true, seReduction: 16 },
    options: RESNET_CIFAR_OPTIONS,
    create: resnetCifar,
    cost: resnetCifarCost,
  });
