import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import * as zlib from "node:zlib";
import {
  DEBIAN_FASHION_MNIST,
  FASHION_MNIST_CLASSES,
  IDX_IMAGES_MAGIC,
  IDX_LABELS_MAGIC,
  loadDataset,
  loadIdxPair,
} from "../../src/data";
import { checkNoLeaks, tempDir } from "../helpers";
import { pseudoBytes, writeIdx } from "./fixtures";

checkNoLeaks();

function mnistLike(root: string, prefix: "train" | "t10k", n: number, gz: boolean, labels?: Uint8Array): Uint8Array {
  const images = pseudoBytes(n * 28 * 28, n);
  const suffix = gz ? ".gz" : "";
  writeIdx(path.join(root, `${prefix}-images-idx3-ubyte${suffix}`), IDX_IMAGES_MAGIC, [n, 28, 28], images, gz);
  const y = labels ?? Uint8Array.from({ length: n }, (_, i) => (i * 7) % 10);
  writeIdx(path.join(root, `${prefix}-labels-idx1-ubyte${suffix}`), IDX_LABELS_MAGIC, [n], y, gz);
  return images;
}

test("reads gzipped and plain IDX files into CHW uint8 images with labels", () => {
  for (const gz of [true, false]) {
    const root = tempDir();
    const images = mnistLike(root, "train", 7, gz);
    mnistLike(root, "t10k", 3, gz);
    const ds = loadDataset("mnist", { split: "train", root });
    assert.equal(ds.n, 7);
    assert.deepEqual([ds.channels, ds.height, ds.width, ds.numClasses], [1, 28, 28, 10]);
    assert.deepEqual(Buffer.from(ds.images), Buffer.from(images));
    assert.deepEqual(Array.from(ds.labels), [0, 7, 4, 1, 8, 5, 2]);
    assert.equal(ds.classNames[3], "3");
    assert.equal(loadDataset("mnist", { split: "test", root }).n, 3);
  }
});

test("an images file passed as labels fails on its magic number", () => {
  const root = tempDir();
  mnistLike(root, "train", 4, true);
  const imgs = path.join(root, "train-images-idx3-ubyte.gz");
  assert.throws(
    () => loadIdxPair({ name: "x", imagesFile: imgs, labelsFile: imgs, classNames: ["a", "b"] }),
    /not an IDX file of labels \(magic 0x00000801\): wrong magic number\. Received: magic=0x00000803/,
  );
});

test("a label count that differs from the image count is an error naming both", () => {
  const root = tempDir();
  mnistLike(root, "train", 5, true);
  writeIdx(path.join(root, "train-labels-idx1-ubyte.gz"), IDX_LABELS_MAGIC, [4], new Uint8Array(4));
  assert.throws(
    () => loadDataset("mnist", { split: "train", root }),
    /has 4 labels but .*train-images-idx3-ubyte\.gz has 5 images.*Received: labels=4, images=5/,
  );
});

test("data that does not match the header's size is an error (truncated file)", () => {
  const root = tempDir();
  mnistLike(root, "train", 5, false);
  const file = path.join(root, "train-images-idx3-ubyte");
  fs.truncateSync(file, fs.statSync(file).size - 100);
  assert.throws(
    () => loadDataset("mnist", { split: "train", root }),
    /header promises 3920 bytes of data \(dims \[5, 28, 28\]\) but the file holds 3820.*Received: dataBytes=3820/,
  );
});

test("a label outside the classes is an error naming its position and value", () => {
  const root = tempDir();
  mnistLike(root, "train", 3, true, Uint8Array.from([1, 12, 2]));
  assert.throws(
    () => loadDataset("mnist", { split: "train", root }),
    /label 1 is outside \[0, 9\].*Received: label=12/,
  );
});

test("a damaged gzip file is a clear error", () => {
  const root = tempDir();
  mnistLike(root, "train", 3, true);
  const file = path.join(root, "train-images-idx3-ubyte.gz");
  const gz = fs.readFileSync(file);
  fs.writeFileSync(file, gz.subarray(0, gz.length - 20));
  assert.throws(() => loadDataset("mnist", { split: "train", root }), /does not decompress.*damaged or incomplete/);
  assert.ok(zlib.gunzipSync(gz).length > 0); // the intact file was fine
});

test("a missing data set names where it looked and how to get it", () => {
  const root = tempDir();
  const prev = process.env.BUDGETNET_DATA;
  process.env.BUDGETNET_DATA = root;
  try {
    assert.throws(
      () => loadDataset("mnist", { split: "train" }),
      /mnist was not found \(looked in .*mnist\)\. Run downloadDataset/,
    );
  } finally {
    if (prev === undefined) delete process.env.BUDGETNET_DATA;
    else process.env.BUDGETNET_DATA = prev;
  }
  assert.throws(
    () => loadDataset("imagenet" as "mnist", { split: "train" }),
    /unknown data set.*Received: name="imagenet"/,
  );
  assert.throws(() => loadDataset("mnist", { split: "val" as "train" }), /split must be "train" or "test"/);
});

const haveFashion = fs.existsSync(path.join(DEBIAN_FASHION_MNIST, "train-images-idx3-ubyte.gz"));

test("real Fashion-MNIST loads from Debian's package without configuration", { skip: !haveFashion }, () => {
  const train = loadDataset("fashion-mnist", { split: "train" });
  const testSet = loadDataset("fashion-mnist", { split: "test" });
  assert.equal(train.n, 60000);
  assert.equal(testSet.n, 10000);
  for (const ds of [train, testSet]) {
    assert.deepEqual([ds.channels, ds.height, ds.width, ds.numClasses], [1, 28, 28, 10]);
    assert.deepEqual(ds.classNames, FASHION_MNIST_CLASSES);
    assert.equal(ds.images.length, ds.n * 784);
  }
  assert.equal(train.classNames[9], "Ankle boot");
  // Fashion-MNIST is balanced: 6000 train and 1000 test images per class.
  const counts = new Array(10).fill(0);
  for (const y of train.labels) counts[y]++;
  assert.deepEqual(counts, new Array(10).fill(6000));
  // The published first training label is 9 (ankle boot).
  assert.equal(train.labels[0], 9);
});
