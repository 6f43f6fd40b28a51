// Data set names, class names and the places each data set is looked for by default.
import * as os from "node:os";
import * as path from "node:path";

export type DatasetName = "fashion-mnist" | "mnist" | "cifar10" | "cifar100" | "folder";
export const DATASET_NAMES: readonly DatasetName[] = ["fashion-mnist", "mnist", "cifar10", "cifar100", "folder"];

/** Debian's dataset-fashion-mnist package puts the four official .gz files here. */
export const DEBIAN_FASHION_MNIST = "/usr/share/datasets/fashion-mnist";

export const FASHION_MNIST_CLASSES = [
  "T-shirt/top",
  "Trouser",
  "Pullover",
  "Dress",
  "Coat",
  "Sandal",
  "Shirt",
  "Sneaker",
  "Bag",
  "Ankle boot",
];
export const MNIST_CLASSES = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];

/** The download/cache folder of a data set: $BUDGETNET_DATA/<name>, else ~/.cache/budgetnet/<name>. */
export function dataHome(name: string): string {
  const base = process.env.BUDGETNET_DATA || path.join(os.homedir(), ".cache", "budgetnet");
  return path.join(base, name);
}

/** Where a data set is looked for, in order, when no root is given. */
export function defaultRoots(name: DatasetName): string[] {
  if (name === "fashion-mnist") return [dataHome(name), DEBIAN_FASHION_MNIST];
  return [dataHome(name)];
}
