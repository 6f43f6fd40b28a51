import assert from "node:assert/strict";
import { test } from "node:test";
import { channelStats, classCounts, type ImageDataset, splitTrainVal, subset } from "../../src/data";
import { checkNoLeaks } from "../helpers";
import { pseudoBytes } from "./fixtures";

checkNoLeaks();

/** n images of 2x3x3 with unbalanced classes: class k has 10*(k+1) images. */
function unbalanced(): ImageDataset {
  const labels: number[] = [];
  for (let k = 0; k < 4; k++) for (let i = 0; i < 10 * (k + 1); i++) labels.push(k);
  // Interleave so classes are not contiguous.
  labels.sort((a, b) => ((a * 7919) % 13) - ((b * 7919) % 13) || a - b);
  const n = labels.length;
  const images = pseudoBytes(n * 18, 5);
  // Tag each image with its index in the first byte, to track it through splits.
  for (let i = 0; i < n; i++) images[i * 18] = i;
  return {
    name: "toy",
    images,
    labels: Int32Array.from(labels),
    n,
    channels: 2,
    height: 3,
    width: 3,
    numClasses: 4,
    classNames: ["a", "b", "c", "d"],
  };
}

test("splitTrainVal holds out the same share of every class, disjoint and complete", () => {
  const ds = unbalanced();
  const { train, val } = splitTrainVal(ds, { valFraction: 0.2, seed: 3 });
  assert.deepEqual(classCounts(val), [2, 4, 6, 8]);
  assert.deepEqual(classCounts(train), [8, 16, 24, 32]);
  const tags = (d: ImageDataset) => Array.from({ length: d.n }, (_, i) => d.images[i * 18]);
  const all = [...tags(train), ...tags(val)].sort((a, b) => a - b);
  assert.deepEqual(
    all,
    Array.from({ length: ds.n }, (_, i) => i),
  );
  // Each image keeps its own label and pixels.
  for (const part of [train, val])
    for (let i = 0; i < part.n; i++) {
      const src = part.images[i * 18];
      assert.equal(part.labels[i], ds.labels[src]);
      assert.deepEqual(part.images.subarray(i * 18, (i + 1) * 18), ds.images.subarray(src * 18, (src + 1) * 18));
    }
});

test("splitTrainVal is a function of the seed", () => {
  const ds = unbalanced();
  const tags = (d: ImageDataset) => Array.from({ length: d.n }, (_, i) => d.images[i * 18]);
  const a = splitTrainVal(ds, { valFraction: 0.3, seed: 11 });
  const b = splitTrainVal(ds, { valFraction: 0.3, seed: 11 });
  const c = splitTrainVal(ds, { valFraction: 0.3, seed: 12 });
  assert.deepEqual(tags(a.val), tags(b.val));
  assert.notDeepEqual(tags(a.val), tags(c.val));
  assert.equal(splitTrainVal(ds, { valFraction: 0, seed: 1 }).val.n, 0);
  assert.throws(
    () => splitTrainVal(ds, { valFraction: 1, seed: 1 }),
    /valFraction must be in \[0, 1\)\. Received: valFraction=1/,
  );
  assert.throws(() => splitTrainVal(ds, { valFraction: 0.1, seed: -1 }), /seed must be a non-negative integer/);
});

test("channelStats matches a direct computation per channel, in [0, 1] units", () => {
  const ds = unbalanced();
  const { mean, std } = channelStats(ds);
  for (let c = 0; c < 2; c++) {
    const values: number[] = [];
    for (let i = 0; i < ds.n; i++) for (let p = 0; p < 9; p++) values.push(ds.images[i * 18 + c * 9 + p] / 255);
    const m = values.reduce((a, b) => a + b, 0) / values.length;
    const s = Math.sqrt(values.reduce((a, b) => a + (b - m) ** 2, 0) / values.length);
    assert.ok(Math.abs(mean[c] - m) < 1e-12, `mean ${c}: ${mean[c]} vs ${m}`);
    assert.ok(Math.abs(std[c] - s) < 1e-12, `std ${c}: ${std[c]} vs ${s}`);
  }
  // A constant image has zero spread.
  const flat = subset(ds, Int32Array.from([0]));
  flat.images.fill(51);
  assert.deepEqual(channelStats(flat), { mean: [0.2, 0.2], std: [0, 0] });
});

test("subset copies the chosen images in order and rejects bad indices", () => {
  const ds = unbalanced();
  const s = subset(ds, Int32Array.from([5, 2, 5]));
  assert.equal(s.n, 3);
  assert.deepEqual([s.images[0], s.images[18], s.images[36]], [5, 2, 5]);
  assert.deepEqual(Array.from(s.labels), [ds.labels[5], ds.labels[2], ds.labels[5]]);
  s.images[0] = 99;
  assert.equal(ds.images[5 * 18], 5);
  assert.throws(() => subset(ds, Int32Array.from([0, ds.n])), /index 1 is outside \[0, 99\].*Received: index=100/);
});
