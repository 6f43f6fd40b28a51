// Curves: loss, accuracy, learning rate and images/s of the selected runs, against step, epoch or
// wall time, drawn with uPlot. The server sends each curve downsampled (LTTB) to about twice the
// chart's width; new journal rows arrive on the event stream and are appended in place. Runs that
// differ only by their seed can be folded into their mean with a min-max band. Smoothing is the
// debiased exponential moving average TensorBoard uses.
import { api, colorOf, esc, query, withAlpha } from "./util.mjs";

const ALL_METRICS = ["loss", "lr", "imagesPerSec", "train.loss", "train.accuracy", "val.loss", "val.accuracy"];
/** Where each metric sits in a pushed row (STEP_ROW / EPOCH_ROW in src/dashboard/series.ts). */
const ROW_INDEX = {
  loss: ["step", 3],
  lr: ["step", 4],
  imagesPerSec: ["step", 5],
  "train.loss": ["epoch", 3],
  "train.accuracy": ["epoch", 4],
  "val.loss": ["epoch", 5],
  "val.accuracy": ["epoch", 6],
};
const AXIS_INDEX = { step: 0, epoch: 1, time: 2 };
const SOLID = [];
const DASHED = [6, 4];

const PANELS = [
  {
    id: "loss",
    title: "Loss",
    lines: [
      ["loss", "train", SOLID],
      ["val.loss", "val", DASHED],
    ],
    canLog: true,
  },
  {
    id: "accuracy",
    title: "Accuracy",
    lines: [
      ["val.accuracy", "val", SOLID],
      ["train.accuracy", "train", DASHED],
    ],
    percent: true,
  },
  { id: "lr", title: "Learning rate", lines: [["lr", "", SOLID]], canLog: true, noSmooth: true },
  { id: "speed", title: "Images/s", lines: [["imagesPerSec", "", SOLID]] },
];
const MAX_RUNS = 24;

const ui = { axis: "step", smoothing: 0.6, log: false, group: true, items: [], charts: [], token: 0, redraw: null };

function controls(app) {
  const el = app.section("curves");
  el.innerHTML = `
    <div class="toolbar">
      <label>x <select id="curves-x">${["step", "epoch", "time"].map((x) => `<option ${x === ui.axis ? "selected" : ""}>${x}</option>`).join("")}</select></label>
      <label>smoothing <input id="curves-smooth" type="range" min="0" max="0.99" step="0.01" value="${ui.smoothing}"> <output id="curves-smooth-value">${ui.smoothing.toFixed(2)}</output></label>
      <label><input id="curves-log" type="checkbox" ${ui.log ? "checked" : ""}> log y (loss, lr)</label>
      <label title="runs whose recipes differ only by the seed: their mean, with a band from min to max"><input id="curves-group" type="checkbox" ${ui.group ? "checked" : ""}> group seeds</label>
      <span class="muted small">solid: train loss / val accuracy · dashed: val loss / train accuracy</span>
    </div>
    <div id="curves-legend" class="legend"></div>
    <div id="curves-note" class="muted small"></div>
    <div id="curves-grid" class="chart-grid"></div>`;
  el.querySelector("#curves-x").onchange = (e) => {
    ui.axis = e.target.value;
    load(app);
  };
  el.querySelector("#curves-smooth").oninput = (e) => {
    ui.smoothing = Number(e.target.value);
    el.querySelector("#curves-smooth-value").textContent = ui.smoothing.toFixed(2);
    draw(app);
  };
  el.querySelector("#curves-log").onchange = (e) => {
    ui.log = e.target.checked;
    draw(app);
  };
  el.querySelector("#curves-group").onchange = (e) => {
    ui.group = e.target.checked;
    load(app);
  };
}

/** The runs to draw: ticked runs, seed groups folded when asked. */
function plan(app) {
  const rows = app.selected
    .map((id) => app.runs.get(id))
    .filter(Boolean)
    .slice(0, MAX_RUNS);
  const items = [];
  const groups = new Map();
  for (const r of rows) {
    if (ui.group && r.seedGroup) {
      const members = rows.filter((x) => x.seedGroup === r.seedGroup);
      if (members.length > 1) {
        if (!groups.has(r.seedGroup)) {
          const item = { kind: "group", ids: members.map((m) => m.id), name: `${r.name} (${members.length} seeds)` };
          groups.set(r.seedGroup, item);
          items.push(item);
        }
        continue;
      }
    }
    items.push({ kind: "run", id: r.id, name: r.name, status: r.status });
  }
  items.forEach((it, i) => {
    it.color = colorOf(i);
  });
  return items;
}

/** Points per curve: one per device pixel of a chart's width (two charts a row), no more. */
function pointsWanted() {
  const w = document.getElementById("curves-grid")?.clientWidth || 1200;
  const chart = Math.max(320, Math.floor(w / 2) - 16) * (globalThis.devicePixelRatio || 1);
  return Math.max(200, Math.min(4000, Math.round(chart)));
}

function adopt(item, body) {
  item.data = body.series;
  item.rows = body.rows;
  item.generation = body.generation;
}

/** Every run item's curves in one request (a browser runs at most six at once per host), groups one each. */
async function loadItems(items) {
  const q = { metrics: ALL_METRICS.join(","), x: ui.axis, points: pointsWanted() };
  const runs = items.filter((it) => it.kind === "run");
  const batch =
    runs.length === 0
      ? Promise.resolve()
      : api(`/api/series?${query({ ids: runs.map((it) => it.id).join(","), ...q })}`).then((body) =>
          body.runs.forEach((b, i) => {
            adopt(runs[i], b);
          }),
        );
  await Promise.all([batch, ...items.filter((it) => it.kind !== "run").map(loadItem)]);
}

async function loadItem(item) {
  const q = { metrics: ALL_METRICS.join(","), x: ui.axis, points: pointsWanted() };
  if (item.kind === "run") {
    adopt(item, await api(`/api/series?${query({ id: item.id, ...q })}`));
  } else {
    const body = await api(`/api/group?${query({ ids: item.ids.join(","), ...q })}`);
    item.data = body.series;
  }
}

async function load(app) {
  const token = ++ui.token;
  const items = plan(app);
  const note =
    app.selected.length > MAX_RUNS ? `Showing the first ${MAX_RUNS} of ${app.selected.length} selected runs.` : "";
  app.section("curves").querySelector("#curves-note").textContent = note;
  const started = performance.now();
  await loadItems(items);
  if (token !== ui.token) return; // a newer load started meanwhile
  const fetched = performance.now();
  ui.items = items;
  build(app);
  // the page's own measures, read by `npm run bench -- dashboard`
  const section = app.section("curves");
  section.dataset.fetchMs = String(Math.round(fetched - started));
  section.dataset.buildMs = String(Math.round(performance.now() - fetched));
  section.dataset.loadMs = String(Math.round(performance.now() - started));
}

/** TensorBoard's smoothing: an EMA over the points, debiased for its zero start. */
function smooth(y, weight) {
  if (!(weight > 0)) return y;
  const out = new Array(y.length);
  let last = 0;
  let n = 0;
  for (let i = 0; i < y.length; i++) {
    const v = y[i];
    if (v === null || !Number.isFinite(v)) {
      out[i] = v;
      continue;
    }
    last = last * weight + (1 - weight) * v;
    n++;
    out[i] = last / (1 - weight ** n);
  }
  return out;
}

function formatTime(sec) {
  const s = Math.round(sec);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h > 0
    ? `${h}:${String(m).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}`
    : `${m}:${String(s % 60).padStart(2, "0")}`;
}

/** uPlot data and series for one panel. */
function panelData(panel) {
  const tables = [];
  const series = [{ label: ui.axis }];
  const bands = [];
  const logOn = ui.log && panel.canLog;
  const clean = (y) => (logOn ? y.map((v) => (v > 0 ? v : null)) : y);
  const smoothed = (y) => (panel.noSmooth ? y : smooth(y, ui.smoothing));
  for (const item of ui.items) {
    for (const [metric, what, dash] of panel.lines) {
      const d = item.data?.[metric];
      if (!d || d.x.length === 0) continue;
      const label = `${item.name}${what ? ` ${what}` : ""}`;
      if (item.kind === "run") {
        tables.push([d.x, clean(smoothed(d.y))]);
        series.push({ label, stroke: item.color, dash, width: 1.5, spanGaps: true, points: { show: false } });
      } else {
        tables.push([d.x, clean(smoothed(d.mean)), clean(smoothed(d.hi)), clean(smoothed(d.lo))]);
        const mean = series.length;
        series.push({
          label: `${label} mean`,
          stroke: item.color,
          dash,
          width: 2,
          spanGaps: true,
          points: { show: false },
        });
        series.push({
          label: `${label} max`,
          stroke: withAlpha(item.color, 0.25),
          width: 0.5,
          spanGaps: true,
          points: { show: false },
        });
        series.push({
          label: `${label} min`,
          stroke: withAlpha(item.color, 0.25),
          width: 0.5,
          spanGaps: true,
          points: { show: false },
        });
        bands.push({ series: [mean + 1, mean + 2], fill: withAlpha(item.color, 0.15) });
      }
    }
  }
  const data = tables.length > 0 ? globalThis.uPlot.join(tables) : [[]];
  return { data, series, bands, logOn };
}

function chartOptions(panel, width, pd) {
  const yValues = panel.percent ? (_u, ticks) => ticks.map((t) => `${(100 * t).toFixed(1)}%`) : undefined;
  const xValues = ui.axis === "time" ? (_u, ticks) => ticks.map(formatTime) : undefined;
  return {
    title: panel.title,
    width,
    height: 260,
    series: pd.series,
    bands: pd.bands,
    scales: { x: { time: false }, y: { distr: pd.logOn ? 3 : 1 } },
    axes: [
      { values: xValues, label: ui.axis === "time" ? "wall time" : ui.axis },
      { values: yValues, size: 60 },
    ],
    legend: { show: pd.series.length <= 7 },
    cursor: { sync: { key: "budgetnet-curves" } },
  };
}

function countPoints(data) {
  let n = 0;
  for (let s = 1; s < data.length; s++) for (const v of data[s]) if (v !== null && v !== undefined) n++;
  return n;
}

function build(app) {
  for (const c of ui.charts) c.chart.destroy();
  ui.charts = [];
  const grid = app.section("curves").querySelector("#curves-grid");
  grid.innerHTML = "";
  const legend = app.section("curves").querySelector("#curves-legend");
  legend.innerHTML = ui.items
    .map(
      (it) =>
        `<span class="chip" style="border-color:${it.color}"><i style="background:${it.color}"></i>${esc(it.name)}${it.status === "running" ? " · running" : ""}</span>`,
    )
    .join(" ");
  if (ui.items.length === 0) {
    grid.innerHTML = `<p class="empty">Tick runs in the <a href="#runs">Runs</a> table to draw their curves.</p>`;
    app.section("curves").dataset.ready = "true";
    return;
  }
  const width = Math.max(320, Math.floor((grid.clientWidth || 1200) / 2) - 16);
  for (const panel of PANELS) {
    const box = document.createElement("div");
    box.className = "chart";
    box.dataset.panel = panel.id;
    grid.appendChild(box);
    const pd = panelData(panel);
    const chart = new globalThis.uPlot(chartOptions(panel, width, pd), pd.data, box);
    ui.charts.push({ panel, chart, box });
    box.dataset.points = String(countPoints(pd.data));
    box.dataset.series = String(pd.series.length - 1);
  }
  app.section("curves").dataset.runs = String(ui.items.length);
  app.section("curves").dataset.ready = "true";
}

/** Redraws with the current data (smoothing, log and appended points), keeping the charts. */
function draw(app) {
  if (ui.charts.length === 0) return;
  // a changed log setting changes the scale's kind: build anew
  if (ui.charts.some((c) => c.panel.canLog && c.chart.scales.y.distr !== (ui.log ? 3 : 1))) return build(app);
  for (const c of ui.charts) {
    const pd = panelData(c.panel);
    if (pd.series.length !== c.chart.series.length) return build(app);
    c.chart.setData(pd.data);
    c.box.dataset.points = String(countPoints(pd.data));
  }
}

function scheduleDraw(app) {
  if (ui.redraw !== null) return;
  ui.redraw = setTimeout(() => {
    ui.redraw = null;
    if (app.view === "curves") draw(app);
  }, 250);
}

function appendRows(item, kind, from, rows) {
  const known = kind === "step" ? item.rows.steps : item.rows.epochs;
  if (from > known) return false; // rows were missed: reload
  const fresh = rows.slice(known - from);
  for (const [metric, [rec, col]] of Object.entries(ROW_INDEX)) {
    if (rec !== kind) continue;
    const d = item.data[metric];
    for (const row of fresh) {
      const x = row[AXIS_INDEX[ui.axis]];
      const y = row[col];
      if (x === null || y === null) continue;
      d.x.push(x);
      d.y.push(y);
    }
  }
  if (kind === "step") item.rows.steps = from + rows.length;
  else item.rows.epochs = from + rows.length;
  return true;
}

export const curvesView = {
  show(app) {
    if (!app.section("curves").querySelector("#curves-grid")) controls(app);
    app.section("curves").dataset.ready = "false";
    return load(app);
  },
  onPoints(app, ev) {
    for (const item of ui.items) {
      if (item.kind === "group") {
        if (item.ids.includes(ev.id) && !item.reloading) {
          item.reloading = true;
          setTimeout(
            () =>
              loadItem(item).then(() => {
                item.reloading = false;
                scheduleDraw(app);
              }),
            2000,
          );
        }
        continue;
      }
      if (item.id !== ev.id || !item.data) continue;
      const ok =
        ev.generation === item.generation &&
        appendRows(item, "step", ev.step.from, ev.step.rows) &&
        appendRows(item, "epoch", ev.epoch.from, ev.epoch.rows);
      const tooLong = (item.data.loss?.x.length ?? 0) > 4 * pointsWanted();
      if (!ok || tooLong) loadItem(item).then(() => scheduleDraw(app));
      else scheduleDraw(app);
    }
  },
  onReset(app, ev) {
    const item = ui.items.find((it) => it.kind === "run" && it.id === ev.id);
    if (item) loadItem(item).then(() => scheduleDraw(app));
  },
  onRuns(app, rows) {
    // a run that starts or stops changes its legend entry
    const legendChanged = rows.some((r) => ui.items.some((it) => it.id === r.id && it.status !== r.status));
    if (!legendChanged) return;
    for (const it of ui.items) if (it.kind === "run") it.status = app.runs.get(it.id)?.status;
    build(app);
  },
};
