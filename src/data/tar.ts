// A small reader for tar archives (POSIX ustar, with the GNU long-name and pax path
// extensions), enough to take the CIFAR binary batches straight out of the official .tar.gz.
import { ArgumentError } from "../tensor/errors";
import { readMaybeGzip } from "./idx";

const BLOCK = 512;

function cString(buf: Buffer, start: number, length: number): string {
  const end = buf.subarray(start, start + length).indexOf(0);
  return buf.toString("utf8", start, end < 0 ? start + length : start + end);
}

/**
 * An octal field, or GNU's base-256 form when the high bit of the first byte is set; undefined
 * when the field is not a non-negative integer (a minus sign, a non-octal digit, a negative or
 * oversized base-256 value), so a hostile header cannot send the reader backwards.
 */
function numberField(buf: Buffer, start: number, length: number): number | undefined {
  if (buf[start] & 0x80) {
    if (buf[start] & 0x40) return undefined; // two's complement: negative
    let v = buf[start] & 0x3f;
    for (let i = 1; i < length; i++) v = v * 256 + buf[start + i];
    return Number.isSafeInteger(v) ? v : undefined;
  }
  const text = cString(buf, start, length).trim();
  if (text === "") return 0;
  return /^[0-7]+$/.test(text) ? Number.parseInt(text, 8) : undefined;
}

function fieldText(buf: Buffer, start: number, length: number): string {
  return JSON.stringify(buf.toString("latin1", start, start + length));
}

function checksumOk(buf: Buffer, at: number): boolean {
  const stored = numberField(buf, at + 148, 8);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : buf[at + i];
  return sum === stored;
}

/**
 * The path of a pax extended header's records, "<length> <key>=<value>\n" each; a record whose
 * length is not a number or does not fit in the header is an error (`offset`: where the header's
 * data starts in the archive).
 */
function paxPath(data: Buffer, source: string, offset: number): string | undefined {
  let found: string | undefined;
  let at = 0;
  while (at < data.length && data[at] !== 0) {
    // The length is at most 12 digits; looking for its space further would be quadratic.
    const spaceAt = data.subarray(at, at + 13).indexOf(0x20);
    const lengthText = data.toString("latin1", at, spaceAt < 0 ? Math.min(data.length, at + 13) : at + spaceAt);
    const len = spaceAt > 0 && /^[0-9]+$/.test(lengthText) ? Number(lengthText) : Number.NaN;
    // The shortest record is "<length> k=\n": its digits, a space, a key, "=" and the newline.
    const fits = len >= lengthText.length + 4 && at + len <= data.length;
    if (!(fits && data[at + len - 1] === 0x0a))
      throw new ArgumentError(
        `${source}: the pax record at byte ${offset + at} is malformed: its length is not a number, does not fit the ${data.length - at} bytes left in its header, or the record does not end in a newline; the archive is damaged. Download it again. Received: length=${JSON.stringify(lengthText)}`,
      );
    const space = at + spaceAt;
    const record = data.toString("utf8", space + 1, at + len - 1);
    const eq = record.indexOf("=");
    if (eq > 0 && record.slice(0, eq) === "path") found = record.slice(eq + 1);
    at += len;
  }
  return found;
}

/** Regular files of a tar archive held in memory: path -> contents (views into `tar`). */
export function listTar(tar: Buffer, source: string): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  let at = 0;
  let longName: string | undefined;
  while (at + BLOCK <= tar.length) {
    if (tar.subarray(at, at + BLOCK).every((b) => b === 0)) break; // end-of-archive marker
    if (!checksumOk(tar, at))
      throw new ArgumentError(
        `${source}: the tar header at byte ${at} has a bad checksum; the file is not a tar archive or is damaged. Download it again.`,
      );
    const size = numberField(tar, at + 124, 12);
    if (size === undefined)
      throw new ArgumentError(
        `${source}: the tar header at byte ${at} has a size field that is not a non-negative octal number; the archive is damaged or was not written by tar. Download it again. Received: size=${fieldText(tar, at + 124, 12)}`,
      );
    const type = String.fromCharCode(tar[at + 156] || 0x30);
    const dataStart = at + BLOCK;
    if (dataStart + size > tar.length)
      throw new ArgumentError(
        `${source}: the archive ends inside a member (its header at byte ${at} gives ${size} bytes of data, which need ${dataStart + size} bytes, the archive has ${tar.length}); it is truncated. Download it again. Received: size=${size}`,
      );
    const data = tar.subarray(dataStart, dataStart + size);
    const magic = tar.toString("latin1", at + 257, at + 262);
    const prefix = magic === "ustar" ? cString(tar, at + 345, 155) : "";
    const name = cString(tar, at, 100);
    if (type === "L") longName = cString(data, 0, data.length);
    else if (type === "x") longName = paxPath(data, source, dataStart) ?? longName;
    else {
      const full = longName ?? (prefix ? `${prefix}/${name}` : name);
      longName = undefined;
      if (type === "0" || type === "7") files.set(full, data);
    }
    const next = dataStart + Math.ceil(size / BLOCK) * BLOCK;
    // Every step moves forward by at least one block, so the loop ends on any input.
    if (!(next > at)) throw new Error(`${source}: tar reader did not advance at byte ${at}`);
    at = next;
  }
  return files;
}

/** Reads and lists a .tar or .tar.gz file. */
export function readTarFile(file: string): Map<string, Buffer> {
  return listTar(readMaybeGzip(file), file);
}

/** The member whose base name is `base` (archives nest their files in one folder). */
export function findMember(files: Map<string, Buffer>, base: string): Buffer | undefined {
  for (const [name, data] of files) if (name === base || name.endsWith(`/${base}`)) return data;
  return undefined;
}
