// A seeded, class-stratified train/validation split and per-channel statistics.
import { ArgumentError } from "../tensor/errors";
import { type ImageDataset, subset } from "./dataset";
import { CounterRng, Stream } from "./rng";

export interface SplitOptions {
  /** Share of each class held out for validation, in [0, 1). */
  valFraction: number;
  seed: number;
}

/**
 * Holds out round(valFraction * count) images of every class (a seeded random choice), so
 * train and val keep the class proportions of ds. Both keep ds's order.
 */
export function splitTrainVal(ds: ImageDataset, opts: SplitOptions): { train: ImageDataset; val: ImageDataset } {
  const { valFraction, seed } = opts;
  if (!(valFraction >= 0 && valFraction < 1))
    throw new ArgumentError(`splitTrainVal: valFraction must be in [0, 1). Received: valFraction=${valFraction}`);
  if (!Number.isSafeInteger(seed) || seed < 0)
    throw new ArgumentError(`splitTrainVal: seed must be a non-negative integer. Received: seed=${seed}`);
  const byClass: number[][] = Array.from({ length: ds.numClasses }, () => []);
  for (let i = 0; i < ds.n; i++) byClass[ds.labels[i]].push(i);
  const isVal = new Uint8Array(ds.n);
  byClass.forEach((members, cls) => {
    const rng = new CounterRng(seed, cls, 0, Stream.split);
    const order = rng.permutation(members.length);
    const take = Math.round(valFraction * members.length);
    for (let k = 0; k < take; k++) isVal[members[order[k]]] = 1;
  });
  const val: number[] = [];
  const train: number[] = [];
  for (let i = 0; i < ds.n; i++) (isVal[i] ? val : train).push(i);
  return { train: subset(ds, Int32Array.from(train)), val: subset(ds, Int32Array.from(val)) };
}

/**
 * Mean and standard deviation (population, over every pixel of every image) of each channel,
 * in [0, 1] units: what Normalize(mean, std) expects. Exact, via a 256-bin histogram per channel.
 */
export function channelStats(ds: ImageDataset): { mean: number[]; std: number[] } {
  if (ds.n === 0) throw new ArgumentError(`channelStats: the data set "${ds.name}" is empty. Received: n=0`);
  const plane = ds.height * ds.width;
  const mean: number[] = [];
  const std: number[] = [];
  for (let c = 0; c < ds.channels; c++) {
    const hist = new Float64Array(256);
    for (let i = 0; i < ds.n; i++) {
      const start = (i * ds.channels + c) * plane;
      for (let p = start; p < start + plane; p++) hist[ds.images[p]]++;
    }
    const count = ds.n * plane;
    let sum = 0;
    for (let v = 0; v < 256; v++) sum += hist[v] * v;
    const m = sum / count;
    let sq = 0;
    for (let v = 0; v < 256; v++) sq += hist[v] * (v - m) * (v - m);
    mean.push(m / 255);
    std.push(Math.sqrt(sq / count) / 255);
  }
  return { mean, std };
}

/**
 * channelStats for normalizing ds: refuses a channel whose std is 0, i.e. images that are constant
 * in that channel (every pixel of every image the same value), which normalization would divide
 * by zero and which no model can learn from.
 */
export function normalizationStats(ds: ImageDataset): { mean: number[]; std: number[] } {
  const stats = channelStats(ds);
  const flat = stats.std.flatMap((s, c) => (s > 0 ? [] : [c]));
  if (flat.length > 0)
    throw new ArgumentError(
      `the images of "${ds.name}" are constant in channel${flat.length > 1 ? "s" : ""} ${flat.join(", ")} ` +
        `(every pixel of all ${ds.n} images is ${flat.map((c) => Math.round(255 * (stats.mean[c] as number))).join(", ")}), ` +
        "so their standard deviation is 0 and normalizing would divide by it. Check the data set (its folder, --image-size) and train on varied images. " +
        `Received: std=${JSON.stringify(stats.std)}`,
    );
  return stats;
}
