// The dashboard page: the shared state (runs, studies, the selection), the tabs, and the event
// stream from the server. Each view is a module with show(app) and optional live handlers
// (onRuns, onPoints, onReset, onStudies); the selection (runs ticked in the table) drives them
// and lives in the address (#curves?runs=a,b), so a view can be bookmarked or shared.
import { ablationView } from "./ablation.mjs";
import { curvesView } from "./curves.mjs";
import { evaluationView } from "./evaluation.mjs";
import { inferenceView } from "./inference.mjs";
import { modelView } from "./model.mjs";
import { runsView } from "./runs.mjs";
import { searchView } from "./search.mjs";
import { api, esc } from "./util.mjs";

const VIEWS = {
  runs: runsView,
  curves: curvesView,
  evaluation: evaluationView,
  model: modelView,
  search: searchView,
  ablation: ablationView,
  inference: inferenceView,
};

export const app = {
  /** id -> row of the runs table. */
  runs: new Map(),
  studies: [],
  roots: [],
  /** Selected run ids, in the order they were ticked. */
  selected: [],
  view: "runs",
  /** Extra address parameters of the current view (e.g. the study shown). */
  params: new URLSearchParams(),
  section(name) {
    return document.getElementById(`view-${name}`);
  },
  isSelected(id) {
    return this.selected.includes(id);
  },
  setSelected(ids) {
    this.selected = ids.filter((id, i) => this.runs.has(id) && ids.indexOf(id) === i);
    writeAddress();
    showSelection();
  },
  toggle(id, on) {
    const has = this.isSelected(id);
    const want = on ?? !has;
    if (want && !has) this.setSelected([...this.selected, id]);
    else if (!want && has) this.setSelected(this.selected.filter((x) => x !== id));
  },
  open(view, params = {}) {
    this.params = new URLSearchParams(params);
    const target = address(view);
    if (location.hash === target) showView();
    else location.hash = target;
  },
  setParam(key, value) {
    if (value === null || value === undefined) this.params.delete(key);
    else this.params.set(key, value);
    writeAddress();
  },
  showError(message) {
    const el = document.getElementById("error");
    el.textContent = message;
    el.hidden = !message;
  },
};

function address(view) {
  const p = new URLSearchParams(app.params);
  if (app.selected.length > 0) p.set("runs", app.selected.join(","));
  else p.delete("runs");
  const q = p.toString();
  return `#${view}${q ? `?${q}` : ""}`;
}

function writeAddress() {
  history.replaceState(null, "", address(app.view));
}

function readAddress() {
  const [view, q] = location.hash.slice(1).split("?");
  const p = new URLSearchParams(q ?? "");
  const runs = p.get("runs");
  p.delete("runs");
  app.params = p;
  if (runs !== null) app.selected = runs.split(",").filter((id) => id !== "");
  return VIEWS[view] ? view : "runs";
}

function showSelection() {
  const el = document.getElementById("selection");
  if (app.selected.length === 0) {
    el.innerHTML = "No run selected: tick runs in the <a href='#runs'>Runs</a> table to compare them.";
    return;
  }
  const names = app.selected.map((id) => app.runs.get(id)?.name ?? id);
  el.innerHTML = `Selected (${app.selected.length}): ${names
    .slice(0, 8)
    .map((n, i) => `<span class="chip" title="${esc(app.selected[i])}">${esc(n)}</span>`)
    .join(" ")}${names.length > 8 ? " …" : ""} <button type="button" id="clear-selection">clear</button>`;
  document.getElementById("clear-selection").onclick = () => {
    app.setSelected([]);
    VIEWS[app.view].show(app);
  };
}

function showView() {
  app.view = readAddress();
  for (const [name] of Object.entries(VIEWS)) {
    app.section(name).hidden = name !== app.view;
    document.querySelector(`#tabs a[data-view="${name}"]`).classList.toggle("active", name === app.view);
  }
  app.showError("");
  showSelection();
  document.body.dataset.view = app.view;
  Promise.resolve(VIEWS[app.view].show(app)).catch((e) => app.showError(e.message));
}

async function loadRuns() {
  const body = await api("/api/runs");
  app.runs = new Map(body.runs.map((r) => [r.id, r]));
  app.studies = body.studies;
  app.roots = body.roots;
  app.refused = body.refused;
}

function connect() {
  const live = document.getElementById("live");
  const events = new EventSource("/api/events");
  events.addEventListener("hello", () => {
    live.dataset.live = "on";
    live.textContent = "live";
  });
  events.onerror = () => {
    live.dataset.live = "off";
    live.textContent = "reconnecting…";
  };
  const current = () => VIEWS[app.view];
  events.addEventListener("runs", (e) => {
    const { rows } = JSON.parse(e.data);
    for (const r of rows) app.runs.set(r.id, r);
    current().onRuns?.(app, rows);
  });
  events.addEventListener("points", (e) => current().onPoints?.(app, JSON.parse(e.data)));
  events.addEventListener("reset", (e) => current().onReset?.(app, JSON.parse(e.data)));
  events.addEventListener("studies", (e) => current().onStudies?.(app, JSON.parse(e.data).ids));
  events.addEventListener("catalog", async () => {
    await loadRuns();
    current().onCatalog?.(app);
  });
}

async function start() {
  try {
    await loadRuns();
  } catch (e) {
    app.showError(`The dashboard's server did not answer: ${e.message}`);
    document.body.dataset.state = "error";
    return;
  }
  window.addEventListener("hashchange", showView);
  for (const a of document.querySelectorAll("#tabs a"))
    a.addEventListener("click", (e) => {
      e.preventDefault();
      app.open(a.dataset.view, a.dataset.view === app.view ? Object.fromEntries(app.params) : {});
    });
  connect();
  showView();
  document.body.dataset.state = "ready";
}

start();
