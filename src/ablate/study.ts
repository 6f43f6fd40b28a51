// An ablation study: models x technique combinations x seeds, each cell an ordinary budgetnet run.
// The folder holds ablate.json (the declaration, the resolved base recipe, the expanded grid and
// versions), the append-only journal.jsonl (src/search/journal.ts: a whole line per event, synced)
// and cells/MODEL/ROW/seed-K/ run folders. Seed k is the same in every cell (the recipe's seed + k:
// same initial weights draw, split and batch order), so gains over the baseline are paired.
//
// Rows of the grid (--combine): none = the baseline only; single = the baseline and each technique
// alone; pairs = single plus every pair; all = every subset (2^k rows).
import * as fs from "node:fs";
import * as path from "node:path";
import { writeFileAtomic } from "../export/atomic";
import { getModelEntry, listModels } from "../models/registry";
import { packageVersion } from "../paths";
import { readJournal } from "../search/journal";
import type { TrialOutcome } from "../search/trial";
import { ArgumentError, didYouMean } from "../tensor/errors";
import { buildInfo } from "../tensor/tensor";
import { patchRecipe, type TrainConfig } from "../train/config";
import { type InputShape, modelSize, sizeModelToData } from "../train/sizing";
import { combinePatches, resolveTechnique, type Technique, type TechniqueDef } from "./techniques";

export const ABLATE_FILE = "ablate.json";
export const JOURNAL_FILE = "journal.jsonl";
const ABLATE_VERSION = 1;

export type Combine = "none" | "single" | "pairs" | "all";
export const COMBINE_CHOICES: readonly Combine[] = ["none", "single", "pairs", "all"];

/** What the user declared: compared field by field when a study is resumed. */
export interface Declaration {
  /** The recipe as named (a recipe name or a file path). */
  recipe: string;
  /** Recipe overrides (dotted flags) applied before the techniques. */
  overrides: Record<string, string>;
  models: string[];
  /** Options of one model only (a study file's {name, options} models), over the recipe's. */
  modelOptions: Record<string, Record<string, unknown>>;
  techniques: string[];
  userTechniques: TechniqueDef[];
  combine: Combine;
  seeds: number;
}

export interface Row {
  /** "baseline", "+se", "+se+mixup". */
  label: string;
  techniques: string[];
}

export interface Cell {
  id: number;
  model: string;
  row: string;
  seed: number;
  /** The seed index k (0..seeds-1): the pairing key. */
  k: number;
  params: number;
  macs: number;
}

export interface AblateSpec {
  version: number;
  name: string;
  created: string;
  budgetnet: string;
  libtorch: string;
  declaration: Declaration;
  /** The base recipe after overrides (techniques are applied to it per cell). */
  recipe: TrainConfig;
  input: InputShape;
  rows: Row[];
  cells: Cell[];
}

/** The rows of a combine mode over k techniques, baseline first, then by size and declaration order. */
export function expandRows(techniques: readonly string[], combine: Combine): Row[] {
  const rows: Row[] = [{ label: "baseline", techniques: [] }];
  const n = techniques.length;
  const subsets: number[][] = [];
  if (combine === "single" || combine === "pairs") for (let i = 0; i < n; i++) subsets.push([i]);
  if (combine === "pairs") for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) subsets.push([i, j]);
  if (combine === "all")
    for (let mask = 1; mask < 1 << n; mask++) subsets.push([...Array(n).keys()].filter((i) => mask & (1 << i)));
  subsets.sort((a, b) => a.length - b.length || a.join().localeCompare(b.join(), "en", { numeric: true }));
  for (const s of subsets) {
    const names = s.map((i) => techniques[i] as string);
    rows.push({ label: `+${names.join("+")}`, techniques: names });
  }
  return rows;
}

/** The folder name of a row: "baseline", "se+mixup" (":" and "=" of parameters kept readable). */
export function rowDir(row: string): string {
  return row === "baseline" ? row : row.slice(1).replace(/[^A-Za-z0-9_.+=,-]/g, "_");
}

export function cellDir(dir: string, c: Pick<Cell, "model" | "row" | "k">): string {
  return path.join(dir, "cells", c.model, rowDir(c.row), `seed-${c.k}`);
}

/** Checks a declaration's shape and names; the first error names the flag. */
export function checkDeclaration(d: Declaration): void {
  if (d.models.length === 0) throw new ArgumentError("ablate needs --models A,B (one or more registered models)");
  const known = listModels().map((m) => m.name);
  for (const m of d.models)
    if (getModelEntry(m) === undefined)
      throw new ArgumentError(
        `--models: unknown model "${m}". Run budgetnet models for the list${didYouMean(m, known)}`,
      );
  if (new Set(d.models).size !== d.models.length) throw new ArgumentError("--models names a model twice");
  if (new Set(d.techniques).size !== d.techniques.length)
    throw new ArgumentError("--techniques names a technique twice");
  if (!COMBINE_CHOICES.includes(d.combine))
    throw new ArgumentError(`--combine must be one of ${COMBINE_CHOICES.join(", ")}. Received: ${d.combine}`);
  if (d.combine !== "none" && d.techniques.length === 0)
    throw new ArgumentError(
      `--combine ${d.combine} needs --techniques a,b (run budgetnet ablate --help for the built-in ones)`,
    );
  if (d.combine === "all" && d.techniques.length > 8)
    throw new ArgumentError(
      `--combine all over ${d.techniques.length} techniques is ${2 ** d.techniques.length} rows; use pairs or single`,
    );
  if (!Number.isInteger(d.seeds) || d.seeds < 1 || d.seeds > 100)
    throw new ArgumentError(`--seeds must be an integer from 1 to 100. Received: ${d.seeds}`);
}

/** The training config of one cell: base recipe, the row's patches, the model, the seed. */
export function cellConfig(
  spec: Pick<AblateSpec, "recipe" | "declaration" | "name">,
  model: string,
  row: Row,
  k: number,
): TrainConfig {
  const techniques: Technique[] = row.techniques.map((t) => resolveTechnique(t, spec.declaration.userTechniques));
  const patch = combinePatches(techniques);
  const base = spec.recipe;
  // the recipe's model options (and --model-options.*) apply to every model of the study
  const baseOptions = { ...base.modelOptions, ...(spec.declaration.modelOptions[model] ?? {}) };
  const where = `ablate ${spec.name}: model ${model}, ${row.label}`;
  return patchRecipe(
    base,
    {
      ...patch.recipe,
      name: `${spec.name}-${model}-${rowDir(row.label)}-s${k}`,
      source: `budgetnet ablate ${spec.name}: ${model} ${row.label}, seed ${base.seed + k} (recipe ${spec.declaration.recipe})`,
      model,
      modelOptions: { ...baseOptions, ...patch.modelOptions },
      seed: base.seed + k,
    },
    where,
  );
}

/**
 * Expands the declaration into rows and cells, checking every cell's config (unknown options,
 * techniques a model does not declare) and sizing its model, before anything runs. A technique
 * that changes nothing for a model (its recipe already has it) is an error.
 */
export function expandGrid(spec: Pick<AblateSpec, "recipe" | "declaration" | "name" | "input">): {
  rows: Row[];
  cells: Cell[];
} {
  const d = spec.declaration;
  for (const t of d.techniques) resolveTechnique(t, d.userTechniques); // unknown names first
  const rows = expandRows(d.techniques, d.combine);
  const sizes = new Map<string, { params: number; macs: number }>();
  const baseJson = new Map<string, string>();
  for (const model of d.models) {
    for (const row of rows) {
      const cfg = cellConfig(spec, model, row, 0);
      const sized = sizeModelToData(model, cfg.modelOptions, spec.input);
      const size = modelSize(model, sized.options, [spec.input.channels, spec.input.height, spec.input.width]);
      sizes.set(`${model}|${row.label}`, { params: size.parameters, macs: size.macs });
      const json = JSON.stringify({ ...cfg, name: "", source: "" });
      if (row.label === "baseline") baseJson.set(model, json);
      else if (row.techniques.length === 1 && json === baseJson.get(model))
        throw new ArgumentError(
          `technique ${row.techniques[0]} changes nothing for ${model}: recipe ${d.recipe} already has it. Drop it from --techniques or use a recipe without it.`,
        );
    }
  }
  const cells: Cell[] = [];
  // seed-major: a study stopped half-way has whole seeds of every cell to compare
  for (let k = 0; k < d.seeds; k++)
    for (const model of d.models)
      for (const row of rows) {
        const size = sizes.get(`${model}|${row.label}`) as { params: number; macs: number };
        cells.push({ id: cells.length, model, row: row.label, seed: spec.recipe.seed + k, k, ...size });
      }
  return { rows, cells };
}

export function createSpec(name: string, declaration: Declaration, recipe: TrainConfig, input: InputShape): AblateSpec {
  const head = {
    version: ABLATE_VERSION,
    name,
    created: new Date().toISOString(),
    budgetnet: packageVersion(),
    libtorch: buildInfo().torchVersion,
    declaration,
    recipe,
    input,
  };
  return { ...head, ...expandGrid(head) };
}

export function readSpec(dir: string): AblateSpec {
  const file = path.join(dir, ABLATE_FILE);
  if (!fs.existsSync(file))
    throw new ArgumentError(
      `${dir} is not an ablation study (no ${ABLATE_FILE}). Start one with budgetnet ablate ... --out ${dir}.`,
    );
  let spec: AblateSpec;
  try {
    spec = JSON.parse(fs.readFileSync(file, "utf8")) as AblateSpec;
  } catch (e) {
    throw new ArgumentError(`${file} is not valid JSON (${(e as Error).message}); the study cannot be read.`);
  }
  if (spec.version !== ABLATE_VERSION)
    throw new ArgumentError(
      `${file} has version ${String(spec.version)}; this budgetnet reads version ${ABLATE_VERSION}.`,
    );
  return spec;
}

export function writeSpec(dir: string, spec: AblateSpec): void {
  fs.mkdirSync(dir, { recursive: true });
  writeFileAtomic(path.join(dir, ABLATE_FILE), [`${JSON.stringify(spec, null, 2)}\n`]);
}

/** "field: stored -> given" for every declaration field that differs (empty: the same study). */
export function declarationDiff(stored: Declaration, given: Declaration): string[] {
  const out: string[] = [];
  for (const k of Object.keys({ ...stored, ...given }) as (keyof Declaration)[]) {
    const a = JSON.stringify(stored[k]);
    const b = JSON.stringify(given[k]);
    if (a !== b) out.push(`${k}: ${a} -> ${b}`);
  }
  return out;
}

export interface CellState {
  cell: Cell;
  status: "pending" | "running" | "done" | "failed";
  outcome?: TrialOutcome & { wallSeconds?: number };
  error?: string;
}

export interface AblateState {
  cells: CellState[];
  sessions: number;
  elapsed: number;
  damaged: string[];
}

/** The journal folded over the grid: which cells are done, failed, interrupted or still to run. */
export function loadAblateState(dir: string, spec: AblateSpec): AblateState {
  const { events, damaged } = readJournal(path.join(dir, JOURNAL_FILE));
  const cells: CellState[] = spec.cells.map((cell) => ({ cell, status: "pending" }));
  const state: AblateState = { cells, sessions: 0, elapsed: 0, damaged };
  for (const e of events) {
    if (typeof e.elapsed === "number") state.elapsed = Math.max(state.elapsed, e.elapsed);
    if (e.event === "session") state.sessions++;
    const c = typeof e.trial === "number" ? cells[e.trial] : undefined;
    if (c === undefined) continue;
    if (e.event === "trial" && c.status === "pending") c.status = "running";
    else if (e.event === "result" && c.status !== "done") {
      c.status = "done";
      c.outcome = e as unknown as CellState["outcome"];
    } else if (e.event === "failure" && c.status === "running") {
      c.status = "failed";
      c.error = String(e.error);
    }
  }
  return state;
}
