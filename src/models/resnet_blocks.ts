// The one residual unit of the ResNet family (src/models/resnet_network.ts builds every network
// from it), with torchvision's names (conv1, bn1, ..., downsample.0/.1) so weights load into the
// same network written in PyTorch. A unit is a list of convolutions plus arguments:
//   post-activation (He et al. 2015): conv-BN-ReLU inside, ReLU after the addition.
//   pre-activation (He et al. 2016, "Identity Mappings"): BN-ReLU-conv inside, nothing after the
//   addition; a projection shortcut reads the pre-activated input (the paper's appendix shares
//   the first BN-ReLU between both paths).
//   shortcut "B": a projection (conv, + BN when post-activation) where the shape changes; "A":
//   the CIFAR paper's zero-padded identity, no parameters.
//   groups on a conv (ResNeXt's cardinality), dropout between the convs (WRN), squeeze-and-
//   excitation on the residual branch before the addition (Hu et al. 2018, named `se`), stochastic
//   depth on the branch (Huang et al. 2016), dropout after the unit (Efficient ResNets).
// The named subclasses differ only in key layout (the order keys are registered in, which also
// fixes the order of the seeded initialization draws) and keep the class names summaries print.
// Every ReLU here is in place (PyTorch's ReLU(inplace=True)) on a fresh BatchNorm or addition
// output that nothing else reads; a BN that foldBatchNorm turned into the identity passes on its
// conv's output, which the fold only allows when nothing else reads it either.
import { Sequential } from "../nn/containers";
import { BatchNorm2d, Conv2d, Dropout, ReLU } from "../nn/layers";
import { Module, type ModuleConfig } from "../nn/module";
import { SqueezeExcite } from "../nn/se";
import { reluInPlace } from "../ops/nn";
import { pad, slice } from "../ops/shape";
import { check, isInt } from "../ops/util";
import type { Tensor } from "../tensor/tensor";
import { dropPath } from "./building_blocks";

/**
 * Shortcut where the shape changes. "A": identity on every other pixel with the new channels
 * zero-padded, no parameters (He et al. 2015's CIFAR networks, Table 6). "B": a projection, 1x1
 * (or skipKernelSize) convolution carrying the stride, with BatchNorm in post-activation units.
 */
export type Shortcut = "A" | "B";

export interface UnitConv {
  outChannels: number;
  kernelSize: number;
  stride: number;
  /** Groups (ResNeXt's cardinality C on the 3x3); default 1. */
  groups?: number;
}

export interface UnitOptions {
  inChannels: number;
  /** The residual branch, in order; the last conv's outChannels are the unit's output. */
  convs: UnitConv[];
  preact: boolean;
  shortcut: Shortcut;
  /** Kernel of the projection shortcut (Efficient ResNets' K_i), padding kernel // 2. */
  skipKernelSize: number;
  /** Squeeze-and-excitation reduction r; 0 = no SE. */
  seReduction: number;
  /** Dropout: between the convs (WRN) or after the unit (Efficient ResNets); 0 = none. */
  dropout: number;
  dropoutBetweenConvs: boolean;
  /** Stochastic depth: probability of dropping the residual branch of a sample in training. */
  dropPath: number;
}

/** Where a subclass's keys go; registration order fixes the key order and the seeded init. */
interface UnitLayout {
  /** "shortcut": a bare projection conv (WRN's code); "downsample": a Sequential (torchvision). */
  shortcutKey: "downsample" | "shortcut";
  /** SE registered before the shortcut (the CIFAR ResNet and ResNeXt) instead of after. */
  seBeforeShortcut: boolean;
  /** A `relu` child after bn1, as the CIFAR ResNet's PyTorch peer has. */
  reluModule: boolean;
  /** Run the shortcut after the branch (ResNeXt's order of calls, which summaries list). */
  shortcutLast?: boolean;
}

const TORCHVISION: UnitLayout = { shortcutKey: "downsample", seBeforeShortcut: false, reluModule: false };

/** A bias-free convolution with "same" padding (kernel // 2), as every ResNet uses. */
export function convBN(inChannels: number, outChannels: number, kernelSize: number, stride = 1, groups = 1): Conv2d {
  return new Conv2d({
    inChannels,
    outChannels,
    kernelSize,
    stride,
    padding: Math.floor(kernelSize / 2),
    groups,
    bias: false,
  });
}

export function checkKernel(fn: string, name: string, k: unknown): void {
  check(
    isInt(k) && k >= 1 && k % 2 === 1,
    fn,
    `${name} must be a positive odd integer (padding ${name} // 2 keeps the feature map's size)`,
    name,
    k,
  );
}

/** Option A: stride-2 subsampling, then zero channels split evenly before and after. */
export class ZeroPadShortcut extends Module {
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

export class ResidualUnit extends Module {
  readonly convs: Conv2d[] = [];
  readonly norms: BatchNorm2d[] = [];
  readonly shortcut: Module | undefined;
  readonly se: SqueezeExcite | undefined;
  readonly dropout: Dropout | undefined;
  relu: ReLU | undefined;
  readonly outChannels: number;
  protected readonly options: UnitOptions;
  private readonly projects: boolean;
  private readonly shortcutLast: boolean;

  constructor(opts: UnitOptions, layout: UnitLayout = TORCHVISION) {
    super();
    this.options = { ...opts, convs: opts.convs.map((c) => ({ ...c })) };
    const { inChannels, convs, preact, seReduction, dropout } = opts;
    checkKernel("ResNet block", "skipKernelSize", opts.skipKernelSize);
    for (const c of convs) checkKernel("ResNet block", "kernelSize", c.kernelSize);
    check(
      isInt(seReduction) && seReduction >= 0,
      "ResNet block",
      "seReduction must be an integer >= 0",
      "seReduction",
      seReduction,
    );
    this.outChannels = (convs[convs.length - 1] as UnitConv).outChannels;
    this.shortcutLast = layout.shortcutLast ?? false;
    let c = inChannels;
    convs.forEach((spec, i) => {
      const norm = new BatchNorm2d({ numFeatures: preact ? c : spec.outChannels });
      if (preact) this.norms.push(this.registerModule(`bn${i + 1}`, norm));
      this.convs.push(
        this.registerModule(`conv${i + 1}`, convBN(c, spec.outChannels, spec.kernelSize, spec.stride, spec.groups)),
      );
      if (!preact) this.norms.push(this.registerModule(`bn${i + 1}`, norm));
      if (i === 0 && layout.reluModule) this.relu = this.registerModule("relu", new ReLU({ inplace: true }));
      c = spec.outChannels;
    });
    if (opts.dropoutBetweenConvs) this.dropout = this.registerModule("dropout", new Dropout(dropout));
    const stride = convs.reduce((s, spec) => s * spec.stride, 1);
    this.projects = (stride !== 1 || inChannels !== this.outChannels) && opts.shortcut === "B";
    const registerShortcut = (): Module | undefined =>
      stride === 1 && inChannels === this.outChannels
        ? undefined
        : this.registerModule(layout.shortcutKey, this.makeShortcut(stride, layout));
    const registerSe = (): SqueezeExcite | undefined =>
      seReduction > 0
        ? this.registerModule("se", new SqueezeExcite({ channels: this.outChannels, reduction: seReduction }))
        : undefined;
    if (layout.seBeforeShortcut) {
      this.se = registerSe();
      this.shortcut = registerShortcut();
    } else {
      this.shortcut = registerShortcut();
      this.se = registerSe();
    }
    if (!opts.dropoutBetweenConvs && dropout > 0) this.dropout = this.registerModule("dropout", new Dropout(dropout));
  }

  private makeShortcut(stride: number, layout: UnitLayout): Module {
    const { inChannels, preact, shortcut, skipKernelSize } = this.options;
    if (shortcut === "A") return new ZeroPadShortcut(inChannels, this.outChannels, stride);
    const proj = convBN(inChannels, this.outChannels, skipKernelSize, stride);
    if (layout.shortcutKey === "shortcut") return proj;
    return new Sequential(preact ? [proj] : [proj, new BatchNorm2d({ numFeatures: this.outChannels })]);
  }

  forward(x: Tensor): Tensor {
    const { preact, dropoutBetweenConvs } = this.options;
    const last = this.convs.length - 1;
    // the CIFAR ResNet's ReLU goes through its `relu` child, so summaries list its calls
    const relu = (t: Tensor): Tensor => (this.relu === undefined ? reluInPlace(t) : this.relu.forward(t));
    // the shared first BN-ReLU of a pre-activation unit feeds its projection too
    const pre = preact ? reluInPlace((this.norms[0] as BatchNorm2d).forward(x)) : x;
    const runShortcut = (): Tensor =>
      this.shortcut === undefined ? x : this.shortcut.forward(this.projects ? pre : x);
    const first = this.shortcutLast ? undefined : runShortcut();
    // post-activation: BN, the addition and the ReLU after it run as one fused kernel in training
    // (BatchNorm2d.forwardRelu) when nothing sits between them
    const fuseLast = !preact && this.se === undefined && (this.options.dropPath === 0 || !this.training);
    let out = pre;
    for (const [i, conv] of this.convs.entries()) {
      if (preact && i > 0) out = reluInPlace((this.norms[i] as BatchNorm2d).forward(out));
      if (dropoutBetweenConvs && i > 0) out = (this.dropout as Dropout).forward(out);
      out = conv.forward(out);
      const norm = this.norms[i] as BatchNorm2d;
      if (!preact && i < last) out = norm.forwardRelu(out, undefined, this.relu);
      else if (!preact && !(fuseLast && i === last)) out = norm.forward(out);
    }
    if (fuseLast) out = (this.norms[last] as BatchNorm2d).forwardRelu(out, first ?? runShortcut(), this.relu);
    else {
      if (this.se !== undefined) out = this.se.forward(out);
      out = dropPath(out, this.options.dropPath, this.training).add(first ?? runShortcut());
      if (!preact) out = relu(out);
    }
    return this.dropout === undefined || dropoutBetweenConvs ? out : this.dropout.forward(out);
  }

  toConfig(): ModuleConfig {
    return { ...this.options, type: this.constructor.name };
  }
}

/** Two kxk convolutions (He et al. 2015, Fig. 2); ReLU after the addition. */
export class BasicBlock extends ResidualUnit {}
/** 1x1 reduce, 3x3 (carrying the stride, as torchvision and fb.resnet.torch do), 1x1 expand x4. */
export class Bottleneck extends ResidualUnit {}
/** BN-ReLU-conv twice (He et al. 2016, Fig. 4e); the projection shortcut is a bare conv. */
export class PreActBasicBlock extends ResidualUnit {}
/** BN-ReLU-conv 1x1, 3x3, 1x1 (He et al. 2016): the unit of ResNet-164 and ResNet-1001. */
export class PreActBottleneck extends ResidualUnit {}

/** The CIFAR ResNet's basic block: SE registered before the shortcut, a `relu` child. */
export class CifarBasicBlock extends ResidualUnit {
  constructor(opts: UnitOptions) {
    super(opts, { shortcutKey: "downsample", seBeforeShortcut: true, reluModule: true });
  }
}

/** ResNeXt's grouped bottleneck (Xie et al. 2017): SE registered before the shortcut. */
export class ResNeXtBlock extends ResidualUnit {
  constructor(opts: UnitOptions) {
    super(opts, { shortcutKey: "downsample", seBeforeShortcut: true, reluModule: false, shortcutLast: true });
  }
}

/** WRN's pre-activation block: dropout between the convs, a bare 1x1 conv named `shortcut`. */
export class WideBlock extends ResidualUnit {
  constructor(opts: UnitOptions) {
    super(opts, { shortcutKey: "shortcut", seBeforeShortcut: false, reluModule: false });
  }
}

export type BlockKind = "basic" | "bottleneck";
export type UnitClass = new (opts: UnitOptions) => ResidualUnit;

/** torchvision's class for a block kind, the default of every network. */
export function torchvisionUnit(kind: BlockKind, preact: boolean): UnitClass {
  if (kind === "basic") return preact ? PreActBasicBlock : BasicBlock;
  return preact ? PreActBottleneck : Bottleneck;
}
