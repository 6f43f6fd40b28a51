// Nothing is lost: files are written to a temporary name in the same folder, every byte count
// checked, flushed to disk, renamed over the target, and the folder flushed, so a crash or a full
// disk leaves either the old file or the new one, whole. Journals (metrics.jsonl) append whole
// lines with the same checks.
import * as fs from "node:fs";
import * as path from "node:path";

/** A write that failed, naming the file it was for (a bare "ENOSPC ... write" names none). */
export class FileWriteError extends Error {
  readonly code: string | undefined;
  constructor(
    readonly file: string,
    cause: unknown,
  ) {
    const err = cause as NodeJS.ErrnoException;
    const why =
      err?.code === "ENOSPC"
        ? "the disk is full"
        : err?.code === "EDQUOT"
          ? "the disk quota is exhausted"
          : (err?.message ?? String(cause));
    super(
      `could not write ${file}: ${why}${err?.code ? ` (${err.code})` : ""}. ` +
        "The previous version of the file, if any, is unchanged; free space (or fix the cause) and run again.",
    );
    this.name = "FileWriteError";
    this.code = err?.code;
  }
}

/** Temporary files are named `.<target>.<pid>.<time>.tmp`; this matches them (see removeStaleTemps). */
const TEMP_NAME = /^\.(.+)\.(\d+)\.(\d+)\.tmp$/;

/** Writes all of data at the file's current position, looping over short writes. */
export function writeAll(fd: number, data: Uint8Array | string): void {
  const bytes = typeof data === "string" ? Buffer.from(data, "utf8") : data;
  let off = 0;
  while (off < bytes.length) {
    const n = fs.writeSync(fd, bytes, off, bytes.length - off);
    // A write that makes no progress would loop forever; the kernel reports a full disk as an
    // error on the next call, so this is a device that accepts nothing.
    if (n <= 0) throw Object.assign(new Error("write made no progress"), { code: "EIO" });
    off += n;
  }
}

/** fsync a folder so that a rename or a new file in it survives a power loss. */
export function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, "r");
    fs.fsyncSync(fd);
  } catch {
    // Some file systems refuse fsync on a folder; the rename itself is still atomic.
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/** Writes the chunks, in order, to file atomically (temp file + checked writes + fsync + rename + folder fsync). */
export function writeFileAtomic(file: string, chunks: readonly (Uint8Array | string)[]): void {
  const dir = path.dirname(path.resolve(file));
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${Date.now()}.tmp`);
  let fd: number | undefined;
  try {
    fd = fs.openSync(tmp, "w");
    for (const c of chunks) writeAll(fd, c);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = undefined;
    fs.renameSync(tmp, file);
  } catch (err) {
    if (fd !== undefined) fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw new FileWriteError(file, err);
  }
  fsyncDir(dir);
}

/**
 * Removes temporary files that a killed writer left in dir (`.<name>.<pid>.<time>.tmp` whose
 * process is gone). Returns the names removed.
 */
export function removeStaleTemps(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  const removed: string[] = [];
  for (const name of fs.readdirSync(dir)) {
    const m = TEMP_NAME.exec(name);
    if (m === null) continue;
    const pid = Number(m[2]);
    if (pid === process.pid || processAlive(pid)) continue; // in flight
    fs.rmSync(path.join(dir, name), { force: true });
    removed.push(name);
  }
  return removed;
}

/** Whether a process with this pid exists (EPERM: it exists but is not ours). */
export function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}
