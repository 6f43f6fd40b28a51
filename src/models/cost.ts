// Analytic parameter and multiply-add counts, straight from a family's configuration: no module,
// no tensor. Budgeted architecture search checks thousands of candidates a second against
// --max-params / --max-macs, where building a model and running summary() on it would take
// tens of milliseconds each. Every figure is exactly what summary(createModel(...), {inputShape})
// gives (test/models/cost.test.ts compares them on every family and hundreds of random variants):
//   params          every trainable parameter element (BatchNorm's weight and bias; its running
//                   statistics are buffers and do not count)
//   macs            per sample: Conv2d output elements · (inChannels / groups) · kh · kw, Linear
//                   outFeatures · inFeatures, BatchNorm2d 2 · output elements, all else 0 (the
//                   convention of src/analysis/summary.ts)
//   convLinearMacs  the convolutions and linears alone
// The families turn their options into the structures below (ResNetConfig, the plans of
// mobilenet.ts, efficientnet.ts and densenet.ts) with the same function their constructors use,
// so a network and its cost come from one description.
import { check, isInt } from "../ops/util";
import type { ResNetConfig } from "./resnet_network";
import { checkResNetConfig, finalMapSize, unitConvs } from "./resnet_network";

export interface ModelCost {
  /** Trainable parameter elements. */
  params: number;
  /** Multiply-adds per sample: convolutions, linears and batch norms. */
  macs: number;
  /** Multiply-adds per sample of convolutions and linears only. */
  convLinearMacs: number;
}

/** Output side of a convolution or pooling window. */
export function convOutSize(size: number, kernel: number, stride: number, padding: number): number {
  return Math.floor((size + 2 * padding - kernel) / stride) + 1;
}

/** Running totals of one network, layer by layer, in summary()'s convention. */
class Tally {
  params = 0;
  macs = 0;
  convLinearMacs = 0;

  /** A convolution whose output is outChannels x outH x outW. */
  conv(inChannels: number, outChannels: number, kernel: number, groups: number, outH: number, outW: number): void {
    check(
      inChannels % groups === 0 && outChannels % groups === 0,
      "Conv2d",
      `groups must divide inChannels (${inChannels}) and outChannels (${outChannels})`,
      "groups",
      groups,
    );
    const weights = outChannels * (inChannels / groups) * kernel * kernel;
    this.params += weights;
    const macs = outH * outW * weights;
    this.macs += macs;
    this.convLinearMacs += macs;
  }

  /** A bias-carrying 1x1 convolution on a 1x1 map (the two layers of a squeeze-and-excitation gate). */
  pointwiseWithBias(inChannels: number, outChannels: number): void {
    this.conv(inChannels, outChannels, 1, 1, 1, 1);
    this.params += outChannels;
  }

  batchNorm(channels: number, h: number, w: number): void {
    this.params += 2 * channels;
    this.macs += 2 * channels * h * w;
  }

  linear(inFeatures: number, outFeatures: number): void {
    this.params += inFeatures * outFeatures + outFeatures;
    this.macs += inFeatures * outFeatures;
    this.convLinearMacs += inFeatures * outFeatures;
  }

  /** SqueezeExcite (src/nn/se.ts): fc1 and fc2 are 1x1 convolutions with biases on the pooled map. */
  squeezeExcite(channels: number, reducedChannels: number): void {
    this.pointwiseWithBias(channels, reducedChannels);
    this.pointwiseWithBias(reducedChannels, channels);
  }

  result(): ModelCost {
    return { params: this.params, macs: this.macs, convLinearMacs: this.convLinearMacs };
  }
}

function checkInputSize(fn: string, height: number, width: number): void {
  check(
    isInt(height) && height >= 1 && isInt(width) && width >= 1,
    fn,
    "the input's height and width must be positive integers",
    "inputSize",
    [height, width],
  );
}

/** SqueezeExcite's default bottleneck: channels / reduction, at least 1. */
const seReduced = (channels: number, reduction: number): number => Math.max(1, Math.floor(channels / reduction));

// ---------------------------------------------------------------- the ResNet family

/** One ResidualUnit (resnet_blocks.ts) on an inChannels x h x w input; returns its output's [channels, h, w]. */
function residualUnitCost(
  t: Tally,
  c: ResNetConfig,
  s: number,
  stride: number,
  inChannels: number,
  h: number,
  w: number,
): [number, number, number] {
  let channels = inChannels;
  let uh = h;
  let uw = w;
  for (const conv of unitConvs(c, s, stride)) {
    // pre-activation: BN on the conv's input; post-activation: BN on its output
    if (c.preact) t.batchNorm(channels, uh, uw);
    const pad = Math.floor(conv.kernelSize / 2);
    uh = convOutSize(uh, conv.kernelSize, conv.stride, pad);
    uw = convOutSize(uw, conv.kernelSize, conv.stride, pad);
    t.conv(channels, conv.outChannels, conv.kernelSize, conv.groups ?? 1, uh, uw);
    if (!c.preact) t.batchNorm(conv.outChannels, uh, uw);
    channels = conv.outChannels;
  }
  const reshapes = stride !== 1 || inChannels !== channels;
  if (reshapes && (c.shortcut ?? "B") === "B") {
    const k = c.skipKernelSizes[s] as number;
    const sh = convOutSize(h, k, stride, Math.floor(k / 2));
    const sw = convOutSize(w, k, stride, Math.floor(k / 2));
    t.conv(inChannels, channels, k, 1, sh, sw);
    if (!c.preact) t.batchNorm(channels, sh, sw);
  }
  if (c.seReduction > 0) t.squeezeExcite(channels, seReduced(channels, c.seReduction));
  return [channels, uh, uw];
}

/**
 * Parameters and MACs of `new ResNet(c)` (resnet_network.ts) on one height x width input (width
 * defaults to height). Checks the config as the constructor does (checkResNetConfig: a pool larger
 * than the last map throws the same ArgumentError), and, with poolSize > 0, that the input is the
 * imageSize the classifier was sized for, as the forward pass does.
 */
export function resnetCost(c: ResNetConfig, height: number, width = height): ModelCost {
  checkResNetConfig(c);
  checkInputSize("resnetCost", height, width);
  if (c.poolSize > 0)
    check(
      height === c.imageSize && width === c.imageSize,
      "ResNet",
      `with poolSize ${c.poolSize} the classifier is sized for ${c.imageSize}x${c.imageSize} inputs; pass imageSize to build for other sizes`,
      "inputSize",
      [height, width],
    );
  const t = new Tally();
  t.conv(c.inChannels, c.stemWidth, 3, 1, height, width);
  if (!c.preact) t.batchNorm(c.stemWidth, height, width);
  if (c.seStemReduction > 0) t.squeezeExcite(c.stemWidth, seReduced(c.stemWidth, c.seStemReduction));
  let unit: [number, number, number] = [c.stemWidth, height, width];
  c.layers.forEach((count, s) => {
    for (let j = 0; j < count; j++) unit = residualUnitCost(t, c, s, j === 0 && s > 0 ? 2 : 1, ...unit);
  });
  const [channels, h, w] = unit;
  if (c.finalNorm) t.batchNorm(channels, h, w);
  // the fc is sized from imageSize, which the forward pass requires the input to be when poolSize > 0
  const pooled = c.poolSize === 0 ? 1 : Math.floor((finalMapSize(c) - c.poolSize) / c.poolSize) + 1;
  t.linear(channels * pooled * pooled, c.numClasses);
  return t.result();
}

// ---------------------------------------------------------------- MobileNets and EfficientNet

/** A conv-BN(-activation) layer as ConvBnAct builds it (building_blocks.ts): bias-free, padding (k-1)/2. */
function convBnActCost(
  t: Tally,
  inChannels: number,
  outChannels: number,
  kernel: number,
  stride: number,
  groups: number,
  h: number,
  w: number,
): [number, number] {
  const pad = Math.floor((kernel - 1) / 2);
  const oh = convOutSize(h, kernel, stride, pad);
  const ow = convOutSize(w, kernel, stride, pad);
  t.conv(inChannels, outChannels, kernel, groups, oh, ow);
  t.batchNorm(outChannels, oh, ow);
  return [oh, ow];
}

/** A 3x3 conv-BN-activation stem. */
export interface StemPlan {
  outChannels: number;
  stride: number;
}

/** MobileNet v1 after its width and stride rules (mobileNetV1Plan in mobilenet.ts). */
export interface MobileNetV1Plan {
  inChannels: number;
  numClasses: number;
  stem: StemPlan;
  /** Depthwise 3x3 at inChannels carrying the stride, then pointwise 1x1 to outChannels. */
  layers: { inChannels: number; outChannels: number; stride: number }[];
}

/** An InvertedResidual (building_blocks.ts) as far as its size goes. */
export interface InvertedResidualPlan {
  inChannels: number;
  expandedChannels: number;
  outChannels: number;
  kernelSize: number;
  stride: number;
  /** Bottleneck of the SE gate on the expanded features; undefined = no SE. */
  seChannels?: number;
}

/**
 * MobileNet v2/v3 and EfficientNet: stem, inverted residuals, 1x1 head, pooled classifier. A
 * family's blocks may carry more (activation, drop path) than the cost reads.
 */
export interface InvertedResidualNetPlan<Block extends InvertedResidualPlan = InvertedResidualPlan> {
  inChannels: number;
  numClasses: number;
  stem: StemPlan;
  blocks: Block[];
  /** Channels of the 1x1 conv-BN-activation head. */
  headChannels: number;
  /** Widths of the classifier's hidden linear layers ([] = one linear to numClasses). */
  classifierHidden: number[];
}

function linearStack(t: Tally, inFeatures: number, hidden: readonly number[], numClasses: number): void {
  let features = inFeatures;
  for (const width of [...hidden, numClasses]) {
    t.linear(features, width);
    features = width;
  }
}

export function mobileNetV1Cost(plan: MobileNetV1Plan, height: number, width = height): ModelCost {
  checkInputSize("mobileNetV1Cost", height, width);
  const t = new Tally();
  let [h, w] = convBnActCost(t, plan.inChannels, plan.stem.outChannels, 3, plan.stem.stride, 1, height, width);
  for (const layer of plan.layers) {
    [h, w] = convBnActCost(t, layer.inChannels, layer.inChannels, 3, layer.stride, layer.inChannels, h, w);
    [h, w] = convBnActCost(t, layer.inChannels, layer.outChannels, 1, 1, 1, h, w);
  }
  const channels = plan.layers[plan.layers.length - 1]?.outChannels ?? plan.stem.outChannels;
  linearStack(t, channels, [], plan.numClasses);
  return t.result();
}

/** MobileNet v2, v3 (small and large) and EfficientNet B0-B3 from their plans. */
export function invertedResidualNetCost(plan: InvertedResidualNetPlan, height: number, width = height): ModelCost {
  checkInputSize("invertedResidualNetCost", height, width);
  const t = new Tally();
  let [h, w] = convBnActCost(t, plan.inChannels, plan.stem.outChannels, 3, plan.stem.stride, 1, height, width);
  let channels = plan.stem.outChannels;
  for (const b of plan.blocks) {
    const exp = b.expandedChannels;
    if (exp !== b.inChannels) convBnActCost(t, b.inChannels, exp, 1, 1, 1, h, w);
    [h, w] = convBnActCost(t, exp, exp, b.kernelSize, b.stride, exp, h, w);
    if (b.seChannels !== undefined) t.squeezeExcite(exp, b.seChannels);
    convBnActCost(t, exp, b.outChannels, 1, 1, 1, h, w);
    channels = b.outChannels;
  }
  convBnActCost(t, channels, plan.headChannels, 1, 1, 1, h, w);
  linearStack(t, plan.headChannels, plan.classifierHidden, plan.numClasses);
  return t.result();
}

// ---------------------------------------------------------------- DenseNet

/** DenseNet after its depth and compression rules (denseNetPlan in densenet.ts). */
export interface DenseNetPlan {
  inChannels: number;
  numClasses: number;
  /** Channels of the 3x3 stem (conv0). */
  stemChannels: number;
  growthRate: number;
  bottleneck: boolean;
  layersPerBlock: number;
  /** Input channels of each dense block. */
  blockInChannels: number[];
  /** The transition after each dense block but the last: BN-ReLU-1x1 conv, 2x2 average pool. */
  transitions: { inChannels: number; outChannels: number }[];
  /** Channels of the final BN and the classifier's input. */
  finalChannels: number;
}

export function denseNetCost(plan: DenseNetPlan, height: number, width = height): ModelCost {
  checkInputSize("denseNetCost", height, width);
  const t = new Tally();
  let h = height;
  let w = width;
  t.conv(plan.inChannels, plan.stemChannels, 3, 1, h, w);
  const k = plan.growthRate;
  plan.blockInChannels.forEach((cin, b) => {
    for (let i = 0; i < plan.layersPerBlock; i++) {
      const c = cin + i * k;
      t.batchNorm(c, h, w);
      if (plan.bottleneck) {
        t.conv(c, 4 * k, 1, 1, h, w);
        t.batchNorm(4 * k, h, w);
        t.conv(4 * k, k, 3, 1, h, w);
      } else t.conv(c, k, 3, 1, h, w);
    }
    const trans = plan.transitions[b];
    if (trans === undefined) return;
    t.batchNorm(trans.inChannels, h, w);
    t.conv(trans.inChannels, trans.outChannels, 1, 1, h, w);
    check(
      h >= 2 && w >= 2,
      "DenseNet",
      `the input is too small: transition ${b + 1} average-pools a ${h}x${w} map by 2 (the input needs at least 4x4)`,
      "inputSize",
      [height, width],
    );
    h = convOutSize(h, 2, 2, 0);
    w = convOutSize(w, 2, 2, 0);
  });
  t.batchNorm(plan.finalChannels, h, w);
  t.linear(plan.finalChannels, plan.numClasses);
  return t.result();
}

// ---------------------------------------------------------------- SpeedNet

/** SpeedNet after its option rules (speedNetPlan in speednet.ts). */
export interface SpeedNetPlan {
  inChannels: number;
  numClasses: number;
  stemWidth: number;
  /** Each block: a 3x3 conv to this width, a 2x2 max-pool, BN-activation, then more 3x3 convs. */
  widths: number[];
  convsPerBlock: number;
  /** Not a cost: the network's activation after every BN. */
  activation: "relu" | "gelu";
}

export function speedNetCost(plan: SpeedNetPlan, height: number, width = height): ModelCost {
  checkInputSize("speedNetCost", height, width);
  const t = new Tally();
  let h = height;
  let w = width;
  t.conv(plan.inChannels, plan.stemWidth, 3, 1, h, w);
  t.batchNorm(plan.stemWidth, h, w);
  let channels = plan.stemWidth;
  for (const out of plan.widths) {
    t.conv(channels, out, 3, 1, h, w);
    h = Math.floor(h / 2);
    w = Math.floor(w / 2);
    t.batchNorm(out, h, w);
    for (let k = 1; k < plan.convsPerBlock; k++) {
      t.conv(out, out, 3, 1, h, w);
      t.batchNorm(out, h, w);
    }
    channels = out;
  }
  t.linear(channels, plan.numClasses);
  return t.result();
}
