// loadDataset(name, opts): the one entry point for the data sets budgetnet knows, with the
// default places each one is looked for.
import * as fs from "node:fs";
import * as path from "node:path";
import { ArgumentError } from "../tensor/errors";
import { loadCifar } from "./cifar";
import type { ImageDataset } from "./dataset";
import { loadImageFolder } from "./folder";
import { loadIdxPair } from "./idx";
import { DATASET_NAMES, type DatasetName, defaultRoots, FASHION_MNIST_CLASSES, MNIST_CLASSES } from "./paths";

export interface LoadOptions {
  split: "train" | "test";
  /** Where the files are; see defaultRoots() for where each data set is looked for without it. */
  root?: string;
  /** folder: resize every image to size x size. */
  size?: number;
  /** cifar100: the 100 fine classes (default) or the 20 coarse superclasses. */
  label?: "fine" | "coarse";
}

function idxFile(root: string, base: string): string {
  for (const candidate of [`${base}.gz`, base]) {
    const p = path.join(root, candidate);
    if (fs.existsSync(p)) return p;
  }
  return path.join(root, `${base}.gz`);
}

function idxPresent(root: string, split: "train" | "test"): boolean {
  const prefix = split === "train" ? "train" : "t10k";
  return fs.existsSync(idxFile(root, `${prefix}-images-idx3-ubyte`));
}

function pickRoot(name: DatasetName, opts: LoadOptions, present: (root: string) => boolean): string {
  if (opts.root !== undefined) return opts.root;
  const roots = defaultRoots(name);
  const found = roots.find(present);
  if (found !== undefined) return found;
  const hint =
    name === "fashion-mnist"
      ? `Install Debian's dataset-fashion-mnist, or run downloadDataset("${name}", { root: "${roots[0]}" })`
      : `Run downloadDataset("${name}", { root: "${roots[0]}" })`;
  throw new ArgumentError(
    `loadDataset: ${name} was not found (looked in ${roots.join(", ")}). ${hint}, or pass root=. Received: root=undefined`,
  );
}

function loadIdxDataset(name: "fashion-mnist" | "mnist", opts: LoadOptions): ImageDataset {
  const root = pickRoot(name, opts, (r) => idxPresent(r, opts.split));
  const prefix = opts.split === "train" ? "train" : "t10k";
  return loadIdxPair({
    name,
    imagesFile: idxFile(root, `${prefix}-images-idx3-ubyte`),
    labelsFile: idxFile(root, `${prefix}-labels-idx1-ubyte`),
    classNames: name === "mnist" ? MNIST_CLASSES : FASHION_MNIST_CLASSES,
  });
}

/**
 * Loads one split of a data set into memory as uint8 CHW images.
 * folder: root holds one sub-folder per class, or train/ and test/ folders that each do.
 */
export function loadDataset(name: DatasetName, opts: LoadOptions): ImageDataset {
  if (!DATASET_NAMES.includes(name))
    throw new ArgumentError(
      `loadDataset: unknown data set. Known: ${DATASET_NAMES.join(", ")}. Received: name=${JSON.stringify(name)}`,
    );
  if (opts?.split !== "train" && opts?.split !== "test")
    throw new ArgumentError(
      `loadDataset: split must be "train" or "test". Received: split=${JSON.stringify(opts?.split)}`,
    );
  if (opts.label !== undefined && opts.label !== "fine" && opts.label !== "coarse")
    throw new ArgumentError(
      `loadDataset: label must be "fine" or "coarse". Received: label=${JSON.stringify(opts.label)}`,
    );
  switch (name) {
    case "fashion-mnist":
    case "mnist":
      return loadIdxDataset(name, opts);
    case "cifar10":
    case "cifar100":
      return loadCifar(
        name,
        pickRoot(name, opts, (r) => fs.existsSync(r)),
        opts,
      );
    case "folder": {
      if (opts.root === undefined)
        throw new ArgumentError(
          "loadDataset: the folder data set needs root= the folder of class sub-folders. Received: root=undefined",
        );
      const splitDir = path.join(opts.root, opts.split);
      const hasSplits = ["train", "test"].some((s) => fs.existsSync(path.join(opts.root as string, s)));
      if (!hasSplits && opts.split === "test")
        throw new ArgumentError(
          `${opts.root} has no test/ sub-folder: its class folders are one pool of images, all used for training and validation, so its "test split" would be the training images. ` +
            "Evaluate on the validation split (--split val), or arrange the images as ROOT/train/CLASS/... and ROOT/test/CLASS/... to keep a test set apart.",
        );
      return loadImageFolder(hasSplits ? splitDir : opts.root, { size: opts.size });
    }
  }
}

/**
 * Whether a data set keeps test images apart from its training images: the built-in ones do; an
 * image folder only when it has train/ and test/ sub-folders.
 */
export function hasTestSplit(name: string, root: string | undefined): boolean {
  if (name !== "folder") return true;
  return root !== undefined && fs.existsSync(path.join(root, "test"));
}

export { type AugmentOptions, PARAMS_PER_SAMPLE, sampleParams } from "./augment";
export { loadCifar } from "./cifar";
export { checkDataset, classCounts, type ImageDataset, imageSize, subset } from "./dataset";
export { type DownloadName, type DownloadOptions, downloadDataset, downloadFile, RESOURCES } from "./download";
export { loadImageFolder } from "./folder";
export { IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC, loadIdxPair, readIdx } from "./idx";
export { type Batch, DataLoader, type LoaderOptions, type LoaderState } from "./loader";
export {
  DATASET_NAMES,
  type DatasetName,
  DEBIAN_FASHION_MNIST,
  dataHome,
  defaultRoots,
  FASHION_MNIST_CLASSES,
  MNIST_CLASSES,
} from "./paths";
export { CounterRng, philox4x32, Stream } from "./rng";
export { channelStats, splitTrainVal } from "./split";
