// Augmentation settings, the per-sample parameters drawn from the counter-based generator
// (the native assembler applies them), and mixup / cutmix on the assembled batch tensors.
import { arange, tensor } from "../ops/creation";
import { add, ge, logicalAnd, lt, mul, where } from "../ops/math";
import { indexSelect, oneHot, reshape, to } from "../ops/shape";
import { ArgumentError } from "../tensor/errors";
import { scope } from "../tensor/scope";
import type { Tensor } from "../tensor/tensor";
import type { CounterRng } from "./rng";

export interface AugmentOptions {
  /** Pad by `padding` pixels (zeros, or a mirror of the image) and take a random crop of the original size. */
  crop?: { padding: number; mode: "zero" | "reflect" };
  /** Random horizontal flip with probability 1/2. */
  flip?: boolean;
  /** Cutout (DeVries & Taylor 2017): one size x size square, centred anywhere, clipped at the border. */
  cutout?: { size: number };
  /** Random erasing (Zhong et al. 2020) with torchvision's defaults: area 2-33%, aspect 0.3-3.3. */
  randomErasing?: { p: number };
  /** mixup (Zhang et al. 2018): lam ~ Beta(alpha, alpha). */
  mixup?: { alpha: number };
  /** CutMix (Yun et al. 2019); with mixup as well, p is the chance of cutmix (default 0.5), else of applying it at all (default 1). */
  cutmix?: { alpha: number; p?: number };
}

/** Numbers per sample handed to the native assembler (native/augment.cc, enum Param). */
export const PARAMS_PER_SAMPLE = 11;

function fail(what: string, name: string, value: unknown): never {
  throw new ArgumentError(`DataLoader: ${what}. Received: ${name}=${JSON.stringify(value)}`);
}

/** Checks augmentation options against the image size; returns a copy with defaults filled in. */
export function checkAugment(aug: AugmentOptions, height: number, width: number): AugmentOptions {
  const out: AugmentOptions = {};
  if (aug.crop !== undefined) {
    const { padding, mode } = aug.crop;
    if (!Number.isInteger(padding) || padding < 0)
      fail("crop.padding must be an integer >= 0", "crop.padding", padding);
    if (mode !== "zero" && mode !== "reflect") fail('crop.mode must be "zero" or "reflect"', "crop.mode", mode);
    if (mode === "reflect" && (padding >= height || padding >= width))
      fail(`reflect padding must be smaller than the image (${height}x${width})`, "crop.padding", padding);
    out.crop = { padding, mode };
  }
  if (aug.flip !== undefined) {
    if (typeof aug.flip !== "boolean") fail("flip must be a boolean", "flip", aug.flip);
    out.flip = aug.flip;
  }
  if (aug.cutout !== undefined) {
    const { size } = aug.cutout;
    if (!Number.isInteger(size) || size < 1) fail("cutout.size must be an integer >= 1", "cutout.size", size);
    out.cutout = { size };
  }
  if (aug.randomErasing !== undefined) {
    const { p } = aug.randomErasing;
    if (!(p >= 0 && p <= 1)) fail("randomErasing.p must be in [0, 1]", "randomErasing.p", p);
    out.randomErasing = { p };
  }
  if (aug.mixup !== undefined) {
    if (!(aug.mixup.alpha > 0)) fail("mixup.alpha must be > 0", "mixup.alpha", aug.mixup.alpha);
    out.mixup = { alpha: aug.mixup.alpha };
  }
  if (aug.cutmix !== undefined) {
    const { alpha } = aug.cutmix;
    const p = aug.cutmix.p ?? (aug.mixup !== undefined ? 0.5 : 1);
    if (!(alpha > 0)) fail("cutmix.alpha must be > 0", "cutmix.alpha", alpha);
    if (!(p >= 0 && p <= 1)) fail("cutmix.p must be in [0, 1]", "cutmix.p", p);
    out.cutmix = { alpha, p };
  }
  return out;
}

/** A box [y0, x0, y1, x1) clipped to the image. */
function clippedBox(cy: number, cx: number, bh: number, bw: number, h: number, w: number): number[] {
  const y0 = cy - Math.floor(bh / 2);
  const x0 = cx - Math.floor(bw / 2);
  return [Math.max(0, y0), Math.max(0, x0), Math.min(h, y0 + bh), Math.min(w, x0 + bw)];
}

/** torchvision RandomErasing.get_params with scale (0.02, 0.33) and ratio (0.3, 3.3); empty box when no try fits. */
function erasingBox(rng: CounterRng, h: number, w: number): number[] {
  const logLo = Math.log(0.3);
  const logHi = Math.log(3.3);
  for (let attempt = 0; attempt < 10; attempt++) {
    const area = h * w * (0.02 + 0.31 * rng.uniform());
    const ratio = Math.exp(logLo + (logHi - logLo) * rng.uniform());
    const eh = Math.round(Math.sqrt(area * ratio));
    const ew = Math.round(Math.sqrt(area / ratio));
    if (eh >= h || ew >= w || eh < 1 || ew < 1) continue;
    const y0 = rng.int(h - eh + 1);
    const x0 = rng.int(w - ew + 1);
    return [y0, x0, y0 + eh, x0 + ew];
  }
  return [0, 0, 0, 0];
}

/** Per-sample parameters for one batch: crop offsets, flip, cutout box, erasing box. */
export function sampleParams(rng: CounterRng, aug: AugmentOptions, count: number, h: number, w: number): Int32Array {
  const params = new Int32Array(count * PARAMS_PER_SAMPLE);
  const padding = aug.crop?.padding ?? 0;
  for (let i = 0; i < count; i++) {
    const p = i * PARAMS_PER_SAMPLE;
    // Without a crop the offset is `padding` = 0, i.e. the image itself.
    params[p] = aug.crop ? rng.int(2 * padding + 1) : padding;
    params[p + 1] = aug.crop ? rng.int(2 * padding + 1) : padding;
    params[p + 2] = aug.flip && rng.uniform() < 0.5 ? 1 : 0;
    if (aug.cutout) params.set(clippedBox(rng.int(h), rng.int(w), aug.cutout.size, aug.cutout.size, h, w), p + 3);
    if (aug.randomErasing && rng.uniform() < aug.randomErasing.p) params.set(erasingBox(rng, h, w), p + 7);
  }
  return params;
}

export interface MixDecision {
  kind: "mixup" | "cutmix" | "none";
  /** Weight of the batch's own images and labels. */
  lam: number;
  /** Partner of each sample. */
  perm: Int32Array;
  /** cutmix: the pasted box [y0, x0, y1, x1). */
  box?: number[];
}

/** Draws one batch's mixing: which kind, lam, the partner permutation and (cutmix) the box. */
export function sampleMix(rng: CounterRng, aug: AugmentOptions, count: number, h: number, w: number): MixDecision {
  const perm = rng.permutation(count);
  let kind: MixDecision["kind"] = "none";
  if (aug.cutmix && rng.uniform() < (aug.cutmix.p as number)) kind = "cutmix";
  else if (aug.mixup) kind = "mixup";
  if (kind === "none") return { kind, lam: 1, perm };
  const alpha = kind === "cutmix" ? (aug.cutmix?.alpha as number) : (aug.mixup?.alpha as number);
  const lam = rng.beta(alpha, alpha);
  if (kind === "mixup") return { kind, lam, perm };
  // CutMix: a box of area (1 - lam) * H * W centred uniformly, clipped; lam is then the kept area.
  const cut = Math.sqrt(1 - lam);
  const box = clippedBox(rng.int(h), rng.int(w), Math.floor(h * cut), Math.floor(w * cut), h, w);
  const boxArea = Math.max(0, box[2] - box[0]) * Math.max(0, box[3] - box[1]);
  return { kind, lam: 1 - boxArea / (h * w), perm, box };
}

/**
 * Applies a mix decision to a normalized batch x [B,C,H,W] with int64 labels y [B]: returns
 * the mixed images and soft targets [B, numClasses] (float32). Inputs are left untouched.
 */
export function applyMix(x: Tensor, y: Tensor, mix: MixDecision, numClasses: number): { x: Tensor; target: Tensor } {
  return scope(() => {
    const device = x.device;
    const soft = to(oneHot(y, numClasses), "float32");
    if (mix.kind === "none") return { x: to(x, "float32"), target: soft };
    const perm = tensor(mix.perm, [mix.perm.length], { dtype: "int64", device });
    const partner = indexSelect(x, 0, perm);
    const target = add(mul(soft, mix.lam), mul(indexSelect(soft, 0, perm), 1 - mix.lam));
    if (mix.kind === "mixup") return { x: add(mul(x, mix.lam), mul(partner, 1 - mix.lam)), target };
    const [y0, x0, y1, x1] = mix.box as number[];
    const [, , h, w] = x.shape;
    const rows = arange(0, h, 1, { device });
    const cols = arange(0, w, 1, { device });
    const inRows = reshape(logicalAnd(ge(rows, y0), lt(rows, y1)), [h, 1]);
    const inCols = reshape(logicalAnd(ge(cols, x0), lt(cols, x1)), [1, w]);
    return { x: where(logicalAnd(inRows, inCols), partner, x), target };
  });
}
