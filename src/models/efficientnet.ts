// EfficientNet B0-B3 (Tan & Le, "EfficientNet: Rethinking Model Scaling for Convolutional Neural
// Networks", ICML 2019, arXiv:1905.11946). B0 (Table 1): a 3x3 stem to 32 channels, seven
// stages of MBConv blocks (inverted residuals with squeeze-and-excitation of ratio 0.25 of the
// block's input channels, swish everywhere, linear projection), a 1x1 head conv to 1280, global
// average pool, dropout and a linear classifier. Stochastic depth ("drop connect", 0.2) drops a
// block's residual branch with probability growing linearly from 0 at the first block to 0.2·(B-1)/B
// at the last; dropout before the classifier is 0.2 for B0/B1 and 0.3 for B2/B3.
//
// Compound scaling (Section 3.3): widths ×w rounded by round_filters (a multiple of 8, never 10%
// below), repeats ×d rounded up, resolution r. The reference settings (w, d, r, dropout):
// B0 1.0/1.0/224/0.2, B1 1.0/1.1/240/0.2, B2 1.1/1.2/260/0.3, B3 1.2/1.4/300/0.3. Resolution
// changes no parameter: it is recorded (option `resolution`) as the size the scaled model was
// designed for, and any input of at least 32x32 is accepted. With `strides: "cifar"` (default)
// the stem and the first stride-2 stage (the 24-channel one) run at stride 1, as for MobileNet v2
// on CIFAR, so 32x32 ends at 4x4; `strides: "imagenet"` is the paper's layout.
import { Sequential } from "../nn/containers";
import { SiLU } from "../nn/layers";
import { Module, type ModuleConfig } from "../nn/module";
import type { Tensor } from "../tensor/tensor";
import {
  adaptStrides,
  ConvBnAct,
  convHead,
  heInit,
  InvertedResidual,
  makeDivisible,
  poolAndClassify,
  STRIDE_LAYOUTS,
  type StrideLayout,
} from "./building_blocks";
import {
  type InvertedResidualNetPlan,
  type InvertedResidualPlan,
  invertedResidualNetCost,
  type ModelCost,
} from "./cost";
import { defineOptions, readOptions } from "./options";
import { type ModelOptions, registerModel } from "./registry";

const FN = "EfficientNet";

export interface EfficientNetOptions {
  numClasses: number;
  inChannels: number;
  /** w: channel multiplier. */
  widthCoefficient: number;
  /** d: repeat multiplier. */
  depthCoefficient: number;
  /** r: the input size this scaling was designed for (informational; no parameter depends on it). */
  resolution: number;
  /** Dropout before the classifier. */
  dropout: number;
  /** Stochastic depth rate of the last block (the paper's drop connect rate, 0.2). */
  dropPath: number;
  strides: StrideLayout;
}

// [expansion, kernel, ImageNet stride, repeats, output channels] of B0's seven stages (Table 1).
const B0_STAGES: [number, number, number, number, number][] = [
  [1, 3, 1, 1, 16],
  [6, 3, 2, 2, 24],
  [6, 5, 2, 2, 40],
  [6, 3, 2, 3, 80],
  [6, 5, 1, 3, 112],
  [6, 5, 2, 4, 192],
  [6, 3, 1, 1, 320],
];

/** An MBConv block: an inverted residual with SE and its stochastic depth rate. */
type MBConvBlock = InvertedResidualPlan & { seChannels: number; dropPath: number };

/** B0's table after compound scaling and the stride rule (the network and its analytic cost both read it). */
export function efficientNetPlan(o: EfficientNetOptions): InvertedResidualNetPlan<MBConvBlock> {
  const filters = (c: number) => makeDivisible(c * o.widthCoefficient);
  const repeats = (n: number) => Math.ceil(n * o.depthCoefficient);
  const strides = adaptStrides(
    B0_STAGES.map(([, , s]) => s),
    o.strides,
  );
  let c = filters(32);
  const stem = { outChannels: c, stride: o.strides === "cifar" ? 1 : 2 };
  const totalBlocks = B0_STAGES.reduce((sum, [, , , n]) => sum + repeats(n), 0);
  const blocks: MBConvBlock[] = [];
  B0_STAGES.forEach(([t, k, , n, out], stage) => {
    const cout = filters(out);
    for (let i = 0; i < repeats(n); i++) {
      blocks.push({
        inChannels: c,
        expandedChannels: c * t,
        outChannels: cout,
        kernelSize: k,
        stride: i === 0 ? (strides[stage] as number) : 1,
        // SE width is a quarter of the block's input channels, not of the expanded ones.
        seChannels: Math.max(1, Math.floor(c / 4)),
        dropPath: (o.dropPath * blocks.length) / totalBlocks,
      });
      c = cout;
    }
  });
  return {
    inChannels: o.inChannels,
    numClasses: o.numClasses,
    stem,
    blocks,
    headChannels: filters(1280),
    classifierHidden: [],
  };
}

export class EfficientNet extends Module {
  readonly stem: ConvBnAct;
  readonly blocks: Sequential;
  readonly head: ConvBnAct;
  readonly classifier: Sequential;

  constructor(readonly options: EfficientNetOptions) {
    super();
    const o = options;
    const plan = efficientNetPlan(o);
    const swish = () => new SiLU();
    this.stem = this.registerModule(
      "stem",
      new ConvBnAct({
        inChannels: o.inChannels,
        outChannels: plan.stem.outChannels,
        kernelSize: 3,
        stride: plan.stem.stride,
        activation: swish,
      }),
    );
    const blocks = plan.blocks.map(
      ({ seChannels, dropPath, ...b }) =>
        new InvertedResidual({
          ...b,
          activation: swish,
          se: { reducedChannels: seChannels, activation: swish, gate: "sigmoid" },
          dropPath,
        }),
    );
    this.blocks = this.registerModule("blocks", new Sequential(blocks));
    const end = convHead({
      inChannels: plan.blocks[plan.blocks.length - 1]?.outChannels ?? plan.stem.outChannels,
      width: plan.headChannels,
      activation: swish,
      dropout: o.dropout,
      numClasses: o.numClasses,
    });
    this.head = this.registerModule("head", end.head);
    this.classifier = this.registerModule("classifier", end.classifier);
    heInit(this);
  }

  forward(x: Tensor): Tensor {
    const y = this.head.forward(this.blocks.forward(this.stem.forward(x)));
    return poolAndClassify(y, this.classifier);
  }

  toConfig(): ModuleConfig {
    return { ...this.options };
  }
}

const UNIT = { type: "number", min: 0, max: 1, maxExclusive: true } as const;
export const EFFICIENTNET_OPTIONS = defineOptions(FN, {
  widthCoefficient: { type: "number", min: 0, max: 8, minExclusive: true, default: 1, help: "w: channel multiplier" },
  depthCoefficient: { type: "number", min: 0, max: 8, minExclusive: true, default: 1, help: "d: repeat multiplier" },
  resolution: {
    type: "int",
    min: 32,
    default: 224,
    help: "r: the input size the scaling was designed for (recorded; no parameter depends on it)",
  },
  dropout: { ...UNIT, default: 0.2, help: "dropout before the classifier" },
  dropPath: { ...UNIT, default: 0.2, help: "stochastic depth rate of the last block (drop connect)" },
  strides: {
    type: "choice",
    choices: STRIDE_LAYOUTS,
    default: "cifar",
    help: '"cifar": the first stride-2 stage runs at stride 1; "imagenet": the paper\'s strides',
  },
});

export function createEfficientNet(options: ModelOptions): EfficientNet {
  return new EfficientNet(readEfficientNetOptions(options));
}

function readEfficientNetOptions(options: ModelOptions): EfficientNetOptions {
  const o = readOptions(EFFICIENTNET_OPTIONS, options);
  return { ...o, strides: o.strides as StrideLayout };
}

/** The registry's analytic cost (cost.ts): the same plan, no model built. */
export function efficientNetCost(options: ModelOptions, [, height, width]: [number, number, number]): ModelCost {
  return invertedResidualNetCost(efficientNetPlan(readEfficientNetOptions(options)), height, width);
}

const SOURCE = "Tan & Le, EfficientNet: Rethinking Model Scaling for CNNs, ICML 2019 (arXiv:1905.11946)";
// [name, width, depth, resolution, dropout, large, ImageNet size as torchvision counts it]
const VARIANTS: [string, number, number, number, number, boolean, string][] = [
  ["efficientnet_b0", 1.0, 1.0, 224, 0.2, false, "5.3M"],
  ["efficientnet_b1", 1.0, 1.1, 240, 0.2, false, "7.8M"],
  ["efficientnet_b2", 1.1, 1.2, 260, 0.3, false, "9.1M"],
  ["efficientnet_b3", 1.2, 1.4, 300, 0.3, true, "12.2M"],
];
for (const [name, widthCoefficient, depthCoefficient, resolution, dropout, large, size] of VARIANTS)
  registerModel({
    name,
    family: "efficientnet",
    description:
      `EfficientNet-${name.slice(-2).toUpperCase()} (w=${widthCoefficient}, d=${depthCoefficient}; ${size} params at 1000 classes), ` +
      `scaled for ${resolution}x${resolution} inputs but accepts 32x32 (CIFAR strides by default); MBConv + SE + swish, stochastic depth 0.2`,
    source: SOURCE,
    defaults: { widthCoefficient, depthCoefficient, resolution, dropout },
    options: EFFICIENTNET_OPTIONS,
    create: createEfficientNet,
    cost: efficientNetCost,
    large,
  });
