// Decodes an image folder's files with sharp on a worker thread. sharp only has an async API;
// folder.ts waits for this worker synchronously so loadDataset() can stay synchronous.
import { type MessagePort, workerData } from "node:worker_threads";
import { ArgumentError } from "../tensor/errors";
import { checkImageSize, decoderMessage, MAX_IMAGE_PIXELS, readRegularFile } from "./image-file";

export interface FolderJob {
  files: string[];
  /** Resize every image to size x size (cover: scale the short side, centre-crop); 0 keeps sizes. */
  size: number;
  /** [0]: 1 when the result was posted, [1]: images decoded so far (for the stall check). */
  signal: SharedArrayBuffer;
  port: MessagePort;
}

export type FolderResult =
  | { ok: true; images: Uint8Array; channels: number; height: number; width: number }
  | { ok: false; message: string };

interface Decoded {
  data: Buffer;
  channels: number;
  height: number;
  width: number;
}

type Sharp = typeof import("sharp")["default"];

/** One file to HWC uint8: only a regular file is read, and its size is checked before decoding. */
async function decodeOne(sharp: Sharp, file: string, size: number): Promise<Decoded> {
  const bytes = readRegularFile(file, "image folder");
  // metadata() reads the header only (sharp's own pixel limit would refuse it there, without
  // saying what the limit is); no pixel is decoded before the size is known to be sane.
  const meta = await sharp(bytes, { failOn: "error", limitInputPixels: false }).metadata();
  checkImageSize(file, meta.width, meta.height, "image folder");
  const opts = { failOn: "error", limitInputPixels: MAX_IMAGE_PIXELS } as const;
  // Decoding to raw converts to sRGB unless told otherwise; keep grayscale files one channel.
  const gray = meta.space === "b-w" || meta.space === "grey16";
  let pipeline = sharp(bytes, opts)
    .removeAlpha()
    .toColourspace(gray ? "b-w" : "srgb");
  if (size > 0) pipeline = pipeline.resize(size, size, { fit: "cover" });
  const { data, info } = await pipeline.raw({ depth: "uchar" }).toBuffer({ resolveWithObject: true });
  if (info.channels !== 1 && info.channels !== 3)
    throw new Error(`it decodes to ${info.channels} channels; only grayscale and RGB images are supported`);
  return { data, channels: info.channels, height: info.height, width: info.width };
}

async function decodeAll(job: FolderJob, progress: Int32Array): Promise<Decoded[]> {
  const sharp = (await import("sharp")).default;
  const out: Decoded[] = new Array(job.files.length);
  let next = 0;
  // A few files in flight keep libvips' threads busy without holding many encoded files at once.
  const lane = async (): Promise<void> => {
    while (next < job.files.length) {
      const i = next++;
      const file = job.files[i];
      try {
        out[i] = await decodeOne(sharp, file, job.size);
      } catch (e) {
        // The file checks already name the file and say what to do.
        if (e instanceof ArgumentError) throw e;
        throw new Error(
          `image folder: cannot read image ${file}: ${decoderMessage(e)}. It is damaged or not a PNG/JPEG image; replace it or remove it from the folder.`,
        );
      }
      Atomics.add(progress, 1, 1);
    }
  };
  await Promise.all([lane(), lane(), lane(), lane()]);
  return out;
}

/** Packs HWC decodes into one N*C*H*W buffer; grayscale images are repeated into RGB when others are colour. */
function pack(job: FolderJob, decoded: Decoded[]): FolderResult {
  const first = decoded[0];
  for (let i = 1; i < decoded.length; i++) {
    const d = decoded[i];
    if (d.height !== first.height || d.width !== first.width)
      return {
        ok: false,
        message: `image folder: images differ in size (${job.files[0]} is ${first.width}x${first.height}, ${job.files[i]} is ${d.width}x${d.height}); pass size to resize them all. Received: size=undefined`,
      };
  }
  const channels = decoded.some((d) => d.channels === 3) ? 3 : 1;
  const plane = first.height * first.width;
  const images = new Uint8Array(decoded.length * channels * plane);
  decoded.forEach((d, i) => {
    const base = i * channels * plane;
    for (let c = 0; c < channels; c++) {
      const from = d.channels === 1 ? 0 : c;
      const dst = base + c * plane;
      for (let p = 0; p < plane; p++) images[dst + p] = d.data[p * d.channels + from];
    }
  });
  return { ok: true, images, channels, height: first.height, width: first.width };
}

async function main(): Promise<void> {
  const job = workerData as FolderJob;
  const signal = new Int32Array(job.signal);
  let result: FolderResult;
  try {
    result = pack(job, await decodeAll(job, signal));
  } catch (e) {
    result = { ok: false, message: (e as Error).message };
  }
  job.port.postMessage(result, result.ok ? [result.images.buffer as ArrayBuffer] : []);
  Atomics.store(signal, 0, 1);
  Atomics.notify(signal, 0);
}

void main();
