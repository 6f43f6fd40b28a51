// The report of an ablation study (`budgetnet ablate report DIR`): per cell the mean final-epoch
// validation accuracy over seeds with a 95% bootstrap interval (test accuracy beside it, never
// used to decide); per model and row the paired gain over the baseline; the interaction of two
// techniques (their combined gain against the sum of their single gains); the correlation across
// rows of the smallest and the largest model's gains (do the small model's gains predict the big
// one's?); the cost of each cell. Writes report.json, report.md and heatmap.svg/png into DIR.
//
// The decision metric is the final epoch's validation accuracy (the weights a run ends with, as the
// source study reports final-epoch accuracy); the best epoch's is in report.json too, but choosing
// the best of several epochs on the same validation images biases it upwards.
import * as path from "node:path";
import { heatmapPng, heatmapSvg } from "../analysis/heatmap";
import { writeFileAtomic } from "../export/atomic";
import { gainCorrelation, interaction, meanInterval, pairedGain, type SeedValues } from "./stats";
import { type AblateSpec, type AblateState, loadAblateState, readSpec } from "./study";

/** Accuracies are fractions; intervals at 95%, 10,000 bootstrap resamples, seed 0 (reproducible). */
const BOOT = { level: 0.95, resamples: 10000, seed: 0 };

export interface Interval {
  mean: number;
  lo: number;
  hi: number;
  /** Seeds behind it; with 1 there is no interval (lo = hi = mean) and the report says n=1. */
  n: number;
  values?: number[];
}

export interface ReportCell {
  model: string;
  row: string;
  techniques: string[];
  seeds: number;
  val: Interval & { values: number[] };
  bestVal: Interval;
  test: (Interval & { values: number[] }) | null;
  seconds: number;
  overheadSeconds: number | null;
  params: number;
  macs: number;
}

export interface ReportGain {
  model: string;
  row: string;
  val: Interval;
  test: Interval | null;
  seeds: number;
}

export interface ReportInteraction {
  model: string;
  row: string;
  a: string;
  b: string;
  combined: Interval;
  sumOfSingles: Interval;
  interaction: Interval;
}

export interface AblateReport {
  study: string;
  recipe: string;
  dataset: string;
  models: string[];
  rows: string[];
  metric: "finalValAccuracy";
  level: number;
  cells: ReportCell[];
  gains: ReportGain[];
  interactions: ReportInteraction[];
  correlation: {
    small: string;
    big: string;
    rows: string[];
    pearson: { r: number; lo: number; hi: number };
    spearman: { r: number; lo: number; hi: number };
    directionsAgree: number;
    note?: string;
  } | null;
  progress: { done: number; total: number; failed: number };
  wallSeconds: number;
  overhead: { meanSeconds: number; share: number } | null;
}

const mean = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
const interval = (m: { mean: number; lo: number; hi: number; n: number }): Interval => ({
  mean: m.mean,
  lo: m.lo,
  hi: m.hi,
  n: m.n,
});

/** The numbers of the report from the study's state (cells without a result are left out). */
export function buildReport(spec: AblateSpec, state: AblateState): AblateReport {
  const seeds = spec.declaration.seeds;
  const models = spec.declaration.models;
  // per model and row: seed-aligned values (null where the cell has no result)
  const grid = new Map<
    string,
    { val: (number | null)[]; best: (number | null)[]; test: (number | null)[]; wall: number[]; over: number[] }
  >();
  for (const c of state.cells) {
    const key = `${c.cell.model}|${c.cell.row}`;
    const empty = (): (number | null)[] => new Array<number | null>(seeds).fill(null);
    const g = grid.get(key) ?? {
      val: empty(),
      best: empty(),
      test: empty(),
      wall: [] as number[],
      over: [] as number[],
    };
    grid.set(key, g);
    const o = c.outcome;
    if (c.status !== "done" || o === undefined) continue;
    g.val[c.cell.k] = o.finalValAccuracy;
    g.best[c.cell.k] = o.valAccuracy;
    g.test[c.cell.k] = typeof o.testAccuracy === "number" ? o.testAccuracy : null;
    const wall = o.wallSeconds ?? o.seconds;
    g.wall.push(wall);
    if (typeof o.trainSeconds === "number") g.over.push(wall - o.trainSeconds);
  }
  const present = (v: SeedValues): number[] => v.filter((x): x is number => typeof x === "number");
  const cells: ReportCell[] = [];
  for (const model of models)
    for (const row of spec.rows) {
      const g = grid.get(`${model}|${row.label}`);
      const c0 = spec.cells.find((c) => c.model === model && c.row === row.label);
      if (g === undefined || c0 === undefined) continue;
      const val = present(g.val);
      if (val.length === 0) continue;
      const test = present(g.test);
      cells.push({
        model,
        row: row.label,
        techniques: row.techniques,
        seeds: val.length,
        val: { ...interval(meanInterval(val, BOOT)), values: val },
        bestVal: interval(meanInterval(present(g.best), BOOT)),
        test: test.length > 0 ? { ...interval(meanInterval(test, BOOT)), values: test } : null,
        seconds: mean(g.wall),
        overheadSeconds: g.over.length > 0 ? mean(g.over) : null,
        params: c0.params,
        macs: c0.macs,
      });
    }

  const gains: ReportGain[] = [];
  const perSeedGain = new Map<string, number[]>();
  for (const model of models) {
    const base = grid.get(`${model}|baseline`);
    if (base === undefined) continue;
    for (const row of spec.rows.slice(1)) {
      const g = grid.get(`${model}|${row.label}`);
      if (g === undefined) continue;
      const pairs = g.val.filter((v, k) => v !== null && base.val[k] !== null).length;
      if (pairs === 0) continue;
      const v = pairedGain(g.val, base.val, BOOT);
      const testPairs = g.test.filter((t, k) => t !== null && base.test[k] !== null).length;
      gains.push({
        model,
        row: row.label,
        val: interval(v),
        test: testPairs > 0 ? interval(pairedGain(g.test, base.test, BOOT)) : null,
        seeds: v.n,
      });
      perSeedGain.set(
        `${model}|${row.label}`,
        v.seeds.map((k) => (g.val[k] as number) - (base.val[k] as number)),
      );
    }
  }

  const interactions: ReportInteraction[] = [];
  for (const model of models)
    for (const row of spec.rows) {
      if (row.techniques.length !== 2) continue;
      const [a, b] = row.techniques as [string, string];
      const at = (label: string) => grid.get(`${model}|${label}`)?.val;
      const ab = at(row.label);
      const va = at(`+${a}`);
      const vb = at(`+${b}`);
      const base = at("baseline");
      if (ab === undefined || va === undefined || vb === undefined || base === undefined) continue;
      const complete = ab.some((_, k) => [ab, va, vb, base].every((v) => v[k] !== null));
      if (!complete) continue;
      const r = interaction(ab, va, vb, base, BOOT);
      interactions.push({
        model,
        row: row.label,
        a,
        b,
        combined: interval(r.combinedGain),
        sumOfSingles: interval(r.sumOfGains),
        interaction: interval(r.interaction),
      });
    }

  let correlation: AblateReport["correlation"] = null;
  if (models.length >= 2 && spec.rows.length >= 2) {
    const size = (m: string) => spec.cells.find((c) => c.model === m && c.row === "baseline")?.params ?? 0;
    const bySize = [...models].sort((x, y) => size(x) - size(y));
    const small = bySize[0] as string;
    const big = bySize[bySize.length - 1] as string;
    const rows = spec.rows
      .slice(1)
      .map((r) => r.label)
      .filter((r) => perSeedGain.has(`${small}|${r}`) && perSeedGain.has(`${big}|${r}`));
    if (rows.length >= 2) {
      const sg = rows.map((r) => perSeedGain.get(`${small}|${r}`) as number[]);
      const bg = rows.map((r) => perSeedGain.get(`${big}|${r}`) as number[]);
      const gc = gainCorrelation(sg, bg, BOOT);
      const agree = gc.smallMeans.filter((s, i) => Math.sign(s) === Math.sign(gc.bigMeans[i] as number)).length;
      correlation = {
        small,
        big,
        rows,
        pearson: { r: gc.pearson.r, lo: gc.pearson.lo, hi: gc.pearson.hi },
        spearman: { r: gc.spearman.r, lo: gc.spearman.lo, hi: gc.spearman.hi },
        directionsAgree: agree,
        ...(gc.note !== undefined ? { note: gc.note } : {}),
      };
    }
  }

  const done = state.cells.filter((c) => c.status === "done");
  const overs = done.flatMap((c) =>
    typeof c.outcome?.trainSeconds === "number"
      ? [(c.outcome.wallSeconds ?? c.outcome.seconds) - c.outcome.trainSeconds]
      : [],
  );
  const walls = done.map((c) => c.outcome?.wallSeconds ?? c.outcome?.seconds ?? 0);
  return {
    study: spec.name,
    recipe: spec.declaration.recipe,
    dataset: spec.recipe.dataset,
    models,
    rows: spec.rows.map((r) => r.label),
    metric: "finalValAccuracy",
    level: BOOT.level,
    cells,
    gains,
    interactions,
    correlation,
    progress: {
      done: done.length,
      total: state.cells.length,
      failed: state.cells.filter((c) => c.status === "failed").length,
    },
    wallSeconds: state.elapsed,
    overhead:
      overs.length > 0
        ? { meanSeconds: mean(overs), share: overs.reduce((a, b) => a + b, 0) / walls.reduce((a, b) => a + b, 0) }
        : null,
  };
}

const p2 = (x: number): string => (100 * x).toFixed(2);
const signed = (x: number): string => `${x >= 0 ? "+" : "−"}${Math.abs(100 * x).toFixed(2)}`;
const ci = (i: Interval, f: (x: number) => string = p2): string =>
  i.n < 2 ? `${f(i.mean)} (n=1, no interval)` : `${f(i.mean)} [${f(i.lo)}, ${f(i.hi)}]`;

/** The report as markdown: the table shaped like the source study's, gains, interactions, correlation, cost. */
export function formatReport(r: AblateReport): string {
  const cell = (m: string, row: string) => r.cells.find((c) => c.model === m && c.row === row);
  const gain = (m: string, row: string) => r.gains.find((g) => g.model === m && g.row === row);
  const head = `| | ${r.models.join(" | ")} |\n|---|${r.models.map(() => "---").join("|")}|`;
  const lines = [
    `# Ablation ${r.study}`,
    "",
    `Recipe ${r.recipe} on ${r.dataset}; ${r.progress.done}/${r.progress.total} cells done${r.progress.failed ? `, ${r.progress.failed} failed` : ""}; ` +
      `final-epoch validation accuracy (%), mean over seeds with its ${Math.round(100 * r.level)}% bootstrap interval; test accuracy (%) beside it, not used to decide.`,
    "",
    head,
    ...r.rows.map(
      (row) =>
        `| ${row} | ${r.models
          .map((m) => {
            const c = cell(m, row);
            return c === undefined ? "—" : `${ci(c.val)} (test ${c.test ? p2(c.test.mean) : "n/a"}, n=${c.seeds})`;
          })
          .join(" | ")} |`,
    ),
    "",
    "## Gains over the baseline (percentage points, paired by seed)",
    "",
    head,
    ...r.rows.slice(1).map(
      (row) =>
        `| ${row} | ${r.models
          .map((m) => {
            const g = gain(m, row);
            return g === undefined ? "—" : `${ci(g.val, signed)} (test ${g.test ? signed(g.test.mean) : "n/a"})`;
          })
          .join(" | ")} |`,
    ),
  ];
  if (r.interactions.length > 0) {
    lines.push(
      "",
      "## Interactions (combined gain against the sum of the single gains, pp)",
      "",
      "| model | pair | combined | sum of singles | interaction |",
      "|---|---|---|---|---|",
    );
    for (const i of r.interactions)
      lines.push(
        `| ${i.model} | ${i.row} | ${ci(i.combined, signed)} | ${ci(i.sumOfSingles, signed)} | ${ci(i.interaction, signed)} |`,
      );
  }
  if (r.correlation !== null) {
    const c = r.correlation;
    const f = (x: number) => (Number.isFinite(x) ? x.toFixed(2) : "n/a");
    lines.push(
      "",
      `## Does ${c.small} predict ${c.big}?`,
      "",
      `Over ${c.rows.length} rows (${c.rows.join(", ")}): Pearson r = ${f(c.pearson.r)} [${f(c.pearson.lo)}, ${f(c.pearson.hi)}], ` +
        `Spearman ρ = ${f(c.spearman.r)} [${f(c.spearman.lo)}, ${f(c.spearman.hi)}] (bootstrap over seeds); the sign of the mean gain agrees on ${c.directionsAgree} of ${c.rows.length} rows.` +
        (c.note !== undefined ? ` ${c.note}` : ""),
    );
  }
  lines.push("", "## Cost per cell", "", "| model | row | params | MACs | seconds per run |", "|---|---|---|---|---|");
  for (const c of r.cells)
    lines.push(
      `| ${c.model} | ${c.row} | ${c.params.toLocaleString("en-US")} | ${(c.macs / 1e6).toFixed(2)}M | ${c.seconds.toFixed(0)} |`,
    );
  lines.push(
    "",
    `Study wall time ${(r.wallSeconds / 60).toFixed(1)} min` +
      (r.overhead !== null
        ? `; executor overhead per cell (wall time outside the training epochs: process start, data loading, model build, test evaluation) ${r.overhead.meanSeconds.toFixed(1)} s on average, ${(100 * r.overhead.share).toFixed(1)}% of cell time.`
        : "."),
  );
  return `${lines.join("\n")}\n`;
}

export interface AblateReportFiles {
  json: string;
  markdown: string;
  svg: string;
  png: string;
}

/** Computes the report of the study in dir and writes report.json, report.md, heatmap.svg and heatmap.png there. */
export function writeAblateReport(dir: string): { report: AblateReport; markdown: string; files: AblateReportFiles } {
  const spec = readSpec(dir);
  const report = buildReport(spec, loadAblateState(dir, spec));
  const markdown = formatReport(report);
  const files: AblateReportFiles = {
    json: path.join(dir, "report.json"),
    markdown: path.join(dir, "report.md"),
    svg: path.join(dir, "heatmap.svg"),
    png: path.join(dir, "heatmap.png"),
  };
  writeFileAtomic(files.json, [`${JSON.stringify(report, null, 2)}\n`]);
  writeFileAtomic(files.markdown, [markdown]);
  const heat = gainHeatmap(report);
  writeFileAtomic(files.svg, [heatmapSvg(heat)]);
  writeFileAtomic(files.png, [heatmapPng(heat)]);
  return { report, markdown, files };
}

/** Rows x models of paired gains (pp); the baseline row shows its accuracy as text, uncoloured. */
function gainHeatmap(r: AblateReport): Parameters<typeof heatmapSvg>[0] {
  const values = r.rows.map((row) =>
    r.models.map((m) => {
      if (row === "baseline") return null;
      const g = r.gains.find((x) => x.model === m && x.row === row);
      return g === undefined ? null : 100 * g.val.mean;
    }),
  );
  const labels = r.rows.map((row) =>
    r.models.map((m) => {
      if (row === "baseline") {
        const c = r.cells.find((x) => x.model === m && x.row === row);
        return c === undefined ? "n/a" : `${p2(c.val.mean)}%`;
      }
      const g = r.gains.find((x) => x.model === m && x.row === row);
      if (g === undefined) return "n/a";
      return g.val.n < 2
        ? `${signed(g.val.mean)} (n=1)`
        : `${signed(g.val.mean)} [${signed(g.val.lo)},${signed(g.val.hi)}]`;
    }),
  );
  return {
    title: `${r.study}: gain over the baseline (val. accuracy, pp, 95% CI)`,
    rows: r.rows,
    columns: r.models,
    values,
    labels,
    colorScale: "diverging",
    valueLabel: "gain (pp)",
  };
}
