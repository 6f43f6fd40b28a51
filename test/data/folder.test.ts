import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import sharp from "sharp";
import { hasTestSplit, loadDataset, loadImageFolder } from "../../src/data";
import { checkNoLeaks, tempDir } from "../helpers";
import { pseudoBytes } from "./fixtures";

checkNoLeaks();

/** Writes an HWC image as PNG (lossless) or JPEG. */
async function writeImage(file: string, hwc: Uint8Array, w: number, h: number, channels: 1 | 3): Promise<void> {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  // sharp writes raw one-channel input as RGB unless told the colour space is b-w.
  const img = sharp(Buffer.from(hwc), { raw: { width: w, height: h, channels } }).toColourspace(
    channels === 1 ? "b-w" : "srgb",
  );
  await (file.toLowerCase().endsWith(".png") ? img.png() : img.jpeg({ quality: 95 })).toFile(file);
}

function hwcToChw(hwc: Uint8Array, w: number, h: number, c: number): number[] {
  const out: number[] = [];
  for (let ch = 0; ch < c; ch++) for (let p = 0; p < w * h; p++) out.push(hwc[p * c + ch]);
  return out;
}

test("PNG class folders load as sorted classes with exact CHW pixels", async () => {
  const root = tempDir();
  const imgs = [0, 1, 2].map((i) => pseudoBytes(6 * 5 * 3, 100 + i));
  await writeImage(path.join(root, "dog", "a.png"), imgs[0], 6, 5, 3);
  await writeImage(path.join(root, "cat", "b.png"), imgs[1], 6, 5, 3);
  await writeImage(path.join(root, "cat", "a.PNG"), imgs[2], 6, 5, 3);
  fs.writeFileSync(path.join(root, "cat", "notes.txt"), "not an image");
  const ds = loadImageFolder(root);
  assert.deepEqual(ds.classNames, ["cat", "dog"]);
  assert.deepEqual([ds.n, ds.channels, ds.height, ds.width], [3, 3, 5, 6]);
  // Files sorted by name within a class: cat/a.PNG, cat/b.png, dog/a.png.
  assert.deepEqual(Array.from(ds.labels), [0, 0, 1]);
  const size = 3 * 5 * 6;
  [imgs[2], imgs[1], imgs[0]].forEach((hwc, i) => {
    assert.deepEqual(Array.from(ds.images.subarray(i * size, (i + 1) * size)), hwcToChw(hwc, 6, 5, 3), `image ${i}`);
  });
});

test("grayscale folders give one channel; mixed with colour, gray is repeated into RGB", async () => {
  const root = tempDir();
  const gray = pseudoBytes(4 * 4, 7);
  await writeImage(path.join(root, "a", "g.png"), gray, 4, 4, 1);
  await writeImage(path.join(root, "b", "g.png"), pseudoBytes(16, 8), 4, 4, 1);
  const ds = loadImageFolder(root);
  assert.equal(ds.channels, 1);
  assert.deepEqual(Array.from(ds.images.subarray(0, 16)), Array.from(gray));
  await writeImage(path.join(root, "b", "rgb.png"), pseudoBytes(48, 9), 4, 4, 3);
  const mixed = loadImageFolder(root);
  assert.equal(mixed.channels, 3);
  const first = Array.from(mixed.images.subarray(0, 48));
  assert.deepEqual(first, [...gray, ...gray, ...gray]);
});

test("size resizes every image (JPEG too) to size x size", async () => {
  const root = tempDir();
  const red = new Uint8Array(20 * 12 * 3);
  for (let p = 0; p < 240; p++) red.set([200, 30, 60], p * 3);
  await writeImage(path.join(root, "train", "x", "wide.jpg"), red, 20, 12, 3);
  await writeImage(path.join(root, "train", "y", "small.png"), red.subarray(0, 5 * 7 * 3), 5, 7, 3);
  await writeImage(path.join(root, "test", "x", "t.png"), red.subarray(0, 8 * 8 * 3), 8, 8, 3);
  await writeImage(path.join(root, "test", "y", "t.png"), red.subarray(0, 8 * 8 * 3), 8, 8, 3);
  const ds = loadDataset("folder", { split: "train", root, size: 8 });
  assert.deepEqual([ds.n, ds.channels, ds.height, ds.width], [2, 3, 8, 8]);
  // A uniform image stays uniform when resized; JPEG keeps it within a few levels.
  for (let c = 0; c < 3; c++) {
    const plane = ds.images.subarray(c * 64, (c + 1) * 64);
    for (const v of plane) assert.ok(Math.abs(v - [200, 30, 60][c]) <= 4, `channel ${c}: ${v}`);
  }
  assert.equal(loadDataset("folder", { split: "test", root }).n, 2);
});

test("a folder without test/ has no test split: asking for it is refused, never the training images", async () => {
  const root = tempDir();
  await writeImage(path.join(root, "a", "1.png"), pseudoBytes(12, 1), 2, 2, 3);
  await writeImage(path.join(root, "b", "2.png"), pseudoBytes(12, 2), 2, 2, 3);
  assert.equal(loadDataset("folder", { split: "train", root }).n, 2);
  assert.throws(
    () => loadDataset("folder", { split: "test", root }),
    /has no test\/ sub-folder.*would be the training images.*--split val/,
  );
  assert.equal(hasTestSplit("folder", root), false);
  assert.equal(hasTestSplit("fashion-mnist", undefined), true);
  fs.mkdirSync(path.join(root, "test"));
  assert.equal(hasTestSplit("folder", root), true);
});

test("images of different sizes without size= is an error that says to pass size", async () => {
  const root = tempDir();
  await writeImage(path.join(root, "a", "1.png"), pseudoBytes(12, 1), 2, 2, 3);
  await writeImage(path.join(root, "a", "2.png"), pseudoBytes(27, 1), 3, 3, 3);
  assert.throws(() => loadImageFolder(root), /images differ in size .*1\.png is 2x2, .*2\.png is 3x3\); pass size/);
});

test("an unreadable image is an error naming the file", async () => {
  const root = tempDir();
  await writeImage(path.join(root, "a", "good.png"), pseudoBytes(12, 1), 2, 2, 3);
  fs.writeFileSync(path.join(root, "a", "broken.png"), "this is not a png");
  assert.throws(() => loadImageFolder(root, { size: 2 }), /cannot read image .*a\/broken\.png/);
});

test("bad folders and sizes are clear errors", () => {
  const root = tempDir();
  assert.throws(() => loadImageFolder(root), /has no class sub-folders/);
  fs.mkdirSync(path.join(root, "empty"));
  assert.throws(() => loadImageFolder(root), /no \.png\/\.jpg\/\.jpeg files/);
  assert.throws(
    () => loadImageFolder(path.join(root, "missing")),
    /no such folder: .*missing\. Give a folder that holds/,
  );
  fs.writeFileSync(path.join(root, "file.png"), "");
  assert.throws(() => loadImageFolder(path.join(root, "file.png")), /file\.png is a file, not a folder/);
  assert.throws(() => loadImageFolder(root, { size: 0 }), /size must be an integer in \[1, 4096\]\. Received: size=0/);
  assert.throws(() => loadDataset("folder", { split: "train" }), /needs root=/);
});
