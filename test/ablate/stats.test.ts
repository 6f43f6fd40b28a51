// Ablation statistics against hand-computed values; the bootstraps for determinism, coverage of
// the mean, their width against the normal approximation, and the errors for malformed input.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  correlationInterval,
  gainCorrelation,
  interaction,
  meanInterval,
  pairedGain,
  pearson,
  spearman,
} from "../../src/ablate/stats";
import { CounterRng } from "../../src/data/rng";
import { ArgumentError } from "../../src/tensor/errors";

const close = (actual: number, expected: number, tol: number, what: string) =>
  assert.ok(Math.abs(actual - expected) <= tol, `${what}: ${actual} vs ${expected} (tolerance ${tol})`);

test("pearson of [1..5] and [2, 4, 5, 4, 5] is 6 / sqrt(60), computed by hand", () => {
  // means 3 and 4; dx = [-2, -1, 0, 1, 2], dy = [-2, 0, 1, 0, 1]
  // sum dx*dy = 4 + 0 + 0 + 0 + 2 = 6, sum dx^2 = 10, sum dy^2 = 4 + 0 + 1 + 0 + 1 = 6
  const r = pearson([1, 2, 3, 4, 5], [2, 4, 5, 4, 5]);
  close(r.r, 6 / Math.sqrt(60), 1e-12, "r");
  assert.equal(r.n, 5);
  assert.equal(r.reason, undefined);
  close(pearson([1, 2, 3], [30, 20, 10]).r, -1, 1e-12, "a perfect negative line");
});

test("spearman gives tied values their average rank, computed by hand", () => {
  // y = [2, 4, 5, 4, 5]: 2 is rank 1; the two 4s share (2 + 3) / 2 = 2.5; the two 5s share 4.5.
  // ranks x = [1..5] (mean 3), ranks y = [1, 2.5, 4.5, 2.5, 4.5] (mean 3)
  // sum dx*dy = 4 + 0.5 + 0 - 0.5 + 3 = 7, sum dx^2 = 10, sum dy^2 = 4 + 0.25 + 2.25 + 0.25 + 2.25 = 9
  close(spearman([1, 2, 3, 4, 5], [2, 4, 5, 4, 5]).r, 7 / Math.sqrt(90), 1e-12, "spearman with ties");
  // monotone but not linear: spearman 1, pearson below 1
  const [x, y] = [
    [1, 2, 3, 4],
    [1, 10, 100, 1000],
  ];
  close(spearman(x, y).r, 1, 1e-12, "monotone");
  assert.ok(pearson(x, y).r < 0.95);
});

test("a constant variable or fewer than 2 pairs gives r = NaN with a reason, not an error", () => {
  const flat = pearson([1, 2, 3], [0.1, 0.1, 0.1]);
  assert.ok(Number.isNaN(flat.r));
  assert.match(flat.reason ?? "", /y is constant/);
  assert.match(spearman([5, 5], [1, 2]).reason ?? "", /x is constant/);
  const one = pearson([1], [2]);
  assert.ok(Number.isNaN(one.r));
  assert.match(one.reason ?? "", /at least 2 pairs/);
  assert.match(pearson([], []).reason ?? "", /at least 2 pairs/);
});

test("pairedGain is the mean of per-seed differences over the seeds both cells have", () => {
  const baseline = [90.0, 91.0, 89.5, null, 90.5];
  const treated = [90.5, 91.75, 90.0, 92.0, undefined];
  // seeds 0..2 pair: differences 0.5, 0.75, 0.5 -> mean 1.75 / 3
  const g = pairedGain(treated, baseline, { seed: 1, resamples: 2000 });
  assert.deepEqual(g.seeds, [0, 1, 2]);
  assert.equal(g.n, 3);
  close(g.mean, 1.75 / 3, 1e-12, "mean gain");
  // sample std of [0.5, 0.75, 0.5]: deviations -1/12, 1/6, -1/12 -> sum of squares 1/24, / 2 = 1/48
  close(g.std, Math.sqrt(1 / 48), 1e-12, "std");
  assert.ok(g.hasInterval && g.lo >= 0.5 && g.hi <= 0.75 && g.lo <= g.mean && g.mean <= g.hi);
  // a shared offset per seed cancels in the pairing: the interval is only as wide as the differences vary
  const offsets = [3, -4, 1, 0, 2];
  const shifted = pairedGain(
    treated.map((v, s) => (v == null ? v : v + offsets[s]!)),
    baseline.map((v, s) => (v == null ? v : v + offsets[s]!)),
    { seed: 1, resamples: 2000 },
  );
  close(shifted.mean, g.mean, 1e-12, "per-seed offsets cancel");
  close(shifted.hi - shifted.lo, g.hi - g.lo, 1e-9, "same width");
});

test("interaction is (ab - base) - ((a - base) + (b - base)) per seed, with both gains", () => {
  const base = [90, 91, 89];
  const a = [91, 92, 90]; // +1 each seed
  const b = [90.5, 91.5, 89.5]; // +0.5
  const ab = [92, 92.5, 91]; // +2, +1.5, +2
  const r = interaction(ab, a, b, base, { seed: 3, resamples: 1000 });
  // per seed: 2 - 1.5 = 0.5, 1.5 - 1.5 = 0, 2 - 1.5 = 0.5 -> mean 1/3
  close(r.interaction.mean, 1 / 3, 1e-12, "interaction");
  close(r.combinedGain.mean, 5.5 / 3, 1e-12, "combined gain");
  close(r.sumOfGains.mean, 1.5, 1e-12, "sum of single gains");
  assert.deepEqual(r.seeds, [0, 1, 2]);
  assert.ok(r.interaction.lo >= 0 && r.interaction.hi <= 0.5);
  // a seed missing in any one cell drops out of all of them
  const partial = interaction(ab, [91, null, 90], b, base, { seed: 3, resamples: 1000 });
  assert.deepEqual(partial.seeds, [0, 2]);
  close(partial.interaction.mean, 0.5, 1e-12, "two seeds");
});

test("meanInterval: one value has no interval; the interval holds the mean", () => {
  const one = meanInterval([0.91]);
  assert.deepEqual({ ...one, std: 0 }, { mean: 0.91, lo: 0.91, hi: 0.91, n: 1, std: 0, hasInterval: false });
  assert.ok(Number.isNaN(one.std), "no sample std from one value");
  const m = meanInterval([1, 2, 3, 4, 10], { resamples: 4000 });
  assert.equal(m.mean, 4);
  assert.ok(m.lo < 4 && 4 < m.hi && m.lo >= 1 && m.hi <= 10, `${m.lo}..${m.hi}`);
  close(m.std, Math.sqrt(50 / 4), 1e-12, "std: squares 9 + 4 + 1 + 0 + 36 = 50 over n - 1 = 4");
});

test("a bootstrap with a fixed seed is deterministic; another seed gives another interval", () => {
  const values = [0.4, 1.1, 0.9, 0.2, 0.7, 1.3];
  const a = meanInterval(values, { seed: 7, resamples: 3000 });
  assert.deepEqual(meanInterval(values, { seed: 7, resamples: 3000 }), a);
  const b = meanInterval(values, { seed: 8, resamples: 3000 });
  assert.ok(a.lo !== b.lo || a.hi !== b.hi, "seed 8 draws other resamples");
  assert.deepEqual(meanInterval(values), meanInterval(values, { seed: 0 }), "the default seed is 0");
  const x = [1, 2, 3, 4, 5, 6];
  const y = [2, 1, 4, 3, 6, 5];
  const c = correlationInterval(x, y, { seed: 2, resamples: 500 });
  assert.deepEqual(correlationInterval(x, y, { seed: 2, resamples: 500 }), c);
  assert.notDeepEqual(correlationInterval(x, y, { seed: 3, resamples: 500 }), c);
});

test("the interval narrows with more data and at a lower level", () => {
  const rng = new CounterRng(11, 0, 0, 1);
  const draw = (n: number) => Array.from({ length: n }, () => rng.normal());
  const small = meanInterval(draw(10), { resamples: 4000 });
  const large = meanInterval(draw(400), { resamples: 4000 });
  assert.ok(large.hi - large.lo < (small.hi - small.lo) / 3, `${large.hi - large.lo} vs ${small.hi - small.lo}`);
  const values = draw(30);
  const wide = meanInterval(values, { level: 0.95 });
  const narrow = meanInterval(values, { level: 0.5 });
  assert.ok(narrow.hi - narrow.lo < wide.hi - wide.lo);
  assert.ok(wide.lo < narrow.lo && narrow.hi < wide.hi, "the 50% interval sits inside the 95% one");
});

test("the bootstrap interval of a mean of normal data is close to mean ± 1.96 sd / sqrt(n)", () => {
  const rng = new CounterRng(5, 0, 0, 1);
  const n = 200;
  const values = Array.from({ length: n }, () => 80 + 2 * rng.normal());
  const m = meanInterval(values, { seed: 4 });
  const half = (1.96 * m.std) / Math.sqrt(n);
  // the percentile bootstrap uses the plug-in sd (n in the denominator): about 0.25% narrower at n = 200
  close(m.lo, m.mean - half, 0.1 * half, "lo");
  close(m.hi, m.mean + half, 0.1 * half, "hi");
});

test("correlationInterval resamples pairs, skips constant resamples and counts the rest", () => {
  const rng = new CounterRng(9, 0, 0, 1);
  const x = Array.from({ length: 40 }, () => rng.normal());
  const y = x.map((v) => v + 0.5 * rng.normal());
  for (const method of ["pearson", "spearman"] as const) {
    const c = correlationInterval(x, y, { method, seed: 1, resamples: 1000 });
    assert.equal(c.used, 1000, "no resample of 40 distinct pairs is constant");
    assert.ok(c.lo < c.r && c.r < c.hi && c.lo > 0.6 && c.hi <= 1, `${method}: ${c.lo} ${c.r} ${c.hi}`);
  }
  // three pairs: 3 of the 27 resamples (the same pair three times) are constant and skipped
  const few = correlationInterval([1, 2, 3], [1, 3, 2], { seed: 1, resamples: 3000 });
  assert.ok(few.used < 3000 && few.used > 2500, `used ${few.used}`);
  const flat = correlationInterval([1, 2, 3], [4, 4, 4], { resamples: 100 });
  assert.ok(Number.isNaN(flat.r) && Number.isNaN(flat.lo) && flat.used === 0);
  assert.match(flat.reason ?? "", /y is constant/);
});

test("gainCorrelation correlates mean gains and resamples seeds within each technique", () => {
  // four techniques; the big model's gains track the small model's
  const small = [
    [0.1, 0.3, 0.2],
    [1.0, 1.2, 0.8],
    [-0.5, -0.3, -0.4],
    [0.5, 0.7, 0.6],
  ];
  const big = [
    [0.0, 0.2, 0.1, 0.1],
    [0.9, 1.1],
    [-0.6, -0.2, -0.4],
    [0.4, 0.6, 0.5],
  ];
  const g = gainCorrelation(small, big, { seed: 1, resamples: 2000 });
  assert.equal(g.techniques, 4);
  assert.deepEqual(
    g.smallMeans.map((v) => Number(v.toFixed(10))),
    [0.2, 1, -0.4, 0.6],
  );
  close(g.pearson.r, pearson(g.smallMeans, g.bigMeans).r, 1e-12, "point pearson uses mean gains");
  close(g.spearman.r, 1, 1e-12, "same order of techniques");
  assert.ok(g.pearson.lo > 0.9 && g.pearson.hi <= 1 && g.pearson.used === 2000);
  assert.ok(g.spearman.used === 2000 && g.spearman.lo <= 1);
  assert.equal(g.note, undefined);
  assert.deepEqual(gainCorrelation(small, big, { seed: 1, resamples: 2000 }), g, "deterministic");
  // seeds that disagree widen the interval
  const noisy = big.map((gs) => gs.map((v, i) => v + (i % 2 ? 1.5 : -1.5)));
  const wide = gainCorrelation(small, noisy, { seed: 1, resamples: 2000 });
  assert.ok(wide.pearson.lo < g.pearson.lo);
  const two = gainCorrelation(small.slice(0, 2), big.slice(0, 2), { resamples: 200 });
  assert.equal(Math.abs(two.pearson.r), 1);
  assert.match(two.note ?? "", /2 points is \+1 or -1 by construction/);
});

test("mismatched, empty and non-finite input are ArgumentErrors naming what is wrong", () => {
  const cases: [string, () => unknown, RegExp][] = [
    ["paired lengths", () => pairedGain([1, 2, 3], [1, 2]), /baseline has 2 and treated has 3/],
    ["empty pair", () => pairedGain([], []), /at least one seed/],
    ["no common seed", () => pairedGain([1, null], [null, 2]), /no seed has a result in all of treated, baseline/],
    ["NaN accuracy", () => pairedGain([1, Number.NaN], [1, 2]), /treated\[1\] must be a finite number/],
    ["interaction lengths", () => interaction([1], [1], [1, 2], [1]), /b has 2 and ab has 1/],
    ["pearson lengths", () => pearson([1, 2, 3], [1, 2]), /x has 3 values and y has 2/],
    ["spearman NaN", () => spearman([1, Number.NaN], [1, 2]), /x\[1\] must be a finite/],
    ["empty mean", () => meanInterval([]), /at least one number/],
    ["level 95", () => meanInterval([1, 2], { level: 95 }), /level must be between 0 and 1/],
    ["fractional resamples", () => meanInterval([1, 2], { resamples: 10.5 }), /resamples must be a whole number/],
    ["negative seed", () => meanInterval([1, 2], { seed: -1 }), /seed must be a non-negative/],
    [
      "unknown method",
      () => correlationInterval([1, 2], [1, 2], { method: "kendall" as "pearson" }),
      /method must be "pearson" or "spearman"/,
    ],
    ["technique counts", () => gainCorrelation([[1], [2], [3]], [[1], [2]]), /they have 3 and 2/],
    ["a technique with no seeds", () => gainCorrelation([[1], []], [[1], [2]]), /smallGains\[1\] must hold/],
  ];
  for (const [what, call, message] of cases) {
    assert.throws(call, (e) => e instanceof ArgumentError && message.test(e.message), what);
  }
});
