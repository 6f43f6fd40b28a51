// DenseNet and DenseNet-BC for CIFAR (Huang et al., "Densely Connected Convolutional Networks",
// CVPR 2017, arXiv:1608.06993, Section 3 "Implementation Details"). A 3x3 conv (16 channels, or
// 2k for BC), three dense blocks of equal size joined by transitions (BN-ReLU-1x1 conv-2x2 average
// pool), then BN-ReLU, global average pool and a linear classifier. A dense layer is BN-ReLU-3x3
// conv producing k (the growth rate) new channels, concatenated to its input; with the bottleneck
// (the "B") it is BN-ReLU-1x1 conv to 4k first. Transitions keep floor(θ·m) of m channels (the "C",
// θ = 0.5). Depth counts the convs plus the stem, transitions and classifier: each block has
// (depth-4)/3 layers, or (depth-4)/6 with bottlenecks. Convs have no bias.
import { ModuleList } from "../nn/containers";
import { BatchNorm2d, Conv2d, Dropout, Linear } from "../nn/layers";
import { Module, type ModuleConfig } from "../nn/module";
import { adaptiveAvgPool2d, avgPool2d, relu } from "../ops/nn";
import { cat } from "../ops/shape";
import { ArgumentError } from "../tensor/errors";
import type { Tensor } from "../tensor/tensor";
import { heInit } from "./building_blocks";
import { type DenseNetPlan, denseNetCost, type ModelCost } from "./cost";
import { defineOptions, readOptions } from "./options";
import { type ModelOptions, registerModel } from "./registry";

const FN = "DenseNet";

export interface DenseNetOptions {
  numClasses: number;
  inChannels: number;
  depth: number;
  /** k: channels each dense layer adds. */
  growthRate: number;
  /** BN-ReLU-1x1 conv to 4k before each 3x3 conv (DenseNet-B). */
  bottleneck: boolean;
  /** θ in (0, 1]: the fraction of channels a transition keeps (DenseNet-C uses 0.5). */
  compression: number;
  /** Dropout after each conv (the paper uses 0.2 without data augmentation; default 0). */
  dropout: number;
}

const conv = (cin: number, cout: number, k: number) =>
  new Conv2d({ inChannels: cin, outChannels: cout, kernelSize: k, padding: (k - 1) / 2, bias: false });

class DenseLayer extends Module {
  readonly norm1: BatchNorm2d;
  readonly conv1: Conv2d;
  readonly norm2: BatchNorm2d | undefined;
  readonly conv2: Conv2d | undefined;
  readonly dropout: Dropout;

  constructor(cin: number, growth: number, bottleneck: boolean, dropout: number) {
    super();
    const mid = bottleneck ? 4 * growth : growth;
    this.norm1 = this.registerModule("norm1", new BatchNorm2d({ numFeatures: cin }));
    this.conv1 = this.registerModule("conv1", conv(cin, mid, bottleneck ? 1 : 3));
    if (bottleneck) {
      this.norm2 = this.registerModule("norm2", new BatchNorm2d({ numFeatures: mid }));
      this.conv2 = this.registerModule("conv2", conv(mid, growth, 3));
    }
    this.dropout = this.registerModule("dropout", new Dropout(dropout));
  }

  /** Returns the input with the k new channels appended. */
  forward(x: Tensor): Tensor {
    let y = this.dropout.forward(this.conv1.forward(relu(this.norm1.forward(x))));
    if (this.norm2 && this.conv2) y = this.dropout.forward(this.conv2.forward(relu(this.norm2.forward(y))));
    return cat([x, y], 1);
  }

  toConfig(): ModuleConfig {
    return { inChannels: this.norm1.options.numFeatures, bottleneck: this.conv2 !== undefined };
  }
}

class Transition extends Module {
  readonly norm: BatchNorm2d;
  readonly conv: Conv2d;
  readonly dropout: Dropout;

  constructor(cin: number, cout: number, dropout: number) {
    super();
    this.norm = this.registerModule("norm", new BatchNorm2d({ numFeatures: cin }));
    this.conv = this.registerModule("conv", conv(cin, cout, 1));
    this.dropout = this.registerModule("dropout", new Dropout(dropout));
  }

  forward(x: Tensor): Tensor {
    const y = this.dropout.forward(this.conv.forward(relu(this.norm.forward(x))));
    return avgPool2d(y, 2, { stride: 2 });
  }

  toConfig(): ModuleConfig {
    return { inChannels: this.conv.options.inChannels, outChannels: this.conv.options.outChannels };
  }
}

type TransitionPlan = DenseNetPlan["transitions"][number];

/**
 * Channels through the three dense blocks and two transitions (the network and its analytic cost
 * both read it); checks the depth.
 */
export function denseNetPlan(o: DenseNetOptions): DenseNetPlan {
  const convsPerLayer = o.bottleneck ? 2 : 1;
  const step = 3 * convsPerLayer;
  if ((o.depth - 4) % step !== 0 || o.depth < 4 + step)
    throw new ArgumentError(
      `${FN}: depth must be ${step}N+4 with N >= 1 layers per dense block when bottleneck=${o.bottleneck} ` +
        `(3 blocks of N layers with ${convsPerLayer} conv${convsPerLayer > 1 ? "s" : ""} each, plus stem, 2 transitions and classifier). Received: depth=${o.depth}`,
    );
  const layersPerBlock = (o.depth - 4) / step;
  const growth = o.growthRate;
  const stemChannels = o.bottleneck ? 2 * growth : 16;
  const compress = (m: number) => Math.max(1, Math.floor(o.compression * m));
  const blockInChannels: number[] = [];
  const transitions: TransitionPlan[] = [];
  let c = stemChannels;
  for (let b = 0; b < 3; b++) {
    blockInChannels.push(c);
    c += layersPerBlock * growth;
    if (b < 2) {
      transitions.push({ inChannels: c, outChannels: compress(c) });
      c = compress(c);
    }
  }
  return {
    inChannels: o.inChannels,
    numClasses: o.numClasses,
    stemChannels,
    growthRate: growth,
    bottleneck: o.bottleneck,
    layersPerBlock,
    blockInChannels,
    transitions,
    finalChannels: c,
  };
}

export class DenseNet extends Module {
  readonly conv0: Conv2d;
  readonly block1: ModuleList<DenseLayer>;
  readonly trans1: Transition;
  readonly block2: ModuleList<DenseLayer>;
  readonly trans2: Transition;
  readonly block3: ModuleList<DenseLayer>;
  readonly norm: BatchNorm2d;
  readonly fc: Linear;

  constructor(readonly options: DenseNetOptions) {
    super();
    const o = options;
    const plan = denseNetPlan(o);
    const denseBlock = (cin: number) => {
      const block = new ModuleList<DenseLayer>();
      for (let i = 0; i < plan.layersPerBlock; i++)
        block.append(new DenseLayer(cin + i * plan.growthRate, plan.growthRate, o.bottleneck, o.dropout));
      return block;
    };
    const [in1, in2, in3] = plan.blockInChannels as [number, number, number];
    const [t1, t2] = plan.transitions as [TransitionPlan, TransitionPlan];
    this.conv0 = this.registerModule("conv0", conv(o.inChannels, plan.stemChannels, 3));
    this.block1 = this.registerModule("block1", denseBlock(in1));
    this.trans1 = this.registerModule("trans1", new Transition(t1.inChannels, t1.outChannels, o.dropout));
    this.block2 = this.registerModule("block2", denseBlock(in2));
    this.trans2 = this.registerModule("trans2", new Transition(t2.inChannels, t2.outChannels, o.dropout));
    this.block3 = this.registerModule("block3", denseBlock(in3));
    this.norm = this.registerModule("norm", new BatchNorm2d({ numFeatures: plan.finalChannels }));
    this.fc = this.registerModule("fc", new Linear({ inFeatures: plan.finalChannels, outFeatures: o.numClasses }));
    heInit(this);
  }

  forward(x: Tensor): Tensor {
    let y = this.conv0.forward(x);
    for (const layer of this.block1) y = layer.forward(y);
    y = this.trans1.forward(y);
    for (const layer of this.block2) y = layer.forward(y);
    y = this.trans2.forward(y);
    for (const layer of this.block3) y = layer.forward(y);
    y = relu(this.norm.forward(y));
    return this.fc.forward(adaptiveAvgPool2d(y, 1).flatten(1));
  }

  toConfig(): ModuleConfig {
    return { ...this.options };
  }
}

export const DENSENET_OPTIONS = defineOptions(FN, {
  depth: { type: "int", min: 1, default: 100, help: "3N+4 (6N+4 with bottlenecks) for N layers per block" },
  growthRate: { type: "int", min: 1, default: 12, help: "k: channels each dense layer adds" },
  bottleneck: { type: "boolean", default: true, help: "1x1 conv to 4k before each 3x3 (the B of DenseNet-BC)" },
  compression: {
    type: "number",
    min: 0,
    max: 1,
    minExclusive: true,
    default: 0.5,
    help: "θ: transitions keep floor(θ·m) of m channels (the C of DenseNet-BC)",
  },
  dropout: { type: "number", min: 0, max: 1, maxExclusive: true, default: 0, help: "dropout after each conv" },
});

export function createDenseNet(options: ModelOptions): DenseNet {
  return new DenseNet(readOptions(DENSENET_OPTIONS, options));
}

/** The registry's analytic cost (cost.ts): the same plan, no model built. */
export function denseNetCostOf(options: ModelOptions, [, height, width]: [number, number, number]): ModelCost {
  return denseNetCost(denseNetPlan(readOptions(DENSENET_OPTIONS, options)), height, width);
}

const SOURCE = "Huang et al., Densely Connected Convolutional Networks, CVPR 2017 (arXiv:1608.06993)";
// [name, depth, k, BC, large, description]; sizes as in the paper's Table 2.
const VARIANTS: [string, number, number, boolean, boolean, string][] = [
  ["densenet40_12", 40, 12, false, false, "DenseNet (L=40, k=12), 1.0M params"],
  ["densenet100_12", 100, 12, false, false, "DenseNet (L=100, k=12), 7.0M params"],
  ["densenet_bc_100_12", 100, 12, true, false, "DenseNet-BC (L=100, k=12), 0.8M params"],
  ["densenet_bc_250_24", 250, 24, true, true, "DenseNet-BC (L=250, k=24), 15.3M params"],
  ["densenet_bc_190_40", 190, 40, true, true, "DenseNet-BC (L=190, k=40), 25.6M params"],
];
for (const [name, depth, growthRate, bc, large, what] of VARIANTS)
  registerModel({
    name,
    family: "densenet",
    description: `${what}: ${bc ? "bottleneck layers, transitions with compression 0.5" : "3x3 layers, transitions without compression"}`,
    source: SOURCE,
    defaults: { depth, growthRate, bottleneck: bc, compression: bc ? 0.5 : 1 },
    options: DENSENET_OPTIONS,
    create: createDenseNet,
    cost: denseNetCostOf,
    large,
  });
