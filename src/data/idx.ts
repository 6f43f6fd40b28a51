// IDX files (LeCun's MNIST format, also Fashion-MNIST): a big-endian header -- two zero bytes,
// a type byte (0x08 = unsigned byte), the number of dimensions, one uint32 per dimension --
// then the data. Read plain or gzipped.
import * as fs from "node:fs";
import * as zlib from "node:zlib";
import { ArgumentError } from "../tensor/errors";
import { checkDataset, type ImageDataset } from "./dataset";

export const IDX_IMAGES_MAGIC = 0x00000803;
export const IDX_LABELS_MAGIC = 0x00000801;

/** The file's bytes, gunzipped when it starts with the gzip magic (1f 8b). */
export function readMaybeGzip(file: string): Buffer {
  let raw: Buffer;
  try {
    raw = fs.readFileSync(file);
  } catch (e) {
    throw new ArgumentError(`cannot read ${file}: ${(e as Error).message}`);
  }
  if (raw.length < 2 || raw[0] !== 0x1f || raw[1] !== 0x8b) return raw;
  try {
    return zlib.gunzipSync(raw);
  } catch (e) {
    throw new ArgumentError(
      `${file} starts like a gzip file but does not decompress (${(e as Error).message}); it is damaged or incomplete. Download it again.`,
    );
  }
}

export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

/** Parses one IDX file of unsigned bytes whose magic must be `magic`. */
export function readIdx(file: string, magic: number): IdxArray {
  const buf = readMaybeGzip(file);
  const kind = magic === IDX_IMAGES_MAGIC ? "images (magic 0x00000803)" : "labels (magic 0x00000801)";
  if (buf.length < 4) throw new ArgumentError(`${file} is too short to be an IDX file. Received: bytes=${buf.length}`);
  const found = buf.readUInt32BE(0);
  if (found !== magic)
    throw new ArgumentError(
      `${file} is not an IDX file of ${kind}: wrong magic number. Received: magic=0x${found.toString(16).padStart(8, "0")}`,
    );
  const rank = magic & 0xff;
  const headerBytes = 4 + 4 * rank;
  if (buf.length < headerBytes)
    throw new ArgumentError(`${file}: the IDX header is cut short. Received: bytes=${buf.length}`);
  const dims: number[] = [];
  for (let d = 0; d < rank; d++) dims.push(buf.readUInt32BE(4 + 4 * d));
  const expected = dims.reduce((a, b) => a * b, 1);
  const actual = buf.length - headerBytes;
  if (actual !== expected)
    throw new ArgumentError(
      `${file}: the header promises ${expected} bytes of data (dims [${dims.join(", ")}]) but the file holds ${actual}; it is truncated or not what its header says. Received: dataBytes=${actual}`,
    );
  // A copy, so the data set owns a compact buffer and the decompressed file can be freed.
  return { dims, data: new Uint8Array(buf.subarray(headerBytes)) };
}

export interface IdxPairOptions {
  name: string;
  imagesFile: string;
  labelsFile: string;
  classNames: string[];
}

/** An image data set from an IDX images file and its IDX labels file. */
export function loadIdxPair(opts: IdxPairOptions): ImageDataset {
  const images = readIdx(opts.imagesFile, IDX_IMAGES_MAGIC);
  const labels = readIdx(opts.labelsFile, IDX_LABELS_MAGIC);
  const [n, height, width] = images.dims as [number, number, number];
  if (labels.dims[0] !== n)
    throw new ArgumentError(
      `${opts.labelsFile} has ${labels.dims[0]} labels but ${opts.imagesFile} has ${n} images; the two files do not belong together. Received: labels=${labels.dims[0]}, images=${n}`,
    );
  const numClasses = opts.classNames.length;
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const v = labels.data[i];
    if (v >= numClasses)
      throw new ArgumentError(
        `${opts.labelsFile}: label ${i} is outside [0, ${numClasses - 1}] for ${opts.name}. Received: label=${v}`,
      );
    y[i] = v;
  }
  return checkDataset({
    name: opts.name,
    images: images.data,
    labels: y,
    n,
    channels: 1,
    height,
    width,
    numClasses,
    classNames: [...opts.classNames],
  });
}
