// `budgetnet search report STUDY` and `search status STUDY`: the leaderboard, the Pareto fronts
// (validation accuracy against parameters and against MACs, as SVG and PNG), and the best
// configuration written as a recipe that `budgetnet train --recipe FILE` trains on the full
// schedule and `budgetnet eval --split test` evaluates once.
import * as path from "node:path";
import { paretoFront, type ScatterPlot, scatterPng, scatterSvg } from "../analysis/plot";
import { writeFileAtomic } from "../export/atomic";
import type { TrainConfig } from "../train/config";
import { BudgetChecker } from "./budget";
import { formatPoint } from "./space";
import { rankTrials, type TrialRecord } from "./strategies";
import { bestTrial, loadState, readStudy, type StudySpec, type StudyState, studySpace } from "./study";
import type { TrialOutcome } from "./trial";

type Row = TrialRecord & { outcome?: TrialOutcome; error?: string };

const pct = (x: number | undefined): string => (x === undefined ? "-" : `${(100 * x).toFixed(2)}%`);
const millions = (n: number): string => (n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : `${(n / 1e3).toFixed(1)}k`);

function resourceLabel(spec: StudySpec, r: number): string {
  return spec.fidelity === "epochs" ? `${r} ep` : `${(100 * r).toFixed(r < 0.1 ? 1 : 0)}% data`;
}

/** Finished trials best first: higher rungs first (more resource), then by the study's ranking. */
export function leaderboard(spec: StudySpec, state: StudyState): Row[] {
  const done = [...state.trials.values()].filter((t) => t.status === "done");
  const rungs = [...new Set(done.map((t) => t.rung))].sort((a, b) => b - a);
  return rungs.flatMap(
    (r) =>
      rankTrials(
        done.filter((t) => t.rung === r),
        spec.objectives,
      ) as Row[],
  );
}

export function formatLeaderboard(spec: StudySpec, rows: readonly Row[], limit = 20): string {
  const latency = rows.some((r) => r.cost.latencyMs !== undefined);
  const head = [
    "#",
    "trial",
    "rung",
    "val acc",
    "params",
    "MACs",
    ...(latency ? ["latency"] : []),
    "trained",
    "time",
    "configuration",
  ];
  const body = rows
    .slice(0, limit)
    .map((r, i) => [
      String(i + 1),
      String(r.id),
      String(r.rung),
      pct(r.valAccuracy),
      millions(r.cost.params),
      millions(r.cost.macs),
      ...(latency ? [r.cost.latencyMs === undefined ? "-" : `${r.cost.latencyMs.toFixed(2)} ms`] : []),
      resourceLabel(spec, r.resource),
      r.outcome === undefined ? "-" : `${r.outcome.seconds.toFixed(0)} s`,
      formatPoint(r.point),
    ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => (b[i] as string).length)));
  const line = (cells: string[]): string =>
    cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] as number))).join("  ");
  return [line(head), ...body.map(line)].join("\n");
}

/** How far the study is toward its limit (the larger of the trial and time fractions), 0..1. */
export function studyProgress(spec: StudySpec, state: StudyState): number | undefined {
  const parts: number[] = [];
  if (spec.maxTrials !== null) parts.push(state.trials.size / spec.maxTrials);
  if (spec.timeLimitSeconds !== null) parts.push(state.elapsed / spec.timeLimitSeconds);
  return parts.length === 0 ? undefined : Math.min(1, Math.max(...parts));
}

/** A bar as wide as the terminal allows: `[#######.....]  58%`. */
export function progressBar(fraction: number, columns: number): string {
  const width = Math.max(10, Math.min(60, columns - 8));
  const filled = Math.round(fraction * width);
  return `[${"#".repeat(filled)}${".".repeat(width - filled)}] ${String(Math.round(100 * fraction)).padStart(3)}%`;
}

/** The status line and table of `search status`. */
export function formatStatus(dir: string, spec: StudySpec, state: StudyState, tty?: { columns: number }): string {
  const all = [...state.trials.values()];
  const count = (s: TrialRecord["status"]) => all.filter((t) => t.status === s).length;
  const perRung = spec.rungs.map((r, k) => {
    const on = all.filter((t) => t.rung === k);
    return `  rung ${k} (${resourceLabel(spec, r)}): ${on.filter((t) => t.status === "done").length} done, ${on.filter((t) => t.status === "running").length} running, ${on.filter((t) => t.status === "failed").length} failed`;
  });
  const limit = [
    spec.maxTrials === null ? "" : `${all.length}/${spec.maxTrials} trials`,
    spec.timeLimitSeconds === null
      ? ""
      : `${(state.elapsed / 60).toFixed(1)}/${(spec.timeLimitSeconds / 60).toFixed(1)} min`,
  ]
    .filter((s) => s !== "")
    .join(", ");
  const best = bestTrial(
    all.filter((t) => t.status === "done"),
    spec,
  );
  const r = state.rejected;
  return [
    `study ${spec.name} (${dir}): ${spec.strategy} over ${spec.space.name} on ${spec.recipe.dataset}; ${limit || "no limit"}${state.stopped !== undefined ? `; stopped (${state.stopped})` : ""}`,
    `trials: ${all.length} (${count("done")} done, ${count("running")} ${state.stopped !== undefined ? "interrupted" : "running"}, ${count("failed")} failed); candidates turned down: ${r.overBudget} outside the budgets, ${r.invalid} impossible, ${r.duplicate} duplicates; ${r.repaired} repaired`,
    ...perRung,
    best === undefined
      ? "best: none finished yet"
      : `best: trial ${best.id}, ${pct(best.valAccuracy)} validation accuracy, ${best.cost.params.toLocaleString("en-US")} params, ${best.cost.macs.toLocaleString("en-US")} MACs (${formatPoint(best.point)})`,
    ...state.damaged.map((d) => `journal: ${d} (skipped)`),
    ...(tty !== undefined && studyProgress(spec, state) !== undefined
      ? [progressBar(studyProgress(spec, state) as number, tty.columns)]
      : []),
  ].join("\n");
}

/** The best configuration as a recipe: the study's recipe with the trial's model options. */
export function bestRecipe(spec: StudySpec, best: TrialRecord): TrainConfig {
  const space = studySpace(spec);
  const checker = new BudgetChecker(space, spec.data, spec.budgets);
  return {
    ...spec.recipe,
    name: `${spec.name}-best`,
    source: `budgetnet search ${spec.name} (${spec.strategy} over ${spec.space.name}): trial ${best.id}, ${pct(best.valAccuracy)} validation accuracy at ${resourceLabel(spec, best.resource)}, ${best.cost.params} parameters, ${best.cost.macs} MACs; recipe ${spec.recipe.name}`,
    model: spec.space.model,
    modelOptions: checker.modelOptions(best.point),
  };
}

function frontPlot(spec: StudySpec, rows: readonly Row[], key: "params" | "macs"): ScatterPlot {
  const scored = rows.filter((r) => Number.isFinite(r.valAccuracy));
  const pts = scored.map((r) => ({ x: r.cost[key], y: r.valAccuracy as number, label: `t${r.id}` }));
  const front = paretoFront(
    scored.map((r) => ({ acc: r.valAccuracy as number, cost: r.cost[key] })),
    [
      { key: "acc", goal: "max" },
      { key: "cost", goal: "min" },
    ],
  );
  const onFront = new Set(front);
  const budget = key === "params" ? spec.budgets.maxParams : spec.budgets.maxMacs;
  return {
    title: `${spec.name}: accuracy vs ${key === "params" ? "parameters" : "MACs"} (${scored.length} trials)`,
    xLabel: key === "params" ? "parameters" : "multiply-adds per image",
    yLabel: "validation accuracy",
    yFormat: "percent",
    xLog: true,
    series: [
      // only the front is labelled: a large study's cloud would be unreadable
      { name: "trials", color: "#9aa5b1", points: pts.filter((_, i) => !onFront.has(i)).map(({ x, y }) => ({ x, y })) },
      { name: "Pareto front", color: "#d9480f", line: true, points: pts.filter((_, i) => onFront.has(i)) },
    ].filter((s) => s.points.length > 0),
    ...(budget !== undefined ? { vLines: [{ x: budget, label: `budget ${millions(budget)}` }] } : {}),
  };
}

export interface ReportFiles {
  recipe?: string;
  plots: string[];
  leaderboard: string;
}

/** Writes the report's files into the study folder and returns their paths. */
export function writeReport(dir: string): { text: string; files: ReportFiles } {
  const spec = readStudy(dir);
  const state = loadState(dir);
  const rows = leaderboard(spec, state);
  const files: ReportFiles = { plots: [], leaderboard: path.join(dir, "leaderboard.json") };
  writeFileAtomic(files.leaderboard, [
    `${JSON.stringify(
      rows.map((r) => ({
        trial: r.id,
        rung: r.rung,
        resource: r.resource,
        valAccuracy: r.valAccuracy,
        params: r.cost.params,
        macs: r.cost.macs,
        latencyMs: r.cost.latencyMs,
        seconds: r.outcome?.seconds,
        epochs: r.outcome?.epochs,
        options: r.point,
      })),
      null,
      2,
    )}\n`,
  ]);
  const lines = [formatStatus(dir, spec, state), "", formatLeaderboard(spec, rows)];
  const best = bestTrial(rows, spec);
  if (best !== undefined) {
    files.recipe = path.join(dir, "best-recipe.json");
    writeFileAtomic(files.recipe, [`${JSON.stringify(bestRecipe(spec, best), null, 2)}\n`]);
    const top = rows.filter((r) => r.rung === best.rung);
    for (const key of ["params", "macs"] as const) {
      const plot = frontPlot(spec, top, key);
      const base = path.join(dir, `pareto-${key}`);
      writeFileAtomic(`${base}.svg`, [scatterSvg(plot)]);
      writeFileAtomic(`${base}.png`, [scatterPng(plot)]);
      files.plots.push(`${base}.svg`, `${base}.png`);
    }
    lines.push(
      "",
      `best configuration: ${files.recipe}`,
      `  train it on the full recipe and test once: budgetnet train --recipe ${files.recipe} --out RUN && budgetnet eval --run RUN --split test`,
      `Pareto fronts: ${files.plots.join(", ")}`,
    );
  }
  return { text: lines.join("\n"), files };
}
