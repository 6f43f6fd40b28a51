// Search: a study's trials as validation accuracy against parameters, MACs or latency (log x),
// coloured by rung, with the Pareto front (no other finished trial is both smaller and more
// accurate) as a step line. Click a point to open its run's curves; the table lists every trial.
import { api, colorOf, esc, pct, query, si } from "./util.mjs";

const ui = { x: "params", token: 0 };
const W = 760;
const H = 420;
const M = { left: 64, right: 20, top: 20, bottom: 48 };

/** Indices of the non-dominated points (maximize y, minimize x). */
export function paretoIndices(points) {
  return points
    .map((_p, i) => i)
    .filter(
      (i) => !points.some((q) => q.x <= points[i].x && q.y >= points[i].y && (q.x < points[i].x || q.y > points[i].y)),
    );
}

function ticksLog(lo, hi) {
  const out = [];
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++)
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** e;
      if (v >= lo && v <= hi) out.push(v);
    }
  return out;
}

function ticksLinear(lo, hi, n = 6) {
  const raw = (hi - lo) / n;
  const p = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw);
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-12; v += step) out.push(+v.toPrecision(12));
  return out;
}

function scatterSvg(trials, xKey) {
  const pts = trials
    .filter((t) => t.status === "done" && t.valAccuracy !== null && t[xKey] > 0)
    .map((t) => ({ x: t[xKey], y: t.valAccuracy, t }));
  if (pts.length === 0) return `<p class="empty">No finished trial with a ${xKey} value yet.</p>`;
  const xs = pts.map((p) => p.x);
  const ys = pts.map((p) => p.y);
  const [lx0, lx1] = [Math.log10(Math.min(...xs)), Math.log10(Math.max(...xs))];
  const padX = Math.max(0.05, (lx1 - lx0) * 0.06);
  const [x0, x1] = [10 ** (lx0 - padX), 10 ** (lx1 + padX)];
  const spanY = Math.max(...ys) - Math.min(...ys) || 0.01;
  const [y0, y1] = [Math.min(...ys) - spanY * 0.08, Math.max(...ys) + spanY * 0.08];
  const px = (v) =>
    M.left + ((Math.log10(v) - Math.log10(x0)) / (Math.log10(x1) - Math.log10(x0))) * (W - M.left - M.right);
  const py = (v) => H - M.bottom - ((v - y0) / (y1 - y0)) * (H - M.top - M.bottom);
  const parts = [];
  for (const t of ticksLog(x0, x1))
    parts.push(
      `<line x1="${px(t)}" y1="${M.top}" x2="${px(t)}" y2="${H - M.bottom}" class="gridline"/><text x="${px(t)}" y="${H - M.bottom + 16}" text-anchor="middle" class="tick">${si(t)}</text>`,
    );
  for (const t of ticksLinear(y0, y1))
    parts.push(
      `<line x1="${M.left}" y1="${py(t)}" x2="${W - M.right}" y2="${py(t)}" class="gridline"/><text x="${M.left - 6}" y="${py(t) + 4}" text-anchor="end" class="tick">${(100 * t).toFixed(1)}%</text>`,
    );
  parts.push(
    `<text x="${(M.left + W - M.right) / 2}" y="${H - 8}" text-anchor="middle">${xKey === "latencyMs" ? "latency (ms, batch 1)" : xKey === "macs" ? "MACs per image" : "parameters"} (log)</text>`,
  );
  parts.push(
    `<text transform="translate(14 ${(M.top + H - M.bottom) / 2}) rotate(-90)" text-anchor="middle">validation accuracy</text>`,
  );
  const front = paretoIndices(pts)
    .map((i) => pts[i])
    .sort((a, b) => a.x - b.x);
  if (front.length > 1) {
    const d = front.map((p, i) => (i === 0 ? `M ${px(p.x)} ${py(p.y)}` : `H ${px(p.x)} V ${py(p.y)}`)).join(" ");
    parts.push(`<path d="${d}" class="front"><title>Pareto front</title></path>`);
  }
  const onFront = new Set(front.map((p) => p.t.id));
  for (const p of pts) {
    const t = p.t;
    parts.push(
      `<circle cx="${px(p.x)}" cy="${py(p.y)}" r="${onFront.has(t.id) ? 6 : 4.5}" fill="${colorOf(t.rung)}" class="trial${onFront.has(t.id) ? " on-front" : ""}" data-trial="${t.id}" data-run="${esc(t.run ?? "")}" tabindex="0"><title>trial ${t.id} (rung ${t.rung}): ${pct(t.valAccuracy)}, ${si(t.params)} params, ${si(t.macs)} MACs${t.latencyMs ? `, ${t.latencyMs.toFixed(2)} ms` : ""}\n${esc(t.point)}${t.run ? "\nclick: open its run" : ""}</title></circle>`,
    );
  }
  return `<svg id="pareto" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="validation accuracy against ${xKey}">${parts.join("")}</svg>`;
}

function trialsTable(trials) {
  const sorted = [...trials].sort((a, b) => (b.valAccuracy ?? -1) - (a.valAccuracy ?? -1));
  return `<table class="grid small" id="trials-table"><thead><tr><th>trial</th><th>rung</th><th>status</th><th class="num">val acc</th><th class="num">test acc</th><th class="num">params</th><th class="num">MACs</th><th class="num">latency</th><th>configuration</th></tr></thead><tbody>${sorted
    .map(
      (t) =>
        `<tr data-run="${esc(t.run ?? "")}" class="${t.run ? "link" : ""}"><td>${t.id}</td><td>${t.rung}</td><td><span class="status ${t.status === "done" ? "finished" : t.status === "failed" ? "failed" : "running"}" title="${esc(t.error ?? "")}">${esc(t.status)}</span></td><td class="num">${pct(t.valAccuracy)}</td><td class="num">${pct(t.testAccuracy)}</td><td class="num">${si(t.params)}</td><td class="num">${si(t.macs)}</td><td class="num">${t.latencyMs ? `${t.latencyMs.toFixed(2)} ms` : "–"}</td><td class="mono">${esc(t.point)}</td></tr>`,
    )
    .join("")}</tbody></table>`;
}

function openRun(app, runId) {
  if (!runId) return;
  app.setSelected([runId]);
  app.open("curves");
}

export const searchView = {
  async show(app) {
    const el = app.section("search");
    const token = ++ui.token;
    el.dataset.ready = "false";
    const studies = app.studies.filter((s) => s.kind === "search");
    if (studies.length === 0) {
      el.innerHTML = `<p class="empty">No search study under ${esc(app.roots.join(", "))} (a folder with study.json, made by <code>budgetnet search --out DIR</code>).</p>`;
      el.dataset.ready = "true";
      return;
    }
    const id = studies.some((s) => s.id === app.params.get("study")) ? app.params.get("study") : studies[0].id;
    const s = await api(`/api/study?${query({ id })}`);
    if (token !== ui.token) return;
    const hasLatency = s.trials.some((t) => t.latencyMs);
    const done = s.trials.filter((t) => t.status === "done").length;
    el.innerHTML = `
      <div class="toolbar">
        <label>study <select id="search-study">${studies.map((x) => `<option value="${esc(x.id)}" ${x.id === id ? "selected" : ""}>${esc(x.name)}</option>`).join("")}</select></label>
        <label>x <select id="search-x"><option value="params">parameters</option><option value="macs">MACs</option>${hasLatency ? '<option value="latencyMs">latency</option>' : ""}</select></label>
        <span class="muted">${esc(s.strategy)} over ${esc(s.space)} on ${esc(s.dataset)} · ${s.trials.length} trials, ${done} done${s.stopped ? ` · stopped (${esc(s.stopped)})` : ""}</span>
      </div>
      ${s.problems.map((p) => `<p class="problem">${esc(p)}</p>`).join("")}
      <div id="search-plot">${scatterSvg(s.trials, ui.x)}</div>
      <p class="muted small">Colour: rung (${[...new Set(s.trials.map((t) => t.rung))]
        .sort()
        .map((r) => `<span style="color:${colorOf(r)}">●</span> ${r}`)
        .join(" ")}); larger points are on the Pareto front.</p>
      ${trialsTable(s.trials)}`;
    el.querySelector("#search-x").value = ui.x;
    el.querySelector("#search-x").onchange = (e) => {
      ui.x = e.target.value;
      el.querySelector("#search-plot").innerHTML = scatterSvg(s.trials, ui.x);
    };
    el.querySelector("#search-study").onchange = (e) => app.open("search", { study: e.target.value });
    el.onclick = (e) => {
      const target = e.target.closest("[data-run]");
      if (target) openRun(app, target.dataset.run);
    };
    el.dataset.ready = "true";
    el.dataset.trials = String(s.trials.length);
  },
  onStudies(app, ids) {
    const current = app.params.get("study") ?? app.studies.find((s) => s.kind === "search")?.id;
    if (ids.includes(current)) this.show(app);
  },
  onCatalog(app) {
    this.show(app);
  },
};
