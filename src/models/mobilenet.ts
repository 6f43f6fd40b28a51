// MobileNets: v1 (Howard et al. 2017, arXiv:1704.04861) depthwise separable convs; v2 (Sandler
// et al., CVPR 2018, arXiv:1801.04381) inverted residuals with expansion t, ReLU6 and a linear
// bottleneck; v3 small/large (Howard et al., ICCV 2019, arXiv:1905.02244) adding squeeze-and-
// excitation (hard-sigmoid gate) and h-swish. Layer tables are the papers' (v3 as torchvision
// builds it: SE width make_divisible(expanded/4, 8), 1280/1024-wide classifier hidden layer).
//
// Strides for 32x32 inputs (`strides: "cifar"`, the default): the stem conv runs at stride 1 and
// so does the first stride-2 stage — v1's 128-channel layer, v2's 24-channel stage (as in
// kuangliu/pytorch-cifar's MobileNetV2), v3-large's 24-channel block, v3-small's first (16-channel)
// block — so the three later halvings take 32x32 to 4x4 (the ImageNet layout takes 224 to 7 with
// five). kuangliu's CIFAR MobileNet v1 keeps the 128 stride and ends at 2x2; we apply the one rule
// to every family. Strides change no parameter, so `strides: "imagenet"` with 1000 classes gives
// the published ImageNet parameter counts.
import { Sequential } from "../nn/containers";
import { Dropout, Hardswish, Linear, ReLU, ReLU6 } from "../nn/layers";
import { Module, type ModuleConfig } from "../nn/module";
import { ArgumentError } from "../tensor/errors";
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
  type MobileNetV1Plan,
  type ModelCost,
  mobileNetV1Cost,
} from "./cost";
import { defineOptions, readOptions } from "./options";
import { type ModelOptions, registerModel } from "./registry";

/** Options every MobileNet takes. */
export interface MobileNetOptions {
  numClasses: number;
  inChannels: number;
  /** α: scales every layer's width (v1: floor(α·c); v2/v3: make_divisible(α·c, 8)). */
  widthMultiplier: number;
  strides: StrideLayout;
  /** Dropout before the classifier (v1 0, v2 and v3 0.2). */
  dropout: number;
  /** v2: expansion t of every stage after the first (the paper's 6). */
  expansion?: number;
  /** v2: blocks (repeats n) of each of the seven stages (the paper's [1, 2, 3, 4, 3, 3, 1]). */
  blocks?: number[];
}

/** The options every MobileNet shares; v1 drops nothing before its classifier, v2 and v3 0.2. */
function mobileNetSpecs(dropout: number) {
  return {
    widthMultiplier: {
      type: "number",
      min: 0,
      max: 4,
      minExclusive: true,
      default: 1,
      help: "α: scales every layer's width",
    },
    strides: {
      type: "choice",
      choices: STRIDE_LAYOUTS,
      default: "cifar",
      help: '"cifar": stem and first stride-2 stage at stride 1 (32x32 → 4x4); "imagenet": the paper\'s strides',
    },
    dropout: {
      type: "number",
      min: 0,
      max: 1,
      maxExclusive: true,
      default: dropout,
      help: "dropout before the classifier",
    },
  } as const;
}
const MOBILENET_V1_OPTIONS = defineOptions("MobileNetV1", mobileNetSpecs(0));
const MOBILENET_V2_OPTIONS = defineOptions("MobileNetV2", {
  ...mobileNetSpecs(0.2),
  expansion: { type: "int", min: 1, default: 6, help: "t: expansion of every stage after the first (searchable)" },
  blocks: {
    type: "intList",
    min: 1,
    default: [1, 2, 3, 4, 3, 3, 1],
    help: "n: blocks of each of the seven stages (searchable; exactly seven entries)",
  },
});
const MOBILENET_V3_OPTIONS = defineOptions("MobileNetV3", mobileNetSpecs(0.2));

function read(schema: typeof MOBILENET_V1_OPTIONS, options: ModelOptions): MobileNetOptions {
  const o = readOptions(schema, options);
  return { ...o, strides: o.strides as StrideLayout };
}

function readV2(options: ModelOptions): MobileNetOptions {
  const o = readOptions(MOBILENET_V2_OPTIONS, options);
  if (o.blocks.length !== V2_STAGES.length)
    throw new ArgumentError(
      `MobileNetV2: blocks must list ${V2_STAGES.length} stages (the paper's [1, 2, 3, 4, 3, 3, 1]). Received: blocks=[${o.blocks.join(", ")}]`,
    );
  return { ...o, strides: o.strides as StrideLayout };
}

// ---------------------------------------------------------------- v1

// [output channels, ImageNet stride] of the 13 depthwise separable layers (paper, Table 1).
const V1_LAYERS: [number, number][] = [
  [64, 1],
  [128, 2],
  [128, 1],
  [256, 2],
  [256, 1],
  [512, 2],
  [512, 1],
  [512, 1],
  [512, 1],
  [512, 1],
  [512, 1],
  [1024, 2],
  [1024, 1],
];

/** v1's layer table after the width and stride rules (the network and its analytic cost both read it). */
export function mobileNetV1Plan(o: MobileNetOptions): MobileNetV1Plan {
  const width = (c: number) => Math.max(1, Math.floor(c * o.widthMultiplier));
  const strides = adaptStrides(
    V1_LAYERS.map(([, s]) => s),
    o.strides,
  );
  let c = width(32);
  const stem = { outChannels: c, stride: o.strides === "cifar" ? 1 : 2 };
  const layers = V1_LAYERS.map(([out], i) => {
    const layer = { inChannels: c, outChannels: width(out), stride: strides[i] as number };
    c = layer.outChannels;
    return layer;
  });
  return { inChannels: o.inChannels, numClasses: o.numClasses, stem, layers };
}

export class MobileNetV1 extends Module {
  readonly stem: ConvBnAct;
  readonly blocks: Sequential;
  readonly classifier: Sequential;

  constructor(readonly options: MobileNetOptions) {
    super();
    const o = options;
    const plan = mobileNetV1Plan(o);
    const relu = () => new ReLU();
    this.stem = this.registerModule(
      "stem",
      new ConvBnAct({
        inChannels: o.inChannels,
        outChannels: plan.stem.outChannels,
        kernelSize: 3,
        stride: plan.stem.stride,
        activation: relu,
      }),
    );
    const layers = plan.layers.map(({ inChannels: c, outChannels: cout, stride }) => {
      const dw = new ConvBnAct({ inChannels: c, outChannels: c, kernelSize: 3, stride, groups: c, activation: relu });
      const pw = new ConvBnAct({ inChannels: c, outChannels: cout, kernelSize: 1, activation: relu });
      return new Sequential([dw, pw]);
    });
    this.blocks = this.registerModule("blocks", new Sequential(layers));
    const c = plan.layers[plan.layers.length - 1]?.outChannels ?? plan.stem.outChannels;
    this.classifier = this.registerModule(
      "classifier",
      new Sequential([new Dropout(o.dropout), new Linear({ inFeatures: c, outFeatures: o.numClasses })]),
    );
    heInit(this);
  }

  forward(x: Tensor): Tensor {
    const y = this.blocks.forward(this.stem.forward(x));
    return poolAndClassify(y, this.classifier);
  }

  toConfig(): ModuleConfig {
    return { ...this.options };
  }
}

// ---------------------------------------------------------------- v2

// [expansion t, output channels c, repeats n, ImageNet stride s] (paper, Table 2).
const V2_STAGES: [number, number, number, number][] = [
  [1, 16, 1, 1],
  [6, 24, 2, 2],
  [6, 32, 3, 2],
  [6, 64, 4, 2],
  [6, 96, 3, 1],
  [6, 160, 3, 2],
  [6, 320, 1, 1],
];

/** v2's layer table after the width and stride rules (the network and its analytic cost both read it). */
export function mobileNetV2Plan(o: MobileNetOptions): InvertedResidualNetPlan {
  const alpha = o.widthMultiplier;
  const strides = adaptStrides(
    V2_STAGES.map(([, , , s]) => s),
    o.strides,
  );
  let c = makeDivisible(32 * alpha);
  const stem = { outChannels: c, stride: o.strides === "cifar" ? 1 : 2 };
  const blocks: InvertedResidualPlan[] = [];
  V2_STAGES.forEach(([paperT, out, paperN], stage) => {
    const t = stage === 0 ? paperT : (o.expansion ?? paperT);
    const n = o.blocks?.[stage] ?? paperN;
    const cout = makeDivisible(out * alpha);
    for (let i = 0; i < n; i++) {
      const stride = i === 0 ? (strides[stage] as number) : 1;
      blocks.push({ inChannels: c, expandedChannels: Math.round(c * t), outChannels: cout, kernelSize: 3, stride });
      c = cout;
    }
  });
  return {
    inChannels: o.inChannels,
    numClasses: o.numClasses,
    stem,
    blocks,
    headChannels: makeDivisible(1280 * Math.max(1, alpha)),
    classifierHidden: [],
  };
}

export class MobileNetV2 extends Module {
  readonly stem: ConvBnAct;
  readonly blocks: Sequential;
  readonly head: ConvBnAct;
  readonly classifier: Sequential;

  constructor(readonly options: MobileNetOptions) {
    super();
    const o = options;
    const plan = mobileNetV2Plan(o);
    const relu6 = () => new ReLU6();
    this.stem = this.registerModule(
      "stem",
      new ConvBnAct({
        inChannels: o.inChannels,
        outChannels: plan.stem.outChannels,
        kernelSize: 3,
        stride: plan.stem.stride,
        activation: relu6,
      }),
    );
    const blocks = plan.blocks.map((b) => new InvertedResidual({ ...b, activation: relu6 }));
    this.blocks = this.registerModule("blocks", new Sequential(blocks));
    const end = convHead({
      inChannels: plan.blocks[plan.blocks.length - 1]?.outChannels ?? plan.stem.outChannels,
      width: plan.headChannels,
      activation: relu6,
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

// ---------------------------------------------------------------- v3

// [kernel, expanded, out, SE, h-swish, ImageNet stride] (paper, Tables 1 and 2).
type V3Row = [number, number, number, boolean, boolean, number];
const V3_LARGE: V3Row[] = [
  [3, 16, 16, false, false, 1],
  [3, 64, 24, false, false, 2],
  [3, 72, 24, false, false, 1],
  [5, 72, 40, true, false, 2],
  [5, 120, 40, true, false, 1],
  [5, 120, 40, true, false, 1],
  [3, 240, 80, false, true, 2],
  [3, 200, 80, false, true, 1],
  [3, 184, 80, false, true, 1],
  [3, 184, 80, false, true, 1],
  [3, 480, 112, true, true, 1],
  [3, 672, 112, true, true, 1],
  [5, 672, 160, true, true, 2],
  [5, 960, 160, true, true, 1],
  [5, 960, 160, true, true, 1],
];
const V3_SMALL: V3Row[] = [
  [3, 16, 16, true, false, 2],
  [3, 72, 24, false, false, 2],
  [3, 88, 24, false, false, 1],
  [5, 96, 40, true, true, 2],
  [5, 240, 40, true, true, 1],
  [5, 240, 40, true, true, 1],
  [5, 120, 48, true, true, 1],
  [5, 144, 48, true, true, 1],
  [5, 288, 96, true, true, 2],
  [5, 576, 96, true, true, 1],
  [5, 576, 96, true, true, 1],
];

/** A v3 block: an inverted residual with h-swish or ReLU. */
type MobileNetV3Block = InvertedResidualPlan & { hswish: boolean };

/** v3's layer table after the width and stride rules (the network and its analytic cost both read it). */
export function mobileNetV3Plan(
  o: MobileNetOptions,
  size: "small" | "large",
): InvertedResidualNetPlan<MobileNetV3Block> {
  const width = (ch: number) => makeDivisible(ch * o.widthMultiplier);
  const rows = size === "large" ? V3_LARGE : V3_SMALL;
  const strides = adaptStrides(
    rows.map((r) => r[5]),
    o.strides,
  );
  let c = width(16);
  const stem = { outChannels: c, stride: o.strides === "cifar" ? 1 : 2 };
  const blocks = rows.map(([k, exp, out, se, hs], i): MobileNetV3Block => {
    const expanded = width(exp);
    const block = {
      inChannels: c,
      expandedChannels: expanded,
      outChannels: width(out),
      kernelSize: k,
      stride: strides[i] as number,
      seChannels: se ? makeDivisible(Math.floor(expanded / 4)) : undefined,
      hswish: hs,
    };
    c = block.outChannels;
    return block;
  });
  return {
    inChannels: o.inChannels,
    numClasses: o.numClasses,
    stem,
    blocks,
    headChannels: 6 * c,
    classifierHidden: [width(size === "large" ? 1280 : 1024)],
  };
}

export class MobileNetV3 extends Module {
  readonly stem: ConvBnAct;
  readonly blocks: Sequential;
  readonly head: ConvBnAct;
  readonly classifier: Sequential;

  constructor(
    readonly options: MobileNetOptions,
    readonly size: "small" | "large",
  ) {
    super();
    const o = options;
    const plan = mobileNetV3Plan(o, size);
    const hswish = () => new Hardswish();
    const relu = () => new ReLU();
    this.stem = this.registerModule(
      "stem",
      new ConvBnAct({
        inChannels: o.inChannels,
        outChannels: plan.stem.outChannels,
        kernelSize: 3,
        stride: plan.stem.stride,
        activation: hswish,
      }),
    );
    const blocks = plan.blocks.map(
      ({ hswish: hs, seChannels, ...b }) =>
        new InvertedResidual({
          ...b,
          activation: hs ? hswish : relu,
          se: seChannels === undefined ? undefined : { reducedChannels: seChannels, gate: "hardsigmoid" },
        }),
    );
    this.blocks = this.registerModule("blocks", new Sequential(blocks));
    const c = plan.blocks[plan.blocks.length - 1]?.outChannels ?? plan.stem.outChannels;
    const lastConv = plan.headChannels;
    const hidden = plan.classifierHidden[0] as number;
    this.head = this.registerModule(
      "head",
      new ConvBnAct({ inChannels: c, outChannels: lastConv, kernelSize: 1, activation: hswish }),
    );
    this.classifier = this.registerModule(
      "classifier",
      new Sequential([
        new Linear({ inFeatures: lastConv, outFeatures: hidden }),
        new Hardswish(),
        new Dropout(o.dropout),
        new Linear({ inFeatures: hidden, outFeatures: o.numClasses }),
      ]),
    );
    heInit(this);
  }

  forward(x: Tensor): Tensor {
    const y = this.head.forward(this.blocks.forward(this.stem.forward(x)));
    return poolAndClassify(y, this.classifier);
  }

  toConfig(): ModuleConfig {
    return { ...this.options, size: this.size };
  }
}

export const createMobileNetV1 = (options: ModelOptions) => new MobileNetV1(read(MOBILENET_V1_OPTIONS, options));
export const createMobileNetV2 = (options: ModelOptions) => new MobileNetV2(readV2(options));
export const createMobileNetV3Small = (options: ModelOptions) =>
  new MobileNetV3(read(MOBILENET_V3_OPTIONS, options), "small");
export const createMobileNetV3Large = (options: ModelOptions) =>
  new MobileNetV3(read(MOBILENET_V3_OPTIONS, options), "large");

/** The registry's analytic costs (cost.ts): the same plans, no model built. */
const mobileNetV1CostOf = (options: ModelOptions, [, height, width]: [number, number, number]): ModelCost =>
  mobileNetV1Cost(mobileNetV1Plan(read(MOBILENET_V1_OPTIONS, options)), height, width);
const invertedResidualCostOf =
  (
    readPlanOptions: (options: ModelOptions) => MobileNetOptions,
    plan: (o: MobileNetOptions) => InvertedResidualNetPlan,
  ) =>
  (options: ModelOptions, [, height, width]: [number, number, number]): ModelCost =>
    invertedResidualNetCost(plan(readPlanOptions(options)), height, width);

const STRIDES_NOTE = 'strides "cifar" (default: stem and first stride-2 stage at stride 1, 32x32 → 4x4) or "imagenet"';
registerModel({
  name: "mobilenetv1",
  family: "mobilenet",
  description: `MobileNet v1 1.0 (4.2M params at 1000 classes): 13 depthwise separable layers; widthMultiplier; ${STRIDES_NOTE}`,
  source: "Howard et al., MobileNets, 2017 (arXiv:1704.04861)",
  defaults: {},
  options: MOBILENET_V1_OPTIONS,
  create: createMobileNetV1,
  cost: mobileNetV1CostOf,
});
registerModel({
  name: "mobilenetv2",
  family: "mobilenet",
  description: `MobileNet v2 1.0 (3.5M params at 1000 classes): inverted residuals, ReLU6, linear bottlenecks; widthMultiplier; ${STRIDES_NOTE}`,
  source: "Sandler et al., MobileNetV2: Inverted Residuals and Linear Bottlenecks, CVPR 2018 (arXiv:1801.04381)",
  defaults: {},
  options: MOBILENET_V2_OPTIONS,
  create: createMobileNetV2,
  cost: invertedResidualCostOf(readV2, mobileNetV2Plan),
});
registerModel({
  name: "mobilenetv3_small",
  family: "mobilenet",
  description: `MobileNet v3-Small 1.0 (2.5M params at 1000 classes as torchvision builds it): SE + h-swish; widthMultiplier; ${STRIDES_NOTE}`,
  source: "Howard et al., Searching for MobileNetV3, ICCV 2019 (arXiv:1905.02244)",
  defaults: {},
  options: MOBILENET_V3_OPTIONS,
  create: createMobileNetV3Small,
  cost: invertedResidualCostOf(
    (options) => read(MOBILENET_V3_OPTIONS, options),
    (o) => mobileNetV3Plan(o, "small"),
  ),
});
registerModel({
  name: "mobilenetv3_large",
  family: "mobilenet",
  description: `MobileNet v3-Large 1.0 (5.5M params at 1000 classes): SE + h-swish; widthMultiplier; ${STRIDES_NOTE}`,
  source: "Howard et al., Searching for MobileNetV3, ICCV 2019 (arXiv:1905.02244)",
  defaults: {},
  options: MOBILENET_V3_OPTIONS,
  create: createMobileNetV3Large,
  cost: invertedResidualCostOf(
    (options) => read(MOBILENET_V3_OPTIONS, options),
    (o) => mobileNetV3Plan(o, "large"),
  ),
});
