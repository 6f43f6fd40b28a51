// A small reader for tar archives (POSIX ustar, with the GNU long-name and pax path
// extensions), enough to take the CIFAR binary batches straight out of the official .tar.gz.
import { ArgumentError } from "../tensor/errors";
import { readMaybeGzip } from "./idx";

const BLOCK = 512;

function cString(buf: Buffer, start: number, length: number): string {
  const end = buf.indexOf(0, start);
  return buf.toString("utf8", start, end < 0 || end > start + length ? start + length : end);
}

/** An octal field, or GNU's base-256 form when the high bit of the first byte is set. */
function numberField(buf: Buffer, start: number, length: number): number {
  if (buf[start] & 0x80) {
    let v = buf[start] & 0x7f;
    for (let i = 1; i < length; i++) v = v * 256 + buf[start + i];
    return v;
  }
  const text = cString(buf, start, length).trim();
  return text === "" ? 0 : Number.parseInt(text, 8);
}

function checksumOk(buf: Buffer, at: number): boolean {
  const stored = numberField(buf, at + 148, 8);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : buf[at + i];
  return sum === stored;
}

function paxPath(data: Buffer): string | undefined {
  // Records are "<length> <key>=<value>\n".
  let at = 0;
  while (at < data.length) {
    const space = data.indexOf(0x20, at);
    if (space < 0) break;
    const len = Number.parseInt(data.toString("utf8", at, space), 10);
    if (!(len > 0)) break;
    const record = data.toString("utf8", space + 1, at + len - 1);
    const eq = record.indexOf("=");
    if (record.slice(0, eq) === "path") return record.slice(eq + 1);
    at += len;
  }
  return undefined;
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
    const type = String.fromCharCode(tar[at + 156] || 0x30);
    const dataStart = at + BLOCK;
    if (dataStart + size > tar.length)
      throw new ArgumentError(
        `${source}: the archive ends inside a member (needs ${dataStart + size} bytes, has ${tar.length}); it is truncated. Download it again.`,
      );
    const data = tar.subarray(dataStart, dataStart + size);
    const magic = tar.toString("latin1", at + 257, at + 262);
    const prefix = magic === "ustar" ? cString(tar, at + 345, 155) : "";
    const name = cString(tar, at, 100);
    if (type === "L") longName = cString(data, 0, data.length);
    else if (type === "x") longName = paxPath(data) ?? longName;
    else {
      const full = longName ?? (prefix ? `${prefix}/${name}` : name);
      longName = undefined;
      if (type === "0" || type === "7") files.set(full, data);
    }
    at = dataStart + Math.ceil(size / BLOCK) * BLOCK;
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
