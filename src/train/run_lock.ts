// One trainer per run folder: `run.lock` holds an exclusive flock for as long as the trainer
// runs, with the owner's pid, host and start time written in it for the message a second
// trainer gets. The kernel drops the lock when the owner exits or is killed (kill -9 included),
// so a lock file left behind never blocks the next run.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { removeStaleTemps, writeAll } from "../export/atomic";
import { tryLockFile } from "../tensor/tensor";

export class RunFolderBusyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RunFolderBusyError";
  }
}

export interface RunLock {
  readonly file: string;
  release(): void;
}

function describeOwner(text: string): string {
  try {
    const o = JSON.parse(text) as { pid?: number; host?: string; startedAt?: string };
    return `process ${o.pid ?? "?"} on ${o.host ?? "?"} (started ${o.startedAt ?? "?"})`;
  } catch {
    return "another process";
  }
}

/** Creates runDir if needed and locks it for this process; throws RunFolderBusyError when another trainer holds it. */
export function lockRunFolder(runDir: string): RunLock {
  fs.mkdirSync(runDir, { recursive: true });
  const file = path.join(runDir, "run.lock");
  // "a+" neither truncates (the holder's text stays readable until we own the lock) nor fails
  // when the file exists.
  const fd = fs.openSync(file, "a+");
  let taken = false;
  try {
    if (!tryLockFile(fd)) {
      const owner = describeOwner(fs.readFileSync(file, "utf8"));
      throw new RunFolderBusyError(
        `${runDir} is in use: ${owner} is training into it (${file}). Wait for it to finish, or choose another --out.`,
      );
    }
    taken = true;
    fs.ftruncateSync(fd, 0);
    writeAll(fd, `${JSON.stringify({ pid: process.pid, host: os.hostname(), startedAt: new Date().toISOString() })}\n`);
  } finally {
    if (!taken) fs.closeSync(fd);
  }
  removeStaleTemps(runDir); // temp files that writers killed mid-write left behind
  let released = false;
  return {
    file,
    release() {
      if (released) return;
      released = true;
      // The file stays (removing it would race a waiting trainer's open); closing drops the lock.
      fs.closeSync(fd);
    },
  };
}
