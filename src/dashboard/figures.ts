// Figures for papers and READMEs, written without a browser (`budgetnet plot`): learning curves
// as an SVG of one panel per metric with every run overlaid, and the confusion matrix through
// analysis/heatmap.ts. PNG is the same SVG rendered by sharp (librsvg), already a dependency.
//
// Each curve is a polyline of journal points (LTTB-downsampled past 2 points per pixel, never
// interpolated); the panel carries its axis mapping (data-x-map="offset scale") and each
// polyline its values (data-points="x,y ..."), so a reader (or a test) can check the figure
// against metrics.jsonl.
import { formatTick } from "../analysis/plot";
import type { SeriesColumns } from "./metrics_reader";
import { downsample, extractSeries, METRICS, type MetricName, type XAxis } from "./series";

const PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f"];
const INK = "#333333";
const GRID = "#e6e6e6";
const FONT = "DejaVu Sans, Helvetica, Arial, sans-serif";

export interface CurveRun {
  label: string;
  columns: SeriesColumns;
  stepsPerEpoch: number | null;
}

export interface CurvesFigure {
  runs: CurveRun[];
  metrics: MetricName[];
  axis: XAxis;
  title?: string;
  width: number;
  height: number;
  /** Debiased EMA weight in [0, 1) applied to step metrics (0: the journal's values). */
  smoothing?: number;
  logY?: boolean;
}

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

const n2 = (v: number): string => String(Math.round(v * 100) / 100);

function niceStep(raw: number): number {
  const p = 10 ** Math.floor(Math.log10(raw));
  const m = raw / p;
  return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
}

function linearTicks(lo: number, hi: number, count: number): { ticks: number[]; step: number } {
  const step = niceStep((hi - lo) / Math.max(1, count));
  const ticks: number[] = [];
  for (let k = Math.ceil(lo / step - 1e-9); k * step <= hi + step * 1e-9; k++)
    ticks.push(Number((k * step).toPrecision(12)));
  return { ticks, step };
}

/** Ticks (as log10 values) on a log axis from lo to hi (log10): decades, else 1-2-5, else 1..9. */
function logTicks(lo: number, hi: number): number[] {
  for (const mantissas of [[1], [1, 2, 5], [1, 2, 3, 4, 5, 6, 7, 8, 9]]) {
    const ticks: number[] = [];
    for (let e = Math.floor(lo); e <= Math.ceil(hi); e++)
      for (const m of mantissas) {
        const t = Math.log10(m) + e;
        if (t >= lo && t <= hi) ticks.push(t);
      }
    if (ticks.length >= 3) return ticks;
  }
  return linearTicks(lo, hi, 3).ticks;
}

export function smoothEma(y: number[], weight: number): number[] {
  if (!(weight > 0)) return y;
  let last = 0;
  return y.map((v, i) => {
    last = last * weight + (1 - weight) * v;
    return last / (1 - weight ** (i + 1));
  });
}

function timeLabel(sec: number): string {
  const s = Math.round(sec);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h > 0
    ? `${h}:${String(m).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}`
    : `${m}:${String(s % 60).padStart(2, "0")}`;
}

interface PanelBox {
  x: number;
  y: number;
  w: number;
  h: number;
}

function panel(fig: CurvesFigure, metric: MetricName, box: PanelBox): string {
  const m = METRICS[metric];
  const percent = metric.endsWith("accuracy");
  const log = fig.logY === true && !percent;
  const maxPoints = Math.max(3, Math.round(2 * box.w));
  const lines = fig.runs.map((r) => {
    const raw = extractSeries(r.columns, metric, fig.axis, r.stepsPerEpoch);
    const keep = log ? raw.x.map((_, i) => (raw.y[i] as number) > 0) : raw.x.map(() => true);
    const x = raw.x.filter((_, i) => keep[i]);
    let y = raw.y.filter((_, i) => keep[i]);
    if (m.record === "step" && metric !== "lr") y = smoothEma(y, fig.smoothing ?? 0);
    return downsample({ x, y }, maxPoints);
  });
  const xs = lines.flatMap((l) => l.x);
  const ys = lines.flatMap((l) => l.y).map((v) => (log ? Math.log10(v) : v));
  const parts: string[] = [`<g class="panel" data-metric="${metric}" data-x-axis="${fig.axis}">`];
  const [left, top, right, bottom] = [box.x + 58, box.y + 26, box.x + box.w - 12, box.y + box.h - 40];
  parts.push(
    `<text x="${n2((left + right) / 2)}" y="${box.y + 16}" text-anchor="middle" font-size="13" font-weight="bold" fill="${INK}">${esc(m.label)}</text>`,
  );
  if (xs.length === 0) {
    parts.push(
      `<text x="${n2((left + right) / 2)}" y="${n2((top + bottom) / 2)}" text-anchor="middle" font-size="12" fill="#888">no ${esc(metric)} values</text></g>`,
    );
    return parts.join("\n");
  }
  let [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  let [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  if (x1 === x0) [x0, x1] = [x0 - 1, x1 + 1];
  if (y1 === y0) [y0, y1] = [y0 - (Math.abs(y0) * 0.1 || 1), y1 + (Math.abs(y1) * 0.1 || 1)];
  const padY = (y1 - y0) * 0.05;
  [y0, y1] = [y0 - padY, y1 + padY];
  const sx = (right - left) / (x1 - x0);
  const sy = -(bottom - top) / (y1 - y0);
  const px = (v: number) => left + (v - x0) * sx;
  const py = (v: number) => bottom + ((log ? Math.log10(v) : v) - y0) * sy;
  parts[0] = `<g class="panel" data-metric="${metric}" data-x-axis="${fig.axis}" data-x-map="${left - x0 * sx} ${sx}" data-y-map="${bottom - y0 * sy} ${sy}" data-y-log="${log ? 1 : 0}">`;
  const xt = linearTicks(x0, x1, Math.max(2, Math.floor((right - left) / 80)));
  for (const t of xt.ticks) {
    const x = Math.round(px(t)) + 0.5;
    const label = fig.axis === "time" ? timeLabel(t) : formatTick(t, xt.step, "number");
    parts.push(`<line x1="${x}" y1="${top}" x2="${x}" y2="${bottom}" stroke="${GRID}"/>`);
    parts.push(
      `<text class="x-tick" x="${x}" y="${bottom + 14}" text-anchor="middle" font-size="10" fill="${INK}">${label}</text>`,
    );
  }
  const yt = log
    ? { ticks: logTicks(y0, y1), step: 1 }
    : linearTicks(y0, y1, Math.max(2, Math.floor((bottom - top) / 45)));
  for (const t of yt.ticks) {
    const y = Math.round(bottom + (t - y0) * sy) + 0.5;
    const label = log
      ? formatTick(10 ** t, 10 ** Math.floor(t + 1e-9), "number")
      : formatTick(t, yt.step, percent ? "percent" : "number");
    parts.push(`<line x1="${left}" y1="${y}" x2="${right}" y2="${y}" stroke="${GRID}"/>`);
    parts.push(
      `<text class="y-tick" x="${left - 5}" y="${y + 3}" text-anchor="end" font-size="10" fill="${INK}">${label}</text>`,
    );
  }
  parts.push(
    `<rect x="${left + 0.5}" y="${top + 0.5}" width="${right - left}" height="${bottom - top}" fill="none" stroke="${INK}"/>`,
  );
  const xName = fig.axis === "time" ? "wall time (h:mm:ss)" : fig.axis;
  parts.push(
    `<text x="${n2((left + right) / 2)}" y="${bottom + 30}" text-anchor="middle" font-size="11" fill="${INK}">${xName}</text>`,
  );
  lines.forEach((l, i) => {
    if (l.x.length === 0) return;
    const color = PALETTE[i % PALETTE.length] as string;
    const pts = l.x.map((x, k) => `${n2(px(x))},${n2(py(l.y[k] as number))}`).join(" ");
    const values = l.x.map((x, k) => `${x},${l.y[k]}`).join(" ");
    const run = esc(fig.runs[i]?.label ?? "");
    if (l.x.length === 1) {
      parts.push(
        `<circle class="series" data-run="${run}" data-points="${values}" cx="${pts.split(",")[0]}" cy="${pts.split(",")[1]}" r="3" fill="${color}"/>`,
      );
      return;
    }
    const width = m.record === "epoch" ? 2 : 1.5;
    parts.push(
      `<polyline class="series" data-run="${run}" data-points="${values}" points="${pts}" fill="none" stroke="${color}" stroke-width="${width}" stroke-linejoin="round"/>`,
    );
    if (m.record === "epoch" && l.x.length <= 60)
      for (let k = 0; k < l.x.length; k++)
        parts.push(
          `<circle cx="${n2(px(l.x[k] as number))}" cy="${n2(py(l.y[k] as number))}" r="2.5" fill="${color}"/>`,
        );
  });
  parts.push("</g>");
  return parts.join("\n");
}

/** The learning curves of the runs, one panel per metric (two panels a row), as an SVG document. */
export function curvesSvg(fig: CurvesFigure): string {
  const { width, height } = fig;
  const cols = Math.min(2, fig.metrics.length);
  const rows = Math.ceil(fig.metrics.length / cols);
  const head = (fig.title ? 30 : 8) + 18 * Math.ceil(fig.runs.length / Math.max(1, Math.floor(width / 220)));
  const out: string[] = [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="${FONT}">`,
    `<title>${esc(fig.title ?? `${fig.metrics.join(", ")} against ${fig.axis}`)}</title>`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
  ];
  if (fig.title)
    out.push(
      `<text x="${width / 2}" y="20" text-anchor="middle" font-size="15" font-weight="bold" fill="${INK}">${esc(fig.title)}</text>`,
    );
  const perRow = Math.max(1, Math.floor(width / 220));
  fig.runs.forEach((r, i) => {
    const x = 12 + (i % perRow) * 220;
    const y = (fig.title ? 30 : 8) + 18 * Math.floor(i / perRow) + 10;
    const color = PALETTE[i % PALETTE.length] as string;
    out.push(`<rect x="${x}" y="${y - 9}" width="14" height="4" fill="${color}" transform="translate(0 4)"/>`);
    out.push(
      `<text class="legend" x="${x + 20}" y="${y + 2}" font-size="11" fill="${INK}">${esc(r.label.length > 32 ? `…${r.label.slice(-31)}` : r.label)}</text>`,
    );
  });
  const pw = width / cols;
  const ph = (height - head) / rows;
  fig.metrics.forEach((metric, i) => {
    out.push(panel(fig, metric, { x: (i % cols) * pw, y: head + Math.floor(i / cols) * ph, w: pw, h: ph }));
  });
  out.push("</svg>", "");
  return out.join("\n");
}

/** An SVG rendered to PNG at its own size (sharp's librsvg, one pixel per SVG unit). */
export async function svgToPng(svg: string): Promise<Buffer> {
  const sharp = (await import("sharp")).default;
  return sharp(Buffer.from(svg, "utf8")).png().toBuffer();
}
