// Image folders: one sub-folder per class (sorted names are the class indices), PNG or JPEG
// files inside, decoded with sharp and resized to size x size.
import * as fs from "node:fs";
import * as path from "node:path";
import { MessageChannel, receiveMessageOnPort, Worker } from "node:worker_threads";
import { ArgumentError } from "../tensor/errors";
import { checkDataset, type ImageDataset } from "./dataset";
import type { FolderJob, FolderResult } from "./folder-worker";
import { checkRegularFile } from "./image-file";

const IMAGE_EXTENSIONS = new Set([".png", ".jpg", ".jpeg"]);
/** With no image decoded for this long the worker is taken as stuck and the load fails. */
const STALL_MS = 120_000;

export interface FolderOptions {
  /** Resize every image to size x size; without it all images must already share one size. */
  size?: number;
  name?: string;
}

/** Class folders and their image files, in a stable (sorted) order. */
export function listImageFolder(root: string): { classNames: string[]; files: string[]; labels: number[] } {
  // Worded for library and command-line users alike: the path is the one they gave.
  if (!fs.existsSync(root))
    throw new ArgumentError(
      `image folder: no such folder: ${root}. Give a folder that holds one sub-folder of images per class.`,
    );
  if (!fs.statSync(root).isDirectory())
    throw new ArgumentError(
      `image folder: ${root} is a file, not a folder. Give a folder that holds one sub-folder of images per class.`,
    );
  const classNames = fs
    .readdirSync(root, { withFileTypes: true })
    .filter((e) => e.isDirectory() && !e.name.startsWith("."))
    .map((e) => e.name)
    .sort();
  if (classNames.length === 0)
    throw new ArgumentError(
      `image folder: ${root} has no class sub-folders; put each class's images in a sub-folder named after the class (${path.join(root, "cat", "001.png")}, ...).`,
    );
  const files: string[] = [];
  const labels: number[] = [];
  const empty: string[] = [];
  classNames.forEach((cls, label) => {
    const dir = path.join(root, cls);
    const before = files.length;
    for (const f of fs.readdirSync(dir).sort()) {
      if (!IMAGE_EXTENSIONS.has(path.extname(f).toLowerCase())) continue;
      // Before any file is opened: a FIFO or device named x.png would block the decoder forever.
      checkRegularFile(path.join(dir, f), "image folder");
      files.push(path.join(dir, f));
      labels.push(label);
    }
    if (files.length === before) empty.push(dir);
  });
  if (empty.length > 0)
    throw new ArgumentError(
      `image folder: the class folder${empty.length > 1 ? "s" : ""} ${empty.join(", ")} ha${empty.length > 1 ? "ve" : "s"} no .png/.jpg/.jpeg files; a class needs at least one image. Remove the folder or add images to it. Received: emptyClasses=${empty.length}`,
    );
  return { classNames, files, labels };
}

/** Runs the decode worker and blocks until it posts its result (or stops making progress). */
function decodeSync(files: string[], size: number): Extract<FolderResult, { ok: true }> {
  const signal = new SharedArrayBuffer(8);
  const state = new Int32Array(signal);
  const { port1, port2 } = new MessageChannel();
  const job: FolderJob = { files, size, signal, port: port2 };
  const script = path.join(__dirname, "folder-worker.js");
  if (!fs.existsSync(script))
    throw new Error(`image folder: the decode worker ${script} is missing; rebuild the package (npm run build).`);
  const worker = new Worker(script, { workerData: job, transferList: [port2] });
  try {
    let seen = -1;
    let lastProgress = Date.now();
    while (Atomics.load(state, 0) === 0) {
      Atomics.wait(state, 0, 0, 1000);
      const done = Atomics.load(state, 1);
      if (done !== seen) {
        seen = done;
        lastProgress = Date.now();
      } else if (Date.now() - lastProgress > STALL_MS && Atomics.load(state, 0) === 0) {
        throw new ArgumentError(
          `image folder: decoding stopped making progress after ${done} of ${files.length} images (next: ${files[done]}). Received: stalledMs=${STALL_MS}`,
        );
      }
    }
    const msg = receiveMessageOnPort(port1);
    if (msg === undefined) throw new Error("image folder: the decode worker finished without a result");
    const result = msg.message as FolderResult;
    if (!result.ok) throw new ArgumentError(result.message);
    return result;
  } finally {
    port1.close();
    void worker.terminate();
  }
}

/** Loads an image folder into memory. */
export function loadImageFolder(root: string, opts: FolderOptions = {}): ImageDataset {
  const size = opts.size ?? 0;
  if (opts.size !== undefined && !(Number.isInteger(size) && size >= 1 && size <= 4096))
    throw new ArgumentError(`image folder: size must be an integer in [1, 4096]. Received: size=${opts.size}`);
  const { classNames, files, labels } = listImageFolder(root);
  const decoded = decodeSync(files, size);
  return checkDataset({
    name: opts.name ?? path.basename(path.resolve(root)),
    images: decoded.images,
    labels: Int32Array.from(labels),
    n: files.length,
    channels: decoded.channels,
    height: decoded.height,
    width: decoded.width,
    numClasses: classNames.length,
    classNames,
  });
}
