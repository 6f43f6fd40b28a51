// Reading a run's metrics.jsonl while the trainer appends to it, never more than once per byte:
// each reader keeps its offset and the unfinished tail of the last line (a half-written last line
// is the normal state of a file being written, not damage). A file that was replaced or cut back
// (a resumed run trims its journal and rewrites it atomically) is read again from the start.
//
// Two readers per run: RunSummaryReader skims every line for the runs table (parses the few
// epoch lines and only the newest step line, so a 10,000-step file costs a memory scan), and
// SeriesReader parses every line into columns when a curve of the run is opened.
import * as fs from "node:fs";

const NEWLINE = 0x0a;
const CHUNK = 4 << 20;
const EPOCH_TAG = Buffer.from('"type":"epoch"');
const STEP_TAG = Buffer.from('"type":"step"');

export interface TailState {
  offset: number;
  inode: number;
  carry: Uint8Array;
}

/** Bytes appended since the last call, split into whole lines; `reset` when the file was replaced or cut. */
class LineTail {
  private offset = 0;
  private inode = -1;
  private carry: Buffer = Buffer.alloc(0);

  constructor(readonly file: string) {}

  /** Where reading stands, to continue in another thread (the index worker reads, the server polls). */
  snapshot(): TailState {
    return { offset: this.offset, inode: this.inode, carry: new Uint8Array(this.carry) };
  }

  restore(state: TailState): void {
    this.offset = state.offset;
    this.inode = state.inode;
    this.carry = Buffer.from(state.carry);
  }

  /** Unfinished bytes after the last newline (a line being written). */
  get pendingBytes(): number {
    return this.carry.length;
  }

  /**
   * Calls onChunk with buffers that each end just after a newline. Returns true when the file was
   * started over (replaced or truncated), so the caller clears what it had.
   */
  read(onChunk: (lines: Buffer) => void): { reset: boolean; exists: boolean } {
    let st: fs.Stats;
    try {
      st = fs.statSync(this.file);
    } catch {
      const reset = this.offset > 0;
      this.offset = 0;
      this.carry = Buffer.alloc(0);
      return { reset, exists: false };
    }
    const reset = false;
    if (st.ino !== this.inode || st.size < this.offset) {
      const replaced = this.inode !== -1;
      this.inode = st.ino;
      this.offset = 0;
      this.carry = Buffer.alloc(0);
      // the caller clears what it read from the old file, then reads again
      if (replaced) return { reset: true, exists: true };
    }
    if (st.size === this.offset) return { reset, exists: true };
    let fd: number;
    try {
      fd = fs.openSync(this.file, "r");
    } catch {
      return { reset, exists: false };
    }
    try {
      const buf = Buffer.allocUnsafe(Math.min(CHUNK, st.size - this.offset));
      while (this.offset < st.size) {
        const n = fs.readSync(fd, buf, 0, Math.min(buf.length, st.size - this.offset), this.offset);
        if (n <= 0) break;
        this.offset += n;
        const got = buf.subarray(0, n);
        const last = got.lastIndexOf(NEWLINE);
        if (last < 0) {
          this.carry = Buffer.concat([this.carry, got]);
          continue;
        }
        const whole =
          this.carry.length > 0 ? Buffer.concat([this.carry, got.subarray(0, last + 1)]) : got.subarray(0, last + 1);
        onChunk(whole);
        this.carry = Buffer.from(got.subarray(last + 1));
      }
    } finally {
      fs.closeSync(fd);
    }
    return { reset, exists: true };
  }
}

/** Calls fn(start, end) for each non-empty line of a chunk that ends with a newline. */
function eachLine(chunk: Buffer, fn: (start: number, end: number) => void): void {
  let start = 0;
  while (start < chunk.length) {
    const nl = chunk.indexOf(NEWLINE, start);
    const end = nl < 0 ? chunk.length : nl;
    if (end > start) fn(start, end);
    start = end + 1;
  }
}

function parseLine(chunk: Buffer, start: number, end: number): Record<string, unknown> | undefined {
  return parseObject(chunk.toString("utf8", start, end));
}

function parseObject(text: string): Record<string, unknown> | undefined {
  try {
    const v = JSON.parse(text) as unknown;
    return v !== null && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

// "YYYY-MM-DDTHH:MM" -> its milliseconds since the epoch, for fastTime's last few minutes
let minuteKey = "";
let minuteMs = Number.NaN;

/**
 * Date.parse for the trainer's toISOString() times ("2025-01-01T00:00:01.040Z"), reusing the
 * parse of the minute; any other form goes to Date.parse.
 */
export function parseTime(t: string): number {
  if (t.length !== 24 || t.charCodeAt(23) !== 0x5a || t.charCodeAt(19) !== 0x2e) return Date.parse(t);
  const minute = t.slice(0, 16);
  if (minute !== minuteKey) {
    minuteKey = minute;
    minuteMs = Date.parse(`${minute}:00.000Z`);
  }
  const sec = Number(t.slice(17, 23));
  return Number.isFinite(sec) && sec < 60 && Number.isFinite(minuteMs)
    ? minuteMs + Math.round(sec * 1000)
    : Date.parse(t);
}

/** A number field; null (how JSON writes NaN and Infinity) and anything else become NaN. */
export function num(v: unknown): number {
  return typeof v === "number" ? v : Number.NaN;
}

export interface MetricsSummary {
  /** ISO time of the first and the newest record. */
  firstTime: string | null;
  lastTime: string | null;
  lastStep: number;
  lastEpoch: number;
  /** Epoch records seen (epochs finished; a resumed run's are counted once, its journal is trimmed). */
  epochsDone: number;
  bestValAccuracy: number;
  bestEpoch: number;
  lastValAccuracy: number;
  lastTrainLoss: number;
  lastLoss: number;
  imagesPerSec: number;
  /** Sum of the epochs' seconds (training time without the pauses of a resumed run). */
  trainSeconds: number;
  /** A journaled loss or accuracy that is not finite (the run diverged). */
  nonFinite: boolean;
  /** Lines that are not JSON objects, other than the one being written. */
  badLines: number;
  /** Bytes of a line not yet finished (a run writing, or one killed mid-line). */
  pendingBytes: number;
  /** The first journaled step loss (about ln(classes) at initialization), to tell a loss that blew up. */
  firstLoss: number;
}

function emptySummary(): MetricsSummary {
  return {
    firstTime: null,
    lastTime: null,
    lastStep: 0,
    lastEpoch: -1,
    epochsDone: 0,
    bestValAccuracy: Number.NaN,
    bestEpoch: -1,
    lastValAccuracy: Number.NaN,
    lastTrainLoss: Number.NaN,
    lastLoss: Number.NaN,
    imagesPerSec: Number.NaN,
    trainSeconds: 0,
    nonFinite: false,
    badLines: 0,
    pendingBytes: 0,
    firstLoss: Number.NaN,
  };
}

/** The runs table's view of metrics.jsonl, kept current by update(). */
export class RunSummaryReader {
  private readonly tail: LineTail;
  summary: MetricsSummary = emptySummary();

  constructor(file: string) {
    this.tail = new LineTail(file);
  }

  /** The summary and the reading position (structured-clonable), for another thread to continue from. */
  snapshot(): { summary: MetricsSummary; tail: TailState } {
    return { summary: { ...this.summary }, tail: this.tail.snapshot() };
  }

  /** A reader that continues where a snapshot of another reader of the same file stopped. */
  static restore(file: string, snap: { summary: MetricsSummary; tail: TailState }): RunSummaryReader {
    const r = new RunSummaryReader(file);
    r.summary = { ...snap.summary };
    r.tail.restore(snap.tail);
    return r;
  }

  /** Reads what was appended; returns whether anything changed. */
  update(): boolean {
    let changed = false;
    const { reset } = this.tail.read((chunk) => {
      changed = true;
      this.scan(chunk);
    });
    if (reset) {
      // read again from the start: the journal was rewritten
      this.summary = emptySummary();
      this.tail.read((chunk) => this.scan(chunk));
      changed = true;
    }
    if (this.summary.pendingBytes !== this.tail.pendingBytes) changed = true;
    this.summary.pendingBytes = this.tail.pendingBytes;
    return changed;
  }

  private scan(chunk: Buffer): void {
    const s = this.summary;
    // Whole-chunk searches: only the epoch lines, the first and the newest step line and the
    // newest line are parsed; the rest is found by memory scans.
    eachLine(chunk, (start, end) => {
      if (chunk[start] !== 0x7b || chunk[end - 1] !== 0x7d) s.badLines++; // not "{...}": damage
    });
    if (s.firstTime === null) s.firstTime = timeOf(lineAt(chunk, 0));
    if (chunk.indexOf('"loss":null') >= 0) s.nonFinite = true; // how JSON writes a NaN loss
    if (chunk.indexOf('"type":"diverged"') >= 0) s.nonFinite = true; // a trainer that journals its divergence
    if (Number.isNaN(s.firstLoss)) {
      const first = chunk.indexOf(STEP_TAG);
      if (first >= 0) s.firstLoss = num(lineAt(chunk, first)?.loss);
    }
    for (let at = chunk.indexOf(EPOCH_TAG); at >= 0; at = chunk.indexOf(EPOCH_TAG, at + EPOCH_TAG.length)) {
      const r = lineAt(chunk, at);
      if (r === undefined) continue;
      const val = num(r.valAccuracy);
      s.epochsDone++;
      s.lastEpoch = num(r.epoch);
      s.lastValAccuracy = val;
      s.lastTrainLoss = num(r.trainLoss);
      s.trainSeconds += Number.isFinite(num(r.seconds)) ? num(r.seconds) : 0;
      if (Number.isFinite(num(r.imagesPerSec))) s.imagesPerSec = num(r.imagesPerSec);
      if (!Number.isFinite(val) || !Number.isFinite(num(r.trainLoss))) s.nonFinite = true;
      if (Number.isFinite(val) && !(val <= s.bestValAccuracy)) {
        s.bestValAccuracy = val;
        s.bestEpoch = num(r.epoch);
      }
    }
    const newestStep = chunk.lastIndexOf(STEP_TAG);
    if (newestStep >= 0) {
      const r = lineAt(chunk, newestStep);
      if (r !== undefined) {
        s.lastStep = num(r.step);
        s.lastLoss = num(r.loss);
        if (s.epochsDone === 0 && Number.isFinite(num(r.imagesPerSec))) s.imagesPerSec = num(r.imagesPerSec);
      }
    }
    s.lastTime = timeOf(lineAt(chunk, Math.max(0, chunk.length - 2))) ?? s.lastTime;
  }
}

/** The JSON object on the line holding byte `at` (undefined when it does not parse). */
function lineAt(chunk: Buffer, at: number): Record<string, unknown> | undefined {
  const start = at === 0 ? 0 : chunk.lastIndexOf(NEWLINE, at - 1) + 1;
  const nl = chunk.indexOf(NEWLINE, at);
  return parseLine(chunk, start, nl < 0 ? chunk.length : nl);
}

function timeOf(r: Record<string, unknown> | undefined): string | null {
  return typeof r?.time === "string" ? r.time : null;
}

/** Columns of a run's journal: step lines and epoch lines, NaN where a value is missing. */
export interface SeriesColumns {
  /** Milliseconds since the epoch of the first record; times below are seconds after it. */
  t0: number;
  step: { step: number[]; epoch: number[]; time: number[]; loss: number[]; lr: number[]; imagesPerSec: number[] };
  epoch: {
    epoch: number[];
    /** The newest step when the epoch ended. */
    step: number[];
    time: number[];
    trainLoss: number[];
    trainAccuracy: number[];
    valLoss: number[];
    valAccuracy: number[];
    lr: number[];
    imagesPerSec: number[];
  };
}

export function emptyColumns(): SeriesColumns {
  return {
    t0: Number.NaN,
    step: { step: [], epoch: [], time: [], loss: [], lr: [], imagesPerSec: [] },
    epoch: {
      epoch: [],
      step: [],
      time: [],
      trainLoss: [],
      trainAccuracy: [],
      valLoss: [],
      valAccuracy: [],
      lr: [],
      imagesPerSec: [],
    },
  };
}

/** Every line of metrics.jsonl as columns, for curves; update() returns the rows it added. */
export class SeriesReader {
  private readonly tail: LineTail;
  columns: SeriesColumns = emptyColumns();
  /** Bumped whenever the columns were started over (the journal was rewritten). */
  generation = 0;

  constructor(file: string) {
    this.tail = new LineTail(file);
  }

  update(): { reset: boolean; steps: number; epochs: number } {
    const before = { steps: this.columns.step.step.length, epochs: this.columns.epoch.epoch.length };
    const { reset } = this.tail.read((chunk) => this.parse(chunk));
    if (reset) {
      this.columns = emptyColumns();
      this.generation++;
      this.tail.read((chunk) => this.parse(chunk));
      return { reset: true, steps: this.columns.step.step.length, epochs: this.columns.epoch.epoch.length };
    }
    return {
      reset: false,
      steps: this.columns.step.step.length - before.steps,
      epochs: this.columns.epoch.epoch.length - before.epochs,
    };
  }

  private parse(chunk: Buffer): void {
    const c = this.columns;
    const text = chunk.toString("utf8");
    for (let start = 0; start < text.length; ) {
      const nl = text.indexOf("\n", start);
      const end = nl < 0 ? text.length : nl;
      const r = end > start ? parseObject(text.slice(start, end)) : undefined;
      start = end + 1;
      if (r === undefined) continue;
      const ms = typeof r.time === "string" ? parseTime(r.time) : Number.NaN;
      if (Number.isNaN(c.t0) && Number.isFinite(ms)) c.t0 = ms;
      const time = (ms - c.t0) / 1000;
      if (r.type === "step") {
        const s = c.step;
        s.step.push(num(r.step));
        s.epoch.push(num(r.epoch));
        s.time.push(time);
        s.loss.push(num(r.loss));
        s.lr.push(num(r.lr));
        s.imagesPerSec.push(num(r.imagesPerSec));
      } else if (r.type === "epoch") {
        const e = c.epoch;
        e.epoch.push(num(r.epoch));
        e.step.push(c.step.step.length > 0 ? (c.step.step[c.step.step.length - 1] as number) : Number.NaN);
        e.time.push(time);
        e.trainLoss.push(num(r.trainLoss));
        e.trainAccuracy.push(num(r.trainAccuracy));
        e.valLoss.push(num(r.valLoss));
        e.valAccuracy.push(num(r.valAccuracy));
        e.lr.push(num(r.lr));
        e.imagesPerSec.push(num(r.imagesPerSec));
      }
    }
  }
}
