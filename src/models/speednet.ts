// SpeedNet: a plain conv-pool network for fast training on small images, after airbench (Keller
// Jordan, "94% on CIFAR-10 in 3.29 seconds on a single GPU", 2024, arXiv:2404.00498): no residual
// connections; a 3x3 conv-BN-activation stem, then blocks that each widen with a 3x3 conv, halve
// the map with a 2x2 max-pool, and go on with BN-activation and (convsPerBlock - 1) more
// 3x3 conv-BN-activation layers at the new width; a global max-pool and one linear classifier.
// Pooling right after a block's first conv keeps the widest convolutions off the full-resolution
// map, the reason this shape trains several times faster per image than a CIFAR ResNet of the same
// accuracy on 28x28 Fashion-MNIST. Weights keep PyTorch's default initialization (as airbench's
// convolutions do); convolutions have no bias.
//
// The default, stem 16 and blocks 32/64/128 with two convs each, has 292,666 parameters at one
// input channel and ten classes (ResNet-20 on the same input: 272,186) and 15.96M multiply-adds
// per 28x28 image (ResNet-20: 31.33M).
import { ModuleList, Sequential } from "../nn/containers";
import { BatchNorm2d, Conv2d, GELU, Linear, MaxPool2d, ReLU } from "../nn/layers";
import { Module, type ModuleConfig } from "../nn/module";
import { maxPool2d } from "../ops/nn";
import { ArgumentError } from "../tensor/errors";
import type { Tensor } from "../tensor/tensor";
import { type ModelCost, type SpeedNetPlan, speedNetCost } from "./cost";
import { defineOptions, readOptions } from "./options";
import { type ModelOptions, registerModel } from "./registry";

const FAMILY = "speednet";

export const SPEEDNET_OPTIONS = defineOptions(FAMILY, {
  stemWidth: { type: "int", min: 1, default: 16, help: "channels of the 3x3 stem conv (full resolution)" },
  widths: {
    type: "intList",
    min: 1,
    default: [32, 64, 128],
    help: "channels of each block; every block halves the map with a 2x2 max-pool",
  },
  convsPerBlock: {
    type: "int",
    min: 1,
    max: 4,
    default: 2,
    help: "3x3 convs per block (the first widens and is pooled, the rest keep the width)",
  },
  activation: { type: "choice", choices: ["relu", "gelu"], default: "relu", help: "relu or gelu after every BN" },
});

/** The options after validation: the structure the network and its cost both read. */
export function speedNetPlan(options: ModelOptions): SpeedNetPlan {
  const o = readOptions(SPEEDNET_OPTIONS, options);
  if (o.widths.length === 0)
    throw new ArgumentError(`${FAMILY}: widths must list at least one block, e.g. [32, 64, 128]. Received: []`);
  return {
    inChannels: o.inChannels,
    numClasses: o.numClasses,
    stemWidth: o.stemWidth,
    widths: o.widths,
    convsPerBlock: o.convsPerBlock,
    activation: o.activation,
  };
}

/** Throws where a block's 2x2 pool would get a map smaller than 2x2 (the input is too small). */
function checkMapSize(plan: SpeedNetPlan, height: number, width: number): void {
  let h = height;
  let w = width;
  for (let i = 0; i < plan.widths.length; i++) {
    if (h < 2 || w < 2)
      throw new ArgumentError(
        `${FAMILY}: block ${i + 1} of ${plan.widths.length} halves a ${h}x${w} map; a ${height}x${width} input allows ` +
          `${i} block(s). Use fewer widths, or larger images.`,
      );
    h = Math.floor(h / 2);
    w = Math.floor(w / 2);
  }
}

function conv3x3(cin: number, cout: number): Conv2d {
  return new Conv2d({ inChannels: cin, outChannels: cout, kernelSize: 3, padding: 1, bias: false });
}

export class SpeedNet extends Module {
  readonly stem: Sequential;
  readonly blocks: ModuleList<Sequential>;
  readonly fc: Linear;
  /** The validated structure (what the PyTorch peer bench/peers/speednet.py builds from). */
  readonly plan: SpeedNetPlan;

  constructor(readonly options: ModelOptions) {
    super();
    const plan = speedNetPlan(options);
    this.plan = plan;
    const act = (): Module => (plan.activation === "gelu" ? new GELU() : new ReLU({ inplace: true }));
    this.stem = this.registerModule(
      "stem",
      new Sequential([
        conv3x3(plan.inChannels, plan.stemWidth),
        new BatchNorm2d({ numFeatures: plan.stemWidth }),
        act(),
      ]),
    );
    this.blocks = this.registerModule("blocks", new ModuleList<Sequential>());
    let cin = plan.stemWidth;
    for (const width of plan.widths) {
      const layers: Module[] = [
        conv3x3(cin, width),
        new MaxPool2d({ kernelSize: 2 }),
        new BatchNorm2d({ numFeatures: width }),
        act(),
      ];
      for (let k = 1; k < plan.convsPerBlock; k++)
        layers.push(conv3x3(width, width), new BatchNorm2d({ numFeatures: width }), act());
      this.blocks.append(new Sequential(layers));
      cin = width;
    }
    this.fc = this.registerModule("fc", new Linear({ inFeatures: cin, outFeatures: plan.numClasses }));
  }

  forward(x: Tensor): Tensor {
    checkMapSize(this.plan, x.shape[2] as number, x.shape[3] as number);
    let y = this.stem.forward(x);
    for (const block of this.blocks) y = block.forward(y);
    // global max-pool: one window over the whole final map
    const [h, w] = [y.shape[2] as number, y.shape[3] as number];
    return this.fc.forward(maxPool2d(y, [h, w]).flatten(1));
  }

  toConfig(): ModuleConfig {
    return { ...this.options };
  }
}

registerModel({
  name: "speednet",
  family: FAMILY,
  description: "SpeedNet: conv-pool-BN-ReLU blocks 32/64/128 after a 16-channel stem, global max-pool (airbench-style)",
  source: "after Jordan 2024, 94% on CIFAR-10 in 3.29 Seconds on a Single GPU (arXiv:2404.00498), airbench",
  defaults: {},
  options: SPEEDNET_OPTIONS,
  create: (options) => new SpeedNet(options),
  cost: (options, [, height, width]): ModelCost => {
    const plan = speedNetPlan(options);
    checkMapSize(plan, height, width);
    return speedNetCost(plan, height, width);
  },
});
