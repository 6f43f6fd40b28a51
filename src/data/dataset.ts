// The in-memory image data set every loader produces: uint8 pixels in one contiguous buffer,
// each image CHW, so the native batch assembler reads them without a copy.
import { ArgumentError } from "../tensor/errors";

export interface ImageDataset {
  name: string;
  /** N*C*H*W bytes, image i at offset i*C*H*W, each image channel-major (CHW). */
  images: Uint8Array;
  labels: Int32Array;
  n: number;
  channels: number;
  height: number;
  width: number;
  numClasses: number;
  classNames: string[];
}

/**
 * A data set's files are not where they were looked for. The message speaks to library users
 * (downloadDataset, root=); `dataset`, `root` and `looked` let a front end say it in its own
 * words (the CLI: `budgetnet data download NAME`, --data-root).
 */
export class DataNotFoundError extends ArgumentError {
  constructor(
    message: string,
    /** The data set's name: cifar10, fashion-mnist, ... */
    readonly dataset: string,
    /** The folder it was expected in (the given root, else its default place). */
    readonly root: string,
    /** Every place that was looked in. */
    readonly looked: readonly string[],
  ) {
    super(message);
    this.name = "DataNotFoundError";
  }
}

/** Bytes per image. */
export function imageSize(ds: ImageDataset): number {
  return ds.channels * ds.height * ds.width;
}

/** Checks a data set's fields agree with each other; every reader calls it before returning. */
export function checkDataset(ds: ImageDataset): ImageDataset {
  const where = `data set "${ds.name}"`;
  for (const [k, v] of [
    ["n", ds.n],
    ["channels", ds.channels],
    ["height", ds.height],
    ["width", ds.width],
    ["numClasses", ds.numClasses],
  ] as const) {
    if (!Number.isInteger(v) || v < 0)
      throw new ArgumentError(`${where}: ${k} must be a non-negative integer. Received: ${k}=${v}`);
  }
  if (ds.images.length !== ds.n * imageSize(ds))
    throw new ArgumentError(
      `${where}: images holds ${ds.images.length} bytes but n*channels*height*width = ${ds.n * imageSize(ds)}. Received: n=${ds.n}, shape=[${ds.channels}, ${ds.height}, ${ds.width}]`,
    );
  if (ds.labels.length !== ds.n)
    throw new ArgumentError(
      `${where}: there are ${ds.labels.length} labels for ${ds.n} images. Received: labels.length=${ds.labels.length}`,
    );
  if (ds.classNames.length !== ds.numClasses)
    throw new ArgumentError(
      `${where}: classNames has ${ds.classNames.length} names for ${ds.numClasses} classes. Received: classNames.length=${ds.classNames.length}`,
    );
  for (let i = 0; i < ds.n; i++) {
    const y = ds.labels[i];
    if (y < 0 || y >= ds.numClasses)
      throw new ArgumentError(
        `${where}: label of image ${i} is outside [0, ${ds.numClasses - 1}]. Received: label=${y}`,
      );
  }
  return ds;
}

/** A new data set holding copies of the images at `indices`, in that order. */
export function subset(ds: ImageDataset, indices: Int32Array): ImageDataset {
  const size = imageSize(ds);
  const images = new Uint8Array(indices.length * size);
  const labels = new Int32Array(indices.length);
  for (let k = 0; k < indices.length; k++) {
    const i = indices[k];
    if (!(i >= 0 && i < ds.n))
      throw new ArgumentError(`subset: index ${k} is outside [0, ${ds.n - 1}] of "${ds.name}". Received: index=${i}`);
    images.set(ds.images.subarray(i * size, (i + 1) * size), k * size);
    labels[k] = ds.labels[i];
  }
  return { ...ds, images, labels, n: indices.length, classNames: [...ds.classNames] };
}

/** How many images each class has. */
export function classCounts(ds: ImageDataset): number[] {
  const counts = new Array<number>(ds.numClasses).fill(0);
  for (let i = 0; i < ds.n; i++) counts[ds.labels[i]]++;
  return counts;
}
