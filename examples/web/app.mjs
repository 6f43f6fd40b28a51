// The page: loads a budgetnet ONNX export with onnxruntime-web, turns an image into the model's
// input the way `budgetnet predict` does (resize to HxW, grayscale for one channel, /255, then
// (x - mean) / std unless the export baked that into the graph), and shows the top-5 classes.
// The model comes from ./model.onnx (or ?model=URL), or from an .onnx file the user opens.
import { readOnnxInfo } from "./onnx-info.mjs";

const $ = (id) => document.getElementById(id);
const TOP_K = 5;

/** The loaded model: { session, inputName, shape: [C, H, W], classNames, normalize: null | {mean, std} }. */
let model = null;
/** Model loads and classifications run one after another, in the order they were asked for. */
let queue = Promise.resolve();
let previewUrl = null;

function setState(state) {
  document.body.dataset.state = state;
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = false;
  $("result").hidden = true;
  setState("error");
}

function enqueue(task) {
  queue = queue.then(async () => {
    $("error").hidden = true;
    try {
      await task();
    } catch (e) {
      showError(e instanceof Error ? e.message : String(e));
    }
  });
}

const formatCount = (n) => n.toLocaleString("en-US");

function formatBytes(n) {
  const size = n >= 1024 * 1024 ? `${(n / 1024 / 1024).toFixed(2)} MB` : `${(n / 1024).toFixed(1)} KB`;
  return `${size} (${formatCount(n)} bytes)`;
}

function jsonEntry(metadata, key) {
  if (metadata[key] === undefined) return undefined;
  try {
    return JSON.parse(metadata[key]);
  } catch {
    throw new Error(`the model's metadata entry "${key}" is not valid JSON. Received: ${metadata[key]}`);
  }
}

const isVector = (v, n) => Array.isArray(v) && v.length === n && v.every((x) => Number.isFinite(x));

/** The input shape, class names and normalization recorded by budgetnet's exporter. */
function readPreprocessing(metadata, session) {
  const shape = jsonEntry(metadata, "input_shape") ?? session.inputMetadata?.[0]?.shape?.slice(1);
  if (!Array.isArray(shape) || shape.length !== 3 || !shape.every((d) => Number.isInteger(d) && d > 0))
    throw new Error(
      `the model does not state its input size [C, H, W]; export it with \`budgetnet export\`. Received: input_shape=${metadata.input_shape}`,
    );
  const channels = shape[0];
  if (channels !== 1 && channels !== 3)
    throw new Error(
      `this page feeds grayscale or RGB images, so the model needs 1 or 3 input channels. Received: C=${channels}`,
    );
  let normalize = null;
  if (!(metadata.normalization ?? "").startsWith("baked in")) {
    const mean = jsonEntry(metadata, "mean");
    const std = jsonEntry(metadata, "std");
    if (!isVector(mean, channels) || !isVector(std, channels) || !std.every((s) => s > 0))
      throw new Error(
        `the model's metadata lacks a mean and std for its ${channels} channel(s), and the graph does not normalize; ` +
          "export it with `budgetnet export --run DIR` (which records them), or add --with-normalization.",
      );
    normalize = { mean, std };
  }
  const classNames = jsonEntry(metadata, "class_names") ?? null;
  return { shape, normalize, classNames };
}

async function loadModel(bytes, label) {
  setState("loading-model");
  $("model-status").textContent = `Loading ${label}…`;
  if (typeof ort === "undefined")
    throw new Error(
      "onnxruntime-web did not load (ort/ort.wasm.min.js); serve this page with `budgetnet serve --run DIR`.",
    );
  let info;
  try {
    info = readOnnxInfo(bytes);
  } catch (e) {
    throw new Error(`${label} is not an ONNX model (${e.message}). Export one with \`budgetnet export --run DIR\`.`);
  }
  let session;
  try {
    session = await ort.InferenceSession.create(bytes, { executionProviders: ["wasm"] });
  } catch (e) {
    throw new Error(`onnxruntime-web could not load ${label}: ${e instanceof Error ? e.message : String(e)}`);
  }
  let prep;
  try {
    prep = readPreprocessing(info.metadata, session);
  } catch (e) {
    await session.release();
    throw e;
  }
  if (model) await model.session.release();
  model = { session, inputName: session.inputNames[0], ...prep };

  const md = info.metadata;
  const stored = `${formatCount(info.storedWeights)} weights stored in the file`;
  $("model-name").textContent = md.model_name ?? (info.graphName || "unknown");
  $("model-params").textContent = md.parameters ? `${formatCount(Number(md.parameters))} (${stored})` : stored;
  // an int8 export (budgetnet export --int8) says so in its metadata: the bytes are mostly int8 weights
  $("model-size").textContent =
    formatBytes(bytes.byteLength) + (md.quantization ? `, ${md.quantization}` : ", float32");
  const [c, h, w] = prep.shape;
  $("model-input-shape").textContent =
    `${c === 1 ? "grayscale" : "RGB"} ${h}×${w}${prep.normalize ? "" : ", normalization in the graph"}`;
  $("model-classes").textContent = prep.classNames ? prep.classNames.join(", ") : "unnamed";
  $("model-facts").hidden = false;
  $("model-status").textContent = `Ready: ${label}`;
  setState("ready");
}

async function loadModelFromUrl(url) {
  let response;
  try {
    response = await fetch(url);
  } catch (e) {
    throw new Error(`could not fetch the model at ${url}: ${e.message}`);
  }
  if (!response.ok)
    throw new Error(
      `could not fetch the model at ${url}: HTTP ${response.status} ${response.statusText}. ` +
        "Start the page with `budgetnet serve --run DIR`, or open an .onnx file.",
    );
  await loadModel(new Uint8Array(await response.arrayBuffer()), url);
}

async function decodeImage(file) {
  try {
    // No colour management or premultiplication: the pixels as stored, like sharp's decode.
    return await createImageBitmap(file, { colorSpaceConversion: "none", premultiplyAlpha: "none" });
  } catch {
    throw new Error(
      `"${file.name}" is not an image this browser can decode (type: ${file.type || "unknown"}). Choose a PNG, JPEG, GIF, WebP or BMP file.`,
    );
  }
}

/** sharp's (libvips') grayscale: Rec. 709 luminance in linear light, back to sRGB, as a byte. */
function luminance(r, g, b) {
  if (r === g && g === b) return r;
  const linear = (v) => (v <= 10.31475 ? v / 255 / 12.92 : ((v / 255 + 0.055) / 1.055) ** 2.4);
  const y = 0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b);
  const srgb = y <= 0.0031308 ? 12.92 * y : 1.055 * y ** (1 / 2.4) - 0.055;
  return Math.min(255, Math.max(0, Math.round(255 * srgb)));
}

/** RGBA pixels of the resized image to the model's [1, C, H, W] float input; grays the view for C = 1. */
function toModelInput(rgba) {
  const [channels, h, w] = model.shape;
  const hw = h * w;
  const input = new Float32Array(channels * hw);
  for (let i = 0; i < hw; i++) {
    const [r, g, b] = [rgba[4 * i], rgba[4 * i + 1], rgba[4 * i + 2]];
    const bytes = channels === 1 ? [luminance(r, g, b)] : [r, g, b];
    if (channels === 1) rgba.fill(bytes[0], 4 * i, 4 * i + 3);
    for (let c = 0; c < channels; c++) {
      const v = bytes[c] / 255;
      input[c * hw + i] = model.normalize ? (v - model.normalize.mean[c]) / model.normalize.std[c] : v;
    }
  }
  return input;
}

function softmax(logits) {
  const max = Math.max(...logits);
  const exps = Array.from(logits, (v) => Math.exp(v - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / sum);
}

async function classify(file) {
  if (!model) throw new Error("no model is loaded; open an exported .onnx file first.");
  setState("classifying");
  const bitmap = await decodeImage(file);
  const [channels, h, w] = model.shape;
  const canvas = $("model-view");
  canvas.width = w;
  canvas.height = h;
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  ctx.imageSmoothingQuality = "high";
  ctx.clearRect(0, 0, w, h);
  ctx.drawImage(bitmap, 0, 0, w, h);
  bitmap.close();
  const pixels = ctx.getImageData(0, 0, w, h);
  const input = toModelInput(pixels.data);
  ctx.putImageData(pixels, 0, 0);

  const feeds = { [model.inputName]: new ort.Tensor("float32", input, [1, channels, h, w]) };
  const outputs = await model.session.run(feeds);
  const logits = (outputs.logits ?? outputs[model.session.outputNames[0]]).data;
  const probabilities = softmax(logits);
  const order = probabilities.map((p, i) => [p, i]).sort((a, b) => b[0] - a[0]);
  showResult(file, order.slice(0, TOP_K));
  setState("done");
}

function showResult(file, top) {
  if (previewUrl) URL.revokeObjectURL(previewUrl);
  previewUrl = URL.createObjectURL(file);
  $("preview").src = previewUrl;
  $("preview-caption").textContent = file.name;
  const list = $("top5");
  list.replaceChildren(
    ...top.map(([p, index]) => {
      const li = document.createElement("li");
      const name = model.classNames?.[index] ?? `class ${index}`;
      li.dataset.index = String(index);
      li.dataset.probability = String(p);
      li.innerHTML = '<span class="name"></span><span class="bar"><span></span></span><span class="pct"></span>';
      li.querySelector(".name").textContent = name;
      li.querySelector(".bar span").style.width = `${(100 * p).toFixed(1)}%`;
      li.querySelector(".pct").textContent = `${(100 * p).toFixed(2)}%`;
      return li;
    }),
  );
  $("result").dataset.file = file.name;
  $("result").hidden = false;
}

function takeFile(file) {
  if (!file) return;
  if (file.name.toLowerCase().endsWith(".onnx"))
    enqueue(async () => loadModel(new Uint8Array(await file.arrayBuffer()), file.name));
  else enqueue(() => classify(file));
}

function wireInputs() {
  $("image-input").addEventListener("change", (e) => {
    takeFile(e.target.files[0]);
    e.target.value = "";
  });
  $("model-input").addEventListener("change", (e) => {
    takeFile(e.target.files[0]);
    e.target.value = "";
  });
  const zone = $("drop-zone");
  // A file dropped anywhere else would make the browser navigate away from the page.
  for (const type of ["dragover", "drop"]) window.addEventListener(type, (e) => e.preventDefault());
  zone.addEventListener("dragover", () => zone.classList.add("dragging"));
  zone.addEventListener("dragleave", () => zone.classList.remove("dragging"));
  zone.addEventListener("drop", (e) => {
    zone.classList.remove("dragging");
    takeFile(e.dataTransfer.files[0]);
  });
}

wireInputs();
if (typeof ort !== "undefined") ort.env.wasm.wasmPaths = new URL("ort/", location.href).href;
const modelUrl = new URLSearchParams(location.search).get("model") ?? "model.onnx";
enqueue(() => loadModelFromUrl(modelUrl));
