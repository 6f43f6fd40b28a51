// `budgetnet plot --run DIR [--run DIR2 ...] [--metric loss,val.accuracy] [--x step|epoch|time]
// --out FILE.svg|.png`: learning curves of runs as a figure, without a browser; with --confusion,
// the confusion matrix of one run (evaluated as `budgetnet eval` does, or read from a saved
// `budgetnet eval --json` with --eval FILE).
import * as fs from "node:fs";
import * as path from "node:path";
import { type Heatmap, heatmapPng, heatmapSvg } from "../analysis/heatmap";
import { curvesSvg, svgToPng } from "../dashboard/figures";
import { SeriesReader } from "../dashboard/metrics_reader";
import { readConfigView } from "../dashboard/run_config";
import { isMetric, METRICS, type MetricName, X_AXES, type XAxis } from "../dashboard/series";
import { writeFileAtomic } from "../export/atomic";
import { evaluateRun } from "../train/evaluate_run";
import { defineCommand, UsageError } from "./args";
import { compileForEngine } from "./engine";

interface Confusion {
  confusion: number[][];
  classNames: string[];
  accuracy: number;
  n: number;
  split: string;
}

function readEvalJson(file: string): Confusion {
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (e) {
    throw new UsageError(
      `--eval ${file} could not be read as JSON (${(e as Error).message}); give the output of budgetnet eval --json.`,
    );
  }
  const r = raw as {
    confusion?: unknown;
    perClass?: { name?: unknown }[];
    accuracy?: unknown;
    n?: unknown;
    split?: unknown;
  };
  const k = Array.isArray(r.confusion) ? r.confusion.length : 0;
  const square =
    k > 0 &&
    (r.confusion as unknown[]).every(
      (row) => Array.isArray(row) && row.length === k && row.every((v) => Number.isInteger(v)),
    );
  if (!square || !Array.isArray(r.perClass) || r.perClass.length !== k)
    throw new UsageError(
      `--eval ${file} has no confusion matrix with one perClass entry per class; give the output of budgetnet eval --json.`,
    );
  return {
    confusion: r.confusion as number[][],
    classNames: r.perClass.map((c, i) => (typeof c.name === "string" ? c.name : String(i))),
    accuracy: typeof r.accuracy === "number" ? r.accuracy : Number.NaN,
    n: typeof r.n === "number" ? r.n : Number.NaN,
    split: typeof r.split === "string" ? r.split : "?",
  };
}

/** The confusion matrix as a heatmap: colour is the share of the true class, text the count. */
export function confusionHeatmap(c: Confusion, title: string): Heatmap {
  return {
    title,
    rows: c.classNames.map((n) => `${n} (true)`),
    columns: c.classNames,
    values: c.confusion.map((row) => {
      const total = row.reduce((a, b) => a + b, 0) || 1;
      return row.map((v) => (100 * v) / total);
    }),
    labels: c.confusion.map((row) => row.map(String)),
    colorScale: "sequential",
    valueLabel: "share of the true class (%); text: images",
    domain: [0, 100],
  };
}

function writeOut(file: string, bytes: Buffer | string): void {
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  writeFileAtomic(file, [typeof bytes === "string" ? Buffer.from(bytes, "utf8") : bytes]);
}

export const plotCommand = defineCommand({
  name: "plot",
  summary: "Draw learning curves of runs (or a run's confusion matrix) as an SVG or PNG figure.",
  positionals: [],
  flags: {
    run: { type: "list", valueName: "DIR", description: "a run folder written by `budgetnet train`" },
    metric: {
      type: "string",
      valueName: "M[,M...]",
      description: `metrics, one panel each: ${Object.keys(METRICS).join(", ")}`,
      default: "loss,val.accuracy",
    },
    x: { type: "string", valueName: "AXIS", description: "x axis: step, epoch or time", default: "step" },
    smooth: {
      type: "number",
      valueName: "W",
      description: "exponential smoothing of per-step curves in [0, 1) (0: the journal's values)",
      default: 0,
    },
    log: { type: "boolean", description: "logarithmic y axis (loss, learning rate)" },
    confusion: { type: "boolean", description: "draw the run's confusion matrix instead of curves" },
    split: {
      type: "string",
      valueName: "val|test",
      description: "data the confusion matrix is computed on",
      default: "test",
    },
    eval: {
      type: "string",
      valueName: "FILE",
      description: "draw the confusion matrix from a saved `budgetnet eval --json`",
    },
    title: { type: "string", valueName: "TEXT", description: "the figure's title" },
    width: { type: "integer", valueName: "PX", description: "figure width of curves", default: 960 },
    height: { type: "integer", valueName: "PX", description: "figure height of curves", default: 420 },
    out: { type: "string", valueName: "FILE", description: "FILE.svg or FILE.png (required)" },
  },
  async run(args) {
    const f = args.flags;
    const out = f.out;
    if (out === undefined) throw new UsageError("--out FILE.svg or FILE.png is required.");
    const ext = path.extname(out).toLowerCase();
    if (ext !== ".svg" && ext !== ".png")
      throw new UsageError(`--out must end in .svg or .png. Received: --out=${out}`);
    if (f.confusion || f.eval !== undefined) {
      let c: Confusion;
      let name: string;
      if (f.eval !== undefined) {
        c = readEvalJson(f.eval);
        name = f.run[0] ?? path.basename(f.eval);
      } else {
        if (f.run.length !== 1)
          throw new UsageError("--confusion draws one run: give exactly one --run DIR (or --eval FILE).");
        const split = f.split;
        if (split !== "val" && split !== "test")
          throw new UsageError(`--split must be val or test. Received: --split=${split}`);
        name = f.run[0] as string;
        const r = evaluateRun(name, { split, weights: "best", compile: (m, o) => compileForEngine("auto", m, o) });
        c = { confusion: r.confusion, classNames: r.perClass.map((p) => p.name), accuracy: r.accuracy, n: r.n, split };
      }
      const title =
        f.title ??
        `${name}: ${c.split} accuracy ${(100 * c.accuracy).toFixed(2)}% on ${c.n.toLocaleString("en-US")} images`;
      const h = confusionHeatmap(c, title);
      writeOut(out, ext === ".svg" ? heatmapSvg(h) : heatmapPng(h));
      process.stdout.write(`wrote the confusion matrix of ${name} to ${out}\n`);
      return 0;
    }
    if (f.run.length === 0)
      throw new UsageError("give at least one --run DIR (a folder written by `budgetnet train`).");
    const metrics = f.metric.split(",").filter((m) => m !== "");
    for (const m of metrics)
      if (!isMetric(m)) throw new UsageError(`unknown metric ${m}. Known: ${Object.keys(METRICS).join(", ")}`);
    if (metrics.length === 0) throw new UsageError("--metric needs at least one metric.");
    if (!(X_AXES as readonly string[]).includes(f.x))
      throw new UsageError(`--x must be step, epoch or time. Received: --x=${f.x}`);
    if (!(f.smooth >= 0 && f.smooth < 1))
      throw new UsageError(`--smooth must be in [0, 1). Received: --smooth=${f.smooth}`);
    for (const [k, v] of [
      ["width", f.width],
      ["height", f.height],
    ] as const)
      if (!(v >= 200 && v <= 8192)) throw new UsageError(`--${k} must be in [200, 8192] pixels. Received: --${k}=${v}`);
    const runs = f.run.map((dir) => {
      const file = path.join(dir, "metrics.jsonl");
      if (!fs.existsSync(file))
        throw new UsageError(`${dir} has no metrics.jsonl: give a run folder written by \`budgetnet train --out\`.`);
      const reader = new SeriesReader(file);
      reader.update();
      return { label: dir, columns: reader.columns, stepsPerEpoch: readConfigView(dir).config?.stepsPerEpoch ?? null };
    });
    const svg = curvesSvg({
      runs,
      metrics: metrics as MetricName[],
      axis: f.x as XAxis,
      title: f.title,
      width: f.width,
      height: f.height,
      smoothing: f.smooth,
      logY: f.log,
    });
    writeOut(out, ext === ".svg" ? svg : await svgToPng(svg));
    process.stdout.write(`wrote ${metrics.join(", ")} of ${runs.length} run(s) against ${f.x} to ${out}\n`);
    return 0;
  },
});
