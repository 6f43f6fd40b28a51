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
import { deflateSync } from "node:zlib";
import { ArgumentError, checkArg, isPlainObject } from "../tensor/errors";

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

type Shape =
  | { kind: "line"; x1: number; y1: number; x2: number; y2: number; color: string; width: number; dashed?: boolean }
  | { kind: "polyline"; points: [number, number][]; color: string; width: number }
  | { kind: "circle"; cx: number; cy: number; r: number; color: string; tooltip: string }
  | { kind: "rect"; x: number; y: number; w: number; h: number; color: string }
  | TextShape;
type TextShape = {
  kind: "text";
  x: number;
  y: number;
  text: string;
  color: string;
  scale: number;
  anchor: Anchor;
  vertical?: boolean;
  cls?: string; // an SVG class, so tests and stylesheets can find tick labels
};
type Anchor = "start" | "middle" | "end";

const PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#9c755f", "#ff9da7"];
const INK = "#333333";
const GRID = "#e6e6e6";
const REFERENCE = "#666666";
const CHAR_ADVANCE = 6; // pixels per character at scale 1 (5 wide + 1 gap); SVG uses a 10px monospace font, 0.6em wide
const CAP_HEIGHT = 7;
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

function textWidth(s: string, scale: number): number {
  return s.length === 0 ? 0 : (s.length * CHAR_ADVANCE - 1) * scale;
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

/** Text safe inside an element or attribute; characters XML 1.0 forbids become "?". */
function escapeXml(s: string): string {
  return s
    .replace(/[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\u{10000}-\u{10ffff}]/gu, "?")
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&apos;");
}

// ---------------------------------------------------------------- rasterizer

const DASH = [5, 4];

// 5x8 glyphs for ASCII 32..126, 8 rows each (7 above the baseline, 1 descender row); a row is one
// base-32 digit whose 5 bits are its pixels, the highest bit leftmost. Other characters draw as "?".
const FONT_ROWS = [
  "0000000044444040aaa00000aavavaa04fke5u40op248j30cik8lid044800000248884208422248004lel400044v4400",
  "00000c48000v000000000cc001248g00ehjlphe04c4444e0eh1248v0v2421he026aiv220vgu11he068guhhe0v1248880",
  "ehhehhe0ehhf12c00cc0cc000cc0c480248g842000v0v00084212480eh124040eh1dlle0ehhvhhh0uhhuhhu0ehggghe0",
  "sihhhis0vgguggv0vgguggg0ehgnhhf0hhhvhhh0e44444e072222ic0hikokih0ggggggv0hrllhhh0hhpljhh0ehhhhhe0",
  "uhhuggg0ehhhlid0uhhukih0fgge11u0v4444440hhhhhhe0hhhhha40hhhllla0hha4ahh0hha44440v1248gv0e88888e0",
  "0g842100e22222e04ah00000000000v08420000000e1fhf0ggmphhu000egghe011djhhf000ehvge0698s888000fhhf1e",
  "ggmphhh040c444e0206222icggikoki0c44444e000qllll000mphhh000ehhhe000uhhugg00fhhf1100mpggg000fge1u0",
  "88s8896000hhhjd000hhha4000hhlla000ha4ah000hhhf1e00v248v0244844204444444084424480008l2000",
].join("");
const FONT = Uint8Array.from(FONT_ROWS, (c) => Number.parseInt(c, 32));

function parseColor(hex: string): [number, number, number] {
  const h = hex.length === 4 ? hex.replace(/[0-9a-f]/gi, (c) => c + c) : hex;
  return [1, 3, 5].map((i) => Number.parseInt(h.slice(i, i + 2), 16)) as [number, number, number];
}

class Canvas {
  readonly rgba: Uint8Array;

  constructor(
    readonly width: number,
    readonly height: number,
  ) {
    this.rgba = new Uint8Array(width * height * 4).fill(255);
  }

  draw(s: Shape): void {
    if (s.kind === "line") {
      const segs = s.dashed ? dashSegments(s.x1, s.y1, s.x2, s.y2) : [[s.x1, s.y1, s.x2, s.y2]];
      this.stroke(segs, s.width, parseColor(s.color));
    } else if (s.kind === "polyline") {
      const segs = s.points.slice(1).map(([x, y], i) => [...s.points[i]!, x, y]);
      this.stroke(segs, s.width, parseColor(s.color));
    } else if (s.kind === "circle") {
      const { cx, cy, r } = s;
      const disc = (x: number, y: number) => r + 0.5 - Math.hypot(x - cx, y - cy);
      this.cover(cx - r - 1, cy - r - 1, cx + r + 1, cy + r + 1, parseColor(s.color), disc);
    } else if (s.kind === "rect") {
      const [x0, y0] = [Math.round(s.x), Math.round(s.y)];
      this.cover(x0, y0, Math.round(s.x + s.w) - 1, Math.round(s.y + s.h) - 1, parseColor(s.color), () => 1);
    } else {
      this.text(s);
    }
  }

  /** Blends color into every pixel of the box by coverage(pixel centre), clamped to [0, 1]. */
  private cover(
    x0: number,
    y0: number,
    x1: number,
    y1: number,
    rgb: number[],
    coverage: (x: number, y: number) => number,
  ): void {
    for (let y = Math.max(0, Math.floor(y0)); y <= Math.min(this.height - 1, Math.ceil(y1)); y++) {
      for (let x = Math.max(0, Math.floor(x0)); x <= Math.min(this.width - 1, Math.ceil(x1)); x++) {
        this.blend(x, y, rgb, coverage(x + 0.5, y + 0.5));
      }
    }
  }

  private blend(x: number, y: number, rgb: number[], alpha: number): void {
    const a = Math.min(1, alpha);
    if (!(a > 0)) return;
    const i = (y * this.width + x) * 4;
    for (let c = 0; c < 3; c++) this.rgba[i + c] = Math.round(rgb[c]! * a + this.rgba[i + c]! * (1 - a));
  }

  /** Round-capped segments of one stroke: coverage is the max over segments, so joints are not blended twice. */
  private stroke(segs: number[][], width: number, rgb: number[]): void {
    const half = width / 2;
    // the box around a segment (or all of them), in pixels, clipped to the canvas
    const box = (xs: number[], ys: number[]) => [
      Math.max(0, Math.floor(Math.min(...xs) - half - 1)),
      Math.max(0, Math.floor(Math.min(...ys) - half - 1)),
      Math.min(this.width, Math.ceil(Math.max(...xs) + half + 1)),
      Math.min(this.height, Math.ceil(Math.max(...ys) + half + 1)),
    ];
    let [bx0, by0, bx1, by1] = [this.width, this.height, 0, 0];
    for (const [x1, y1, x2, y2] of segs as [number, number, number, number][]) {
      const [sx0, sy0, sx1, sy1] = box([x1, x2], [y1, y2]) as [number, number, number, number];
      [bx0, by0, bx1, by1] = [Math.min(bx0, sx0), Math.min(by0, sy0), Math.max(bx1, sx1), Math.max(by1, sy1)];
    }
    const bw = bx1 - bx0;
    if (bw <= 0 || by1 <= by0) return;
    const mask = new Float32Array(bw * (by1 - by0));
    for (const [x1, y1, x2, y2] of segs as [number, number, number, number][]) {
      const [sx0, sy0, sx1, sy1] = box([x1, x2], [y1, y2]) as [number, number, number, number];
      for (let y = sy0; y < sy1; y++) {
        for (let x = sx0; x < sx1; x++) {
          const cov = half + 0.5 - segmentDistance(x + 0.5, y + 0.5, x1, y1, x2, y2);
          const m = (y - by0) * bw + (x - bx0);
          if (cov > (mask[m] as number)) mask[m] = cov;
        }
      }
    }
    for (let m = 0; m < mask.length; m++) this.blend(bx0 + (m % bw), by0 + Math.floor(m / bw), rgb, mask[m] as number);
  }

  /** Bitmap text; x, y is the baseline point named by the anchor; vertical text reads bottom to top. */
  private text(s: TextShape): void {
    const rgb = parseColor(s.color);
    const k = s.scale;
    const shift = s.anchor === "start" ? 0 : s.anchor === "middle" ? textWidth(s.text, k) / 2 : textWidth(s.text, k);
    const [ox, oy] = [Math.round(s.x), Math.round(s.y)];
    [...s.text].forEach((ch, n) => {
      const code = ch.charCodeAt(0);
      const glyph = (ch.length === 1 && code >= 32 && code <= 126 ? code : 63) - 32;
      for (let row = 0; row < 8; row++) {
        const bits = FONT[glyph * 8 + row] as number;
        for (let col = 0; col < 5; col++) {
          if (!(bits & (16 >> col))) continue;
          // (dx, dy): the pixel block relative to the baseline origin, before any rotation
          const dx = Math.round(n * CHAR_ADVANCE * k + col * k - shift);
          const dy = (row - CAP_HEIGHT) * k;
          for (let i = 0; i < k; i++) {
            for (let j = 0; j < k; j++) {
              const [x, y] = s.vertical ? [ox + dy + j, oy - dx - i - 1] : [ox + dx + i, oy + dy + j];
              if (x >= 0 && y >= 0 && x < this.width && y < this.height) this.blend(x, y, rgb, 1);
            }
          }
        }
      }
    });
  }
}

function segmentDistance(px: number, py: number, x1: number, y1: number, x2: number, y2: number): number {
  const [dx, dy] = [x2 - x1, y2 - y1];
  const len2 = dx * dx + dy * dy;
  const t = len2 === 0 ? 0 : Math.max(0, Math.min(1, ((px - x1) * dx + (py - y1) * dy) / len2));
  return Math.hypot(px - (x1 + t * dx), py - (y1 + t * dy));
}

function dashSegments(x1: number, y1: number, x2: number, y2: number): number[][] {
  const len = Math.hypot(x2 - x1, y2 - y1);
  const segs: number[][] = [];
  for (let a = 0; a < len; a += (DASH[0] as number) + (DASH[1] as number)) {
    const b = Math.min(len, a + (DASH[0] as number));
    const [ta, tb] = len === 0 ? [0, 0] : [a / len, b / len];
    segs.push([x1 + (x2 - x1) * ta, y1 + (y2 - y1) * ta, x1 + (x2 - x1) * tb, y1 + (y2 - y1) * tb]);
  }
  return segs.length ? segs : [[x1, y1, x2, y2]];
}

// ---------------------------------------------------------------- PNG

const CRC_TABLE = Uint32Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

/** CRC-32 (ISO-HDLC, as PNG and zlib use it). */
function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = (CRC_TABLE[(c ^ b) & 0xff] as number) ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, "latin1");
  out.set(data, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

/** An 8-bit RGBA PNG of width x height pixels given row by row (4 bytes a pixel). */
export function encodePng(width: number, height: number, rgba: Uint8Array): Buffer {
  const need = (ok: boolean, name: string, received: unknown, what: string) =>
    checkArg(ok, "encodePng", what, name, received);
  need(
    Number.isInteger(width) && width > 0 && width < 2 ** 31,
    "width",
    width,
    "width must be a positive whole number",
  );
  need(
    Number.isInteger(height) && height > 0 && height < 2 ** 31,
    "height",
    height,
    "height must be a positive whole number",
  );
  need(rgba instanceof Uint8Array, "rgba", rgba, "rgba must be a Uint8Array of 4 bytes per pixel");
  need(
    rgba.length === width * height * 4,
    "rgba.length",
    rgba.length,
    `rgba must hold width*height*4 = ${width * height * 4} bytes`,
  );
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, 6, 0, 0, 0], 8); // bit depth 8, colour type 6 (RGBA), deflate, adaptive filters, no interlace
  const stride = width * 4;
  const raw = Buffer.alloc((stride + 1) * height); // each row: filter type 0 (none), then its bytes
  for (let y = 0; y < height; y++) raw.set(rgba.subarray(y * stride, (y + 1) * stride), y * (stride + 1) + 1);
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  const chunks = [chunk("IHDR", header), chunk("IDAT", deflateSync(raw)), chunk("IEND", new Uint8Array(0))];
  return Buffer.concat([signature, ...chunks]);
}
