// Squeeze-and-excitation (Hu et al. 2018): global average pool, reduce, activate, expand, gate,
// rescale the channels. 1x1 convolutions stand in for the two fully connected layers (same
// parameters, no reshapes), named fc1/fc2.
import { adaptiveAvgPool2d } from "../ops/nn";
import { check, isInt, optionsArg } from "../ops/util";
import type { Tensor } from "../tensor/tensor";
import { Conv2d, Hardsigmoid, ReLU, Sigmoid } from "./layers";
import { Module, type ModuleConfig } from "./module";

export interface SqueezeExciteOptions {
  channels: number;
  /** Channels of the bottleneck; default channels / reduction. */
  reducedChannels?: number;
  /** Default 16 (the SENet paper's r). */
  reduction?: number;
  /** Activation between the two layers (default ReLU). */
  activation?: () => Module;
  /** Gate on the excitation: "sigmoid" (SENet, EfficientNet) or "hardsigmoid" (MobileNet v3). */
  gate?: "sigmoid" | "hardsigmoid";
}

export class SqueezeExcite extends Module {
  readonly fc1: Conv2d;
  readonly act: Module;
  readonly fc2: Conv2d;
  readonly gate: Module;
  private readonly config: ModuleConfig;

  constructor(opts: SqueezeExciteOptions) {
    super();
    optionsArg(opts, "SqueezeExcite", "opts", "{channels: 64}");
    const reduction = opts.reduction ?? 16;
    const reduced = opts.reducedChannels ?? Math.max(1, Math.floor(opts.channels / reduction));
    check(
      isInt(opts.channels) && opts.channels >= 1,
      "SqueezeExcite",
      "channels must be a positive integer",
      "channels",
      opts.channels,
    );
    check(
      isInt(reduced) && reduced >= 1,
      "SqueezeExcite",
      "reducedChannels must be a positive integer",
      "reducedChannels",
      reduced,
    );
    this.config = { channels: opts.channels, reducedChannels: reduced, gate: opts.gate ?? "sigmoid" };
    this.fc1 = this.registerModule(
      "fc1",
      new Conv2d({ inChannels: opts.channels, outChannels: reduced, kernelSize: 1 }),
    );
    this.act = this.registerModule("act", opts.activation ? opts.activation() : new ReLU());
    this.fc2 = this.registerModule(
      "fc2",
      new Conv2d({ inChannels: reduced, outChannels: opts.channels, kernelSize: 1 }),
    );
    this.gate = this.registerModule("gate", opts.gate === "hardsigmoid" ? new Hardsigmoid() : new Sigmoid());
  }

  forward(x: Tensor): Tensor {
    const s = adaptiveAvgPool2d(x, 1);
    const w = this.gate.forward(this.fc2.forward(this.act.forward(this.fc1.forward(s))));
    return x.mul(w);
  }

  toConfig(): ModuleConfig {
    return { ...this.config };
  }
}
