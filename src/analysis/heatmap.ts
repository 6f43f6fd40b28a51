// Heatmaps (rows x columns of values, such as techniques x models of accuracy or gain) as SVG and
// PNG, with no plotting dependency. As in plot.ts, one layout (shapes on whole pixels) feeds both
// outputs; the PNG goes through plot.ts's encodePng, and its text uses the same 5x8 bitmap font.
//
// Colours: "sequential" is viridis (van der Walt & Smith), perceptually even and readable with
// colour-blindness and in greyscale; "diverging" is ColorBrewer's RdBu reversed (blue below 0, near
// white at 0, red above), centred on 0 with the same reach both ways, so equal gains and losses look
// equally strong. Both interpolate linearly in sRGB between the anchors below, as an SVG gradient
// through the same stops does. A missing value (null) is a grey hatched cell reading "n/a".
import { ArgumentError, checkArg, isPlainObject } from "../tensor/errors";
import { formatTick } from "./plot";
import { encodePng, escapeXml, glyph } from "./raster";

export type ColorScale = "sequential" | "diverging";

export interface Heatmap {
  title: string;
  /** One label per row, top to bottom (techniques, say: "baseline", "+se"). */
  rows: string[];
  /** One label per column, left to right (models, say). */
  columns: string[];
  /** rows.length arrays of columns.length values; null for a cell with no result. */
  values: (number | null)[][];
  /** Text per cell, same shape as values (e.g. "91.2 ± 0.3"); default: the value with `decimals` decimals. */
  labels?: string[][];
  colorScale: ColorScale;
  /** Caption of the colour legend, with the unit: "val. accuracy (%)", "gain (pp)". */
  valueLabel: string;
  /** Range of the colours; values outside it take the end colour. Default: the values' range (diverging: ±max |value|). */
  domain?: [number, number];
  /** Decimals of the default cell text; default 1. */
  decimals?: number;
}

const VIRIDIS = ["#440154", "#472d7b", "#3b528b", "#2c728e", "#21918c", "#28ae80", "#5ec962", "#addc30", "#fde725"];
const RDBU = ["#053061", "#2166ac", "#4393c3", "#92c5de", "#d1e5f0", "#f7f7f7", "#fddbc7", "#f4a582", "#d6604d"];
const DIVERGING = [...RDBU, "#b2182b", "#67001f"];
// text, background, a missing cell and its stripes
const [INK, PAPER, MISSING, HATCH] = ["#222222", "#ffffff", "#e0e0e0", "#b0b0b0"];
const HATCH_PERIOD = 6; // pixels between the stripes of a missing cell, along each axis
const CHAR_ADVANCE = 6; // as plot.ts: 5 pixels a glyph and 1 between, a 10px monospace font in SVG
const CAP_HEIGHT = 7;
const PAD = 10;
const CELL_HEIGHT = 24;
const LEGEND_HEIGHT = 12;
const MAX_SIDE = 8192;

/** A standalone SVG document of the heatmap. */
export function heatmapSvg(h: Heatmap): string {
  const { width, height, shapes, stops, id } = layout(h, "heatmapSvg");
  const defs = [
    `<linearGradient id="legend-${id}" x1="0" y1="0" x2="1" y2="0">`,
    ...stops.map((c, i) => `<stop offset="${Number((i / (stops.length - 1)).toFixed(4))}" stop-color="${c}"/>`),
    "</linearGradient>",
  ];
  if (shapes.some((s) => s.kind === "rect" && s.fill === "hatch")) {
    const p = HATCH_PERIOD;
    const [tile, stripes] = [`M0 0h${p}v${p}h-${p}z`, `M-1 1l2 -2M0 ${p}l${p} -${p}M${p - 1} ${p + 1}l2 -2`];
    defs.push(`<pattern id="na-${id}" width="${p}" height="${p}" patternUnits="userSpaceOnUse">`);
    defs.push(`<path d="${tile}" fill="${MISSING}"/><path d="${stripes}" stroke="${HATCH}"/></pattern>`);
  }
  const body = shapes.map((s) => svgElement(s, id)).join("\n");
  return (
    `<?xml version="1.0" encoding="UTF-8"?>\n` +
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ` +
    `font-family="DejaVu Sans Mono, Menlo, Consolas, monospace">\n<title>${escapeXml(h.title)}</title>\n` +
    `<defs>\n${defs.join("\n")}\n</defs>\n<rect width="${width}" height="${height}" fill="${PAPER}"/>\n${body}\n</svg>\n`
  );
}

/** The same picture as an RGBA PNG. */
export function heatmapPng(h: Heatmap): Buffer {
  const l = layout(h, "heatmapPng");
  return encodePng(l.width, l.height, rasterize(l, h.colorScale));
}

/** The colour range a heatmap uses: its domain, else the values' range; diverging ones symmetric about 0. */
export function heatmapDomain(h: Heatmap): [number, number] {
  checkHeatmap(h, "heatmapDomain");
  return domainOf(h);
}

/** The "#rrggbb" fill of value on the scale over domain; a diverging scale puts 0 at its centre. */
export function heatmapColor(value: number, scale: ColorScale, domain: readonly [number, number]): string {
  const fn = "heatmapColor";
  checkArg(Number.isFinite(value), fn, "value must be a finite number", "value", value);
  const known = scale === "sequential" || scale === "diverging";
  checkArg(known, fn, 'scale must be "sequential" or "diverging"', "scale", scale);
  checkArg(isDomain(domain), fn, "domain must be [low, high] with finite low < high", "domain", domain);
  const [lo, hi] = domain;
  if (scale === "sequential") return interpolate(VIRIDIS, (value - lo) / (hi - lo));
  const reach = Math.max(Math.abs(lo), Math.abs(hi));
  return interpolate(DIVERGING, 0.5 + value / (2 * reach));
}

// ---------------------------------------------------------------- layout

type Shape =
  // fill: "#rrggbb", or the missing cells' hatching, or the legend's gradient
  | { kind: "rect"; x: number; y: number; w: number; h: number; fill: string; cls?: string; tooltip?: string }
  | { kind: "frame"; x: number; y: number; w: number; h: number; color: string }
  | { kind: "vline"; x: number; y1: number; y2: number; color: string }
  | TextShape;
type Anchor = "start" | "middle" | "end";
type TextShape = {
  kind: "text";
  x: number;
  y: number;
  text: string;
  color: string;
  scale: number;
  anchor: Anchor;
  cls?: string;
};

// stops: the legend gradient's, evenly spaced; id: a suffix for the SVG's ids, from the content, so
// two heatmaps inlined in one page do not share a gradient
type Layout = { width: number; height: number; shapes: Shape[]; domain: [number, number]; stops: string[]; id: string };

function layout(h: Heatmap, fn: string): Layout {
  checkHeatmap(h, fn);
  const domain = domainOf(h);
  const shapes: Shape[] = [];
  const text = (x: number, y: number, s: string, anchor: Anchor, extra: Partial<TextShape> = {}) => {
    shapes.push({ kind: "text", x: Math.round(x), y, text: s, color: INK, scale: 1, anchor, ...extra });
  };
  const labels = cellLabels(h);
  const widest = (ss: string[], extra: number) => Math.max(0, ...ss.map((s) => textWidth(s, 1) + extra));
  const cellWidth = Math.max(48, widest(labels.flat(), 12), widest(h.columns, 8));
  const left = PAD + widest(h.rows, 0) + 8;
  const titleBaseline = PAD + 2 * CAP_HEIGHT;
  const headerBaseline = titleBaseline + 20;
  const top = headerBaseline + 6;

  for (const [j, c] of h.columns.entries())
    text(left + (j + 0.5) * cellWidth, headerBaseline, c, "middle", { cls: "column" });
  h.rows.forEach((r, i) => {
    const y = top + i * CELL_HEIGHT;
    text(left - 6, y + CELL_HEIGHT / 2 + 4, r, "end", { cls: "row" });
    h.columns.forEach((c, j) => {
      const v = h.values[i]?.[j] ?? null;
      const fill = v === null ? "hatch" : heatmapColor(v, h.colorScale, domain);
      const label = labels[i]?.[j] ?? "";
      const tooltip = `${r} / ${c}: ${v === null ? "n/a" : label || String(v)}`;
      // one pixel short each way: the white gap between cells
      const x = left + j * cellWidth;
      shapes.push({ kind: "rect", x, y, w: cellWidth - 1, h: CELL_HEIGHT - 1, fill, cls: "cell", tooltip });
      const color = fill === "hatch" ? INK : inkOn(fill);
      if (label) text(x + cellWidth / 2, y + CELL_HEIGHT / 2 + 4, label, "middle", { color, cls: "cell-label" });
    });
  });

  // Legend: a gradient bar under the grid, ticks on 1, 2, 5 steps below it, then the caption.
  const gridBottom = top + h.rows.length * CELL_HEIGHT;
  const barWidth = Math.min(320, Math.max(160, h.columns.length * cellWidth - 1));
  const ticks = legendTicks(domain);
  const tickHalf = (k: number) => textWidth(ticks[k]?.label ?? "", 1) / 2;
  const barX = Math.max(left, Math.ceil(PAD + tickHalf(0)));
  const barY = gridBottom + 14;
  const toX = (v: number) => barX + Math.round(((v - domain[0]) / (domain[1] - domain[0])) * (barWidth - 1));
  shapes.push({ kind: "rect", x: barX, y: barY, w: barWidth, h: LEGEND_HEIGHT, fill: "gradient", cls: "legend" });
  shapes.push({ kind: "frame", x: barX, y: barY, w: barWidth, h: LEGEND_HEIGHT, color: INK });
  const tickTop = barY + LEGEND_HEIGHT;
  for (const t of ticks) {
    shapes.push({ kind: "vline", x: toX(t.value), y1: tickTop, y2: tickTop + 4, color: INK });
    text(toX(t.value), tickTop + 4 + 3 + CAP_HEIGHT, t.label, "middle", { cls: "legend-tick" });
  }
  const captionBaseline = tickTop + 4 + 3 + CAP_HEIGHT + 16;
  text(barX, captionBaseline, h.valueLabel, "start");

  const lastTick = ticks.length > 0 ? toX((ticks.at(-1) as LegendTick).value) + tickHalf(ticks.length - 1) : 0;
  const caption = barX + textWidth(h.valueLabel, 1);
  const right = Math.max(left + h.columns.length * cellWidth, barX + barWidth, lastTick, caption);
  const width = Math.ceil(Math.max(right + PAD, textWidth(h.title, 2) + 2 * PAD));
  const height = captionBaseline + PAD;
  if (width > MAX_SIDE || height > MAX_SIDE) {
    throw new ArgumentError(
      `${fn}: the heatmap would be ${width}x${height} pixels, over the ${MAX_SIDE} limit of a side; ` +
        "split it into several, or shorten the labels",
    );
  }
  text(width / 2, titleBaseline, h.title, "middle", { scale: 2 });
  const stops = h.colorScale === "sequential" ? VIRIDIS : DIVERGING;
  return { width, height, shapes, domain, stops, id: fnv1a(JSON.stringify(h)) };
}

function checkHeatmap(h: Heatmap, fn: string): void {
  // "fn: <subject> must be <what>. Received: name=value"
  const need = (ok: boolean, name: string, received: unknown, what: string, subject = name) =>
    checkArg(ok, fn, `${subject} must be ${what}`, name, received);
  need(isPlainObject(h), "heatmap", h, "an object with title, rows, columns, values, colorScale, valueLabel");
  for (const key of ["title", "valueLabel"] as const) need(typeof h[key] === "string", key, h[key], "a string");
  for (const key of ["rows", "columns"] as const) {
    const v: unknown = h[key];
    const ok = Array.isArray(v) && v.length > 0 && v.every((s) => typeof s === "string");
    need(ok, key, v, "a non-empty array of label strings");
  }
  const scale: unknown = h.colorScale;
  need(scale === "sequential" || scale === "diverging", "colorScale", scale, '"sequential" or "diverging"');
  const shape = `${h.rows.length} rows x ${h.columns.length} columns`;
  for (const key of ["values", "labels"] as const) {
    const [many, one] =
      key === "values" ? ["numbers, null for a missing cell", "a finite number, or null"] : ["strings", "a string"];
    const grid: unknown = h[key];
    if (key === "labels" && grid === undefined) continue;
    need(Array.isArray(grid) && grid.length === h.rows.length, key, grid, `one array per row (${shape})`);
    (grid as unknown[]).forEach((row, i) => {
      const [name, per] = [`${key}[${i}]`, `${h.columns.length} ${many}, one per column (${h.columns.join(", ")})`];
      need(Array.isArray(row) && row.length === h.columns.length, name, row, per, `${name} (row "${h.rows[i]}")`);
      (row as unknown[]).forEach((v, j) => {
        const fine = key === "values" ? v === null || Number.isFinite(v) : typeof v === "string";
        need(fine, `${name}[${j}]`, v, one, `${name}[${j}] (row "${h.rows[i]}", column "${h.columns[j]}")`);
      });
    });
  }
  need(h.domain === undefined || isDomain(h.domain), "domain", h.domain, "[low, high] with finite low < high");
  const d = h.decimals;
  need(d === undefined || (Number.isInteger(d) && d >= 0 && d <= 10), "decimals", d, "a whole number from 0 to 10");
}

function isDomain(d: unknown): d is [number, number] {
  return Array.isArray(d) && d.length === 2 && Number.isFinite(d[0]) && Number.isFinite(d[1]) && d[0] < d[1];
}

function domainOf(h: Heatmap): [number, number] {
  const present = h.values.flat().filter((v): v is number => v !== null);
  if (h.colorScale === "diverging") {
    const given = h.domain ?? [0, 0];
    const reach = Math.max(...given.map(Math.abs), ...(h.domain ? [] : present.map(Math.abs)));
    return reach > 0 ? [-reach, reach] : [-1, 1];
  }
  if (h.domain) return [h.domain[0], h.domain[1]];
  if (present.length === 0) return [0, 1];
  const [lo, hi] = [Math.min(...present), Math.max(...present)];
  if (lo < hi) return [lo, hi];
  const pad = Math.abs(lo) * 0.05 || 1; // one value: it takes the middle colour
  return [lo - pad, hi + pad];
}

/** The given labels, or each value with `decimals` decimals (gains signed); "n/a" for a missing value. */
function cellLabels(h: Heatmap): string[][] {
  if (h.labels) return h.labels;
  const decimals = h.decimals ?? 1;
  return h.values.map((row) =>
    row.map((v) => {
      if (v === null) return "n/a";
      const s = v.toFixed(decimals);
      return h.colorScale === "diverging" && v > 0 && Number(s) !== 0 ? `+${s}` : s;
    }),
  );
}

type LegendTick = { value: number; label: string };

/** 3 to ~6 ticks on a 1, 2 or 5 step inside the domain. */
function legendTicks([lo, hi]: [number, number]): LegendTick[] {
  const raw = (hi - lo) / 4;
  const power = 10 ** Math.floor(Math.log10(raw));
  const m = raw / power;
  const step = (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * power;
  const ticks: LegendTick[] = [];
  const eps = step * 1e-9;
  for (let k = Math.ceil((lo - eps) / step); k * step <= hi + eps; k++) {
    const value = Number((k * step).toPrecision(12));
    ticks.push({ value, label: formatTick(value, step, "number") });
  }
  return ticks;
}

// ---------------------------------------------------------------- colour

function interpolate(anchors: readonly string[], t: number): string {
  const at = Math.min(1, Math.max(0, t)) * (anchors.length - 1);
  const k = Math.min(anchors.length - 2, Math.floor(at));
  const [a, b] = [parseColor(anchors[k] as string), parseColor(anchors[k + 1] as string)];
  const mix = a.map((c, i) => Math.round(c + (at - k) * ((b[i] as number) - c)));
  return `#${mix.map((c) => c.toString(16).padStart(2, "0")).join("")}`;
}

/** INK or white, whichever contrasts more with the fill (WCAG 2 relative luminance). */
function inkOn(fill: string): string {
  const luminance = (hex: string) => {
    const [r, g, b] = parseColor(hex).map((c) =>
      c / 255 <= 0.04045 ? c / 255 / 12.92 : ((c / 255 + 0.055) / 1.055) ** 2.4,
    );
    return 0.2126 * (r as number) + 0.7152 * (g as number) + 0.0722 * (b as number);
  };
  const l = luminance(fill);
  return (l + 0.05) / (luminance(INK) + 0.05) >= 1.05 / (l + 0.05) ? INK : PAPER;
}

function parseColor(hex: string): [number, number, number] {
  return [1, 3, 5].map((i) => Number.parseInt(hex.slice(i, i + 2), 16)) as [number, number, number];
}

// ---------------------------------------------------------------- SVG

function svgElement(s: Shape, id: string): string {
  switch (s.kind) {
    case "rect": {
      const fill = s.fill === "hatch" ? `url(#na-${id})` : s.fill === "gradient" ? `url(#legend-${id})` : s.fill;
      const attrs = `${s.cls ? `class="${s.cls}" ` : ""}x="${s.x}" y="${s.y}" width="${s.w}" height="${s.h}" fill="${fill}"`;
      return s.tooltip ? `<rect ${attrs}><title>${escapeXml(s.tooltip)}</title></rect>` : `<rect ${attrs}/>`;
    }
    case "frame":
      return `<path d="M${s.x + 0.5} ${s.y + 0.5}h${s.w - 1}v${s.h - 1}h-${s.w - 1}z" fill="none" stroke="${s.color}" stroke-width="1"/>`;
    case "vline":
      return `<line x1="${s.x + 0.5}" y1="${s.y1}" x2="${s.x + 0.5}" y2="${s.y2}" stroke="${s.color}" stroke-width="1"/>`;
    case "text": {
      const cls = s.cls ? `class="${s.cls}" ` : "";
      const attrs = `x="${s.x}" y="${s.y}" font-size="${10 * s.scale}" fill="${s.color}" text-anchor="${s.anchor}"`;
      return `<text ${cls}${attrs}>${escapeXml(s.text)}</text>`;
    }
  }
}

/** 32-bit FNV-1a of the string's UTF-16 units, as 8 hex digits. */
function fnv1a(s: string): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) hash = Math.imul(hash ^ s.charCodeAt(i), 0x01000193);
  return (hash >>> 0).toString(16).padStart(8, "0");
}

// ---------------------------------------------------------------- PNG

function textWidth(s: string, scale: number): number {
  return s.length === 0 ? 0 : ([...s].length * CHAR_ADVANCE - 1) * scale;
}

function rasterize({ width, height, shapes, domain }: Layout, scale: ColorScale): Uint8Array {
  const rgba = new Uint8Array(width * height * 4).fill(255);
  const put = (x: number, y: number, rgb: readonly number[]) => {
    if (x < 0 || y < 0 || x >= width || y >= height) return;
    rgba.set(rgb, (y * width + x) * 4);
  };
  const [ink, missing, hatch] = [parseColor(INK), parseColor(MISSING), parseColor(HATCH)];
  for (const s of shapes) {
    if (s.kind === "rect") {
      const solid = s.fill === "hatch" || s.fill === "gradient" ? null : parseColor(s.fill);
      for (let x = s.x; x < s.x + s.w; x++) {
        // the gradient's colour at this pixel column's centre, as the SVG gradient over the bar's box
        const v = domain[0] + ((x - s.x + 0.5) / s.w) * (domain[1] - domain[0]);
        const column = s.fill === "gradient" ? parseColor(heatmapColor(v, scale, domain)) : solid;
        // stripes where x + y is a multiple of the period, as the SVG pattern's diagonals
        for (let y = s.y; y < s.y + s.h; y++) put(x, y, column ?? ((x + y + 1) % HATCH_PERIOD === 0 ? hatch : missing));
      }
    } else if (s.kind === "frame") {
      const edge = (x: number, y: number) => x === s.x || y === s.y || x === s.x + s.w - 1 || y === s.y + s.h - 1;
      for (let y = s.y; y < s.y + s.h; y++) for (let x = s.x; x < s.x + s.w; x++) if (edge(x, y)) put(x, y, ink);
    } else if (s.kind === "vline") {
      for (let y = s.y1; y < s.y2; y++) put(s.x, y, parseColor(s.color));
    } else {
      drawText(s, put);
    }
  }
  return rgba;
}

/** Bitmap text; x, y is the baseline point named by the anchor. */
function drawText(s: TextShape, put: (x: number, y: number, rgb: readonly number[]) => void): void {
  const rgb = parseColor(s.color);
  const k = s.scale;
  const shift = s.anchor === "start" ? 0 : s.anchor === "middle" ? textWidth(s.text, k) / 2 : textWidth(s.text, k);
  const [ox, oy] = [Math.round(s.x - shift), Math.round(s.y)];
  [...s.text].forEach((ch, n) => {
    const rows = glyph(ch);
    for (let row = 0; row < 8; row++) {
      const bits = rows[row] as number;
      for (let col = 0; col < 5; col++) {
        if (!(bits & (16 >> col))) continue;
        const [x, y] = [ox + (n * CHAR_ADVANCE + col) * k, oy + (row - CAP_HEIGHT) * k];
        for (let i = 0; i < k; i++) for (let j = 0; j < k; j++) put(x + i, y + j, rgb);
      }
    }
  });
}
