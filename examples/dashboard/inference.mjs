// Inference: the in-browser classifier of `budgetnet serve` (examples/web) for the selected run,
// in a frame. The server exports the run's best weights to ONNX (BatchNorm folded, normalization
// in the graph, in its own temporary folder) and the page runs it with onnxruntime-web.
import { esc } from "./util.mjs";

export const inferenceView = {
  show(app) {
    const el = app.section("inference");
    const id = app.selected.find((x) => app.runs.has(x)) ?? null;
    if (id === null) {
      el.innerHTML = `<p class="empty">Tick a run in the <a href="#runs">Runs</a> table to classify images with it.</p>`;
      el.dataset.ready = "true";
      return;
    }
    const row = app.runs.get(id);
    const model = `/api/onnx?id=${encodeURIComponent(id)}`;
    const src = `/infer/?model=${encodeURIComponent(model)}`;
    const current = el.querySelector("iframe")?.getAttribute("src");
    if (current === src) return;
    el.innerHTML = `<p>${esc(row.name)} (${esc(row.model)}), best weights, exported to ONNX for this page. <a href="${esc(src)}" target="_blank" rel="noopener">open in its own tab</a> · <a href="${esc(model)}" download="${esc(row.name)}.onnx">download the .onnx</a></p>
      <iframe id="inference-frame" title="classify an image with ${esc(row.name)}" src="${esc(src)}"></iframe>`;
    el.dataset.ready = "true";
  },
};
