// Statistics for an ablation study: one validation accuracy per seed in each (model, techniques)
// cell, with seeds paired across cells (seed s of "baseline" and of "+se" share the initial weights
// and the data order), so a technique's gain is the mean of per-seed differences, not a difference
// of means. Intervals are percentile bootstraps (Efron & Tibshirani 1993, ch. 13) drawn from a
// CounterRng: the same data and seed always give the same interval.
//
// Seed-aligned arrays: `values[s]` is seed s's result; null or undefined marks a seed with no
// result (a failed run), and the paired functions use only seeds present in every cell they pair.
//
// Errors and NaN: malformed input (mismatched lengths, non-finite values, bad options) is an
// ArgumentError; a data situation with no answer (fewer than 2 pairs, a constant variable) gives
// r = NaN and a `reason` instead, so one degenerate cell does not stop a whole report.
import { CounterRng } from "../data/rng";
import { ArgumentError, checkArg, isPlainObject } from "../tensor/errors";

export interface BootstrapOptions {
  /** Coverage of the two-sided percentile interval, in (0, 1). Default 0.95. */
  level?: number;
  /** Number of bootstrap resamples. Default 10000: percentiles stable to ~0.5% of the width. */
  resamples?: number;
  /** Seed of the resampling stream (a non-negative safe integer). Default 0. */
  seed?: number;
}

export interface CorrelationOptions extends BootstrapOptions {
  /** Default "pearson". */
  method?: "pearson" | "spearman";
}

const DEFAULTS = Object.freeze({ level: 0.95, resamples: 10000, seed: 0 });
/** The CounterRng purpose word of bootstrap streams, apart from the loader's and the search's. */
const BOOTSTRAP_STREAM = 23;

export interface MeanInterval {
  mean: number;
  lo: number;
  hi: number;
  n: number;
  /** Sample standard deviation (n - 1 in the denominator); NaN for a single value. */
  std: number;
  /** False for a single value: then lo = hi = mean and there is no interval to show. */
  hasInterval: boolean;
}

/** A paired result: which seeds (indices into the aligned arrays) it used. */
export interface PairedInterval extends MeanInterval {
  seeds: number[];
}

export interface InteractionResult {
  /** Per seed (ab - base) - ((a - base) + (b - base)); above 0: the two help more together than apart. */
  interaction: MeanInterval;
  /** Per seed ab - base. */
  combinedGain: MeanInterval;
  /** Per seed (a - base) + (b - base). */
  sumOfGains: MeanInterval;
  seeds: number[];
}

export interface Correlation {
  r: number;
  n: number;
  /** Why r is NaN: fewer than 2 pairs, or a variable that does not vary. */
  reason?: string;
}

export interface CorrelationInterval extends Correlation {
  lo: number;
  hi: number;
  /** Resamples that gave a correlation; those where a variable came out constant are skipped. */
  used: number;
}

export type GainCorrelationPart = Pick<CorrelationInterval, "r" | "lo" | "hi" | "used">;

export interface GainCorrelation {
  pearson: GainCorrelationPart;
  spearman: GainCorrelationPart;
  techniques: number;
  /** Mean gain per technique, the points correlated. */
  smallMeans: number[];
  bigMeans: number[];
  /** Set when the correlation says little by construction (fewer than 3 techniques) or is undefined. */
  note?: string;
}

export type SeedValues = readonly (number | null | undefined)[];

// ---------------------------------------------------------------- intervals of means

/** Mean of the values with a percentile-bootstrap interval and the sample standard deviation. */
export function meanInterval(values: readonly number[], opts?: BootstrapOptions): MeanInterval {
  const fn = "meanInterval";
  const o = resolve(opts, fn);
  finiteArray(values, fn, "values");
  checkArg(values.length > 0, fn, "values must hold at least one number", "values", values);
  return intervalOfMean(values, o);
}

/** Mean per-seed gain treated[s] - baseline[s] over the seeds both have, with a bootstrap over those seeds. */
export function pairedGain(treated: SeedValues, baseline: SeedValues, opts?: BootstrapOptions): PairedInterval {
  const fn = "pairedGain";
  const o = resolve(opts, fn);
  const seeds = pairedSeeds(fn, { treated, baseline });
  const diffs = seeds.map((s) => (treated[s] as number) - (baseline[s] as number));
  return { ...intervalOfMean(diffs, o), seeds };
}

/** Per-seed interaction of two techniques, (ab - base) - ((a - base) + (b - base)), with both gains. */
export function interaction(
  ab: SeedValues,
  a: SeedValues,
  b: SeedValues,
  base: SeedValues,
  opts?: BootstrapOptions,
): InteractionResult {
  const fn = "interaction";
  const o = resolve(opts, fn);
  const seeds = pairedSeeds(fn, { ab, a, b, base });
  const at = (v: SeedValues, s: number) => v[s] as number;
  const combined = seeds.map((s) => at(ab, s) - at(base, s));
  const sum = seeds.map((s) => at(a, s) - at(base, s) + (at(b, s) - at(base, s)));
  const perSeed = combined.map((c, i) => c - (sum[i] as number));
  // The same seed and count draw the same resampled seeds for all three, so they stay paired.
  return {
    interaction: intervalOfMean(perSeed, o),
    combinedGain: intervalOfMean(combined, o),
    sumOfGains: intervalOfMean(sum, o),
    seeds,
  };
}

function intervalOfMean(values: readonly number[], o: Resolved): MeanInterval {
  const n = values.length;
  const mean = meanOf(values);
  const std = n > 1 ? Math.sqrt(values.reduce((s, v) => s + (v - mean) ** 2, 0) / (n - 1)) : Number.NaN;
  if (n === 1) return { mean, lo: mean, hi: mean, n, std, hasInterval: false };
  const rng = new CounterRng(o.seed, 0, 0, BOOTSTRAP_STREAM);
  const means = new Float64Array(o.resamples);
  for (let r = 0; r < o.resamples; r++) {
    let sum = 0;
    for (let i = 0; i < n; i++) sum += values[rng.int(n)] as number;
    means[r] = sum / n;
  }
  const [lo, hi] = percentileInterval(means, o.level);
  return { mean, lo, hi, n, std, hasInterval: true };
}

/** Indices present (a finite number) in every array; the arrays must be equally long and share one. */
function pairedSeeds(fn: string, arrays: Record<string, SeedValues>): number[] {
  const entries = Object.entries(arrays);
  const [firstName, first] = entries[0] as [string, SeedValues];
  for (const [name, v] of entries) {
    checkArg(
      Array.isArray(v),
      fn,
      `${name} must be an array with one entry per seed (null for a missing one)`,
      name,
      v,
    );
    v.forEach((x, s) => {
      const ok = x === null || x === undefined || (typeof x === "number" && Number.isFinite(x));
      checkArg(ok, fn, `${name}[${s}] must be a finite number, or null for a seed with no result`, `${name}[${s}]`, x);
    });
    if (v.length !== first.length) {
      throw new ArgumentError(
        `${fn}: the arrays must be aligned by seed (one entry per seed, null for a missing one), but ` +
          `${name} has ${v.length} and ${firstName} has ${first.length}. Received: ${name}.length=${v.length}`,
      );
    }
  }
  checkArg(first.length > 0, fn, "the arrays must hold at least one seed", `${firstName}.length`, 0);
  const seeds = first.flatMap((_, s) => (entries.every(([, v]) => typeof v[s] === "number") ? [s] : []));
  if (seeds.length === 0) {
    const names = entries.map(([name]) => name).join(", ");
    throw new ArgumentError(`${fn}: no seed has a result in all of ${names}; rerun the missing seeds or drop a cell`);
  }
  return seeds;
}

// ---------------------------------------------------------------- correlations

/** Pearson's r; NaN with a reason for fewer than 2 pairs or a constant variable. */
export function pearson(x: readonly number[], y: readonly number[]): Correlation {
  checkPairs(x, y, "pearson");
  return withReason(pearsonR(x, y), x, y);
}

/** Spearman's rank correlation (Pearson's r of ranks, ties given their average rank); NaN as pearson. */
export function spearman(x: readonly number[], y: readonly number[]): Correlation {
  checkPairs(x, y, "spearman");
  return withReason(spearmanR(x, y), x, y);
}

/** A correlation with a bootstrap interval over the (x[i], y[i]) pairs; constant resamples are skipped. */
export function correlationInterval(
  x: readonly number[],
  y: readonly number[],
  opts?: CorrelationOptions,
): CorrelationInterval {
  const fn = "correlationInterval";
  const o = resolve(opts, fn);
  const method = opts?.method ?? "pearson";
  const known = method === "pearson" || method === "spearman";
  checkArg(known, fn, 'method must be "pearson" or "spearman"', "method", method);
  checkPairs(x, y, fn);
  const corr = method === "pearson" ? pearsonR : spearmanR;
  const point = withReason(corr(x, y), x, y);
  const n = x.length;
  const rs: number[] = [];
  if (n >= 2) {
    const rng = new CounterRng(o.seed, 0, 0, BOOTSTRAP_STREAM);
    const [xs, ys] = [new Array<number>(n), new Array<number>(n)];
    for (let r = 0; r < o.resamples; r++) {
      for (let i = 0; i < n; i++) {
        const k = rng.int(n);
        [xs[i], ys[i]] = [x[k] as number, y[k] as number];
      }
      const v = corr(xs, ys);
      if (!Number.isNaN(v)) rs.push(v);
    }
  }
  const [lo, hi] = rs.length > 0 ? percentileInterval(Float64Array.from(rs), o.level) : [Number.NaN, Number.NaN];
  return { ...point, lo, hi, used: rs.length };
}

/** Correlation across techniques of mean gains on two models; the interval resamples seeds per technique and model. */
export function gainCorrelation(
  smallGains: readonly (readonly number[])[],
  bigGains: readonly (readonly number[])[],
  opts?: BootstrapOptions,
): GainCorrelation {
  const fn = "gainCorrelation";
  const o = resolve(opts, fn);
  for (const [name, gains] of Object.entries({ smallGains, bigGains })) {
    const what = `${name} must be an array of per-seed gains per technique`;
    checkArg(Array.isArray(gains), fn, what, name, gains);
    gains.forEach((g, t) => {
      finiteArray(g, fn, `${name}[${t}]`);
      checkArg(g.length > 0, fn, `${name}[${t}] must hold at least one seed's gain`, `${name}[${t}]`, g);
    });
  }
  const techniques = smallGains.length;
  if (bigGains.length !== techniques) {
    throw new ArgumentError(
      `${fn}: smallGains and bigGains need one entry per technique, in the same order, but they have ` +
        `${techniques} and ${bigGains.length}. Received: bigGains.length=${bigGains.length}`,
    );
  }
  const smallMeans = smallGains.map(meanOf);
  const bigMeans = bigGains.map(meanOf);
  const rs = { pearson: [] as number[], spearman: [] as number[] };
  if (techniques >= 2) {
    const rng = new CounterRng(o.seed, 0, 0, BOOTSTRAP_STREAM);
    const resampledMean = (g: readonly number[]) => {
      let sum = 0;
      for (let i = 0; i < g.length; i++) sum += g[rng.int(g.length)] as number;
      return sum / g.length;
    };
    const [xs, ys] = [new Array<number>(techniques), new Array<number>(techniques)];
    for (let r = 0; r < o.resamples; r++) {
      for (let t = 0; t < techniques; t++) {
        xs[t] = resampledMean(smallGains[t] as number[]);
        ys[t] = resampledMean(bigGains[t] as number[]);
      }
      const p = pearsonR(xs, ys);
      if (!Number.isNaN(p)) rs.pearson.push(p);
      const s = spearmanR(xs, ys);
      if (!Number.isNaN(s)) rs.spearman.push(s);
    }
  }
  const part = (r: number, sample: number[]): GainCorrelationPart => {
    const [lo, hi] =
      sample.length > 0 ? percentileInterval(Float64Array.from(sample), o.level) : [Number.NaN, Number.NaN];
    return { r, lo, hi, used: sample.length };
  };
  const pearsonPoint = withReason(pearsonR(smallMeans, bigMeans), smallMeans, bigMeans);
  const result: GainCorrelation = {
    pearson: part(pearsonPoint.r, rs.pearson),
    spearman: part(spearmanR(smallMeans, bigMeans), rs.spearman),
    techniques,
    smallMeans,
    bigMeans,
  };
  if (techniques === 2) {
    result.note = "only 2 techniques: a correlation of 2 points is +1 or -1 by construction; compare more techniques";
  } else if (pearsonPoint.reason !== undefined) {
    result.note = pearsonPoint.reason;
  }
  return result;
}

function checkPairs(x: readonly number[], y: readonly number[], fn: string): void {
  finiteArray(x, fn, "x");
  finiteArray(y, fn, "y");
  if (x.length !== y.length) {
    throw new ArgumentError(
      `${fn}: x and y must be paired item by item, but x has ${x.length} values and y has ${y.length}. ` +
        `Received: y.length=${y.length}`,
    );
  }
}

function withReason(r: number, x: readonly number[], y: readonly number[]): Correlation {
  const n = x.length;
  if (n < 2) return { r: Number.NaN, n, reason: `a correlation needs at least 2 pairs; got ${n}` };
  if (!Number.isNaN(r)) return { r, n };
  const which = isConstant(x) ? (isConstant(y) ? "x and y are" : "x is") : "y is";
  return { r, n, reason: `${which} constant, so the correlation is undefined` };
}

/** Pearson's r, NaN when a variable is constant or there are fewer than 2 pairs; clamped to [-1, 1]. */
function pearsonR(x: readonly number[], y: readonly number[]): number {
  const n = x.length;
  // An exact test: the deviations of equal values from their rounded mean are not always exactly 0.
  if (n < 2 || isConstant(x) || isConstant(y)) return Number.NaN;
  const [mx, my] = [meanOf(x), meanOf(y)];
  let [sxy, sxx, syy] = [0, 0, 0];
  for (let i = 0; i < n; i++) {
    const [dx, dy] = [(x[i] as number) - mx, (y[i] as number) - my];
    sxy += dx * dy;
    sxx += dx * dx;
    syy += dy * dy;
  }
  return Math.max(-1, Math.min(1, sxy / Math.sqrt(sxx * syy)));
}

function spearmanR(x: readonly number[], y: readonly number[]): number {
  return pearsonR(ranks(x), ranks(y));
}

/** 1-based ranks; tied values share the average of the ranks they span. */
function ranks(v: readonly number[]): number[] {
  const order = v.map((_, i) => i).sort((i, j) => (v[i] as number) - (v[j] as number));
  const out = new Array<number>(v.length);
  for (let start = 0; start < order.length; ) {
    let end = start + 1;
    while (end < order.length && v[order[end] as number] === v[order[start] as number]) end++;
    const rank = (start + 1 + end) / 2; // mean of ranks start+1 .. end
    for (let k = start; k < end; k++) out[order[k] as number] = rank;
    start = end;
  }
  return out;
}

function isConstant(v: readonly number[]): boolean {
  return v.every((x) => x === v[0]);
}

// ---------------------------------------------------------------- shared pieces

type Resolved = { level: number; resamples: number; seed: number };

function resolve(opts: BootstrapOptions | undefined, fn: string): Resolved {
  checkArg(
    opts === undefined || isPlainObject(opts),
    fn,
    "opts must be an options object such as { seed: 1 }",
    "opts",
    opts,
  );
  const o = { ...DEFAULTS, ...opts };
  checkArg(o.level > 0 && o.level < 1, fn, "level must be between 0 and 1, such as 0.95", "level", o.level);
  const resamplesOk = Number.isInteger(o.resamples) && o.resamples >= 1 && o.resamples <= 1e7;
  checkArg(resamplesOk, fn, "resamples must be a whole number from 1 to 1e7", "resamples", o.resamples);
  const seedOk = Number.isSafeInteger(o.seed) && o.seed >= 0;
  checkArg(seedOk, fn, "seed must be a non-negative safe integer", "seed", o.seed);
  return { level: o.level, resamples: o.resamples, seed: o.seed };
}

function finiteArray(v: unknown, fn: string, name: string): void {
  checkArg(Array.isArray(v), fn, `${name} must be an array of numbers`, name, v);
  (v as unknown[]).forEach((x, i) => {
    const ok = typeof x === "number" && Number.isFinite(x);
    checkArg(ok, fn, `${name}[${i}] must be a finite number; leave out failed runs first`, `${name}[${i}]`, x);
  });
}

function meanOf(v: readonly number[]): number {
  return v.reduce((s, x) => s + x, 0) / v.length;
}

/** The (1 - level)/2 and (1 + level)/2 quantiles, linearly interpolated between order statistics. */
function percentileInterval(sample: Float64Array, level: number): [number, number] {
  const sorted = sample.slice().sort();
  const quantile = (p: number) => {
    const h = (sorted.length - 1) * p;
    const k = Math.floor(h);
    const next = sorted[Math.min(k + 1, sorted.length - 1)] as number;
    return (sorted[k] as number) + (h - k) * (next - (sorted[k] as number));
  };
  return [quantile((1 - level) / 2), quantile((1 + level) / 2)];
}
