import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import * as zlib from "node:zlib";
import { loadDataset } from "../../src/data";
import { checkNoLeaks, tempDir } from "../helpers";
import { CIFAR10_NAMES, type CifarRecords, tarGz, writeCifar10Folder, writeCifar100Folder } from "./fixtures";

checkNoLeaks();

function expectImages(ds: { images: Uint8Array }, records: CifarRecords[]): void {
  const all = records.flatMap((r) => r.images);
  assert.equal(ds.images.length, all.length * 3072);
  all.forEach((img, i) => {
    assert.deepEqual(Buffer.from(ds.images.subarray(i * 3072, (i + 1) * 3072)), Buffer.from(img), `image ${i}`);
  });
}

test("CIFAR-10 reads the same from the extracted folder and from the .tar.gz made by GNU tar", () => {
  const root = tempDir();
  const recs = writeCifar10Folder(root);
  const archiveDir = tempDir();
  tarGz(root, "cifar-10-batches-bin", path.join(archiveDir, "cifar-10-binary.tar.gz"));
  const trainRecs = [1, 2, 3, 4, 5].map((b) => recs.get(`data_batch_${b}.bin`) as CifarRecords);
  for (const src of [
    root,
    archiveDir,
    path.join(archiveDir, "cifar-10-binary.tar.gz"),
    path.join(root, "cifar-10-batches-bin"),
  ]) {
    const train = loadDataset("cifar10", { split: "train", root: src });
    assert.equal(train.n, 15, src);
    assert.deepEqual([train.channels, train.height, train.width, train.numClasses], [3, 32, 32, 10]);
    assert.deepEqual(
      Array.from(train.labels),
      trainRecs.flatMap((r) => r.labels),
    );
    assert.deepEqual(train.classNames, CIFAR10_NAMES);
    expectImages(train, trainRecs);
    const testSet = loadDataset("cifar10", { split: "test", root: src });
    assert.equal(testSet.n, 4);
    expectImages(testSet, [recs.get("test_batch.bin") as CifarRecords]);
  }
});

test("CIFAR-100 gives fine labels by default and coarse ones on request, with their names", () => {
  const root = tempDir();
  const recs = writeCifar100Folder(root);
  tarGz(root, "cifar-100-binary", path.join(root, "cifar-100-binary.tar.gz"));
  const train = recs.get("train.bin") as CifarRecords;
  for (const src of [root, path.join(root, "cifar-100-binary.tar.gz")]) {
    const fine = loadDataset("cifar100", { split: "train", root: src });
    assert.equal(fine.numClasses, 100);
    assert.deepEqual(Array.from(fine.labels), train.labels);
    assert.equal(fine.classNames[42], "fine_42");
    expectImages(fine, [train]);
    const coarse = loadDataset("cifar100", { split: "train", root: src, label: "coarse" });
    assert.equal(coarse.numClasses, 20);
    assert.deepEqual(Array.from(coarse.labels), train.coarse);
    assert.equal(coarse.classNames[19], "coarse_19");
    expectImages(coarse, [train]);
    assert.equal(loadDataset("cifar100", { split: "test", root: src }).n, 4);
  }
});

test("a batch file that is not a whole number of records is an error naming the sizes", () => {
  const root = tempDir();
  writeCifar10Folder(root);
  const file = path.join(root, "cifar-10-batches-bin", "data_batch_3.bin");
  fs.writeFileSync(file, fs.readFileSync(file).subarray(0, 3073 * 2 + 100));
  assert.throws(
    () => loadDataset("cifar10", { split: "train", root }),
    /data_batch_3\.bin holds 6246 bytes, not a whole number of 3073-byte cifar10 records.*Received: bytes=6246/,
  );
});

test("a label out of range is an error naming the record", () => {
  const root = tempDir();
  writeCifar10Folder(root);
  const file = path.join(root, "cifar-10-batches-bin", "test_batch.bin");
  const bytes = fs.readFileSync(file);
  bytes[3073 * 2] = 10;
  fs.writeFileSync(file, bytes);
  assert.throws(
    () => loadDataset("cifar10", { split: "test", root }),
    /record 2 of test_batch\.bin has label 10, outside \[0, 9\].*Received: label=10/,
  );
  // CIFAR-100 coarse labels are checked against 20 classes.
  const root100 = tempDir();
  writeCifar100Folder(root100);
  const f100 = path.join(root100, "cifar-100-binary", "train.bin");
  const b100 = fs.readFileSync(f100);
  b100[3074] = 25;
  fs.writeFileSync(f100, b100);
  assert.throws(
    () => loadDataset("cifar100", { split: "train", root: root100, label: "coarse" }),
    /record 1 of train\.bin has label 25, outside \[0, 19\]/,
  );
});

test("an archive without a needed member is an error naming the member", () => {
  const root = tempDir();
  writeCifar10Folder(root);
  fs.rmSync(path.join(root, "cifar-10-batches-bin", "data_batch_4.bin"));
  tarGz(root, "cifar-10-batches-bin", path.join(root, "cifar-10-binary.tar.gz"));
  const archive = path.join(root, "cifar-10-binary.tar.gz");
  assert.throws(
    () => loadDataset("cifar10", { split: "train", root: archive }),
    /has no member data_batch_4\.bin.*Received: missing="data_batch_4\.bin"/,
  );
  assert.throws(() => loadDataset("cifar10", { split: "train", root }), /has no member data_batch_4\.bin/);
});

test("a truncated or damaged archive is a clear error", () => {
  const root = tempDir();
  writeCifar10Folder(root);
  const archive = path.join(root, "c.tar.gz");
  tarGz(root, "cifar-10-batches-bin", archive);
  const tar = zlib.gunzipSync(fs.readFileSync(archive));
  // Cut inside the first member's data.
  fs.writeFileSync(archive, zlib.gzipSync(tar.subarray(0, 512 + 1000)));
  assert.throws(() => loadDataset("cifar10", { split: "train", root: archive }), /ends inside a member.*truncated/);
  // A flipped byte in a header breaks its checksum.
  const bad = Buffer.from(tar);
  bad[10] ^= 0x55;
  fs.writeFileSync(archive, zlib.gzipSync(bad));
  assert.throws(() => loadDataset("cifar10", { split: "train", root: archive }), /bad checksum/);
});

test("no CIFAR files under root names what it looked for", () => {
  const root = tempDir();
  assert.throws(
    () => loadDataset("cifar10", { split: "train", root }),
    /no data under .*looked for cifar-10-binary\.tar\.gz, cifar-10-batches-bin\/data_batch_1\.bin.*downloadDataset\("cifar10"/,
  );
});
