// Model: the per-layer summary of the selected run's model (output shape, parameters and
// multiply-adds per sample, as `budgetnet summary` counts them) and a graph of its blocks: the
// top-level layers in order, containers opened one level, residual blocks drawn with their skip.
import { api, esc, query, si } from "./util.mjs";

const ui = { token: 0 };
const BOX_W = 300;
const BOX_H = 34;
const GAP = 12;

function shape(s) {
  return s.length ? s.join("×") : "";
}

/** The blocks as an SVG column: boxes joined by arrows, containers framed, skips as arcs. */
export function blockGraphSvg(blocks, inputShape) {
  const parts = [];
  let y = 10;
  const x = 40;
  const box = (b, indent) => {
    const bx = x + indent;
    const w = BOX_W - indent;
    parts.push(
      `<g class="block" data-name="${esc(b.name)}"><rect x="${bx}" y="${y}" width="${w}" height="${BOX_H}" rx="5" class="${b.residual ? "residual" : "layer"}"><title>${esc(b.name)} (${esc(b.type)}): ${b.params.toLocaleString("en-US")} params, ${b.macs.toLocaleString("en-US")} MACs</title></rect>` +
        `<text x="${bx + 8}" y="${y + 14}" class="block-name">${esc(b.name)} <tspan class="muted">${esc(b.type)}</tspan></text>` +
        `<text x="${bx + 8}" y="${y + 28}" class="block-facts">${esc(shape(b.outputShape))} · ${si(b.params)} params · ${si(b.macs)} MACs</text></g>`,
    );
    if (b.residual) {
      // the skip: from above the block's input to below its output
      const r = bx + w;
      parts.push(
        `<path d="M ${r} ${y - GAP / 2} C ${r + 36} ${y - GAP / 2}, ${r + 36} ${y + BOX_H + GAP / 2}, ${r} ${y + BOX_H + GAP / 2}" class="skip"><title>skip connection</title></path>`,
      );
    }
    y += BOX_H;
    parts.push(`<line x1="${x + BOX_W / 2}" y1="${y}" x2="${x + BOX_W / 2}" y2="${y + GAP}" class="arrow"/>`);
    y += GAP;
  };
  parts.push(
    `<text x="${x + BOX_W / 2}" y="${y + 10}" text-anchor="middle" class="muted">input ${esc(shape(inputShape))}</text>`,
  );
  y += 16;
  parts.push(`<line x1="${x + BOX_W / 2}" y1="${y}" x2="${x + BOX_W / 2}" y2="${y + GAP}" class="arrow"/>`);
  y += GAP;
  for (const b of blocks) {
    if (b.children.length === 0) {
      box(b, 0);
      continue;
    }
    const top = y;
    parts.push(
      `<text x="${x + 4}" y="${y + 12}" class="group-name">${esc(b.name)} <tspan class="muted">${esc(b.type)} · ${si(b.params)} params · ${si(b.macs)} MACs</tspan></text>`,
    );
    y += 18;
    for (const c of b.children) box(c, 16);
    parts.push(
      `<rect x="${x - 4}" y="${top - 4}" width="${BOX_W + 60}" height="${y - top - GAP + 8}" rx="8" class="group"/>`,
    );
    y += 4;
  }
  return `<svg id="block-graph" width="${BOX_W + 120}" height="${y + 10}" viewBox="0 0 ${BOX_W + 120} ${y + 10}" role="img" aria-label="model blocks">${parts.join("")}</svg>`;
}

function tableHtml(s) {
  return `<table class="grid small" id="layer-table"><thead><tr><th>layer</th><th>type</th><th>output</th><th class="num">params</th><th class="num">MACs</th></tr></thead><tbody>${s.rows
    .map(
      (r) =>
        `<tr><td class="mono">${esc(r.name)}</td><td>${esc(r.type)}</td><td class="mono">${esc(shape(r.outputShape))}</td><td class="num">${r.params.toLocaleString("en-US")}</td><td class="num">${r.macs.toLocaleString("en-US")}</td></tr>`,
    )
    .join(
      "",
    )}</tbody><tfoot><tr><th colspan="3">total</th><th class="num">${s.params.toLocaleString("en-US")}</th><th class="num">${s.macs.toLocaleString("en-US")}</th></tr></tfoot></table>`;
}

export const modelView = {
  async show(app) {
    const el = app.section("model");
    const token = ++ui.token;
    el.dataset.ready = "false";
    const id = app.selected.find((x) => app.runs.has(x)) ?? null;
    if (id === null) {
      el.innerHTML = `<p class="empty">Tick a run in the <a href="#runs">Runs</a> table to see its model.</p>`;
      el.dataset.ready = "true";
      return;
    }
    const row = app.runs.get(id);
    el.innerHTML = `<p>Building ${esc(row.model)} from ${esc(row.name)}'s config.json…</p>`;
    let s;
    try {
      s = await api(`/api/model?${query({ id })}`);
    } catch (e) {
      if (token === ui.token) {
        el.innerHTML = `<p class="problem">Cannot show the model of ${esc(row.name)}: ${esc(e.message)}</p>`;
        el.dataset.ready = "true";
      }
      return;
    }
    if (token !== ui.token) return;
    const options = Object.entries(s.options ?? {})
      .map(([k, v]) => `${esc(k)}=${esc(JSON.stringify(v))}`)
      .join(", ");
    el.innerHTML = `
      <p><b>${esc(s.model)}</b> (${esc(row.name)}) · ${s.params.toLocaleString("en-US")} parameters · ${s.macs.toLocaleString("en-US")} MACs per image · input ${esc(shape(s.inputShape))} → ${esc(shape(s.outputShape))} · activations ${si(s.activationBytes)}B, weights ${si(s.paramBytes)}B</p>
      <p class="muted small">${options}</p>
      <div class="model-grid"><div><h3>Blocks</h3>${blockGraphSvg(s.blocks, s.inputShape)}</div><div><h3>Layers</h3>${tableHtml(s)}</div></div>`;
    if (app.selected.length > 1)
      el.insertAdjacentHTML("afterbegin", `<p class="muted small">Showing the first selected run.</p>`);
    el.dataset.ready = "true";
  },
};
