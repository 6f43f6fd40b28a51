// Ablation: a study's technique x model table from its report.json (`budgetnet ablate report`):
// each cell the validation accuracy over seeds with its interval, coloured by its gain over the
// model's baseline (green helps, red hurts; a bold gain has an interval that excludes zero).
// Before the report exists the view says how to make it and still lists the cells' runs.
import { api, diverging, esc, pct, query } from "./util.mjs";

const ui = { token: 0, metric: "val" };

const pp = (x) =>
  x === null || x === undefined || !Number.isFinite(x) ? "–" : `${x >= 0 ? "+" : ""}${(100 * x).toFixed(2)}`;

function heatmapHtml(report, metric) {
  const gains = new Map(report.gains.map((g) => [`${g.model}\u0000${g.row}`, g]));
  const cells = new Map(report.cells.map((c) => [`${c.model}\u0000${c.row}`, c]));
  const scale = Math.max(
    1e-9,
    ...report.gains.map((g) => Math.abs(g[metric]?.mean ?? 0)).filter((v) => Number.isFinite(v)),
  );
  const head = `<tr><th>techniques</th>${report.models.map((m) => `<th>${esc(m)}</th>`).join("")}</tr>`;
  const body = report.rows
    .map((row) => {
      const tds = report.models.map((model) => {
        const c = cells.get(`${model}\u0000${row}`);
        const v = c?.[metric];
        if (!c || !v) return `<td class="cell-missing">–</td>`;
        const g = gains.get(`${model}\u0000${row}`)?.[metric];
        const sure = g && (g.lo > 0 || g.hi < 0);
        const bg = g ? diverging(g.mean / scale) : "#f3f5f9";
        const gain = g
          ? `<span class="gain${sure ? " sure" : ""}">${pp(g.mean)} pp <span class="muted">[${pp(g.lo)}, ${pp(g.hi)}]</span></span>`
          : `<span class="muted">baseline</span>`;
        return `<td class="ab-cell" style="background:${bg}" data-model="${esc(model)}" data-row="${esc(row)}" data-mean="${v.mean}"
          title="${esc(`${model} ${row}: ${c.seeds} seed(s): ${v.values?.map((x) => pct(x)).join(", ") ?? ""}`)}">
          <b>${pct(v.mean)}</b> <span class="muted small">[${pct(v.lo, 1)}, ${pct(v.hi, 1)}]</span><br>${gain}</td>`;
      });
      return `<tr><th class="row-head">${esc(row)}</th>${tds.join("")}</tr>`;
    })
    .join("");
  return `<table id="ablation-table" class="heat-table"><thead>${head}</thead><tbody>${body}</tbody></table>`;
}

function correlationHtml(c) {
  if (!c) return "";
  const f = (x) => (x === null || x === undefined || !Number.isFinite(x) ? "–" : x.toFixed(2));
  return `<p>Does a technique's gain carry over between models? Pearson r = ${f(c.pearson?.r)} [${f(c.pearson?.lo)}, ${f(c.pearson?.hi)}], Spearman ρ = ${f(c.spearman?.r)} [${f(c.spearman?.lo)}, ${f(c.spearman?.hi)}]${c.note ? ` <span class="muted">(${esc(c.note)})</span>` : ""}</p>`;
}

function runsHtml(app, ids) {
  const rows = ids.map((id) => app.runs.get(id)).filter(Boolean);
  const counts = {};
  for (const r of rows) counts[r.status] = (counts[r.status] ?? 0) + 1;
  return `<p>${rows.length} cell run(s): ${Object.entries(counts)
    .map(([k, v]) => `${v} ${esc(k)}`)
    .join(
      ", ",
    )} <button type="button" id="ablation-select">select them</button> <button type="button" id="ablation-table-link">show in the runs table</button></p>`;
}

export const ablationView = {
  async show(app) {
    const el = app.section("ablation");
    const token = ++ui.token;
    el.dataset.ready = "false";
    const studies = app.studies.filter((s) => s.kind === "ablation");
    if (studies.length === 0) {
      el.innerHTML = `<p class="empty">No ablation study under ${esc(app.roots.join(", "))} (a folder with ablate.json, made by <code>budgetnet ablate</code>).</p>`;
      el.dataset.ready = "true";
      return;
    }
    const id = studies.some((s) => s.id === app.params.get("study")) ? app.params.get("study") : studies[0].id;
    const s = await api(`/api/study?${query({ id })}`);
    if (token !== ui.token) return;
    const r = s.report;
    const hasTest = r?.cells.some((c) => c.test) ?? false;
    if (!hasTest) ui.metric = "val";
    el.innerHTML = `
      <div class="toolbar">
        <label>study <select id="ablation-study">${studies.map((x) => `<option value="${esc(x.id)}" ${x.id === id ? "selected" : ""}>${esc(x.name)}</option>`).join("")}</select></label>
        ${hasTest ? `<label>accuracy <select id="ablation-metric"><option value="val">validation</option><option value="test">test</option></select></label>` : ""}
      </div>
      ${s.problems.map((p) => `<p class="problem">${esc(p)}</p>`).join("")}
      ${r ? `<p class="muted small">${esc(r.study)}: ${r.models.length} model(s) × ${r.rows.length} technique set(s); cells: mean ${ui.metric === "test" ? "test" : "validation"} accuracy over seeds [interval]; second line: gain over the model's baseline in points [interval], bold when the interval excludes 0.</p><div id="ablation-heat">${heatmapHtml(r, ui.metric)}</div>${correlationHtml(r.correlation)}` : `<p id="ablation-missing" class="notice">${esc(s.reportMissing)}</p>`}
      ${runsHtml(app, s.runs)}`;
    const metric = el.querySelector("#ablation-metric");
    if (metric) {
      metric.value = ui.metric;
      metric.onchange = (e) => {
        ui.metric = e.target.value;
        el.querySelector("#ablation-heat").innerHTML = heatmapHtml(r, ui.metric);
      };
    }
    el.querySelector("#ablation-study").onchange = (e) => app.open("ablation", { study: e.target.value });
    el.querySelector("#ablation-select").onclick = () => {
      app.setSelected(s.runs);
      app.open("curves");
    };
    el.querySelector("#ablation-table-link").onclick = () => {
      app.open("runs");
      const filter = document.getElementById("runs-filter");
      if (filter) {
        filter.value = `study:${s.name.toLowerCase()}`;
        filter.dispatchEvent(new Event("input"));
      }
    };
    el.dataset.ready = "true";
    el.dataset.cells = String(s.runs.length);
  },
  onStudies(app, ids) {
    const current = app.params.get("study") ?? app.studies.find((s) => s.kind === "ablation")?.id;
    if (ids.includes(current)) this.show(app);
  },
  onCatalog(app) {
    this.show(app);
  },
};
