// The study's journal (STUDY/journal.jsonl): one JSON event a line, appended whole and synced to
// disk before the coordinator goes on, so a kill -9 at any moment leaves every finished trial on
// record. A write that fails part-way is cut back off (no half line). Reading keeps every good
// line and reports a damaged one by its line number instead of dropping the study.
//
// Events:
//   {"event":"session", "session": k, "elapsed": s}            a coordinator (re)started
//   {"event":"trial", "trial": id, "point", "key", "rung", "resource", "cost", "parent"?, "promotes"?,
//    "rejected": {invalid, repaired, overBudget, duplicate}}  a trial was proposed and launched
//   {"event":"result", "trial": id, "valAccuracy", "finalValAccuracy", "epochs", "steps", "seconds", "worker"}
//   {"event":"failure", "trial": id, "error"}                   a trial failed for good
//   {"event":"stop", "reason", "elapsed"}                       the coordinator stopped launching
// Every event carries "time" (ISO) and "elapsed" (search seconds, summed over sessions).
import * as fs from "node:fs";
import * as path from "node:path";
import { FileWriteError, writeAll } from "../export/atomic";
import { ArgumentError } from "../tensor/errors";
import { lockRunFolder, RunFolderBusyError } from "../train/run_lock";

export type JournalEvent = Record<string, unknown> & { event: string };

export class Journal {
  private readonly fd: number;
  private size: number;

  constructor(readonly file: string) {
    try {
      this.fd = fs.openSync(file, "a");
      this.size = fs.fstatSync(this.fd).size;
      // a half line left by a crash mid-write is cut off here, so the next event starts a line
      const text = fs.readFileSync(file, "utf8");
      if (text.length > 0 && !text.endsWith("\n")) {
        const keep = Buffer.byteLength(text.slice(0, text.lastIndexOf("\n") + 1), "utf8");
        fs.ftruncateSync(this.fd, keep);
        this.size = keep;
      }
    } catch (e) {
      throw new FileWriteError(file, e);
    }
  }

  append(event: JournalEvent): void {
    const bytes = Buffer.from(`${JSON.stringify({ time: new Date().toISOString(), ...event })}\n`, "utf8");
    try {
      writeAll(this.fd, bytes);
      fs.fdatasyncSync(this.fd);
      this.size += bytes.length;
    } catch (e) {
      try {
        fs.ftruncateSync(this.fd, this.size);
      } catch {
        // readJournal reports the damaged line by number
      }
      throw new FileWriteError(this.file, e);
    }
  }

  close(): void {
    fs.closeSync(this.fd);
  }
}

export interface JournalContents {
  events: JournalEvent[];
  /** "line N: reason" for every line that could not be read (they are skipped, the rest is kept). */
  damaged: string[];
}

export function readJournal(file: string): JournalContents {
  const events: JournalEvent[] = [];
  const damaged: string[] = [];
  if (!fs.existsSync(file)) return { events, damaged };
  const text = fs.readFileSync(file, "utf8");
  const lines = text.split("\n");
  // a last line without its newline is a write cut short by a kill: not damage, just not written
  if (!text.endsWith("\n")) lines.pop();
  lines.forEach((line, i) => {
    if (line.trim() === "") return;
    try {
      const e = JSON.parse(line) as unknown;
      if (e === null || typeof e !== "object" || Array.isArray(e) || typeof (e as JournalEvent).event !== "string")
        damaged.push(`line ${i + 1}: not a journal event (an object with "event")`);
      else events.push(e as JournalEvent);
    } catch (err) {
      damaged.push(`line ${i + 1}: ${(err as Error).message}`);
    }
  });
  return { events, damaged };
}

/**
 * Runs fn with the study folder locked (one coordinator per study: run.lock, a kernel lock) and its
 * journal open; `who` names the command in the error when another one holds the folder.
 */
export async function withStudyJournal<T>(
  dir: string,
  file: string,
  who: string,
  fn: (j: Journal) => Promise<T>,
): Promise<T> {
  let lock: ReturnType<typeof lockRunFolder>;
  try {
    lock = lockRunFolder(dir);
  } catch (e) {
    if (e instanceof RunFolderBusyError)
      throw new ArgumentError(
        `the study in ${dir} is already being run by another ${who} (its run.lock is held): ${e.message}`,
      );
    throw e;
  }
  const journal = new Journal(path.join(dir, file));
  try {
    return await fn(journal);
  } finally {
    journal.close();
    lock.release();
  }
}
