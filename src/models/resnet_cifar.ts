// The CIFAR ResNet of He et al. 2015, "Deep Residual Learning for Image Recognition", section
// 4.2: a 3x3 stem, three stages of n basic blocks at 16/32/64 channels (feature maps 32/16/8),
// global average pooling and one fully connected layer: 6n+2 weighted layers. State-dict keys
// follow torchvision's ResNet (conv1, bn1, layer1.0.conv1, layer2.0.downsample.0, fc), so the
// weights load into the same network written in PyTorch.

import { Sequential } from "../nn/containers";
import { BatchNorm2d, Conv2d, Linear, ReLU } from "../nn/layers";
import { Module, type ModuleConfig } from "../nn/module";
import { SqueezeExcite } from "../nn/se";
import { adaptiveAvgPool2d } from "../ops/nn";
import { flatten, pad, slice } from "../ops/shape";
import { ArgumentError } from "../tensor/errors";
import type { Tensor } from "../tensor/tensor";
import { heInit } from "./building_blocks";
import { defineOptions, readOptions } from "./options";
import { type ModelOptions, registerModel } from "./registry";

/**
 * Shortcut where the shape changes. "A": identity on every other pixel with the new channels
 * zero-padded, no parameters (the paper's CIFAR networks, Table 6). "B": 1x1 convolution with
 * stride 2 and BatchNorm (the paper's option B; torchvision's downsample).
 */
export type CifarShortcut = "A" | "B";

export interface ResNetCifarOptions {
  /** 6n+2: 20, 32, 44, 56, 110, 1202 in the paper. */
  depth: number;
  numClasses?: number;
  inChannels?: number;
  /** Default "B". */
  shortcut?: CifarShortcut;
  /** Squeeze-and-excitation before each residual add (Hu et al. 2018). Default false. */
  se?: boolean;
  /** The SE gate's reduction r (default 16). */
  seReduction?: number;
  /** Channel multiplier on 16/32/64 (1 = the paper). */
  width?: number;
}

/** Option A: stride-2 subsampling, then zero channels split evenly before and after. */
class ZeroPadShortcut extends Module {
  constructor(
    readonly inPlanes: number,
    readonly outPlanes: number,
    readonly stride: number,
  ) {
    super();
  }

  forward(x: Tensor): Tensor {
    const sub = this.stride === 1 ? x : slice(slice(x, 2, 0, undefined, this.stride), 3, 0, undefined, this.stride);
    const extra = this.outPlanes - this.inPlanes;
    const before = Math.floor(extra / 2);
    return pad(sub, [0, 0, 0, 0, before, extra - before]);
  }

  toConfig(): ModuleConfig {
    return { inPlanes: this.inPlanes, outPlanes: this.outPlanes, stride: this.stride };
  }
}

/** Two 3x3 convolutions with BatchNorm; ReLU after the residual add (the paper's Fig. 2). */
export class CifarBasicBlock extends Module {
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly relu: ReLU;
  readonly conv2: Conv2d;
  readonly bn2: BatchNorm2d;
  readonly se: SqueezeExcite | undefined;
  readonly downsample: Module | undefined;
  private readonly config: ModuleConfig;

  constructor(inPlanes: number, planes: number, stride: number, shortcut: CifarShortcut, seReduction: number) {
    super();
    this.config = { inPlanes, planes, stride, shortcut, seReduction };
    this.conv1 = this.registerModule(
      "conv1",
      new Conv2d({ inChannels: inPlanes, outChannels: planes, kernelSize: 3, stride, padding: 1, bias: false }),
    );
    this.bn1 = this.registerModule("bn1", new BatchNorm2d({ numFeatures: planes }));
    this.relu = this.registerModule("relu", new ReLU({ inplace: true }));
    this.conv2 = this.registerModule(
      "conv2",
      new Conv2d({ inChannels: planes, outChannels: planes, kernelSize: 3, padding: 1, bias: false }),
    );
    this.bn2 = this.registerModule("bn2", new BatchNorm2d({ numFeatures: planes }));
    this.se =
      seReduction > 0
        ? this.registerModule("se", new SqueezeExcite({ channels: planes, reduction: seReduction }))
        : undefined;
    if (stride !== 1 || inPlanes !== planes) {
      const ds =
        shortcut === "A"
          ? new ZeroPadShortcut(inPlanes, planes, stride)
          : new Sequential([
              new Conv2d({ inChannels: inPlanes, outChannels: planes, kernelSize: 1, stride, bias: false }),
              new BatchNorm2d({ numFeatures: planes }),
            ]);
      this.downsample = this.registerModule("downsample", ds);
    }
  }

  forward(x: Tensor): Tensor {
    const identity = this.downsample ? this.downsample.forward(x) : x;
    let out = this.relu.forward(this.bn1.forward(this.conv1.forward(x)));
    out = this.bn2.forward(this.conv2.forward(out));
    if (this.se) out = this.se.forward(out);
    return this.relu.forward(out.add(identity));
  }

  toConfig(): ModuleConfig {
    return { ...this.config };
  }
}

export class ResNetCifar extends Module {
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly relu: ReLU;
  readonly layer1: Sequential;
  readonly layer2: Sequential;
  readonly layer3: Sequential;
  readonly fc: Linear;
  private readonly config: Required<ResNetCifarOptions>;

  constructor(opts: ResNetCifarOptions) {
    super();
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
    this.config = o;
    const blocks = (o.depth - 2) / 6;
    const seReduction = o.se ? o.seReduction : 0;
    const widths = [16, 32, 64].map((c) => Math.max(1, Math.round(c * o.width))) as [number, number, number];
    this.conv1 = this.registerModule(
      "conv1",
      new Conv2d({ inChannels: o.inChannels, outChannels: widths[0], kernelSize: 3, padding: 1, bias: false }),
    );
    this.bn1 = this.registerModule("bn1", new BatchNorm2d({ numFeatures: widths[0] }));
    this.relu = this.registerModule("relu", new ReLU({ inplace: true }));
    const stage = (inPlanes: number, planes: number, stride: number): Sequential => {
      const layer = new Sequential();
      for (let j = 0; j < blocks; j++)
        layer.append(
          new CifarBasicBlock(j === 0 ? inPlanes : planes, planes, j === 0 ? stride : 1, o.shortcut, seReduction),
        );
      return layer;
    };
    this.layer1 = this.registerModule("layer1", stage(widths[0], widths[0], 1));
    this.layer2 = this.registerModule("layer2", stage(widths[0], widths[1], 2));
    this.layer3 = this.registerModule("layer3", stage(widths[1], widths[2], 2));
    this.fc = this.registerModule("fc", new Linear({ inFeatures: widths[2], outFeatures: o.numClasses }));
    // torchvision's init: Kaiming normal (fan_out, relu) on every convolution; BatchNorm at
    // weight 1, bias 0; the fc keeps PyTorch's default.
    heInit(this, { zeroLinearBias: false });
  }

  forward(x: Tensor): Tensor {
    let y = this.relu.forward(this.bn1.forward(this.conv1.forward(x)));
    y = this.layer1.forward(y);
    y = this.layer2.forward(y);
    y = this.layer3.forward(y);
    y = flatten(adaptiveAvgPool2d(y, 1), 1);
    return this.fc.forward(y);
  }

  toConfig(): ModuleConfig {
    return { ...this.config };
  }
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
  });
