// The dashboard's view of a search study (study.json + journal.jsonl + trials/, src/search/) and
// of an ablation study (ablate.json + journal.jsonl + cells/, and report.json once `budgetnet
// ablate report` wrote it). Both are read again only when one of their files changed; a damaged
// file is reported in the view instead of stopping the dashboard.
import * as fs from "node:fs";
import * as path from "node:path";
import { formatPoint } from "../search/space";
import { loadState, readStudy, trialDir } from "../search/study";

export interface SearchTrialView {
  id: number;
  rung: number;
  resource: number;
  status: "running" | "done" | "failed";
  valAccuracy: number | null;
  testAccuracy: number | null;
  params: number;
  macs: number;
  latencyMs: number | null;
  point: string;
  seconds: number | null;
  error?: string;
  /** Real path of the trial's run folder (the catalog turns it into a run id). */
  dir: string;
}

export interface SearchView {
  kind: "search";
  name: string;
  space: string;
  strategy: string;
  dataset: string;
  objectives: string[];
  budgets: unknown;
  trials: SearchTrialView[];
  stopped: string | null;
  elapsed: number;
  problems: string[];
}

interface Interval {
  mean: number;
  lo: number;
  hi: number;
}

export interface AblationReport {
  study: string;
  models: string[];
  rows: string[];
  metric: string;
  cells: {
    model: string;
    row: string;
    techniques: string[];
    seeds: number;
    val: Interval & { values: number[] };
    test: (Interval & { values: number[] }) | null;
    seconds: number;
    params: number;
    macs: number;
  }[];
  gains: { model: string; row: string; val: Interval; test: Interval | null }[];
  correlation: {
    pearson: { r: number; lo: number; hi: number };
    spearman: { r: number; lo: number; hi: number };
    note?: string;
  } | null;
}

export interface AblationView {
  kind: "ablation";
  name: string;
  /** The declaration as written (ablate.json). */
  declaration: unknown;
  report: AblationReport | null;
  /** Why there is no report: none written yet, or it could not be read. */
  reportMissing: string | null;
  problems: string[];
}

export type StudyView = SearchView | AblationView;

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/** Modification stamps of a study's files: the view is rebuilt when they change. */
export function studyStamp(dir: string, kind: "search" | "ablation"): string {
  const files = kind === "search" ? ["study.json", "journal.jsonl"] : ["ablate.json", "journal.jsonl", "report.json"];
  return files
    .map((f) => {
      try {
        const st = fs.statSync(path.join(dir, f));
        return `${st.size}:${st.mtimeMs}:${st.ino}`;
      } catch {
        return "-";
      }
    })
    .join("|");
}

export function readSearchView(dir: string): SearchView {
  const problems: string[] = [];
  const view: SearchView = {
    kind: "search",
    name: path.basename(dir),
    space: "?",
    strategy: "?",
    dataset: "?",
    objectives: [],
    budgets: null,
    trials: [],
    stopped: null,
    elapsed: 0,
    problems,
  };
  try {
    const spec = readStudy(dir);
    view.name = spec.name;
    view.space = spec.space?.name ?? "?";
    view.strategy = spec.strategy;
    view.dataset = spec.recipe?.dataset ?? "?";
    view.objectives = spec.objectives ?? [];
    view.budgets = spec.budgets;
  } catch (e) {
    problems.push((e as Error).message);
  }
  try {
    const state = loadState(dir);
    for (const d of state.damaged) problems.push(`journal.jsonl ${d} (skipped)`);
    view.stopped = state.stopped ?? null;
    view.elapsed = state.elapsed;
    for (const t of state.trials.values()) {
      let point = "";
      try {
        point = formatPoint(t.point);
      } catch {
        point = JSON.stringify(t.point);
      }
      view.trials.push({
        id: t.id,
        rung: t.rung,
        resource: t.resource,
        status: t.status,
        valAccuracy: t.valAccuracy ?? null,
        testAccuracy: t.outcome?.testAccuracy ?? null,
        params: t.cost?.params ?? Number.NaN,
        macs: t.cost?.macs ?? Number.NaN,
        latencyMs: t.cost?.latencyMs ?? null,
        point,
        seconds: t.outcome?.seconds ?? null,
        error: t.error,
        dir: trialDir(dir, t),
      });
    }
  } catch (e) {
    problems.push(`journal.jsonl: ${(e as Error).message}`);
  }
  return view;
}

function readJson(file: string): { value?: unknown; error?: string } {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (e) {
    return { error: (e as NodeJS.ErrnoException).code === "ENOENT" ? "missing" : (e as Error).message };
  }
  try {
    return { value: JSON.parse(text) as unknown };
  } catch (e) {
    return { error: `not valid JSON (${(e as Error).message})` };
  }
}

/** The report's shape checked to the depth the page reads it; the first mismatch is the error. */
function checkReport(r: unknown): string | undefined {
  if (!isObject(r)) return "must be a JSON object";
  if (!Array.isArray(r.models) || !Array.isArray(r.rows)) return "needs models and rows lists";
  if (!Array.isArray(r.cells)) return "needs a cells list";
  for (const [i, c] of r.cells.entries()) {
    if (!isObject(c) || typeof c.model !== "string" || typeof c.row !== "string" || !isObject(c.val))
      return `cells[${i}] needs model, row and val`;
    if (typeof c.val.mean !== "number") return `cells[${i}].val.mean must be a number`;
  }
  if (r.gains !== undefined && !Array.isArray(r.gains)) return "gains must be a list";
  return undefined;
}

export function readAblationView(dir: string): AblationView {
  const problems: string[] = [];
  const decl = readJson(path.join(dir, "ablate.json"));
  if (decl.error !== undefined) problems.push(`ablate.json: ${decl.error}`);
  const name = isObject(decl.value) && typeof decl.value.name === "string" ? decl.value.name : path.basename(dir);
  const view: AblationView = {
    kind: "ablation",
    name,
    declaration: decl.value ?? null,
    report: null,
    reportMissing: null,
    problems,
  };
  const report = readJson(path.join(dir, "report.json"));
  if (report.error === "missing") view.reportMissing = `no report yet — run budgetnet ablate report ${dir}`;
  else if (report.error !== undefined) view.reportMissing = `report.json: ${report.error}`;
  else {
    const bad = checkReport(report.value);
    if (bad !== undefined)
      view.reportMissing = `report.json ${bad}; write it again with budgetnet ablate report ${dir}`;
    else {
      const r = report.value as AblationReport;
      view.report = { ...r, gains: r.gains ?? [], correlation: r.correlation ?? null };
    }
  }
  return view;
}
