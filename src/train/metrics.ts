// metrics.jsonl (one JSON object a line, appended whole) and the terminal progress: a one-line bar
// on a TTY, plain lines otherwise.
import * as fs from "node:fs";
import { FileWriteError, writeAll, writeFileAtomic } from "../export/atomic";

/** The journal of a run. Each record is one line written with one checked write; a write that fails part-way is cut back off, so the file only ever holds whole lines. */
export class MetricsLog {
  private readonly fd: number;
  private size: number;

  /** mode "append" continues the journal (resume); "truncate" starts it empty (a fresh run). */
  constructor(
    readonly file: string,
    mode: "append" | "truncate" = "append",
  ) {
    try {
      // Always O_APPEND: after a failed write is cut back, the next line lands at the new end.
      if (mode === "truncate") fs.closeSync(fs.openSync(file, "w"));
      this.fd = fs.openSync(file, "a");
      this.size = fs.fstatSync(this.fd).size;
    } catch (e) {
      throw new FileWriteError(file, e);
    }
  }

  write(record: Record<string, unknown>): void {
    const line = `${JSON.stringify({ time: new Date().toISOString(), ...record })}\n`;
    const bytes = Buffer.from(line, "utf8");
    try {
      writeAll(this.fd, bytes);
      this.size += bytes.length;
    } catch (e) {
      try {
        fs.ftruncateSync(this.fd, this.size); // no half line stays behind
      } catch {
        // the next reader drops an unparseable last line (readMetrics)
      }
      throw new FileWriteError(this.file, e);
    }
  }

  close(): void {
    fs.closeSync(this.fd);
  }
}

/** Reads metrics.jsonl back (for eval reports and tests). A half-written last line (a run killed mid-write) is skipped. */
export function readMetrics(file: string): Record<string, unknown>[] {
  if (!fs.existsSync(file)) return [];
  const out: Record<string, unknown>[] = [];
  for (const l of fs.readFileSync(file, "utf8").split("\n")) {
    if (l.trim() === "") continue;
    try {
      out.push(JSON.parse(l) as Record<string, unknown>);
    } catch {
      // an incomplete line: skipped
    }
  }
  return out;
}

/**
 * Cuts metrics.jsonl back to what the checkpoint being resumed had recorded: step lines up to its
 * step and epoch lines before its epoch (a kill after the checkpoint leaves later lines that the
 * resumed run writes again). Rewritten atomically; returns the number of lines dropped.
 */
export function trimMetrics(file: string, upTo: { step: number; epoch: number }): number {
  if (!fs.existsSync(file)) return 0;
  const lines = fs
    .readFileSync(file, "utf8")
    .split("\n")
    .filter((l) => l.trim() !== "");
  const keep = lines.filter((l) => {
    try {
      const r = JSON.parse(l) as { type?: string; step?: number; epoch?: number };
      if (r.type === "step") return typeof r.step === "number" && r.step <= upTo.step;
      if (r.type === "epoch") return typeof r.epoch === "number" && r.epoch < upTo.epoch;
      return true;
    } catch {
      return false;
    }
  });
  if (keep.length === lines.length) return 0;
  writeFileAtomic(
    file,
    keep.map((l) => `${l}\n`),
  );
  return lines.length - keep.length;
}

export interface ProgressState {
  epoch: number;
  epochs: number;
  step: number;
  steps: number;
  loss: number;
  accuracy: number;
  imagesPerSec: number;
  etaSec: number;
}

function clock(sec: number): string {
  if (!Number.isFinite(sec) || sec < 0) return "--:--";
  const s = Math.round(sec);
  const m = Math.floor(s / 60);
  return `${m}:${String(s % 60).padStart(2, "0")}`;
}

export class Progress {
  private readonly tty: boolean;
  private lastPlain = -1;

  constructor(
    private readonly out: NodeJS.WriteStream = process.stderr,
    private readonly plainEvery = 50,
  ) {
    this.tty = Boolean(out.isTTY) && process.env.BUDGETNET_PLAIN !== "1";
  }

  update(p: ProgressState): void {
    const text =
      `epoch ${p.epoch + 1}/${p.epochs} step ${p.step}/${p.steps} loss ${p.loss.toFixed(4)} ` +
      `acc ${(p.accuracy * 100).toFixed(2)}% ${Math.round(p.imagesPerSec)} img/s ETA ${clock(p.etaSec)}`;
    if (this.tty) {
      const width = 24;
      const filled = Math.round((p.step / Math.max(1, p.steps)) * width);
      this.out.write(`\r[${"#".repeat(filled)}${".".repeat(width - filled)}] ${text}\x1b[K`);
    } else if (p.step === p.steps || Math.floor(p.step / this.plainEvery) !== this.lastPlain) {
      this.lastPlain = Math.floor(p.step / this.plainEvery);
      this.out.write(`${text}\n`);
    }
  }

  /** A line that stays (epoch summaries, messages). */
  line(text: string): void {
    this.out.write(this.tty ? `\r${text}\x1b[K\n` : `${text}\n`);
  }
}
