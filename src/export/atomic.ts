// Nothing is lost: files are written to a temporary name in the same folder, flushed to disk,
// then renamed over the target, so a crash leaves either the old file or the new one, whole.
import * as fs from "node:fs";
import * as path from "node:path";

/** Writes the chunks, in order, to file atomically (temp file + fsync + rename). */
export function writeFileAtomic(file: string, chunks: readonly (Uint8Array | string)[]): void {
  const dir = path.dirname(path.resolve(file));
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${Date.now()}.tmp`);
  let fd: number | undefined;
  try {
    fd = fs.openSync(tmp, "w");
    for (const c of chunks) {
      if (typeof c === "string") fs.writeSync(fd, c);
      else fs.writeSync(fd, c);
    }
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = undefined;
    fs.renameSync(tmp, file);
  } catch (err) {
    if (fd !== undefined) fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw err;
  }
}
