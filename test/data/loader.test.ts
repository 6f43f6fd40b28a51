import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import { liveTensors } from "../../src";
import {
  type AugmentOptions,
  CounterRng,
  channelStats,
  DataLoader,
  DEBIAN_FASHION_MNIST,
  type LoaderOptions,
  loadDataset,
  Stream,
} from "../../src/data";
import { sampleMix } from "../../src/data/augment";
import { assertClose, checkNoLeaks } from "../helpers";
import { toyDataset } from "./loader-fixtures";

checkNoLeaks();

const MEAN = [0.4, 0.5, 0.3];
const STD = [0.2, 0.25, 0.3];
const AUG: AugmentOptions = {
  crop: { padding: 2, mode: "reflect" },
  flip: true,
  cutout: { size: 2 },
  randomErasing: { p: 0.3 },
};

function options(extra: Partial<LoaderOptions> = {}): LoaderOptions {
  return { batchSize: 8, shuffle: true, seed: 7, mean: MEAN, std: STD, numClasses: 4, augment: AUG, ...extra };
}

interface Plain {
  x: number[];
  y: number[];
  target: number[];
  index: number;
}

function collect(loader: DataLoader, epoch: number, start = 0): Plain[] {
  const out: Plain[] = [];
  for (const b of loader.batches(epoch, start)) {
    out.push({ x: Array.from(b.x.toFloat32Array()), y: b.y.toArray(), target: b.target.toArray(), index: b.index });
    b.x.dispose();
    b.y.dispose();
    b.target.dispose();
  }
  return out;
}

test("the same seed gives identical batches; another seed or epoch gives others", () => {
  const ds = toyDataset();
  const a = collect(new DataLoader(ds, options()), 3);
  const b = collect(new DataLoader(ds, options()), 3);
  assert.deepEqual(a, b);
  assert.notDeepEqual(collect(new DataLoader(ds, options({ seed: 8 })), 3)[0].y, a[0].y);
  assert.notDeepEqual(collect(new DataLoader(ds, options()), 4)[0].x, a[0].x);
});

test("each epoch visits every image once; dropLast drops the short batch", () => {
  const ds = toyDataset();
  const loader = new DataLoader(ds, options());
  assert.equal(loader.numBatches, 5);
  for (const epoch of [0, 1]) {
    const seen = Array.from({ length: 5 }, (_, k) => Array.from(loader.batchIndices(epoch, k))).flat();
    assert.deepEqual(
      [...seen].sort((p, q) => p - q),
      Array.from({ length: 37 }, (_, i) => i),
    );
  }
  assert.notDeepEqual(loader.batchIndices(0, 0), loader.batchIndices(1, 0));
  const batches = collect(loader, 0);
  assert.deepEqual(
    batches.map((b) => b.y.length),
    [8, 8, 8, 8, 5],
  );
  const dropping = new DataLoader(ds, options({ dropLast: true }));
  assert.equal(dropping.numBatches, 4);
  assert.equal(collect(dropping, 0).length, 4);
});

for (const [name, augment] of [
  ["crop, flip, cutout, erasing", AUG],
  ["mixup and cutmix", { ...AUG, mixup: { alpha: 0.4 }, cutmix: { alpha: 1, p: 0.5 } }],
] as const) {
  test(`resuming from state(epoch, batch) replays the uninterrupted run exactly (${name})`, () => {
    const ds = toyDataset();
    const full = new DataLoader(ds, options({ augment }));
    const run = [...collect(full, 0), ...collect(full, 1)];
    // Interrupted after batch 2 of epoch 1; a new loader (other seed) restores from JSON.
    const saved = JSON.parse(JSON.stringify(full.state(1, 3)));
    const fresh = new DataLoader(ds, options({ augment, seed: 99 }));
    const at = fresh.restore(saved);
    assert.deepEqual(at, { epoch: 1, batch: 3 });
    assert.equal(fresh.seed, 7);
    const resumed = collect(fresh, at.epoch, at.batch);
    assert.deepEqual(resumed, run.slice(5 + 3));
    assert.deepEqual(
      resumed.map((b) => b.index),
      [3, 4],
    );
    // A state saved at the end of an epoch resumes at the next one.
    assert.deepEqual(fresh.restore(full.state(1, 5)), { epoch: 2, batch: 0 });
  });
}

test("restore refuses a state from other data or settings", () => {
  const ds = toyDataset();
  const loader = new DataLoader(ds, options());
  const state = loader.state(0, 1);
  assert.throws(
    () => new DataLoader(ds, options({ batchSize: 4 })).restore(state),
    /saved state has batchSize=8, this loader 4.*Received: batchSize=8/,
  );
  assert.throws(() => new DataLoader(ds, options({ augment: {} })).restore(state), /other augmentation/);
  assert.throws(() => loader.restore({} as never), /not a DataLoader state/);
});

test("mixup mixes each image with a partner and the soft target with the same weight", () => {
  const ds = toyDataset();
  const base = collect(new DataLoader(ds, options()), 0);
  const loader = new DataLoader(ds, options({ augment: { ...AUG, mixup: { alpha: 0.4 } } }));
  const mixed = collect(loader, 0);
  mixed.forEach((b, k) => {
    const n = b.y.length;
    const mix = sampleMix(new CounterRng(7, 0, k, Stream.mix), loader.augment, n, 5, 6);
    assert.equal(mix.kind, "mixup");
    assert.deepEqual(b.y, base[k].y);
    const expectX = base[k].x.map((v, i) => {
      const s = Math.floor(i / 90);
      return mix.lam * v + (1 - mix.lam) * base[k].x[mix.perm[s] * 90 + (i % 90)];
    });
    assertClose(b.x, expectX, 1e-5);
    for (let s = 0; s < n; s++) {
      const row = b.target.slice(s * 4, (s + 1) * 4);
      const expect = [0, 0, 0, 0];
      expect[b.y[s]] += mix.lam;
      expect[b.y[mix.perm[s]]] += 1 - mix.lam;
      assertClose(row, expect, 1e-6);
    }
  });
});

test("cutmix pastes the partner's box and weighs the targets by the kept area", () => {
  const ds = toyDataset();
  const base = collect(new DataLoader(ds, options()), 0);
  const loader = new DataLoader(ds, options({ augment: { ...AUG, cutmix: { alpha: 1 } } }));
  collect(loader, 0).forEach((b, k) => {
    const mix = sampleMix(new CounterRng(7, 0, k, Stream.mix), loader.augment, b.y.length, 5, 6);
    assert.equal(mix.kind, "cutmix");
    const [y0, x0, y1, x1] = mix.box as number[];
    assert.ok(Math.abs(mix.lam - (1 - ((y1 - y0) * (x1 - x0)) / 30)) < 1e-12);
    b.x.forEach((v, i) => {
      const s = Math.floor(i / 90);
      const y = Math.floor((i % 30) / 6);
      const x = i % 6;
      const inBox = y >= y0 && y < y1 && x >= x0 && x < x1;
      const src = inBox ? mix.perm[s] * 90 + (i % 90) : i;
      assert.equal(v, base[k].x[src]);
    });
    for (let s = 0; s < b.y.length; s++) {
      const row = b.target.slice(s * 4, (s + 1) * 4);
      assertClose([row.reduce((p, q) => p + q, 0)], [1], 1e-6);
      assert.ok(row[b.y[s]] >= mix.lam - 1e-6);
    }
  });
});

test("with mixup and cutmix both configured, batches use each", () => {
  const aug = { mixup: { alpha: 1 }, cutmix: { alpha: 1 } };
  const loader = new DataLoader(toyDataset(), options({ augment: aug }));
  const kinds = new Set<string>();
  for (let k = 0; k < 40; k++) kinds.add(sampleMix(new CounterRng(7, 0, k, Stream.mix), loader.augment, 8, 5, 6).kind);
  assert.deepEqual([...kinds].sort(), ["cutmix", "mixup"]);
  const b = collect(loader, 0)[0];
  assert.equal(b.target.length, 8 * 4);
});

test("stopping early frees the batch being prepared; no tensors leak", () => {
  const before = liveTensors();
  const loader = new DataLoader(toyDataset(), options({ augment: { ...AUG, mixup: { alpha: 1 } } }));
  for (const b of loader.batches(0)) {
    b.x.dispose();
    b.y.dispose();
    b.target.dispose();
    if (b.index === 1) break;
  }
  const it = loader.batches(1);
  const first = it.next();
  assert.equal(first.done, false);
  if (!first.done) for (const t of [first.value.x, first.value.y, first.value.target]) t.dispose();
  it.return();
  assert.equal(liveTensors(), before);
  assert.equal(loader.stats.batches, 3);
});

test("bad options are clear errors", () => {
  const ds = toyDataset();
  const bad: [Partial<LoaderOptions>, RegExp][] = [
    [{ batchSize: 0 }, /batchSize must be an integer >= 1\. Received: batchSize=0/],
    [{ seed: -1 }, /seed must be a non-negative integer/],
    [{ mean: [0.5] }, /mean must hold 3 finite numbers/],
    [{ std: [1, 0, 1] }, /std values must be > 0/],
    [{ numClasses: 3 }, /numClasses must be an integer >= the data set's 4 classes/],
    [{ augment: { crop: { padding: 5, mode: "reflect" } } }, /reflect padding must be smaller than the image \(5x6\)/],
    [{ augment: { crop: { padding: 1, mode: "edge" as "zero" } } }, /crop.mode must be "zero" or "reflect"/],
    [{ augment: { cutout: { size: 0 } } }, /cutout.size must be an integer >= 1/],
    [{ augment: { randomErasing: { p: 2 } } }, /randomErasing.p must be in \[0, 1\]/],
    [{ augment: { mixup: { alpha: 0 } } }, /mixup.alpha must be > 0/],
    [{ augment: { cutmix: { alpha: 1, p: -1 } } }, /cutmix.p must be in \[0, 1\]/],
  ];
  for (const [opts, message] of bad) assert.throws(() => new DataLoader(ds, options(opts)), message);
  const loader = new DataLoader(ds, options());
  assert.throws(
    () => loader.batches(0, 9).next(),
    /startBatch must be an integer in \[0, 5\]\. Received: startBatch=9/,
  );
  assert.throws(() => loader.batches(-1).next(), /epoch must be an integer >= 0/);
});

const haveFashion = fs.existsSync(path.join(DEBIAN_FASHION_MNIST, "t10k-images-idx3-ubyte.gz"));

test(
  "real Fashion-MNIST through the loader: normalized with its own stats, mean 0 and std 1",
  { skip: !haveFashion },
  () => {
    const ds = loadDataset("fashion-mnist", { split: "test" });
    const { mean, std } = channelStats(ds);
    const loader = new DataLoader(ds, { batchSize: 500, shuffle: true, seed: 1, mean, std, numClasses: 10 });
    let sum = 0;
    let sq = 0;
    let count = 0;
    const labels = new Array(10).fill(0);
    for (const b of loader.batches(0)) {
      assert.deepEqual(b.x.shape, [500, 1, 28, 28]);
      for (const v of b.x.toFloat32Array()) {
        sum += v;
        sq += v * v;
      }
      count += b.x.size;
      for (const y of b.y.toArray()) labels[y]++;
      b.x.dispose();
      b.y.dispose();
      b.target.dispose();
    }
    assert.equal(count, 10000 * 784);
    assert.ok(Math.abs(sum / count) < 1e-4, `mean ${sum / count}`);
    assert.ok(Math.abs(sq / count - 1) < 1e-3, `second moment ${sq / count}`);
    assert.deepEqual(labels, new Array(10).fill(1000));
  },
);
