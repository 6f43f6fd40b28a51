// The dashboard end to end in headless Chromium (Debian's /usr/bin/chromium through
// playwright-core): a run trained by the test appears and its curve grows while it trains; runs
// overlaid and seed-grouped; the confusion matrix equals `budgetnet eval --json`'s; the model,
// search, ablation and inference views; corrupt and half-written folders never break the page.
// Each view's screenshot is saved (path printed) and checked not blank.
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, test } from "node:test";
import type { BrowserContext, Page } from "playwright-core";
import { applyOverrides, loadRecipe, trainRecipe } from "../../src";
import { parseArgs } from "../../src/cli/args";
import { evalCommand } from "../../src/cli/eval";
import { type Dashboard, startDashboard } from "../../src/dashboard/server";
import { Progress } from "../../src/train/metrics";
import { tempDir } from "../helpers";
import { writeFakeAblation, writeFakeRun, writeFakeSearch } from "./fixtures";

const CHROMIUM = "/usr/bin/chromium";
const SKIP = fs.existsSync(CHROMIUM) ? false : `${CHROMIUM} is missing: install Debian's chromium package`;
const ARTIFACTS = path.join(os.tmpdir(), "budgetnet-dashboard-screenshots");
const BIN = path.join(__dirname, "..", "..", "..", "bin", "budgetnet.js");
/** A short, real training run: Fashion-MNIST, ResNet-20, fp32, one thread. */
const TINY = {
  epochs: "1",
  "train-subset": "2048",
  "val-subset": "256",
  "batch-size": "64",
  precision: "fp32",
  "schedule.type": "constant",
  "optimizer.lr": "0.05",
  threads: "1",
  "log-every": "2",
};

const silent = new Progress({ write: () => true, isTTY: false } as unknown as NodeJS.WriteStream, 1e9);
let root = "";
let dash: Dashboard | undefined;
let context: BrowserContext | undefined;
let page: Page;
const pageErrors: string[] = [];
let live: ChildProcess | undefined;

async function open(hash: string, view: string, timeout = 30_000): Promise<void> {
  await page.evaluate(`location.hash = ${JSON.stringify(hash)}`);
  await page.waitForSelector(`#view-${view}[data-ready="true"]:not([hidden])`, { timeout });
}

/** Saves the page's screenshot and checks it is not blank (many colours, much non-background). */
async function screenshot(name: string): Promise<void> {
  const file = path.join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  const sharp = (await import("sharp")).default;
  const { data, info } = await sharp(file).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  const colours = new Set<number>();
  let ink = 0;
  for (let i = 0; i < data.length; i += 3) {
    const [r, g, b] = [data[i] as number, data[i + 1] as number, data[i + 2] as number];
    colours.add((r << 16) | (g << 8) | b);
    if (r + g + b < 600) ink++;
  }
  assert.ok(colours.size > 20, `${file} looks blank: ${colours.size} colours`);
  assert.ok(ink / (info.width * info.height) > 0.003, `${file} looks blank: ${ink} dark pixels`);
  process.stderr.write(`# dashboard screenshot: ${file}\n`);
}

before(async () => {
  if (SKIP) return;
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  root = path.join(tempDir("budgetnet-dashboard-page-"), "runs");
  const started = Date.now();
  await trainRecipe(applyOverrides(loadRecipe("fashion-mnist-quick"), TINY), {
    runDir: path.join(root, "real"),
    handleSignals: false,
    progress: silent,
  });
  process.stderr.write(
    `# dashboard page test: trained the real run in ${((Date.now() - started) / 1000).toFixed(1)} s\n`,
  );
  writeFakeRun(path.join(root, "fake-a"), { finished: true, seed: 1, logPerEpoch: 50 });
  writeFakeRun(path.join(root, "fake-b"), { finished: true, seed: 2, logPerEpoch: 50 });
  fs.mkdirSync(path.join(root, "corrupt"));
  fs.writeFileSync(path.join(root, "corrupt", "config.json"), "{ this is not json");
  fs.writeFileSync(path.join(root, "corrupt", "metrics.jsonl"), '\u0000\u0001 binary junk\n{"type":"step","step":');
  writeFakeRun(path.join(root, "half"), { epochsDone: 1 });
  fs.appendFileSync(path.join(root, "half", "metrics.jsonl"), '{"time":"2025-01-01T01:00:00Z","type":"st');
  writeFakeSearch(path.join(root, "search1"), [
    { params: 1e5, macs: 1e7, acc: 0.8 },
    { params: 3e5, macs: 4e7, acc: 0.9 },
    { params: 2e5, macs: 2e7, acc: 0.85 },
    { params: 4e5, macs: 5e7, acc: null },
  ]);
  writeFakeAblation(path.join(root, "ablate-done"), true);
  writeFakeAblation(path.join(root, "ablate-new"), false);
  dash = await startDashboard({ roots: [root], pollMs: 200, rescanMs: 300 });
  const { chromium } = await import("playwright-core");
  context = await chromium.launchPersistentContext(fs.mkdtempSync(path.join(os.tmpdir(), "budgetnet-chromium-")), {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1400, height: 1000 },
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
  });
  page = context.pages()[0] ?? (await context.newPage());
  page.on("pageerror", (e) => pageErrors.push(e.message));
  await page.goto(dash.url);
  await page.waitForSelector('body[data-state="ready"]', { timeout: 30_000 });
});

after(async () => {
  live?.kill("SIGKILL");
  await context?.close();
  await dash?.close();
});

test(
  "a training run started by the test appears in the table and its curve grows while it trains",
  { skip: SKIP },
  async () => {
    const dir = path.join(root, "live");
    const flags = Object.entries({ ...TINY, epochs: "2", "log-every": "1" }).flatMap(([k, v]) => [`--${k}`, v]);
    live = spawn(process.execPath, [BIN, "train", "--recipe", "fashion-mnist-quick", ...flags, "--out", dir], {
      stdio: "ignore",
      env: { ...process.env, BUDGETNET_THREADS: "1", BUDGETNET_PLAIN: "1" },
    });
    const exited = new Promise<number | null>((resolve) => live?.on("exit", resolve));
    await open("#runs", "runs");
    await page.waitForSelector('#runs-table tr[data-id="live"]', { timeout: 30_000 });
    await page.waitForSelector('#runs-table tr[data-id="live"] .status.running', { timeout: 30_000 });
    await page.click('#runs-table tr[data-id="live"] input[type="checkbox"]');
    await open("#curves?runs=live", "curves");
    const points = async () => Number(await page.getAttribute('#curves-grid .chart[data-panel="loss"]', "data-points"));
    const first = await points();
    // polled from here: the page's CSP (no eval) refuses playwright's waitForFunction
    const until = Date.now() + 60_000;
    while ((await points()) <= first + 3) {
      assert.ok(Date.now() < until, `the curve did not grow past ${first + 3} points within a minute`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const grown = await points();
    assert.ok(grown > first, `the curve grew from ${first} to ${grown} points while the run trained`);
    await screenshot("curves-live");
    assert.equal(await exited, 0, "the live run finished");
    await open("#runs", "runs");
    await page.waitForSelector('#runs-table tr[data-id="live"] .status.finished', { timeout: 15_000 });
    await screenshot("runs");
  },
);

test("two runs overlaid, and two seeds of one recipe as their mean with a band", { skip: SKIP }, async () => {
  await open("#curves?runs=real,fake-a", "curves");
  assert.equal(await page.getAttribute("#view-curves", "data-runs"), "2");
  const lossSeries = Number(await page.getAttribute('#curves-grid .chart[data-panel="loss"]', "data-series"));
  assert.equal(lossSeries, 4, "train and val loss of each run");
  assert.equal(await page.locator("#curves-grid canvas").count(), 4);
  await screenshot("curves-overlay");
  await open("#curves?runs=fake-a,fake-b", "curves");
  assert.equal(await page.getAttribute("#view-curves", "data-runs"), "1", "the two seeds are one group");
  assert.match((await page.textContent("#curves-legend")) ?? "", /\(2 seeds\)/);
  await screenshot("curves-seed-group");
});

test(
  "the evaluation view's confusion matrix equals budgetnet eval --json for the same run",
  { skip: SKIP },
  async () => {
    const write = process.stdout.write;
    let out = "";
    process.stdout.write = ((chunk: string) => {
      out += chunk;
      return true;
    }) as typeof process.stdout.write;
    try {
      assert.equal(await evalCommand.run(parseArgs(["--run", path.join(root, "real"), "--json"], evalCommand)), 0);
    } finally {
      process.stdout.write = write;
    }
    const expected = JSON.parse(out) as { confusion: number[][]; accuracy: number };
    await open("#evaluation?runs=real", "evaluation", 120_000);
    const shown = JSON.parse((await page.getAttribute("#confusion", "data-matrix")) ?? "null") as number[][];
    assert.deepEqual(shown, expected.confusion);
    assert.equal(Number(await page.getAttribute("#view-evaluation", "data-accuracy")), expected.accuracy);
    assert.equal(await page.locator("#per-class tbody tr").count(), 10);
    const wrong =
      expected.confusion.flat().reduce((a, b) => a + b, 0) -
      expected.confusion.reduce((a, r, i) => a + (r[i] as number), 0);
    const gallery = page.locator("#gallery figure");
    assert.equal(await gallery.count(), Math.min(48, wrong));
    if (wrong > 0) {
      const size = await page.evaluate(
        `(() => { const img = document.querySelector("#gallery img"); return [img.naturalWidth, img.naturalHeight]; })()`,
      );
      assert.deepEqual(size, [28, 28], "the misclassified images are Fashion-MNIST's, decoded");
    }
    await screenshot("evaluation");
  },
);

test("the model view lists every layer and draws the blocks", { skip: SKIP }, async () => {
  await open("#model?runs=real", "model", 60_000);
  const params = JSON.parse(fs.readFileSync(path.join(root, "real", "config.json"), "utf8")).parameters as number;
  assert.match((await page.textContent("#layer-table tfoot")) ?? "", new RegExp(params.toLocaleString("en-US")));
  assert.ok((await page.locator("#layer-table tbody tr").count()) > 20);
  assert.ok((await page.locator("#block-graph rect.residual").count()) >= 9, "ResNet-20's nine residual blocks");
  await screenshot("model");
});

test("the search and ablation views list a small study's trials and cells", { skip: SKIP }, async () => {
  await open("#search", "search");
  assert.equal(await page.getAttribute("#view-search", "data-trials"), "4");
  assert.equal(await page.locator("#pareto circle.trial").count(), 3, "the three finished trials");
  assert.equal(await page.locator("#trials-table tbody tr").count(), 4);
  await screenshot("search");
  await page.click('#pareto circle.trial[data-trial="1"]');
  await page.waitForSelector('#view-curves[data-ready="true"]:not([hidden])');
  assert.match(page.url(), /runs=search1%2Ftrials%2Ft0001-r0|runs=search1\/trials\/t0001-r0/);
  await open("#ablation?study=ablate-done", "ablation");
  assert.equal(await page.locator("#ablation-table td.ab-cell").count(), 8);
  assert.equal(await page.getAttribute("#view-ablation", "data-cells"), "8");
  await screenshot("ablation");
  await open("#ablation?study=ablate-new", "ablation");
  assert.match((await page.textContent("#ablation-missing")) ?? "", /no report yet — run budgetnet ablate report/);
});

test("corrupt and half-written run folders are shown as such and never break the page", { skip: SKIP }, async () => {
  await open("#runs", "runs");
  await page.waitForSelector('#runs-table tr[data-id="corrupt"] .status.corrupt');
  assert.ok(await page.locator('#runs-table tr[data-id="half"] .warn').count());
  for (const [hash, view] of [
    ["#curves?runs=corrupt,half", "curves"],
    ["#evaluation?runs=corrupt", "evaluation"],
    ["#model?runs=corrupt", "model"],
    ["#evaluation?runs=half", "evaluation"],
  ] as const) {
    await open(hash, view, 60_000);
  }
  assert.match((await page.textContent("#view-evaluation")) ?? "", /Cannot evaluate half/);
  await open("#runs", "runs");
  assert.deepEqual(pageErrors, [], "no uncaught error on the page");
});

test("the inference view classifies with the selected run's model", { skip: SKIP }, async () => {
  await open("#inference?runs=real", "inference");
  const frame = page.frameLocator("#inference-frame");
  await frame.locator('body[data-state="ready"]').waitFor({ timeout: 60_000 });
  assert.equal(await frame.locator("#model-name").textContent(), "resnet20");
  await screenshot("inference");
  assert.deepEqual(pageErrors, [], "no uncaught error on the page");
});
