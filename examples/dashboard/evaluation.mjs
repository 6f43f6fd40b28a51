// Evaluation of one selected run on its test set (or validation split), computed by the server
// as `budgetnet eval --json` computes it (best weights): the confusion matrix as a heatmap
// (colour: the share of the true class; number: the count), per-class accuracy, and the
// misclassified test images, most confident mistakes first.
import { api, esc, heat, inkOn, pct, query } from "./util.mjs";

const ui = { split: "test", run: null, token: 0 };

function pickRun(app) {
  const wanted = app.params.get("run");
  if (wanted && app.runs.has(wanted)) return wanted;
  return app.selected.find((id) => app.runs.has(id)) ?? null;
}

function runChooser(app, current) {
  if (app.selected.length <= 1) return "";
  return `<label>run <select id="eval-run">${app.selected
    .filter((id) => app.runs.has(id))
    .map(
      (id) => `<option value="${esc(id)}" ${id === current ? "selected" : ""}>${esc(app.runs.get(id).name)}</option>`,
    )
    .join("")}</select></label>`;
}

/** The confusion matrix as an SVG heatmap; rows are the true class, columns the prediction. */
export function confusionSvg(matrix, names) {
  const k = matrix.length;
  const cell = Math.max(22, Math.min(56, Math.floor(560 / k)));
  const label = Math.min(120, 7 * Math.max(...names.map((n) => n.length)) + 10);
  const size = label + k * cell;
  const parts = [];
  for (let i = 0; i < k; i++) {
    const total = matrix[i].reduce((a, b) => a + b, 0) || 1;
    parts.push(
      `<text x="${label - 6}" y="${label + i * cell + cell / 2 + 4}" text-anchor="end" class="tick">${esc(names[i])}</text>`,
    );
    for (let j = 0; j < k; j++) {
      const v = matrix[i][j];
      const share = v / total;
      const x = label + j * cell;
      const y = label + i * cell;
      parts.push(
        `<g class="cell" data-true="${i}" data-pred="${j}" data-count="${v}"><rect x="${x}" y="${y}" width="${cell - 1}" height="${cell - 1}" fill="${heat(share)}"${i === j ? ' stroke="#1d2330" stroke-width="1"' : ""}><title>true ${esc(names[i])}, predicted ${esc(names[j])}: ${v} (${(100 * share).toFixed(1)}% of the class)</title></rect>` +
          (cell >= 26
            ? `<text x="${x + cell / 2}" y="${y + cell / 2 + 4}" text-anchor="middle" fill="${inkOn(share)}" class="count">${v}</text>`
            : "") +
          "</g>",
      );
    }
  }
  for (let j = 0; j < k; j++) {
    const x = label + j * cell + cell / 2;
    parts.push(`<text transform="translate(${x + 4} ${label - 6}) rotate(-60)" class="tick">${esc(names[j])}</text>`);
  }
  return `<svg id="confusion" class="heatmap" width="${size + 10}" height="${size + 10}" viewBox="0 0 ${size + 10} ${size + 10}" role="img" aria-label="confusion matrix"
    data-matrix="${esc(JSON.stringify(matrix))}">${parts.join("")}</svg>`;
}

function perClassHtml(perClass) {
  return `<table class="grid small" id="per-class"><thead><tr><th>class</th><th class="num">images</th><th>accuracy</th></tr></thead><tbody>${perClass
    .map(
      (c) =>
        `<tr><td>${esc(c.name)}</td><td class="num">${c.n}</td><td><span class="bar"><i style="width:${(100 * c.accuracy).toFixed(1)}%"></i></span> ${pct(c.accuracy)}</td></tr>`,
    )
    .join("")}</tbody></table>`;
}

function galleryHtml(result) {
  if (result.misclassified.length === 0) return "<p>No misclassified images.</p>";
  return `<div id="gallery" class="gallery">${result.misclassified
    .map(
      (m) =>
        `<figure data-index="${m.index}"><img src="${m.png}" alt="test image ${m.index}" width="84" height="84"><figcaption><b>${esc(result.classNames[m.predicted])}</b> <span class="muted">${pct(m.confidence, 0)}</span><br>true: ${esc(result.classNames[m.truth])}<br><span class="muted small">#${m.index}</span></figcaption></figure>`,
    )
    .join("")}</div>`;
}

async function render(app) {
  const el = app.section("evaluation");
  const token = ++ui.token;
  const id = pickRun(app);
  ui.run = id;
  el.dataset.ready = "false";
  if (id === null) {
    el.innerHTML = `<p class="empty">Tick a run in the <a href="#runs">Runs</a> table to evaluate it.</p>`;
    el.dataset.ready = "true";
    return;
  }
  const row = app.runs.get(id);
  el.innerHTML = `<div class="toolbar">${runChooser(app, id)}
      <label>split <select id="eval-split"><option value="test" ${ui.split === "test" ? "selected" : ""}>test</option><option value="val" ${ui.split === "val" ? "selected" : ""}>validation</option></select></label>
    </div>
    <p id="eval-status">Evaluating ${esc(row.name)} on the ${ui.split === "test" ? "test set" : "validation split"} (best weights)…</p>
    <div id="eval-body"></div>`;
  el.querySelector("#eval-split").onchange = (e) => {
    ui.split = e.target.value;
    render(app);
  };
  const chooser = el.querySelector("#eval-run");
  if (chooser)
    chooser.onchange = (e) => {
      app.setParam("run", e.target.value);
      render(app);
    };
  let result;
  try {
    result = await api(`/api/eval?${query({ id, split: ui.split })}`);
  } catch (e) {
    if (token !== ui.token) return;
    el.querySelector("#eval-status").textContent = `Cannot evaluate ${row.name}: ${e.message}`;
    el.querySelector("#eval-status").className = "problem";
    el.dataset.ready = "true";
    return;
  }
  if (token !== ui.token) return;
  el.querySelector("#eval-status").innerHTML =
    `<b>${pct(result.accuracy)}</b> accuracy on ${result.n.toLocaleString("en-US")} ${result.split === "test" ? "test" : "validation"} images · loss ${result.loss.toFixed(4)} · ${result.wrong.toLocaleString("en-US")} misclassified · ${esc(result.weights)} weights, ${esc(result.engine)} · ${result.seconds.toFixed(1)} s`;
  el.querySelector("#eval-body").innerHTML = `
    <div class="eval-grid">
      <div><h3>Confusion matrix <span class="muted small">rows: true class · columns: predicted</span></h3>${confusionSvg(result.confusion, result.classNames)}</div>
      <div><h3>Per-class accuracy</h3>${perClassHtml(result.perClass)}</div>
    </div>
    <h3>Misclassified ${result.split === "test" ? "test" : "validation"} images <span class="muted small">most confident mistakes first (${result.misclassified.length} of ${result.wrong})</span></h3>
    ${galleryHtml(result)}`;
  el.dataset.ready = "true";
  el.dataset.accuracy = String(result.accuracy);
}

export const evaluationView = {
  show(app) {
    return render(app);
  },
};
