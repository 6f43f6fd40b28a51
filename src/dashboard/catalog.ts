// Everything the dashboard knows about its folders: one entry per run folder (config, the
// summary of its journal, its status) and per study, each under an id the page uses. Requests
// name runs by id only, and an id is looked up in this table, so no request path ever becomes a
// file path. rescan() finds new and vanished folders; poll() reads what was appended since.
import * as fs from "node:fs";
import * as path from "node:path";
import { discover, type FolderKind, realRoots } from "./discover";
import { RunSummaryReader, SeriesReader } from "./metrics_reader";
import { type RunConfigView, readConfigView } from "./run_config";
import { isLocked, lockedInodes, type RunStatus, runStatus } from "./status";
import { readAblationView, readSearchView, type StudyView, studyStamp } from "./studies";

/** One row of the runs table. */
export interface RunRow {
  id: string;
  path: string;
  /** "run", or the study kind whose trial or cell it is. */
  kind: "run" | "trial" | "cell";
  study: string | null;
  /** The folder's name (what tells runs apart); the recipe's name is `recipe`. */
  name: string;
  recipe: string | null;
  model: string;
  params: number | null;
  macs: number | null;
  dataset: string;
  seed: number | null;
  seedGroup: string | null;
  status: RunStatus;
  why: string | null;
  bestValAccuracy: number | null;
  lastValAccuracy: number | null;
  testAccuracy: number | null;
  imagesPerSec: number | null;
  seconds: number | null;
  step: number;
  epochsDone: number;
  epochs: number | null;
  startedAt: string | null;
  updatedAt: string | null;
  problems: string[];
}

export interface RunEntry {
  id: string;
  dir: string;
  root: number;
  rel: string;
  study: string | null;
  studyKind: FolderKind | null;
  config: RunConfigView | null;
  configProblem: string | null;
  configStamp: string;
  summary: RunSummaryReader;
  /** True until the journal was first read (a large tree is read after the server starts). */
  pending: boolean;
  /** What refreshRun last saw (folder, journal, config, lock, trial error): unchanged means nothing to do. */
  stamp: string;
  series: SeriesReader | null;
  seriesUsed: number;
  locked: boolean;
  row: RunRow;
  /** Test accuracy from an evaluation the dashboard ran (best weights, test split). */
  evaluatedTest: number | null;
  trialError?: string;
}

export interface StudyEntry {
  id: string;
  dir: string;
  kind: "search" | "ablation";
  stamp: string;
  view: StudyView;
  runs: string[];
}

const fin = (v: number): number | null => (Number.isFinite(v) ? v : null);

function fileStamp(file: string): string {
  try {
    const st = fs.statSync(file);
    return `${st.size}:${st.mtimeMs}:${st.ino}`;
  } catch {
    return "-";
  }
}

export class Catalog {
  readonly roots: string[];
  readonly runs = new Map<string, RunEntry>();
  readonly studies = new Map<string, StudyEntry>();
  private readonly byDir = new Map<string, string>();
  /** Paths refused by the last scan (links that lead outside the roots). */
  refused: string[] = [];
  private seriesClock = 0;
  private locks: { at: number; held: Set<string> | undefined } | null = null;
  /** Pending runs in reading order (null: to be sorted on the next readPending). */
  private queue: RunEntry[] | null = null;

  constructor(roots: readonly string[]) {
    this.roots = realRoots(roots);
  }

  /** The id a folder is known by: its path under its root, prefixed by the root's name when there are several. */
  private idFor(root: number, rel: string): string {
    const base = rel === "" ? path.basename(this.roots[root] as string) : rel;
    if (this.roots.length === 1) return base;
    return `${path.basename(this.roots[root] as string) || root}/${base}`;
  }

  runIdOfDir(dir: string): string | undefined {
    return this.byDir.get(dir);
  }

  /**
   * Finds new and vanished folders; returns whether the set changed. With `defer`, new runs get a
   * row from their config.json only (status "reading") and their journals are read later by
   * readPending(), so a tree of a thousand 10,000-step runs is served at once.
   */
  rescan(opts: { defer?: boolean } = {}): boolean {
    const { found, refused } = discover(this.roots);
    this.refused = refused;
    let changed = false;
    const alive = new Set<string>();
    for (const f of found) {
      let id = this.byDir.get(f.dir) ?? this.idFor(f.root, f.rel);
      if (!this.byDir.has(f.dir)) {
        // two roots with one name: keep ids unique
        for (let k = 2; this.runs.has(id) || this.studies.has(id); k++) id = `${this.idFor(f.root, f.rel)}~${k}`;
        this.byDir.set(f.dir, id);
        changed = true;
        if (f.kind === "run") this.addRun(id, f.dir, f.root, f.rel, f.study ?? null, opts.defer === true);
        else
          this.studies.set(id, {
            id,
            dir: f.dir,
            kind: f.kind,
            stamp: "",
            view: f.kind === "search" ? readSearchView(f.dir) : readAblationView(f.dir),
            runs: [],
          });
      }
      alive.add(id);
    }
    for (const id of [...this.runs.keys(), ...this.studies.keys()]) {
      if (alive.has(id)) continue;
      const dir = this.runs.get(id)?.dir ?? this.studies.get(id)?.dir;
      if (dir !== undefined) this.byDir.delete(dir);
      this.runs.delete(id);
      this.studies.delete(id);
      changed = true;
    }
    for (const s of this.studies.values()) s.runs = [];
    for (const r of this.runs.values()) {
      if (r.study === null) continue;
      const sid = this.byDir.get(r.study);
      if (sid !== undefined) this.studies.get(sid)?.runs.push(r.id);
    }
    return changed;
  }

  private addRun(id: string, dir: string, root: number, rel: string, study: string | null, defer: boolean): void {
    const studyKind = study === null ? null : fs.existsSync(path.join(study, "study.json")) ? "search" : "ablation";
    const entry: RunEntry = {
      id,
      dir,
      root,
      rel,
      study,
      studyKind,
      config: null,
      configProblem: null,
      configStamp: "",
      summary: new RunSummaryReader(path.join(dir, "metrics.jsonl")),
      pending: defer,
      stamp: "",
      series: null,
      seriesUsed: 0,
      locked: false,
      evaluatedTest: null,
      row: undefined as unknown as RunRow,
    };
    this.runs.set(id, entry);
    if (defer) {
      this.queue = null;
      const { config, problem } = readConfigView(dir);
      entry.config = config;
      entry.configProblem = problem;
      entry.row = this.buildRow(entry);
    } else this.refreshRun(entry, lockedInodes());
  }

  /** Runs whose journals have not been read yet. */
  get pendingCount(): number {
    let n = 0;
    for (const r of this.runs.values()) if (r.pending) n++;
    return n;
  }

  /**
   * Reads the journals of pending runs, the most recently modified first, for about budgetMs;
   * returns the ids of the rows that changed.
   */
  readPending(budgetMs: number): string[] {
    if (this.queue === null) this.queue = this.sortPending();
    const held = lockedInodes();
    const started = performance.now();
    const changed: string[] = [];
    while (this.queue.length > 0 && performance.now() - started < budgetMs) {
      const r = this.queue.shift() as RunEntry;
      if (!r.pending || this.runs.get(r.id) !== r) continue; // read meanwhile, or gone
      r.pending = false;
      r.configStamp = "";
      this.refreshRun(r, held);
      changed.push(r.id);
    }
    if (this.queue.length === 0) this.queue = null;
    return changed;
  }

  /** Pending runs, the most recently written journals first (sorted once per batch of new runs). */
  private sortPending(): RunEntry[] {
    const pending = [...this.runs.values()].filter((r) => r.pending);
    const mtime = new Map(
      pending.map((r) => {
        try {
          return [r, fs.statSync(path.join(r.dir, "metrics.jsonl")).mtimeMs] as const;
        } catch {
          return [r, 0] as const;
        }
      }),
    );
    return pending.sort((a, b) => (mtime.get(b) as number) - (mtime.get(a) as number));
  }

  /** The next n pending runs in reading order (taken off the queue; they stay pending until adopted). */
  nextPending(n: number): RunEntry[] {
    if (this.queue === null) this.queue = this.sortPending();
    const out: RunEntry[] = [];
    while (out.length < n && this.queue.length > 0) {
      const r = this.queue.shift() as RunEntry;
      if (r.pending && this.runs.get(r.id) === r) out.push(r);
    }
    if (this.queue.length === 0) this.queue = null;
    return out;
  }

  /** A pending run's journal as another thread read it; returns whether the run was still pending. */
  adoptSummary(id: string, snap: Parameters<typeof RunSummaryReader.restore>[1]): boolean {
    const r = this.runs.get(id);
    if (r === undefined || !r.pending) return false;
    r.summary = RunSummaryReader.restore(path.join(r.dir, "metrics.jsonl"), snap);
    r.pending = false;
    r.configStamp = "";
    this.refreshRun(r, this.recentLocks());
    return true;
  }

  /** /proc/locks read at most every 200 ms while the indexer's results stream in (one per run). */
  private recentLocks(): Set<string> | undefined {
    const now = performance.now();
    if (this.locks === null || now - this.locks.at > 200) this.locks = { at: now, held: lockedInodes() };
    return this.locks.held;
  }

  /** Re-reads a run's files as far as they changed; returns whether its row changed. */
  private refreshRun(r: RunEntry, held: Set<string> | undefined): boolean {
    // one stat each of the folder (a file made or removed: weights, checkpoint, outcome), the
    // journal and the config, and the lock: a finished run costs four syscalls a poll
    const locked = isLocked(r.dir, held);
    const stamp = `${fileStamp(r.dir)}|${fileStamp(path.join(r.dir, "metrics.jsonl"))}|${fileStamp(path.join(r.dir, "config.json"))}|${locked}|${r.trialError ?? ""}`;
    if (stamp === r.stamp && r.row !== undefined) return false;
    r.stamp = stamp;
    const configStamp = fileStamp(path.join(r.dir, "config.json"));
    let changed = false;
    if (configStamp !== r.configStamp) {
      r.configStamp = configStamp;
      const { config, problem } = readConfigView(r.dir);
      r.config = config;
      r.configProblem = problem;
      changed = true;
    }
    if (r.summary.update()) changed = true;
    if (locked !== r.locked) changed = true;
    r.locked = locked;
    const row = this.buildRow(r);
    if (r.row === undefined || JSON.stringify(row) !== JSON.stringify(r.row)) changed = true;
    r.row = row;
    return changed;
  }

  private buildRow(r: RunEntry): RunRow {
    const m = r.summary.summary;
    const c = r.config;
    const exists = (f: string) => fs.existsSync(path.join(r.dir, f));
    const { status, why } = r.pending
      ? { status: "reading" as const, why: "the dashboard has not read this run's journal yet" }
      : runStatus({
          locked: r.locked,
          hasConfig: c !== null,
          configBroken: r.configProblem !== null,
          hasFinalWeights: exists("model.safetensors"),
          hasCheckpoint: exists("checkpoint.safetensors"),
          metrics: m,
          trialError: r.trialError,
        });
    const problems: string[] = [];
    if (r.configProblem !== null) problems.push(r.configProblem);
    if (m.badLines > 0) problems.push(`metrics.jsonl: ${m.badLines} damaged line(s) skipped`);
    if (m.pendingBytes > 0 && !r.locked)
      problems.push(`metrics.jsonl ends in a half-written line (${m.pendingBytes} bytes)`);
    const started = m.firstTime === null ? Number.NaN : Date.parse(m.firstTime);
    const updated = m.lastTime === null ? Number.NaN : Date.parse(m.lastTime);
    return {
      id: r.id,
      path: r.rel === "" ? r.id : r.rel,
      kind: r.studyKind === null ? "run" : r.studyKind === "search" ? "trial" : "cell",
      study: r.study === null ? null : (this.byDir.get(r.study) ?? null),
      name: path.basename(r.dir),
      recipe: c?.name ?? null,
      model: c?.model ?? "?",
      params: c?.params ?? null,
      macs: c?.macs ?? null,
      dataset: c?.dataset ?? "?",
      seed: c?.seed ?? null,
      seedGroup: c?.seedGroup ?? null,
      status,
      why: why ?? null,
      bestValAccuracy: fin(m.bestValAccuracy),
      lastValAccuracy: fin(m.lastValAccuracy),
      testAccuracy: r.evaluatedTest ?? this.recordedTest(r),
      imagesPerSec: fin(m.imagesPerSec),
      seconds: Number.isFinite(updated - started) ? (updated - started) / 1000 : null,
      step: m.lastStep,
      epochsDone: m.epochsDone,
      epochs: c?.epochs ?? null,
      startedAt: m.firstTime,
      updatedAt: m.lastTime,
      problems,
    };
  }

  /** Test accuracy a search trial or ablation cell recorded in its outcome.json. */
  private recordedTest(r: RunEntry): number | null {
    if (r.study === null) return null;
    try {
      const o = JSON.parse(fs.readFileSync(path.join(r.dir, "outcome.json"), "utf8")) as { testAccuracy?: unknown };
      return typeof o.testAccuracy === "number" ? o.testAccuracy : null;
    } catch {
      return null;
    }
  }

  /** Reads every run's and study's changes; returns the ids of runs whose rows changed and of studies that changed. */
  poll(): { runs: string[]; studies: string[] } {
    const held = lockedInodes();
    const studies: string[] = [];
    for (const s of this.studies.values()) {
      const stamp = studyStamp(s.dir, s.kind);
      if (stamp === s.stamp) continue;
      s.stamp = stamp;
      s.view = s.kind === "search" ? readSearchView(s.dir) : readAblationView(s.dir);
      studies.push(s.id);
      if (s.view.kind === "search")
        for (const t of s.view.trials) {
          const run = this.runs.get(this.byDir.get(t.dir) ?? "");
          if (run !== undefined) run.trialError = t.status === "failed" ? t.error : undefined;
        }
    }
    const runs: string[] = [];
    for (const r of this.runs.values()) if (!r.pending && this.refreshRun(r, held)) runs.push(r.id);
    return { runs, studies };
  }

  /** The run's journal as columns, read on first use and kept current; the least recently used are dropped past `keep`. */
  series(r: RunEntry, keep = 64): SeriesReader {
    if (r.series === null) {
      r.series = new SeriesReader(path.join(r.dir, "metrics.jsonl"));
      const loaded = [...this.runs.values()].filter((x) => x.series !== null);
      if (loaded.length > keep) {
        loaded.sort((a, b) => a.seriesUsed - b.seriesUsed);
        for (const old of loaded.slice(0, loaded.length - keep)) if (old !== r) old.series = null;
      }
    }
    r.seriesUsed = ++this.seriesClock;
    r.series.update();
    return r.series;
  }

  setEvaluatedTest(id: string, accuracy: number): void {
    const r = this.runs.get(id);
    if (r === undefined) return;
    r.evaluatedTest = accuracy;
    r.row = this.buildRow(r);
  }
}
