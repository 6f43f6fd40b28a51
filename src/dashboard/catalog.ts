// Everything the dashboard knows about its folders: one entry per run folder (config, the
// summary of its journal, its status) and per study, each under an id the page uses. Requests
// name runs by id only, and an id is looked up in this table, so no request path ever becomes a
// file path. rescan() finds new and vanished folders; poll() reads what was appended since.
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { analyticCost } from "../models/registry";
import { discover, type FolderKind, realRoots } from "./discover";
import { RunSummaryReader, SeriesReader } from "./metrics_reader";
import { isLocked, lockedInodes, type RunStatus, runStatus } from "./status";
import { readAblationView, readSearchView, type StudyView, studyStamp } from "./studies";

export interface RunConfigView {
  name: string;
  model: string;
  modelOptions: Record<string, unknown>;
  params: number | null;
  macs: number | null;
  dataset: string;
  seed: number | null;
  epochs: number | null;
  batchSize: number | null;
  stepsPerEpoch: number | null;
  imageShape: number[] | null;
  classNames: string[];
  /** Runs with the same key differ at most by their seed (and name). */
  seedGroup: string | null;
}

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

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

function fileStamp(file: string): string {
  try {
    const st = fs.statSync(file);
    return `${st.size}:${st.mtimeMs}:${st.ino}`;
  } catch {
    return "-";
  }
}

/** Reads config.json without throwing: the view, or why there is none. */
export function readConfigView(dir: string): { config: RunConfigView | null; problem: string | null } {
  const file = path.join(dir, "config.json");
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return { config: null, problem: code === "ENOENT" ? null : `config.json: ${(e as Error).message}` };
  }
  if (!isObject(raw) || !isObject(raw.model) || typeof raw.model.name !== "string")
    return { config: null, problem: "config.json has no model { name, options }" };
  const recipe = isObject(raw.recipe) ? raw.recipe : {};
  const data = isObject(raw.data) ? raw.data : {};
  const options = isObject(raw.model.options) ? raw.model.options : {};
  const shape = Array.isArray(data.imageShape) ? (data.imageShape as number[]) : null;
  const num = (v: unknown): number | null => (typeof v === "number" && Number.isFinite(v) ? v : null);
  let macs: number | null = null;
  if (shape !== null && shape.length === 3) {
    try {
      macs = analyticCost(raw.model.name, options, shape as [number, number, number])?.macs ?? null;
    } catch {
      macs = null; // an unknown model (a --require module) or options this version refuses
    }
  }
  const batchSize = num(recipe.batchSize);
  const trainImages = num(data.train);
  const { seed: _seed, name: _name, source: _source, threads: _threads, ...rest } = recipe;
  const seedGroup = crypto.createHash("sha1").update(JSON.stringify(rest)).digest("hex").slice(0, 12);
  return {
    config: {
      name: typeof recipe.name === "string" ? recipe.name : path.basename(dir),
      model: raw.model.name,
      modelOptions: options,
      params: num(raw.parameters),
      macs,
      dataset:
        typeof data.dataset === "string" ? data.dataset : typeof recipe.dataset === "string" ? recipe.dataset : "?",
      seed: num(raw.seed) ?? num(recipe.seed),
      epochs: num(recipe.epochs),
      batchSize,
      stepsPerEpoch: batchSize !== null && trainImages !== null ? Math.floor(trainImages / batchSize) : null,
      imageShape: shape,
      classNames: Array.isArray(data.classNames) ? data.classNames.map(String) : [],
      seedGroup: Object.keys(rest).length > 0 ? seedGroup : null,
    },
    problem: null,
  };
}

export class Catalog {
  readonly roots: string[];
  readonly runs = new Map<string, RunEntry>();
  readonly studies = new Map<string, StudyEntry>();
  private readonly byDir = new Map<string, string>();
  /** Paths refused by the last scan (links that lead outside the roots). */
  refused: string[] = [];
  private seriesClock = 0;

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

  /** Finds new and vanished folders; returns whether the set changed. */
  rescan(): boolean {
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
        if (f.kind === "run") this.addRun(id, f.dir, f.root, f.rel, f.study ?? null);
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

  private addRun(id: string, dir: string, root: number, rel: string, study: string | null): void {
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
      series: null,
      seriesUsed: 0,
      locked: false,
      evaluatedTest: null,
      row: undefined as unknown as RunRow,
    };
    this.runs.set(id, entry);
    this.refreshRun(entry, lockedInodes());
  }

  /** Re-reads a run's files as far as they changed; returns whether its row changed. */
  private refreshRun(r: RunEntry, held: Set<string> | undefined): boolean {
    const stamp = fileStamp(path.join(r.dir, "config.json"));
    let changed = false;
    if (stamp !== r.configStamp) {
      r.configStamp = stamp;
      const { config, problem } = readConfigView(r.dir);
      r.config = config;
      r.configProblem = problem;
      changed = true;
    }
    if (r.summary.update()) changed = true;
    const locked = isLocked(r.dir, held);
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
    const { status, why } = runStatus({
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
    for (const r of this.runs.values()) if (this.refreshRun(r, held)) runs.push(r.id);
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
