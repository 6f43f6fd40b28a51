// CIFAR-10 and CIFAR-100 in their official binary format (Krizhevsky 2009), read straight from
// cifar-10-binary.tar.gz / cifar-100-binary.tar.gz or from the extracted folder.
// A record is 1 label byte (CIFAR-100: coarse then fine) followed by 3072 pixel bytes:
// 1024 red, 1024 green, 1024 blue, each row-major 32x32 -- already the CHW layout we keep.
import * as fs from "node:fs";
import * as path from "node:path";
import { ArgumentError } from "../tensor/errors";
import { checkDataset, DataNotFoundError, type ImageDataset } from "./dataset";
import { findMember, readTarFile } from "./tar";

export type CifarName = "cifar10" | "cifar100";

export interface CifarOptions {
  split: "train" | "test";
  /** CIFAR-100 only: the 100 fine classes (default) or the 20 coarse superclasses. */
  label?: "fine" | "coarse";
}

const PIXELS = 3 * 32 * 32;

export const CIFAR10_CLASSES = [
  "airplane",
  "automobile",
  "bird",
  "cat",
  "deer",
  "dog",
  "frog",
  "horse",
  "ship",
  "truck",
];

interface Layout {
  archive: string;
  folder: string;
  train: string[];
  test: string[];
  labelBytes: number;
}

export const CIFAR_LAYOUT: Record<CifarName, Layout> = {
  cifar10: {
    archive: "cifar-10-binary.tar.gz",
    folder: "cifar-10-batches-bin",
    train: ["data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"],
    test: ["test_batch.bin"],
    labelBytes: 1,
  },
  cifar100: {
    archive: "cifar-100-binary.tar.gz",
    folder: "cifar-100-binary",
    train: ["train.bin"],
    test: ["test.bin"],
    labelBytes: 2,
  },
};

/** Where the members come from: an archive in memory or a folder of extracted files. */
interface MemberSource {
  describe: string;
  get(base: string): Buffer | undefined;
}

function archiveSource(file: string): MemberSource {
  const files = readTarFile(file);
  return { describe: file, get: (base) => findMember(files, base) };
}

function folderSource(dir: string): MemberSource {
  return {
    describe: dir,
    get: (base) => {
      const p = path.join(dir, base);
      return fs.existsSync(p) ? fs.readFileSync(p) : undefined;
    },
  };
}

/** Finds the data under `root`: the archive itself, an extracted folder, or a folder holding either. */
function openSource(name: CifarName, root: string, needed: string): MemberSource {
  const layout = CIFAR_LAYOUT[name];
  if (fs.existsSync(root) && fs.statSync(root).isFile()) return archiveSource(root);
  for (const dir of [root, path.join(root, layout.folder)])
    if (fs.existsSync(path.join(dir, needed))) return folderSource(dir);
  const archive = path.join(root, layout.archive);
  if (fs.existsSync(archive)) return archiveSource(archive);
  throw new DataNotFoundError(
    `${name}: no data under ${root}: looked for ${layout.archive}, ${layout.folder}/${needed} and ${needed}. Download it with downloadDataset("${name}", { root }) or pass root= the folder that holds it. Received: root=${JSON.stringify(root)}`,
    name,
    root,
    [archive, path.join(root, layout.folder, needed), path.join(root, needed)],
  );
}

function member(src: MemberSource, base: string): Buffer {
  const data = src.get(base);
  if (data === undefined)
    throw new ArgumentError(
      `${src.describe} has no member ${base}; it is not a complete CIFAR binary archive/folder. Download it again. Received: missing=${JSON.stringify(base)}`,
    );
  return data;
}

function classNames(src: MemberSource, base: string, count: number, fallback: (i: number) => string): string[] {
  const data = src.get(base);
  if (data === undefined) return Array.from({ length: count }, (_, i) => fallback(i));
  const names = data
    .toString("utf8")
    .split("\n")
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  if (names.length !== count)
    throw new ArgumentError(
      `${src.describe}: ${base} lists ${names.length} class names, expected ${count}. Received: names=${names.length}`,
    );
  return names;
}

/** Loads one split of CIFAR-10 or CIFAR-100 from `root` (archive file, extracted folder, or their parent). */
export function loadCifar(name: CifarName, root: string, opts: CifarOptions): ImageDataset {
  const layout = CIFAR_LAYOUT[name];
  const coarse = name === "cifar100" && opts.label === "coarse";
  const numClasses = name === "cifar10" ? 10 : coarse ? 20 : 100;
  const bases = opts.split === "train" ? layout.train : layout.test;
  const src = openSource(name, root, bases[0]);
  const recordSize = layout.labelBytes + PIXELS;
  const chunks = bases.map((base) => {
    const data = member(src, base);
    if (data.length % recordSize !== 0)
      throw new ArgumentError(
        `${src.describe}: ${base} holds ${data.length} bytes, not a whole number of ${recordSize}-byte ${name} records; it is truncated or not ${name}. Received: bytes=${data.length}`,
      );
    return { base, data };
  });
  const n = chunks.reduce((s, c) => s + c.data.length / recordSize, 0);
  const images = new Uint8Array(n * PIXELS);
  const labels = new Int32Array(n);
  // CIFAR-100 records put the coarse label first, then the fine one.
  const labelOffset = name === "cifar100" && !coarse ? 1 : 0;
  let i = 0;
  for (const { base, data } of chunks) {
    for (let at = 0; at < data.length; at += recordSize, i++) {
      const y = data[at + labelOffset];
      if (y >= numClasses)
        throw new ArgumentError(
          `${src.describe}: record ${at / recordSize} of ${base} has label ${y}, outside [0, ${numClasses - 1}]; the file is damaged or not ${name}. Received: label=${y}`,
        );
      labels[i] = y;
      images.set(data.subarray(at + layout.labelBytes, at + recordSize), i * PIXELS);
    }
  }
  const names =
    name === "cifar10"
      ? classNames(src, "batches.meta.txt", 10, (k) => CIFAR10_CLASSES[k])
      : classNames(src, coarse ? "coarse_label_names.txt" : "fine_label_names.txt", numClasses, (k) => `class_${k}`);
  return checkDataset({
    name,
    images,
    labels,
    n,
    channels: 3,
    height: 32,
    width: 32,
    numClasses,
    classNames: names,
  });
}
