// metrics.jsonl (one JSON object a line, appended whole) and the terminal progress: a one-line bar
// fitted to the terminal's width on a TTY, plain lines otherwise.
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
  /** Seconds left in the whole run (every remaining epoch's steps; validation not counted). */
  etaSec: number;
  /** Seconds left in this epoch; derived from etaSec when absent (the run's steps run at one pace). */
  epochEtaSec?: number;
}

function clock(sec: number): string {
  if (!Number.isFinite(sec) || sec < 0) return "--:--";
  const s = Math.round(sec);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

/** This epoch's share of the run's ETA: the steps left in it over the steps left in the run. */
function epochEta(p: ProgressState): number {
  if (p.epochEtaSec !== undefined) return p.epochEtaSec;
  const runSteps = (p.epochs - p.epoch) * p.steps - p.step;
  return runSteps > 0 ? (p.etaSec * (p.steps - p.step)) / runSteps : 0;
}

const BAR_MIN = 10;
const BAR_MAX = 40;

/**
 * The bar's line for a terminal `columns` wide, never wider than columns - 1 (writing the last
 * column makes some terminals wrap). Fields go, least useful first, until the line and a bar of
 * at least BAR_MIN fit: img/s, accuracy, the epoch's ETA, the loss; the bar (this epoch's steps)
 * takes the room left, up to BAR_MAX. Whichever ETA is shown is labelled with the span it covers.
 */
export function progressLine(p: ProgressState, columns: number): string {
  const limit = Math.max(1, Math.floor(columns) - 1);
  const head = `epoch ${p.epoch + 1}/${p.epochs}`;
  // padded, so that the bar keeps its width from the first step to the last
  const steps = `${String(p.step).padStart(String(p.steps).length)}/${p.steps}`;
  const loss = `loss ${p.loss.toFixed(4)}`;
  const acc = `acc ${(p.accuracy * 100).toFixed(2)}%`;
  const speed = `${Math.round(p.imagesPerSec)} img/s`;
  const epochTime = `epoch ETA ${clock(epochEta(p))}`;
  const runTime = `run ETA ${clock(p.etaSec)}`;
  const variants = [
    [steps, loss, acc, speed, epochTime, runTime],
    [steps, loss, acc, epochTime, runTime],
    [steps, loss, epochTime, runTime],
    [steps, loss, runTime],
    [steps, runTime],
  ].map((fields) => fields.join(" "));
  for (const text of variants) {
    const room = limit - head.length - text.length - 4; // two spaces and the brackets
    if (room < BAR_MIN) continue;
    const width = Math.min(BAR_MAX, room);
    const filled = Math.round((Math.min(p.step, p.steps) / Math.max(1, p.steps)) * width);
    return `${head} [${"#".repeat(filled)}${".".repeat(width - filled)}] ${text}`;
  }
  // too narrow for a bar: the fullest line that fits, else the start of the shortest
  const plain = [...variants, steps].map((text) => `${head} ${text}`);
  return plain.find((l) => l.length <= limit) ?? (plain[plain.length - 1] as string).slice(0, limit);
}

/**
 * Training progress on stderr. On a terminal: one line redrawn in place (carriage return, then
 * clear to the end of the line), fitted to the terminal's current width, with this epoch's bar
 * and both ETAs labelled (epoch, run) as room allows. Elsewhere (a log file, BUDGETNET_PLAIN=1):
 * a plain line every `plainEvery` steps and at the end of each epoch.
 */
export class Progress {
  private readonly tty: boolean;
  private lastPlain = -1;

  /** A progress that prints nothing (the ranks of a data-parallel job other than rank 0). */
  static silent(): Progress {
    const sink = { isTTY: false, columns: 0, write: () => true } as unknown as NodeJS.WriteStream;
    return new Progress(sink);
  }

  constructor(
    private readonly out: NodeJS.WriteStream = process.stderr,
    private readonly plainEvery = 50,
  ) {
    this.tty = Boolean(out.isTTY) && process.env.BUDGETNET_PLAIN !== "1";
  }

  update(p: ProgressState): void {
    if (this.tty) {
      // read every time: the terminal may have been resized
      const columns = this.out.columns > 0 ? this.out.columns : 80;
      this.out.write(`\r${progressLine(p, columns)}\x1b[K`);
    } else if (p.step === p.steps || Math.floor(p.step / this.plainEvery) !== this.lastPlain) {
      this.lastPlain = Math.floor(p.step / this.plainEvery);
      this.out.write(
        `epoch ${p.epoch + 1}/${p.epochs} step ${p.step}/${p.steps} loss ${p.loss.toFixed(4)} ` +
          `acc ${(p.accuracy * 100).toFixed(2)}% ${Math.round(p.imagesPerSec)} img/s, ` +
          `epoch ETA ${clock(epochEta(p))}, run ETA ${clock(p.etaSec)}\n`,
      );
    }
  }

  /** A line that stays (epoch summaries, messages); on a terminal it replaces the bar's line. */
  line(text: string): void {
    this.out.write(this.tty ? `\r${text}\x1b[K\n` : `${text}\n`);
  }
}
