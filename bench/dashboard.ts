// `npm run bench -- dashboard`: is the dashboard fast where TensorBoard, Aim and MLflow are slow?
// Generates a tree of run folders (default 1,000 runs of 10,000 journaled steps each, ~1.4 GB,
// kept in the temp folder and reused by later runs), starts the dashboard on it and measures in
// headless Chromium (/usr/bin/chromium through playwright-core):
//   listen   the server's start: the walk of the tree, config.json of every run, and the
//            journals that fit in its first 300 ms (the rest are read between requests)
//   indexed  until every journal has been read once (the table's rows complete)
//   table    a fresh page load until the runs table is drawn (target < 1 s); once while the
//            journals are still being read, then in rounds after
//   fetch/build: the page's own split of an overlay (its request vs building the charts)
//   overlay  10 runs' curves (4 charts) drawn, from the hash change until the charts are built;
//            cold: runs whose journals the server has not parsed yet (target < 0.5 s); warm: again
// Medians over rounds; writes bench/results/dashboard.json. There is no peer to run offline
// (TensorBoard is not installed here); the issue's anchors are the targets.
//
//   npm run bench -- dashboard [--runs 1000] [--steps 10000] [--log-every 1] [--rounds 5]
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { startDashboard } from "../src/dashboard/server";
import { parseBenchArgs } from "./args";
import { writeResult } from "./results";
import { median } from "./stats";

const FLAGS = {
  runs: { type: "integer", valueName: "N", min: 10, default: 1000, description: "run folders in the tree" },
  steps: { type: "integer", valueName: "N", min: 100, default: 10_000, description: "training steps per run" },
  "log-every": { type: "integer", valueName: "N", min: 1, default: 1, description: "a journal line every N steps" },
  "steps-per-epoch": { type: "integer", valueName: "N", min: 10, default: 100, description: "steps per epoch" },
  rounds: { type: "integer", valueName: "N", min: 1, default: 5, description: "measurements of each kind" },
  dir: { type: "string", valueName: "DIR", description: "where the tree is (made there if missing)" },
} as const;
const CHROMIUM = "/usr/bin/chromium";
const OVERLAY = 10;

interface TreeShape {
  runs: number;
  steps: number;
  logEvery: number;
  stepsPerEpoch: number;
}

/** Writes the tree unless a finished one of this shape is there; returns its size in bytes. */
function makeTree(dir: string, shape: TreeShape): number {
  const marker = path.join(dir, ".bench-tree.json");
  if (fs.existsSync(marker) && fs.readFileSync(marker, "utf8") === JSON.stringify(shape))
    return JSON.parse(fs.readFileSync(path.join(dir, ".bench-bytes"), "utf8")) as number;
  fs.rmSync(dir, { recursive: true, force: true });
  const started = Date.now();
  let bytes = 0;
  const t0 = Date.parse("2025-01-01T00:00:00Z");
  for (let r = 0; r < shape.runs; r++) {
    const run = path.join(
      dir,
      `group${String(Math.floor(r / 100)).padStart(2, "0")}`,
      `run${String(r).padStart(4, "0")}`,
    );
    fs.mkdirSync(run, { recursive: true });
    const config = {
      recipe: {
        name: `bench-${r % 20}`,
        dataset: "cifar10",
        model: "resnet20",
        epochs: shape.steps / shape.stepsPerEpoch,
        batchSize: 128,
        seed: r,
        lr: 0.05 + (r % 20) * 0.01,
      },
      model: { name: "resnet20", options: { numClasses: 10 } },
      parameters: 272_474,
      data: {
        dataset: "cifar10",
        train: shape.stepsPerEpoch * 128,
        val: 5000,
        numClasses: 10,
        classNames: [...Array(10).keys()].map(String),
        imageShape: [3, 32, 32],
        mean: [0.5, 0.5, 0.5],
        std: [0.25, 0.25, 0.25],
      },
      seed: r,
    };
    fs.writeFileSync(path.join(run, "config.json"), JSON.stringify(config));
    const chunks: string[] = [];
    const rate = 0.5 + (r % 13) / 13;
    for (let step = 1; step <= shape.steps; step++) {
      const time = new Date(t0 + step * 40).toISOString();
      const epoch = Math.floor((step - 1) / shape.stepsPerEpoch);
      if (step % shape.logEvery === 0) {
        const loss = 2.3 * Math.exp((-rate * step) / shape.steps) + 0.05 * Math.sin(step * 0.37 + r);
        chunks.push(
          `{"time":"${time}","type":"step","epoch":${epoch},"step":${step},"loss":${loss},"lr":${0.1 * (1 - step / shape.steps)},"imagesPerSec":${3000 + (step % 97)}}\n`,
        );
      }
      if (step % shape.stepsPerEpoch === 0) {
        const acc = 0.95 - 0.85 * Math.exp((-rate * 3 * step) / shape.steps);
        chunks.push(
          `{"time":"${time}","type":"epoch","epoch":${epoch},"trainLoss":0.5,"trainAccuracy":${acc + 0.02},"valLoss":0.4,"valAccuracy":${acc},"lr":0.1,"imagesPerSec":3000,"seconds":4}\n`,
        );
      }
    }
    const text = chunks.join("");
    bytes += Buffer.byteLength(text);
    fs.writeFileSync(path.join(run, "metrics.jsonl"), text);
    fs.writeFileSync(path.join(run, "model.safetensors"), "");
    if (r % 100 === 99) process.stdout.write(`  wrote ${r + 1}/${shape.runs} runs (${(bytes / 1e9).toFixed(2)} GB)\r`);
  }
  fs.writeFileSync(path.join(dir, ".bench-bytes"), String(bytes));
  fs.writeFileSync(marker, JSON.stringify(shape));
  console.log(`\n  tree written in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return bytes;
}

export async function main(argv: string[]): Promise<void> {
  const o = parseBenchArgs("dashboard", FLAGS, argv);
  if (o === undefined) return;
  if (!fs.existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: install Debian's chromium package.`);
  const shape = { runs: o.runs, steps: o.steps, logEvery: o["log-every"], stepsPerEpoch: o["steps-per-epoch"] };
  const dir = o.dir ?? path.join(os.tmpdir(), `budgetnet-bench-dashboard-${o.runs}x${o.steps}-${o["log-every"]}`);
  console.log(`dashboard bench: ${o.runs} runs x ${o.steps} steps (a line every ${o["log-every"]}) in ${dir}`);
  const bytes = makeTree(dir, shape);
  const { chromium } = await import("playwright-core");
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", "--disable-gpu"] });
  const indexStart = performance.now();
  const dash = await startDashboard({ roots: [dir], pollMs: 1000 });
  const listenMs = performance.now() - indexStart;
  console.log(
    `  listening after ${listenMs.toFixed(0)} ms: ${dash.catalog.runs.size} runs, ${(bytes / 1e9).toFixed(2)} GB of journals, ${dash.catalog.pendingCount} still to read`,
  );
  const ids = [...dash.catalog.runs.keys()].sort();
  const tableMs: number[] = [];
  const coldMs: number[] = [];
  const warmMs: number[] = [];
  const fetchMs: { cold: number[]; warm: number[] } = { cold: [], warm: [] };
  const buildMs: { cold: number[]; warm: number[] } = { cold: [], warm: [] };
  let tableWhileIndexingMs = Number.NaN;
  let indexedMs = Number.NaN;
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    const t0 = performance.now();
    await page.goto(`${dash.url}#runs`);
    await page.waitForSelector('#view-runs[data-ready="true"]', { timeout: 60_000 });
    tableWhileIndexingMs = performance.now() - t0;
    console.log(
      `  table while indexing: ${tableWhileIndexingMs.toFixed(0)} ms (${dash.catalog.pendingCount} journals still to read)`,
    );
    while (dash.catalog.pendingCount > 0) await new Promise((r) => setTimeout(r, 20));
    indexedMs = performance.now() - indexStart;
    console.log(`  every journal read ${indexedMs.toFixed(0)} ms after the start`);
    for (let round = 0; round < o.rounds; round++) {
      const t = performance.now();
      await page.goto(`${dash.url}#runs`);
      await page.waitForSelector('#view-runs[data-ready="true"]', { timeout: 60_000 });
      tableMs.push(performance.now() - t);
      const chosen = ids.slice((round * OVERLAY) % ids.length, ((round * OVERLAY) % ids.length) + OVERLAY);
      for (const [kind, out] of [
        ["cold", coldMs],
        ["warm", warmMs],
      ] as const) {
        await page.evaluate(`location.hash = "#runs"`);
        await page.waitForSelector('#view-runs[data-ready="true"]:not([hidden])');
        const t1 = performance.now();
        await page.evaluate(
          `location.hash = ${JSON.stringify(`#curves?runs=${chosen.map(encodeURIComponent).join(",")}`)}`,
        );
        await page.waitForSelector('#view-curves[data-ready="true"]:not([hidden])', { timeout: 60_000 });
        out.push(performance.now() - t1);
        const points = await page.getAttribute('#curves-grid .chart[data-panel="loss"]', "data-points");
        // the page's own measure: from its first request for the curves to the charts built
        const inPage = await page.getAttribute("#view-curves", "data-load-ms");
        fetchMs[kind].push(Number(await page.getAttribute("#view-curves", "data-fetch-ms")));
        buildMs[kind].push(Number(await page.getAttribute("#view-curves", "data-build-ms")));
        console.log(
          `  round ${round + 1} ${kind}: overlay of ${chosen.length} runs (${points} loss points drawn) ${out[out.length - 1]?.toFixed(0)} ms (in page: ${inPage} ms)`,
        );
      }
      console.log(`  round ${round + 1}: table ${tableMs[round]?.toFixed(0)} ms`);
    }
  } finally {
    await browser.close();
    await dash.close();
  }
  const record = {
    runs: o.runs,
    steps: o.steps,
    logEvery: o["log-every"],
    journalBytes: bytes,
    listenMs: Math.round(listenMs),
    indexedMs: Math.round(indexedMs),
    tableWhileIndexingMs: Math.round(tableWhileIndexingMs),
    pageFetchMs: { cold: Math.round(median(fetchMs.cold)), warm: Math.round(median(fetchMs.warm)) },
    pageBuildMs: { cold: Math.round(median(buildMs.cold)), warm: Math.round(median(buildMs.warm)) },
    loadAverage: os.loadavg().map((x) => Math.round(x * 100) / 100),
    tableMs: { median: Math.round(median(tableMs)), all: tableMs.map(Math.round), target: 1000 },
    overlayColdMs: { median: Math.round(median(coldMs)), all: coldMs.map(Math.round), target: 500 },
    overlayWarmMs: { median: Math.round(median(warmMs)), all: warmMs.map(Math.round), target: 500 },
    cpus: os.cpus().length,
    node: process.version,
    date: new Date().toISOString(),
  };
  console.log(
    `table ${record.tableMs.median} ms (target < 1000), overlay cold ${record.overlayColdMs.median} ms, warm ${record.overlayWarmMs.median} ms (target < 500); listening after ${record.listenMs} ms, every journal read after ${record.indexedMs} ms; load average ${record.loadAverage.join(" ")}`,
  );
  writeResult(path.join("bench", "results", "dashboard.json"), record);
}
