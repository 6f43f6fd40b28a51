// Runs: every run folder as a row (search trials and ablation cells included), sortable by any
// column, filtered by text (words must all match; status:running, model:resnet20, study:NAME
// match one field), ticked to select. Live rows update in place as the server pushes them.
import { ago, duration, esc, pct, si } from "./util.mjs";

/** Rows drawn at most; the rest are counted, so 100,000 runs cannot freeze the page. */
const MAX_ROWS = 2000;

const COLUMNS = [
  { key: "name", label: "run", value: (r) => r.name.toLowerCase() },
  { key: "model", label: "model", value: (r) => r.model },
  { key: "params", label: "params", value: (r) => r.params, num: true },
  { key: "macs", label: "MACs", value: (r) => r.macs, num: true },
  { key: "bestValAccuracy", label: "best val acc", value: (r) => r.bestValAccuracy, num: true },
  { key: "testAccuracy", label: "test acc", value: (r) => r.testAccuracy, num: true },
  { key: "imagesPerSec", label: "img/s", value: (r) => r.imagesPerSec, num: true },
  { key: "seconds", label: "duration", value: (r) => r.seconds, num: true },
  { key: "progress", label: "epochs", value: (r) => r.epochsDone, num: true },
  { key: "status", label: "status", value: (r) => r.status },
  { key: "updatedAt", label: "updated", value: (r) => r.updatedAt ?? "" },
];

const ui = { sort: { key: "updatedAt", dir: -1 }, filter: "", built: false, pending: false };

function matches(r, words, studies) {
  for (const w of words) {
    const colon = w.indexOf(":");
    if (colon > 0) {
      const [k, v] = [w.slice(0, colon), w.slice(colon + 1)];
      const field =
        k === "study" ? (studies.get(r.study) ?? r.study ?? "") : k === "kind" ? r.kind : String(r[k] ?? "");
      if (!field.toLowerCase().includes(v)) return false;
      continue;
    }
    const hay = `${r.name} ${r.path} ${r.recipe ?? ""} ${r.model} ${r.status} ${r.dataset} ${r.kind}`.toLowerCase();
    if (!hay.includes(w)) return false;
  }
  return true;
}

function rowHtml(r, selected) {
  const problems = r.problems.length > 0 ? ` <span class="warn" title="${esc(r.problems.join("\n"))}">⚠</span>` : "";
  const why = r.why ? ` title="${esc(r.why)}"` : "";
  const epochs = r.epochs === null ? String(r.epochsDone) : `${r.epochsDone}/${r.epochs}`;
  return (
    `<tr data-id="${esc(r.id)}" class="${selected ? "selected" : ""}">` +
    `<td><input type="checkbox" aria-label="select ${esc(r.name)}" ${selected ? "checked" : ""}></td>` +
    `<td class="name"><span class="run-name">${esc(r.name)}</span>${problems}<br><span class="path">${esc(r.path)}${r.recipe ? ` · ${esc(r.recipe)}` : ""}</span></td>` +
    `<td>${esc(r.model)}</td><td class="num">${si(r.params)}</td><td class="num">${si(r.macs)}</td>` +
    `<td class="num">${pct(r.bestValAccuracy)}</td><td class="num">${pct(r.testAccuracy)}</td>` +
    `<td class="num">${r.imagesPerSec === null ? "–" : Math.round(r.imagesPerSec).toLocaleString("en-US")}</td>` +
    `<td class="num">${duration(r.seconds)}</td><td class="num">${epochs}</td>` +
    `<td><span class="status ${esc(r.status)}"${why}>${esc(r.status)}</span></td>` +
    `<td title="${esc(r.updatedAt ?? "")}">${ago(r.updatedAt)}</td></tr>`
  );
}

function build(app) {
  const el = app.section("runs");
  const studyOptions = app.studies
    .map((s) => `<option value="study:${esc(s.name.toLowerCase())}">${esc(s.kind)}: ${esc(s.name)}</option>`)
    .join("");
  el.innerHTML = `
    <div class="toolbar">
      <input id="runs-filter" type="search" placeholder="filter: words, or status:running model:resnet20 study:NAME" value="${esc(ui.filter)}" size="48">
      <select id="runs-study" aria-label="study"><option value="">all folders</option><option value="kind:run">plain runs</option>${studyOptions}</select>
      <button type="button" id="runs-select-shown">select shown</button>
      <button type="button" id="runs-compare">compare selected ▸</button>
      <span id="runs-count" class="muted"></span>
    </div>
    <div class="table-wrap"><table id="runs-table" class="grid">
      <thead><tr><th></th>${COLUMNS.map((c) => `<th data-key="${c.key}" class="${c.num ? "num" : ""}" tabindex="0">${c.label}</th>`).join("")}</tr></thead>
      <tbody></tbody>
    </table></div>
    <p class="muted small" id="runs-roots"></p>`;
  el.querySelector("#runs-filter").addEventListener("input", (e) => {
    ui.filter = e.target.value;
    render(app);
  });
  el.querySelector("#runs-study").addEventListener("change", (e) => {
    const words = ui.filter.split(/\s+/).filter((w) => w && !/^(study|kind):/.test(w));
    if (e.target.value) words.push(e.target.value);
    ui.filter = words.join(" ");
    el.querySelector("#runs-filter").value = ui.filter;
    render(app);
  });
  el.querySelector("thead").addEventListener("click", (e) => {
    const key = e.target.closest("th")?.dataset.key;
    if (!key) return;
    ui.sort = { key, dir: ui.sort.key === key ? -ui.sort.dir : COLUMNS.find((c) => c.key === key).num ? -1 : 1 };
    render(app);
  });
  el.querySelector("tbody").addEventListener("click", (e) => {
    const tr = e.target.closest("tr");
    if (!tr) return;
    if (e.target.tagName !== "INPUT" && e.target.tagName !== "TD" && !e.target.closest(".name")) return;
    app.toggle(tr.dataset.id, e.target.tagName === "INPUT" ? e.target.checked : undefined);
    const on = app.isSelected(tr.dataset.id);
    tr.classList.toggle("selected", on);
    tr.querySelector("input").checked = on;
  });
  el.querySelector("tbody").addEventListener("dblclick", (e) => {
    const tr = e.target.closest("tr");
    if (!tr) return;
    app.toggle(tr.dataset.id, true);
    app.open("curves");
  });
  el.querySelector("#runs-select-shown").onclick = () => {
    const shown = [...el.querySelectorAll("tbody tr")].map((tr) => tr.dataset.id);
    app.setSelected([...app.selected, ...shown]);
    render(app);
  };
  el.querySelector("#runs-compare").onclick = () => app.open("curves");
  ui.built = true;
}

function render(app) {
  const el = app.section("runs");
  const studyNames = new Map(app.studies.map((s) => [s.id, s.name]));
  const words = ui.filter.toLowerCase().split(/\s+/).filter(Boolean);
  const all = [...app.runs.values()];
  const shown = all.filter((r) => matches(r, words, studyNames));
  const col = COLUMNS.find((c) => c.key === ui.sort.key) ?? COLUMNS[0];
  const dir = ui.sort.dir;
  shown.sort((a, b) => {
    const [x, y] = [col.value(a), col.value(b)];
    if (x === y) return 0;
    if (x === null || x === undefined) return 1; // missing values last either way
    if (y === null || y === undefined) return -1;
    return (x < y ? -1 : 1) * dir;
  });
  const drawn = shown.slice(0, MAX_ROWS);
  el.querySelector("tbody").innerHTML = drawn.map((r) => rowHtml(r, app.isSelected(r.id))).join("");
  for (const th of el.querySelectorAll("thead th[data-key]"))
    th.dataset.sort = th.dataset.key === ui.sort.key ? (dir > 0 ? "asc" : "desc") : "";
  const counts = {};
  for (const r of shown) counts[r.status] = (counts[r.status] ?? 0) + 1;
  el.querySelector("#runs-count").textContent =
    `${shown.length} of ${all.length} runs` +
    (shown.length > MAX_ROWS ? ` (first ${MAX_ROWS} drawn: narrow the filter)` : "") +
    (Object.keys(counts).length
      ? ` · ${Object.entries(counts)
          .map(([k, v]) => `${v} ${k}`)
          .join(", ")}`
      : "");
  el.querySelector("#runs-roots").textContent =
    `Folders: ${app.roots.join(", ")}` +
    (app.refused > 0 ? ` · ${app.refused} link(s) leading outside them were skipped` : "");
  el.dataset.rows = String(drawn.length);
  el.dataset.ready = "true";
}

export const runsView = {
  show(app) {
    if (!ui.built) build(app);
    render(app);
  },
  onRuns(app) {
    // many rows may change each second: one redraw per animation frame at most
    if (ui.pending) return;
    ui.pending = true;
    requestAnimationFrame(() => {
      ui.pending = false;
      if (app.view === "runs") render(app);
    });
  },
  onCatalog(app) {
    ui.built = false;
    if (app.view === "runs") this.show(app);
  },
};
