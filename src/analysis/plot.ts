// Pareto fronts and scatter plots as SVG and PNG, with no plotting dependency. One layout (a list
// of shapes in pixel coordinates) feeds both outputs: scatterSvg writes the shapes as SVG
// elements, scatterPng rasterizes them (anti-aliased strokes and discs, a built-in 5x8 bitmap
// font for printable ASCII; other characters show as "?") and encodes the pixels with node:zlib
// and our own CRC-32. Ticks fall on 1, 2, 5 steps (decades on a log axis) and read 350k, 1.2M or,
// with xFormat/yFormat "percent", 92.5% for a fraction 0.925.
//
// Points with a non-finite coordinate are an ArgumentError rather than skipped: a plot that
// silently drops diverged trials misleads, so the caller filters them (paretoFront already leaves
// them out) and can say how many it dropped in the title.
import { ArgumentError, checkArg, isPlainObject } from "../tensor/errors";
import {
  type Anchor,
  CAP_HEIGHT,
  Canvas,
  DASH,
  encodePng,
  escapeXml,
  type Shape,
  type TextShape,
  textWidth,
} from "./raster";

export { encodePng, escapeXml, glyph } from "./raster";

export interface Objective {
  key: string;
  goal: "min" | "max";
}

/**
 * Indices (ascending) of the non-dominated points: a point dominates another if it is no worse in
 * every objective and better in one. Points with a missing or non-finite value in any objective
 * are never on the front and dominate nothing; identical points are both kept. O(n²·objectives).
 */
export function paretoFront(points: readonly Record<string, number>[], objectives: readonly Objective[]): number[] {
  const need = (ok: boolean, name: string, received: unknown, what: string) =>
    checkArg(ok, "paretoFront", what, name, received);
  need(Array.isArray(points), "points", points, "points must be an array of objects such as { params: 1e6, acc: 0.9 }");
  const example = '[{ key: "params", goal: "min" }]';
  need(
    Array.isArray(objectives) && objectives.length > 0,
    "objectives",
    objectives,
    `objectives must be like ${example}`,
  );
  objectives.forEach((o, k) => {
    need(isPlainObject(o) && typeof o.key === "string" && o.key !== "", `objectives[${k}]`, o, "each needs a key");
    need(o.goal === "min" || o.goal === "max", `objectives[${k}].goal`, o.goal, 'goal must be "min" or "max"');
  });
  // Every objective turned into one to minimize; null for a point that cannot be on the front.
  const rows = points.map((p, i) => {
    need(typeof p === "object" && p !== null, `points[${i}]`, p, "each point must be an object");
    const row = objectives.map((o) => {
      const v: unknown = p[o.key];
      return typeof v === "number" ? (o.goal === "max" ? -v : v) : Number.NaN;
    });
    return row.every(Number.isFinite) ? row : null;
  });
  const front: number[] = [];
  rows.forEach((row, i) => {
    if (row !== null && !rows.some((other) => other !== null && dominates(other, row))) front.push(i);
  });
  return front;
}

function dominates(a: readonly number[], b: readonly number[]): boolean {
  let better = false;
  for (let k = 0; k < a.length; k++) {
    if ((a[k] as number) > (b[k] as number)) return false;
    if ((a[k] as number) < (b[k] as number)) better = true;
  }
  return better;
}

export interface ScatterSeries {
  name: string;
  /** "#rgb" or "#rrggbb"; default: the next colour of a colour-blind-safe palette. */
  color?: string;
  points: { x: number; y: number; label?: string }[];
  /** Join the points sorted by x as a step line (each value holds until the next point), as for a front. */
  line?: boolean;
}

export interface ScatterPlot {
  title: string;
  xLabel: string;
  yLabel: string;
  xLog?: boolean;
  /** "percent" shows fractions as 92.5%; "number" (default) uses k/M/G/T: 350k, 1.2M. */
  xFormat?: "number" | "percent";
  yFormat?: "number" | "percent";
  series: ScatterSeries[];
  /** Pixels, 100 to 8192; default 640 x 400. */
  width?: number;
  height?: number;
  /** Reference points drawn as a labelled cross (a published model, say). */
  markers?: { x: number; y: number; label: string }[];
  /** Dashed vertical reference lines, such as a parameter budget. */
  vLines?: { x: number; label: string }[];
}

const PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#9c755f", "#ff9da7"];
const INK = "#333333";
const GRID = "#e6e6e6";
const REFERENCE = "#666666";
const POINT_RADIUS = 3.5;

/** A standalone SVG document of the plot. */
export function scatterSvg(plot: ScatterPlot): string {
  const { width, height, shapes } = layout(plot, "scatterSvg");
  const body = shapes.map(svgElement).join("\n");
  return (
    `<?xml version="1.0" encoding="UTF-8"?>\n` +
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ` +
    `font-family="DejaVu Sans Mono, Menlo, Consolas, monospace">\n<title>${escapeXml(plot.title)}</title>\n<rect width="${width}" height="${height}" fill="#ffffff"/>\n` +
    `${body}\n</svg>\n`
  );
}

/** The same picture as an RGBA PNG. */
export function scatterPng(plot: ScatterPlot): Buffer {
  const { width, height, shapes } = layout(plot, "scatterPng");
  const canvas = new Canvas(width, height);
  for (const s of shapes) canvas.draw(s);
  return encodePng(width, height, canvas.rgba);
}

// ---------------------------------------------------------------- layout

interface Axis {
  log: boolean;
  lo: number; // in axis space (log10 of the value on a log axis)
  hi: number;
  ticks: number[];
  labels: string[];
}

function layout(plot: ScatterPlot, fn: string): { width: number; height: number; shapes: Shape[] } {
  checkPlot(plot, fn);
  const width = plot.width ?? 640;
  const height = plot.height ?? 400;
  const pad = 10;
  const shapes: Shape[] = [];
  const text = (x: number, y: number, s: string, anchor: Anchor, extra: Partial<TextShape> = {}) =>
    shapes.push({ kind: "text", x, y, text: s, color: INK, scale: 1, anchor, ...extra });
  const colors = plot.series.map((s, i) => s.color ?? (PALETTE[i % PALETTE.length] as string));

  text(width / 2, pad + 2 * CAP_HEIGHT, plot.title, "middle", { scale: 2 });
  // Legend: swatch and name per series, in rows under the title.
  let legendX = pad;
  let legendY = pad + 2 * CAP_HEIGHT + 18;
  plot.series.forEach((s, i) => {
    const itemWidth = 14 + textWidth(s.name, 1) + 16;
    if (legendX > pad && legendX + itemWidth > width - pad) [legendX, legendY] = [pad, legendY + 14];
    shapes.push({ kind: "rect", x: legendX, y: legendY - 9, w: 10, h: 10, color: colors[i] as string });
    text(legendX + 14, legendY, s.name, "start");
    legendX += itemWidth;
  });

  const xs = [...plot.series.flatMap((s) => s.points.map((p) => p.x)), ...(plot.markers ?? []).map((m) => m.x)];
  const ys = [...plot.series.flatMap((s) => s.points.map((p) => p.y)), ...(plot.markers ?? []).map((m) => m.y)];
  xs.push(...(plot.vLines ?? []).map((v) => v.x));
  const top = legendY + 12;
  const bottom = height - pad - 30;
  const yAxis = makeAxis(ys, false, plot.yFormat ?? "number", Math.max(2, Math.floor((bottom - top) / 50)));
  const left = pad + 16 + Math.max(0, ...yAxis.labels.map((l) => textWidth(l, 1))) + 7;
  const right = width - pad - 16;
  if (right - left < 40 || bottom - top < 40) {
    throw new ArgumentError(
      `${fn}: width=${width}, height=${height} leaves a ${right - left}x${bottom - top} pixel plot area once title, ` +
        "legend and labels are placed; make the image larger (at least 40x40 for the area) or shorten the series names",
    );
  }
  const xTickCount = Math.max(2, Math.floor((right - left) / 90));
  const xAxis = makeAxis(xs, plot.xLog === true, plot.xFormat ?? "number", xTickCount);
  const px = (x: number) => left + ((toAxis(xAxis, x) - xAxis.lo) / (xAxis.hi - xAxis.lo)) * (right - left);
  const py = (y: number) => bottom - ((y - yAxis.lo) / (yAxis.hi - yAxis.lo)) * (bottom - top);
  type LineStyle = { width?: number; dashed?: boolean };
  const line = (x1: number, y1: number, x2: number, y2: number, color: string, style: LineStyle = {}) =>
    shapes.push({ kind: "line", x1, y1, x2, y2, color, width: 1, ...style });

  // Grid, frame, ticks and tick labels; 1px lines sit on pixel centres so they stay crisp.
  xAxis.ticks.forEach((t, i) => {
    const x = Math.round(px(t)) + 0.5;
    line(x, top, x, bottom, GRID);
    line(x, bottom, x, bottom + 4, INK);
    text(x, bottom + 4 + 3 + CAP_HEIGHT, xAxis.labels[i] as string, "middle", { cls: "x-tick" });
  });
  yAxis.ticks.forEach((t, i) => {
    const y = Math.round(py(t)) + 0.5;
    line(left, y, right, y, GRID);
    line(left - 4, y, left, y, INK);
    text(left - 7, y + 3, yAxis.labels[i] as string, "end", { cls: "y-tick" });
  });
  const [l, r, t, b] = [left + 0.5, right + 0.5, top + 0.5, bottom + 0.5];
  const frame: [number, number][] = [
    [l, t],
    [r, t],
    [r, b],
    [l, b],
    [l, t],
  ];
  shapes.push({ kind: "polyline", points: frame, color: INK, width: 1 });
  text((left + right) / 2, height - pad - 1, plot.xLabel, "middle");
  text(pad + CAP_HEIGHT, (top + bottom) / 2, plot.yLabel, "middle", { vertical: true });

  for (const v of plot.vLines ?? []) {
    const x = px(v.x);
    line(x, top, x, bottom, REFERENCE, { width: 1.5, dashed: true });
    const nearRight = x > (left + right) / 2;
    text(nearRight ? x - 4 : x + 4, top + 12, v.label, nearRight ? "end" : "start", { color: REFERENCE });
  }
  plot.series.forEach((s, i) => {
    if (!s.line || s.points.length < 2) return;
    const sorted = [...s.points].sort((a, b) => a.x - b.x);
    const path: [number, number][] = [[px(sorted[0]!.x), py(sorted[0]!.y)]];
    for (let k = 1; k < sorted.length; k++) {
      path.push([px(sorted[k]!.x), py(sorted[k - 1]!.y)], [px(sorted[k]!.x), py(sorted[k]!.y)]);
    }
    shapes.push({ kind: "polyline", points: path, color: colors[i] as string, width: 1.5 });
  });
  plot.series.forEach((s, i) => {
    for (const p of s.points) {
      const tooltip = `${s.name}${p.label ? ` ${p.label}` : ""}: ${p.x}, ${p.y}`;
      shapes.push({ kind: "circle", cx: px(p.x), cy: py(p.y), r: POINT_RADIUS, color: colors[i] as string, tooltip });
    }
  });
  for (const m of plot.markers ?? []) {
    const [x, y] = [px(m.x), py(m.y)];
    line(x - 4, y - 4, x + 4, y + 4, INK, { width: 1.5 });
    line(x - 4, y + 4, x + 4, y - 4, INK, { width: 1.5 });
  }
  // Labels last, so no point covers them; placed left of the point when they would leave the image.
  const labelled = [...plot.series.flatMap((s) => s.points), ...(plot.markers ?? [])];
  for (const p of labelled) {
    if (!p.label) continue;
    const [x, y] = [px(p.x), py(p.y)];
    const fits = x + 7 + textWidth(p.label, 1) < width;
    text(fits ? x + 7 : x - 7, y + 3, p.label, fits ? "start" : "end");
  }
  return { width, height, shapes };
}

function checkPlot(plot: ScatterPlot, fn: string): void {
  const need = (ok: boolean, name: string, received: unknown, what: string) => checkArg(ok, fn, what, name, received);
  const finite = (v: unknown) => typeof v === "number" && Number.isFinite(v);
  const unmeasured = "must be a finite number; filter out failed or unmeasured trials first";
  need(isPlainObject(plot), "plot", plot, "plot must be an object with title, xLabel, yLabel and series");
  const log = plot.xLog === true;
  const checkX = (x: unknown, name: string) => {
    need(finite(x), name, x, `${name} ${unmeasured}`);
    need(!log || (x as number) > 0, name, x, `${name} must be positive on a log x axis (xLog: true)`);
  };
  for (const key of ["title", "xLabel", "yLabel"] as const) {
    need(typeof plot[key] === "string", key, plot[key], `${key} must be a string`);
  }
  for (const key of ["width", "height"] as const) {
    const v = plot[key];
    const ok = v === undefined || (Number.isInteger(v) && v >= 100 && v <= 8192);
    need(ok, key, v, `${key} must be a whole number of pixels from 100 to 8192`);
  }
  for (const key of ["xFormat", "yFormat"] as const) {
    const v = plot[key];
    need(v === undefined || v === "number" || v === "percent", key, v, `${key} must be "number" or "percent"`);
  }
  const series = plot.series;
  const some = Array.isArray(series) && series.length > 0;
  need(some, "series", series, "series must be a non-empty array of { name, points }");
  series.forEach((s, i) => {
    const at = `series[${i}]`;
    need(isPlainObject(s) && typeof s.name === "string", at, s, "each series needs a name string");
    const color = s.color === undefined || /^#([0-9a-f]{3}|[0-9a-f]{6})$/i.test(String(s.color));
    need(color, `${at}.color`, s.color, 'color must be "#rgb" or "#rrggbb"');
    const points = Array.isArray(s.points) && s.points.length > 0;
    need(points, `${at}.points`, s.points, "points must be a non-empty array of { x, y }; leave out an empty series");
    s.points.forEach((p, k) => {
      need(isPlainObject(p), `${at}.points[${k}]`, p, "each point must be { x, y, label? }");
      checkX(p.x, `${at}.points[${k}].x`);
      need(finite(p.y), `${at}.points[${k}].y`, p.y, `${at}.points[${k}].y ${unmeasured}`);
      need(
        p.label === undefined || typeof p.label === "string",
        `${at}.points[${k}].label`,
        p.label,
        "a label must be a string",
      );
    });
  });
  need(plot.markers === undefined || Array.isArray(plot.markers), "markers", plot.markers, "markers must be an array");
  (plot.markers ?? []).forEach((m, k) => {
    need(isPlainObject(m) && typeof m.label === "string", `markers[${k}]`, m, "each marker must be { x, y, label }");
    checkX(m.x, `markers[${k}].x`);
    need(finite(m.y), `markers[${k}].y`, m.y, `markers[${k}].y ${unmeasured}`);
  });
  need(plot.vLines === undefined || Array.isArray(plot.vLines), "vLines", plot.vLines, "vLines must be an array");
  (plot.vLines ?? []).forEach((v, k) => {
    need(isPlainObject(v) && typeof v.label === "string", `vLines[${k}]`, v, "each vLine must be { x, label }");
    checkX(v.x, `vLines[${k}].x`);
  });
}

// ---------------------------------------------------------------- axes and ticks

function toAxis(axis: { log: boolean }, v: number): number {
  return axis.log ? Math.log10(v) : v;
}

/** The data range padded by 6% (a single value gets a range around it), with ticks inside it. */
function makeAxis(values: number[], log: boolean, format: "number" | "percent", tickCount: number): Axis {
  const t = values.map((v) => toAxis({ log }, v));
  const min = t.reduce((a, b) => Math.min(a, b));
  const max = t.reduce((a, b) => Math.max(a, b));
  const span = max - min;
  const flat = span <= Math.max(Math.abs(min), Math.abs(max)) * 1e-9;
  const pad = flat ? (log ? 0.5 : Math.abs(min) * 0.1 || 1) : span * 0.06;
  const axis: Axis = { log, lo: min - pad, hi: max + pad, ticks: [], labels: [] };
  const ticks = log ? logTicks(axis.lo, axis.hi, tickCount) : linearTicks(axis.lo, axis.hi, tickCount);
  axis.ticks = ticks.map((tk) => tk.value);
  axis.labels = ticks.map((tk) => formatTick(tk.value, tk.step, format));
  return axis;
}

interface Tick {
  value: number;
  step: number; // the precision its label needs
}

/** A 1, 2 or 5 times a power of ten near raw. */
function niceStep(raw: number): number {
  const power = 10 ** Math.floor(Math.log10(raw));
  const m = raw / power;
  return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * power;
}

function linearTicks(lo: number, hi: number, count: number): Tick[] {
  const step = niceStep((hi - lo) / count);
  const ticks: Tick[] = [];
  for (let k = Math.ceil(lo / step); k * step <= hi; k++)
    ticks.push({ value: Number((k * step).toPrecision(12)), step });
  return ticks;
}

/** Decades (every few when there are many); 1-2-5 in each decade when under three decades show; else linear. */
function logTicks(lo: number, hi: number, count: number): Tick[] {
  const first = Math.ceil(lo);
  const last = Math.floor(hi);
  if (last - first + 1 >= 3) {
    const stride = Math.ceil((last - first + 1) / count);
    const ticks: Tick[] = [];
    for (let e = first; e <= last; e += stride) ticks.push({ value: 10 ** e, step: 10 ** e });
    return ticks;
  }
  const ticks: Tick[] = [];
  for (let e = Math.floor(lo); e <= Math.ceil(hi); e++) {
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** e;
      if (Math.log10(v) >= lo && Math.log10(v) <= hi) ticks.push({ value: v, step: 10 ** e });
    }
  }
  return ticks.length >= 2 ? ticks : linearTicks(10 ** lo, 10 ** hi, count);
}

const SI_UNITS: [number, string][] = [
  [1e12, "T"],
  [1e9, "G"],
  [1e6, "M"],
  [1e3, "k"],
];

/** 350k, 1.2M, 92.5%: as many decimals as the step needs, trailing zeros dropped. */
export function formatTick(value: number, step: number, format: "number" | "percent"): string {
  const percent = format === "percent";
  const scaled = percent ? value * 100 : value;
  const mag = Math.abs(scaled);
  const [unit, suffix] = percent ? [1, "%"] : (SI_UNITS.find(([u]) => mag >= u) ?? [1, ""]);
  const stepInUnit = ((percent ? step * 100 : step) / unit) * (1 + 1e-9);
  const decimals = Math.min(12, Math.max(0, -Math.floor(Math.log10(stepInUnit))));
  let s = (scaled / unit).toFixed(decimals);
  if (s.includes(".")) s = s.replace(/\.?0+$/, "");
  return `${s === "-0" ? "0" : s}${suffix}`;
}

// ---------------------------------------------------------------- SVG

function svgElement(s: Shape): string {
  const n = (v: number) => String(Math.round(v * 100) / 100);
  switch (s.kind) {
    case "line": {
      const dash = s.dashed ? ` stroke-dasharray="${DASH.join(" ")}"` : "";
      return `<line x1="${n(s.x1)}" y1="${n(s.y1)}" x2="${n(s.x2)}" y2="${n(s.y2)}" stroke="${s.color}" stroke-width="${s.width}" stroke-linecap="round"${dash}/>`;
    }
    case "polyline": {
      const points = s.points.map(([x, y]) => `${n(x)},${n(y)}`).join(" ");
      return `<polyline points="${points}" fill="none" stroke="${s.color}" stroke-width="${s.width}" stroke-linejoin="round" stroke-linecap="round"/>`;
    }
    case "circle":
      return `<circle cx="${n(s.cx)}" cy="${n(s.cy)}" r="${s.r}" fill="${s.color}"><title>${escapeXml(s.tooltip)}</title></circle>`;
    case "rect":
      return `<rect x="${n(s.x)}" y="${n(s.y)}" width="${n(s.w)}" height="${n(s.h)}" fill="${s.color}"/>`;
    case "text": {
      const cls = s.cls ? `class="${s.cls}" ` : "";
      const turn = s.vertical ? ` transform="rotate(-90 ${n(s.x)} ${n(s.y)})"` : "";
      return `<text ${cls}x="${n(s.x)}" y="${n(s.y)}" font-size="${10 * s.scale}" fill="${s.color}" text-anchor="${s.anchor}"${turn}>${escapeXml(s.text)}</text>`;
    }
  }
}
