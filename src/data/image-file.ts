// Image files read only when it is safe to: a FIFO, socket or device named x.png would block
// the reader forever (and keep the process from exiting), and a 16000x16000 PNG would take
// ~0.5 GB to decode, so the file's kind is checked before it is opened and the image's size is
// read from its header before a pixel is decoded. Used by the folder reader and `predict`.
import * as fs from "node:fs";
import { ArgumentError } from "../tensor/errors";

/** The most pixels an image may have: 2^26, an 8192x8192 image (192 MiB as 8-bit RGB). */
export const MAX_IMAGE_PIXELS = 2 ** 26;

function kindOf(st: fs.Stats): string {
  if (st.isDirectory()) return "a directory";
  if (st.isFIFO()) return "a FIFO (named pipe)";
  if (st.isSocket()) return "a socket";
  if (st.isCharacterDevice()) return "a character device";
  if (st.isBlockDevice()) return "a block device";
  return "not a regular file";
}

function notRegular(what: string, file: string, st: fs.Stats): ArgumentError {
  return new ArgumentError(
    `${what}: ${file} is not a regular file (it is ${kindOf(st)}); only image files (or symlinks to them) can be read. Remove it or replace it with a PNG or JPEG file. Received: path=${JSON.stringify(file)}`,
  );
}

/** Throws unless `file` is a regular file or a symlink that leads to one. */
export function checkRegularFile(file: string, what: string): void {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch (e) {
    throw new ArgumentError(
      `${what}: cannot read ${file}: ${(e as Error).message}. Check that it exists and is readable (a symlink must lead to a file). Received: path=${JSON.stringify(file)}`,
    );
  }
  if (!st.isFile()) throw notRegular(what, file, st);
}

/** The bytes of `file`, which must be a regular file (checked before and after opening it). */
export function readRegularFile(file: string, what: string): Buffer {
  checkRegularFile(file, what);
  // O_NONBLOCK: had the path become a FIFO since the check, opening it would not wait for a writer.
  const fd = fs.openSync(file, fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0));
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw notRegular(what, file, st);
    return fs.readFileSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Throws unless the header's size is known and at most MAX_IMAGE_PIXELS; call before decoding. */
export function checkImageSize(
  file: string,
  width: number | undefined,
  height: number | undefined,
  what: string,
): void {
  if (!(Number.isInteger(width) && Number.isInteger(height) && (width as number) > 0 && (height as number) > 0))
    throw new ArgumentError(
      `${what}: ${file} has no image size in its header; it is not a PNG or JPEG image. Received: width=${width}, height=${height}`,
    );
  const pixels = (width as number) * (height as number);
  if (pixels > MAX_IMAGE_PIXELS)
    throw new ArgumentError(
      `${what}: ${file} is ${width}x${height} (${pixels} pixels), over the limit of ${MAX_IMAGE_PIXELS} pixels (8192x8192) for decoding an image; scale it down first (the model only sees its input size). Received: width=${width}, height=${height}`,
    );
}

/** sharp's error text on one line: libvips repeats its message once per failed read attempt. */
export function decoderMessage(e: unknown): string {
  const text = e instanceof Error ? e.message : String(e);
  const lines = text
    .split("\n")
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  return [...new Set(lines)].slice(0, 2).join("; ") || "the decoder gave no reason";
}
