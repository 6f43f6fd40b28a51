// Small helpers shared by the views: escaping, number formats, fetching JSON, colours.

/** Text safe inside HTML (element content and quoted attributes). */
export function esc(s) {
  return String(s ?? "")
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&#39;");
}

export const pct = (x, digits = 2) => (x === null || x === undefined ? "–" : `${(100 * x).toFixed(digits)}%`);

/** 272k, 1.2M, 41G. */
export function si(n) {
  if (n === null || n === undefined || !Number.isFinite(n)) return "–";
  const a = Math.abs(n);
  if (a >= 1e9) return `${(n / 1e9).toFixed(a >= 1e10 ? 1 : 2)}G`;
  if (a >= 1e6) return `${(n / 1e6).toFixed(a >= 1e7 ? 1 : 2)}M`;
  if (a >= 1e3) return `${(n / 1e3).toFixed(a >= 1e4 ? 0 : 1)}k`;
  return String(Math.round(n * 100) / 100);
}

export function duration(sec) {
  if (sec === null || sec === undefined || !Number.isFinite(sec)) return "–";
  const s = Math.round(sec);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${String(s % 60).padStart(2, "0")} s`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, "0")} min`;
}

export function ago(iso) {
  if (!iso) return "–";
  const sec = (Date.now() - Date.parse(iso)) / 1000;
  if (!Number.isFinite(sec)) return "–";
  if (sec < 90) return `${Math.max(0, Math.round(sec))} s ago`;
  if (sec < 5400) return `${Math.round(sec / 60)} min ago`;
  if (sec < 129600) return `${Math.round(sec / 3600)} h ago`;
  return `${Math.round(sec / 86400)} d ago`;
}

/** GET a JSON API; a non-2xx answer throws its error text. */
export async function api(pathAndQuery) {
  const res = await fetch(pathAndQuery, { headers: { Accept: "application/json" } });
  let body;
  try {
    body = await res.json();
  } catch {
    throw new Error(`${pathAndQuery}: HTTP ${res.status} (not JSON)`);
  }
  if (!res.ok) throw new Error(body?.error ?? `${pathAndQuery}: HTTP ${res.status}`);
  return body;
}

export function query(params) {
  return new URLSearchParams(Object.entries(params).filter(([, v]) => v !== undefined && v !== null)).toString();
}

/** Colour-blind-safe palette (Tableau 10), as in the figures budgetnet writes. */
export const PALETTE = [
  "#4e79a7",
  "#f28e2b",
  "#e15759",
  "#76b7b2",
  "#59a14f",
  "#edc948",
  "#b07aa1",
  "#ff9da7",
  "#9c755f",
  "#bab0ac",
];

export function colorOf(i) {
  return PALETTE[i % PALETTE.length];
}

/** rgba() of a #rrggbb colour. */
export function withAlpha(hex, alpha) {
  const n = Number.parseInt(hex.slice(1), 16);
  return `rgba(${(n >> 16) & 255}, ${(n >> 8) & 255}, ${n & 255}, ${alpha})`;
}

/** A sequential blue scale for heatmaps: 0 -> near white, 1 -> deep blue. */
export function heat(v) {
  const t = Math.max(0, Math.min(1, v));
  const r = Math.round(247 - t * (247 - 8));
  const g = Math.round(251 - t * (251 - 69));
  const b = Math.round(255 - t * (255 - 148));
  return `rgb(${r}, ${g}, ${b})`;
}

/** A diverging red-white-green scale for gains: -1 red, 0 white, +1 green. */
export function diverging(v) {
  const t = Math.max(-1, Math.min(1, v));
  if (t >= 0) return `rgb(${Math.round(255 - t * 200)}, ${Math.round(255 - t * 80)}, ${Math.round(255 - t * 200)})`;
  return `rgb(${Math.round(255 + t * 40)}, ${Math.round(255 + t * 190)}, ${Math.round(255 + t * 190)})`;
}

/** Text colour readable on a background of the heat scale at v. */
export const inkOn = (v) => (v > 0.55 ? "#ffffff" : "#1d2330");
