// Weight initializers with PyTorch's semantics (torch.nn.init), drawing from libtorch's
// generator so the same seed gives the same numbers as PyTorch.
import { fillInPlace, normalInPlace, uniformInPlace } from "../ops/inplace";
import { ArgumentError } from "../tensor/errors";
import type { Tensor } from "../tensor/tensor";

export type Nonlinearity = "linear" | "conv2d" | "sigmoid" | "tanh" | "relu" | "leaky_relu" | "selu";
export type FanMode = "fan_in" | "fan_out";

export function calculateGain(nonlinearity: Nonlinearity, param?: number): number {
  switch (nonlinearity) {
    case "linear":
    case "conv2d":
    case "sigmoid":
      return 1;
    case "tanh":
      return 5 / 3;
    case "relu":
      return Math.SQRT2;
    case "leaky_relu": {
      const slope = param ?? 0.01;
      return Math.sqrt(2 / (1 + slope * slope));
    }
    case "selu":
      return 3 / 4;
    default:
      throw new ArgumentError(`calculateGain: unknown nonlinearity. Received: nonlinearity=${String(nonlinearity)}`);
  }
}

/** fan_in = in_channels · receptive field, fan_out = out_channels · receptive field. */
export function fanInAndOut(t: Tensor): { fanIn: number; fanOut: number } {
  const s = t.shape;
  if (s.length < 2)
    throw new ArgumentError(
      `init: fan in and fan out need a tensor of 2 or more dimensions. Received: shape=[${s.join(", ")}]`,
    );
  const receptive = s.slice(2).reduce((a, b) => a * b, 1);
  return { fanIn: (s[1] as number) * receptive, fanOut: (s[0] as number) * receptive };
}

function fan(t: Tensor, mode: FanMode): number {
  if (mode !== "fan_in" && mode !== "fan_out")
    throw new ArgumentError(`init: mode must be "fan_in" or "fan_out". Received: mode=${String(mode)}`);
  const { fanIn, fanOut } = fanInAndOut(t);
  return mode === "fan_in" ? fanIn : fanOut;
}

export interface KaimingOptions {
  /** Negative slope of the leaky ReLU after this layer (0 for ReLU). */
  a?: number;
  mode?: FanMode;
  nonlinearity?: Nonlinearity;
}

export function kaimingUniform(t: Tensor, opts: KaimingOptions = {}): Tensor {
  const gain = calculateGain(opts.nonlinearity ?? "leaky_relu", opts.a ?? 0);
  const bound = Math.sqrt(3) * (gain / Math.sqrt(fan(t, opts.mode ?? "fan_in")));
  uniformInPlace(t, -bound, bound);
  return t;
}

export function kaimingNormal(t: Tensor, opts: KaimingOptions = {}): Tensor {
  const gain = calculateGain(opts.nonlinearity ?? "leaky_relu", opts.a ?? 0);
  normalInPlace(t, 0, gain / Math.sqrt(fan(t, opts.mode ?? "fan_in")));
  return t;
}

export function xavierUniform(t: Tensor, gain = 1): Tensor {
  const { fanIn, fanOut } = fanInAndOut(t);
  const bound = Math.sqrt(3) * gain * Math.sqrt(2 / (fanIn + fanOut));
  uniformInPlace(t, -bound, bound);
  return t;
}

export function xavierNormal(t: Tensor, gain = 1): Tensor {
  const { fanIn, fanOut } = fanInAndOut(t);
  normalInPlace(t, 0, gain * Math.sqrt(2 / (fanIn + fanOut)));
  return t;
}

export function uniform(t: Tensor, low = 0, high = 1): Tensor {
  uniformInPlace(t, low, high);
  return t;
}
export function normal(t: Tensor, mean = 0, std = 1): Tensor {
  normalInPlace(t, mean, std);
  return t;
}
export function constant(t: Tensor, value: number): Tensor {
  fillInPlace(t, value);
  return t;
}
export const zeros = (t: Tensor): Tensor => constant(t, 0);
export const ones = (t: Tensor): Tensor => constant(t, 1);

/**
 * PyTorch's default for Conv and Linear (reset_parameters): weight ~ kaiming_uniform(a=√5),
 * i.e. U(±1/√fan_in); bias ~ U(±1/√fan_in).
 */
export function torchDefault(weight: Tensor, bias?: Tensor): void {
  kaimingUniform(weight, { a: Math.sqrt(5) });
  if (bias !== undefined) {
    const { fanIn } = fanInAndOut(weight);
    const bound = fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0;
    uniformInPlace(bias, -bound, bound);
  }
}
