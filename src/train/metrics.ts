// metrics.jsonl (one JSON object a line, appended and flushed) and the terminal progress:
// a one-line bar on a TTY, plain lines otherwise.
import * as fs from "node:fs";

export class MetricsLog {
  private readonly fd: number;

  constructor(readonly file: string) {
    this.fd = fs.openSync(file, "a");
  }

  write(record: Record<string, unknown>): void {
    fs.writeSync(this.fd, `${JSON.stringify({ time: new Date().toISOString(), ...record })}\n`);
  }

  close(): void {
    fs.closeSync(this.fd);
  }
}

/** Reads metrics.jsonl back (for eval reports and tests). */
export function readMetrics(file: string): Record<string, unknown>[] {
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, "utf8")
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l) as Record<string, unknown>);
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
