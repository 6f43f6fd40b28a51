import assert from "node:assert/strict";
import { test } from "node:test";
import { narrow, native, pad, scope, type Tensor } from "../../src";
import { CounterRng, DataLoader, Stream, sampleParams } from "../../src/data";
import { flip } from "../../src/ops/shape";
import { assertClose, checkNoLeaks } from "../helpers";
import { referenceBatch, toyDataset } from "./loader-fixtures";

checkNoLeaks();

const MEAN = [0.4, 0.5, 0.3];
const STD = [0.2, 0.25, 0.3];

/** Every batch of epoch `epoch` as arrays, disposing the tensors. */
function collect(loader: DataLoader, epoch: number): { x: Float32Array; y: number[]; target: number[] }[] {
  const out = [];
  for (const b of loader.batches(epoch)) {
    out.push({ x: b.x.toFloat32Array(), y: b.y.toArray(), target: b.target.toArray() });
    b.x.dispose();
    b.y.dispose();
    b.target.dispose();
  }
  return out;
}

test("without augmentation x is (pixel/255 - mean) / std in data set order", () => {
  const ds = toyDataset();
  const loader = new DataLoader(ds, { batchSize: 8, shuffle: false, seed: 0, mean: MEAN, std: STD, numClasses: 4 });
  const batches = collect(loader, 0);
  assert.equal(batches.length, 5);
  const x = batches.flatMap((b) => Array.from(b.x));
  const expected = Array.from(ds.images, (v, i) => {
    const c = Math.floor(i / 30) % 3;
    return (v / 255 - MEAN[c]) / STD[c];
  });
  assertClose(x, expected, 1e-5);
  assert.deepEqual(
    batches.flatMap((b) => b.y),
    Array.from(ds.labels),
  );
  assert.deepEqual(batches[0].target, batches[0].y);
});

test("flip really flips: every image is the original or its mirror, and both happen", () => {
  const ds = toyDataset();
  const plain = collect(
    new DataLoader(ds, { batchSize: 37, shuffle: false, seed: 1, mean: MEAN, std: STD, numClasses: 4 }),
    0,
  )[0].x;
  const flipped = collect(
    new DataLoader(ds, {
      batchSize: 37,
      shuffle: false,
      seed: 1,
      mean: MEAN,
      std: STD,
      numClasses: 4,
      augment: { flip: true },
    }),
    0,
  )[0].x;
  let mirrored = 0;
  for (let i = 0; i < 37; i++) {
    let same = true;
    let mirror = true;
    for (let r = 0; r < 15; r++)
      for (let x = 0; x < 6; x++) {
        const at = i * 90 + r * 6;
        if (flipped[at + x] !== plain[at + x]) same = false;
        if (flipped[at + x] !== plain[at + 5 - x]) mirror = false;
      }
    assert.ok(same !== mirror, `image ${i} is neither the original nor its mirror`);
    if (mirror) mirrored++;
  }
  assert.ok(mirrored > 5 && mirrored < 32, `mirrored ${mirrored} of 37`);
});

test("zero-padded crop shows zeros (black) exactly where the shifted window leaves the image", () => {
  const ds = toyDataset(20);
  ds.images.fill(255);
  const loader = new DataLoader(ds, {
    batchSize: 20,
    shuffle: false,
    seed: 4,
    mean: [0, 0, 0],
    std: [1, 1, 1],
    numClasses: 4,
    augment: { crop: { padding: 2, mode: "zero" } },
  });
  const x = collect(loader, 0)[0].x;
  const params = sampleParams(new CounterRng(4, 0, 0, Stream.augment), loader.augment, 20, 5, 6);
  let borders = 0;
  for (let i = 0; i < 20; i++) {
    const [offY, offX] = [params[i * 11], params[i * 11 + 1]];
    for (let c = 0; c < 3; c++)
      for (let y = 0; y < 5; y++)
        for (let xx = 0; xx < 6; xx++) {
          const inside = y + offY - 2 >= 0 && y + offY - 2 < 5 && xx + offX - 2 >= 0 && xx + offX - 2 < 6;
          assert.equal(
            x[((i * 3 + c) * 5 + y) * 6 + xx],
            inside ? 1 : 0,
            `sample ${i} (${y},${xx}) off ${offY},${offX}`,
          );
          if (!inside) borders++;
        }
  }
  assert.ok(borders > 0, "no sample was shifted");
});

test("reflect padding matches libtorch's reflection pad followed by the same crop and flip", () => {
  const ds = toyDataset(16);
  const augment = { crop: { padding: 3, mode: "reflect" as const }, flip: true };
  const loader = new DataLoader(ds, {
    batchSize: 16,
    shuffle: false,
    seed: 9,
    mean: MEAN,
    std: STD,
    numClasses: 4,
    augment,
  });
  const got = collect(loader, 0)[0].x;
  const params = sampleParams(new CounterRng(9, 0, 0, Stream.augment), loader.augment, 16, 5, 6);
  const plain = new DataLoader(ds, { batchSize: 16, shuffle: false, seed: 9, mean: MEAN, std: STD, numClasses: 4 });
  for (const b of plain.batches(0)) {
    scope(() => {
      for (let i = 0; i < 16; i++) {
        const img = narrow(b.x, 0, i, 1);
        let crop: Tensor = narrow(
          narrow(pad(img, [3, 3, 3, 3], "reflect"), 2, params[i * 11], 5),
          3,
          params[i * 11 + 1],
          6,
        );
        if (params[i * 11 + 2]) crop = flip(crop, 3);
        assertClose(got.subarray(i * 90, (i + 1) * 90), crop.toFloat32Array(), 1e-6);
      }
    });
    b.x.dispose();
    b.y.dispose();
    b.target.dispose();
  }
});

test("cutout and random erasing set their boxes to 0 (the mean) and match the per-pixel reference", () => {
  const ds = toyDataset(40, 3, 8, 8);
  const augment = {
    crop: { padding: 2, mode: "reflect" as const },
    flip: true,
    cutout: { size: 3 },
    randomErasing: { p: 0.5 },
  };
  const loader = new DataLoader(ds, {
    batchSize: 16,
    shuffle: true,
    seed: 5,
    mean: MEAN,
    std: STD,
    numClasses: 4,
    augment,
  });
  const batches = collect(loader, 2);
  let erased = 0;
  batches.forEach((b, k) => {
    const indices = loader.batchIndices(2, k);
    const params = sampleParams(new CounterRng(5, 2, k, Stream.augment), loader.augment, indices.length, 8, 8);
    assertClose(b.x, referenceBatch(ds, indices, params, 2, true, MEAN, STD), 1e-6);
    for (let i = 0; i < indices.length; i++) {
      const p = params.subarray(i * 11, (i + 1) * 11);
      const cut = (p[5] - p[3]) * (p[6] - p[4]);
      assert.ok(cut >= 1 && cut <= 9, `cutout area ${cut}`);
      if (p[9] > p[7]) {
        erased++;
        const area = (p[9] - p[7]) * (p[10] - p[8]);
        assert.ok(area >= 1 && area <= 0.4 * 64, `erasing area ${area}`);
      }
    }
  });
  assert.ok(erased > 5 && erased < 35, `erased ${erased} of 40`);
});

test("the native assembler rejects bad arguments with a clear error", () => {
  const ds = toyDataset(4);
  const params = new Int32Array(11);
  const call = (indices: Int32Array, p: Int32Array, padding = 0, std = [1, 1, 1]) =>
    native.augmentBatch(ds.images, [4, 3, 5, 6], indices, p, padding, false, [0, 0, 0], std).take();
  assert.throws(() => call(Int32Array.from([4]), params), /augmentBatch failed.*index 4 is outside \[0, 4\)/);
  assert.throws(
    () => call(Int32Array.from([0]), Int32Array.from([3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), 1),
    /crop offsets must lie in \[0, 2\*padding\]/,
  );
  assert.throws(
    () => call(Int32Array.from([0]), Int32Array.from([0, 0, 0, 0, 0, 6, 7, 0, 0, 0, 0])),
    /box lies outside the 5x6 image/,
  );
  assert.throws(() => call(Int32Array.from([0]), params, 0, [1, 0, 1]), /std values must be > 0/);
  assert.throws(() => call(Int32Array.from([0]), new Int32Array(5)), /params must hold 11 numbers per sample/);
  assert.throws(
    () => native.augmentBatch(ds.images, [5, 3, 5, 6], Int32Array.from([0]), params, 0, false, [0, 0, 0], [1, 1, 1]),
    /images holds 360 bytes but dims \[N,C,H,W\] need 450/,
  );
  const ok = native.augmentBatch(
    ds.images,
    [4, 3, 5, 6],
    Int32Array.from([1, 2]),
    new Int32Array(22),
    0,
    false,
    [0, 0, 0],
    [1, 1, 1],
  );
  const t = ok.take();
  assert.throws(() => ok.take(), /already taken/);
  t.dispose();
  const dropped = native.augmentBatch(
    ds.images,
    [4, 3, 5, 6],
    Int32Array.from([1]),
    params,
    0,
    false,
    [0, 0, 0],
    [1, 1, 1],
  );
  dropped.cancel();
  assert.throws(() => dropped.take(), /already taken or cancelled/);
});
