// The web page end to end in headless Chromium: a ResNet-20 trained for 100 steps on Fashion-MNIST,
// served by `budgetnet serve`'s server, classifies real Fashion-MNIST test images uploaded through
// the file input, and the page's top-1 and probabilities equal `budgetnet predict`'s. Both export
// styles are checked: normalization in the graph (what serve writes) and in the page (a plain
// `budgetnet export`, opened through the page's model input). Skips when /usr/bin/chromium is missing.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, test } from "node:test";
import type { BrowserContext, Page } from "playwright-core";
import { applyOverrides, loadDataset, loadRecipe, trainRecipe } from "../../src";
import { parseArgs } from "../../src/cli/args";
import { exportCommand } from "../../src/cli/export";
import { predictCommand } from "../../src/cli/predict";
import { exportForWeb, startWebServer, type WebServer } from "../../src/cli/serve";
import { saveSafetensors } from "../../src/export/safetensors";
import { disposeCheckpoint, loadCheckpoint } from "../../src/train/checkpoint";
import { Progress } from "../../src/train/metrics";
import { checkNoLeaks, tempDir } from "../helpers";

const CHROMIUM = "/usr/bin/chromium";
const SKIP = fs.existsSync(CHROMIUM)
  ? false
  : `${CHROMIUM} is missing: install Debian's chromium package to run the page test`;
/** Test-set images, one per class for the first eight classes. */
const PER_CLASS = 1;
const CLASSES_USED = 8;

checkNoLeaks();

interface Predicted {
  file: string;
  top: { class: string; index: number; probability: number }[];
}

const silent = new Progress({ write: () => true, isTTY: false } as unknown as NodeJS.WriteStream, 1e9);
let runDir = "";
let images: string[] = [];
let expected = new Map<string, Predicted>();
let server: WebServer | undefined;
let context: BrowserContext | undefined;
let page: Page;

/** `budgetnet predict --json --top-k 10` on the run, captured. */
async function budgetnetPredict(files: string[]): Promise<Map<string, Predicted>> {
  const write = process.stdout.write;
  let out = "";
  process.stdout.write = ((chunk: string) => {
    out += chunk;
    return true;
  }) as typeof process.stdout.write;
  try {
    const status = await predictCommand.run(
      parseArgs(["--run", runDir, "--json", "--top-k", "10", ...files], predictCommand),
    );
    assert.equal(status, 0);
  } finally {
    process.stdout.write = write;
  }
  const results = JSON.parse(out) as Predicted[];
  return new Map(results.map((r) => [path.basename(r.file), r]));
}

/** A run folder from 100 training steps (the trainer stops with a checkpoint; its model becomes model.safetensors). */
async function trainBriefly(dir: string): Promise<void> {
  const cfg = applyOverrides(loadRecipe("fashion-mnist-quick"), {
    epochs: "1",
    "batch-size": "64",
    threads: "1",
    "schedule.type": "constant",
    "optimizer.lr": "0.05",
  });
  const result = await trainRecipe(cfg, { runDir: dir, stopAfterSteps: 100, handleSignals: false, progress: silent });
  assert.equal(result.steps, 100);
  const ck = loadCheckpoint(path.join(dir, "checkpoint.safetensors"));
  try {
    saveSafetensors(path.join(dir, "model.safetensors"), ck.model);
  } finally {
    disposeCheckpoint(ck);
  }
}

/** PNG files made with sharp from the real Fashion-MNIST test set. */
async function writeTestImages(dir: string): Promise<string[]> {
  const sharp = (await import("sharp")).default;
  const test = loadDataset("fashion-mnist", { split: "test" });
  const files: string[] = [];
  const taken = new Array(test.numClasses).fill(0);
  const size = test.height * test.width;
  for (let i = 0; i < test.n && files.length < PER_CLASS * CLASSES_USED; i++) {
    const label = test.labels[i] as number;
    if (label >= CLASSES_USED || taken[label] >= PER_CLASS) continue;
    taken[label]++;
    const file = path.join(dir, `test-${i}-${test.classNames[label]}.png`.replace(/[^\w.-]/g, "_"));
    const pixels = Buffer.from(test.images.subarray(i * size, (i + 1) * size));
    await sharp(pixels, { raw: { width: test.width, height: test.height, channels: 1 } })
      .png()
      .toFile(file);
    files.push(file);
  }
  return files;
}

/** Uploads one file through the image input and reads the top-5 list the page shows. */
async function classifyOnPage(
  file: string,
): Promise<{ index: number; name: string; probability: number; shown: string }[]> {
  await page.setInputFiles("#image-input", file);
  const name = path.basename(file);
  await page.waitForSelector(`body[data-state="done"] #result[data-file="${name}"]`, { timeout: 20_000 });
  const shown = [];
  for (const li of await page.locator("#top5 li").all())
    shown.push({
      index: Number(await li.getAttribute("data-index")),
      name: (await li.locator(".name").textContent()) ?? "",
      probability: Number(await li.getAttribute("data-probability")),
      shown: (await li.locator(".pct").textContent()) ?? "",
    });
  return shown;
}

function assertAgrees(file: string, shown: Awaited<ReturnType<typeof classifyOnPage>>): void {
  const want = expected.get(path.basename(file));
  assert.ok(want, `budgetnet predict gave no result for ${file}`);
  assert.equal(shown.length, 5, "the page shows five classes");
  assert.equal(shown[0]?.index, want.top[0]?.index, `${file}: the page's top-1 differs from budgetnet predict's`);
  assert.equal(shown[0]?.name, want.top[0]?.class);
  for (const s of shown) {
    const p = want.top.find((t) => t.index === s.index)?.probability as number;
    assert.ok(Math.abs(s.probability - p) < 1e-3, `${file}, class ${s.name}: page ${s.probability} vs budgetnet ${p}`);
    assert.equal(s.shown, `${(100 * s.probability).toFixed(2)}%`);
  }
}

before(async () => {
  if (SKIP) return;
  const work = tempDir("budgetnet-web-");
  runDir = path.join(work, "run");
  const started = Date.now();
  await trainBriefly(runDir);
  process.stderr.write(`# page test: trained 100 steps in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
  images = await writeTestImages(work);
  expected = await budgetnetPredict(images);
  const modelFile = path.join(work, "model.onnx");
  exportForWeb(runDir, "best", modelFile);
  server = await startWebServer({ modelFile });
  const { chromium } = await import("playwright-core");
  context = await chromium.launchPersistentContext(fs.mkdtempSync(path.join(os.tmpdir(), "budgetnet-chromium-")), {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  page = context.pages()[0] ?? (await context.newPage());
  page.on("pageerror", (e) => process.stderr.write(`# page error: ${e.message}\n`));
  await page.goto(server.url);
  await page.waitForSelector('body[data-state="ready"]', { timeout: 30_000 });
});

after(async () => {
  await context?.close();
  await server?.close();
});

test("the page loads the served model and states its parameters and file size", { skip: SKIP }, async () => {
  const text = (id: string) => page.textContent(id).then((t) => t ?? "");
  assert.equal(await text("#model-name"), "resnet20");
  const params = JSON.parse(fs.readFileSync(path.join(runDir, "config.json"), "utf8")).parameters as number;
  assert.match(await text("#model-params"), new RegExp(`^${params.toLocaleString("en-US")} \\(`));
  const served = await fetch(new URL("model.onnx", server?.url)).then((r) => r.arrayBuffer());
  assert.match(await text("#model-size"), new RegExp(`\\(${served.byteLength.toLocaleString("en-US")} bytes\\)`));
  assert.equal(await text("#model-input-shape"), "grayscale 28×28, normalization in the graph");
});

test(
  "top-1 and probabilities on real Fashion-MNIST test images equal budgetnet predict's",
  { skip: SKIP },
  async () => {
    assert.equal(images.length, PER_CLASS * CLASSES_USED);
    let correct = 0;
    for (const file of images) {
      const shown = await classifyOnPage(file);
      assertAgrees(file, shown);
      if (path.basename(file).endsWith(`${shown[0]?.name.replace(/[^\w.-]/g, "_")}.png`)) correct++;
    }
    process.stderr.write(`# page test: ${correct}/${images.length} test images classified correctly after 100 steps\n`);
    await page.screenshot({ path: path.join(os.tmpdir(), "budgetnet-web-page.png"), fullPage: true });
  },
);

test(
  "a model without normalization in the graph, opened in the page, gives the same answers",
  { skip: SKIP },
  async () => {
    const plain = path.join(path.dirname(runDir), "plain.onnx");
    const write = process.stdout.write;
    process.stdout.write = (() => true) as typeof process.stdout.write;
    try {
      assert.equal(exportCommand.run(parseArgs(["--run", runDir, "--out", plain], exportCommand)), 0);
    } finally {
      process.stdout.write = write;
    }
    await page.setInputFiles("#model-input", plain);
    await page.locator("#model-status", { hasText: "Ready: plain.onnx" }).waitFor();
    assert.equal(await page.textContent("#model-input-shape"), "grayscale 28×28");
    for (const file of images.slice(0, 3)) assertAgrees(file, await classifyOnPage(file));
  },
);

test("a file that is not an image shows a clear error", { skip: SKIP }, async () => {
  const file = path.join(path.dirname(runDir), "notes.txt");
  fs.writeFileSync(file, "not an image\n");
  await page.setInputFiles("#image-input", file);
  await page.waitForSelector('body[data-state="error"]');
  assert.match((await page.textContent("#error")) ?? "", /"notes\.txt" is not an image this browser can decode/);
  assert.equal(await page.isVisible("#result"), false);
});

test("a model that fails to load shows a clear error and the page keeps working", { skip: SKIP }, async () => {
  const bogus = path.join(path.dirname(runDir), "broken.onnx");
  fs.writeFileSync(bogus, "this is not a model\n");
  await page.setInputFiles("#model-input", bogus);
  await page.waitForSelector('body[data-state="error"]');
  assert.match((await page.textContent("#error")) ?? "", /broken\.onnx is not an ONNX model/);
  // The previously loaded model still classifies.
  assertAgrees(images[0] as string, await classifyOnPage(images[0] as string));

  const missing = await context?.newPage();
  assert.ok(missing);
  await missing.goto(new URL("?model=missing.onnx", server?.url).href);
  await missing.waitForSelector('body[data-state="error"]');
  assert.match((await missing.textContent("#error")) ?? "", /could not fetch the model at missing\.onnx: HTTP 404/);
  await missing.close();
});
