// `budgetnet train --data DIR` on an image folder nobody made a recipe for: its own defaults (no
// flips, float32, cosine), a run folder named after the folder and the model, a dry run that
// makes nothing, and `eval --tta` that will not add a mirrored view the run never trained on.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import sharp from "sharp";
import { loadRecipe } from "../../src/train/config";
import { checkNoLeaks, tempDir } from "../helpers";

checkNoLeaks();

const BIN = path.resolve(__dirname, "../../../bin/budgetnet.js");
const env = { ...process.env, BUDGETNET_THREADS: "1", BUDGETNET_PLAIN: "1" };

function run(cwd: string, ...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: "utf8", env, cwd });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A seeded generator of numbers in [0, 1) (a 32-bit LCG: enough for test pictures). */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const SIDE = 24;
const SHAPES = ["circle", "square", "triangle"] as const;

/** Whether pixel (x, y) is inside the shape centred at (cx, cy) with half-size r. */
function inside(shape: (typeof SHAPES)[number], x: number, y: number, cx: number, cy: number, r: number): boolean {
  const dx = x - cx;
  const dy = y - cy;
  if (shape === "circle") return dx * dx + dy * dy <= r * r;
  if (shape === "square") return Math.abs(dx) <= r && Math.abs(dy) <= r;
  return dy <= r && dy >= -r && Math.abs(dx) <= (dy + r) / 2; // apex up
}

/** shapes/{circle,square,triangle}/NN.png: 24x24 coloured shapes at random places, sizes and colours. */
async function writeShapeFolder(root: string, perClass: number): Promise<void> {
  const rand = lcg(7);
  for (const shape of SHAPES) {
    fs.mkdirSync(path.join(root, shape), { recursive: true });
    for (let i = 0; i < perClass; i++) {
      const pixels = Buffer.alloc(SIDE * SIDE * 3);
      const bg = [0, 1, 2].map(() => Math.floor(rand() * 60));
      const fg = [0, 1, 2].map(() => 120 + Math.floor(rand() * 136));
      const r = 5 + Math.floor(rand() * 4);
      const cx = r + 1 + Math.floor(rand() * (SIDE - 2 * r - 2));
      const cy = r + 1 + Math.floor(rand() * (SIDE - 2 * r - 2));
      for (let y = 0; y < SIDE; y++)
        for (let x = 0; x < SIDE; x++) {
          const c = inside(shape, x, y, cx, cy, r) ? fg : bg;
          pixels.set(c as number[], (y * SIDE + x) * 3);
        }
      const file = path.join(root, shape, `${String(i).padStart(2, "0")}.png`);
      await sharp(pixels, { raw: { width: SIDE, height: SIDE, channels: 3 } })
        .png()
        .toFile(file);
    }
  }
}

let shapesDir: string | undefined;
/** One folder of 3 classes x 30 images for every test in this file. */
async function shapes(): Promise<string> {
  if (shapesDir === undefined) {
    shapesDir = path.join(tempDir(), "shapes");
    await writeShapeFolder(shapesDir, 30);
  }
  return shapesDir;
}

interface RunConfigJson {
  recipe: {
    name: string;
    dataset: string;
    imageSize: number | null;
    epochs: number;
    precision: string;
    channelsLast: boolean;
    schedule: { type: string };
    augment: { flip?: boolean; crop?: { padding: number } | null };
    tta?: boolean;
  };
  model: { name: string; options: Record<string, unknown> };
  parameters: number;
  data: { imageShape: number[]; classNames: string[]; train: number; val: number };
}

test("the folder-default recipe: no flips, float32, cosine, resnet20, and a source that says why", () => {
  const r = loadRecipe("folder-default");
  assert.equal(r.dataset, "folder");
  assert.equal(r.model, "resnet20");
  assert.equal(r.augment.flip, false);
  assert.equal(r.precision, "fp32");
  assert.equal(r.channelsLast, false);
  assert.equal(r.schedule.type, "cosine");
  assert.equal(r.epochs, 15);
  assert.match(r.source, /No horizontal flips/);
});

test("train --data DIR: its own defaults, a run folder named after the folder, eval --tta refused without flips", async () => {
  const data = await shapes();
  const cwd = tempDir();
  const t = run(cwd, "train", "--data", data, "--image-size", "24", "--epochs", "2", "--batch-size", "16", "--json");
  assert.equal(t.status, 0, t.stderr);
  const result = JSON.parse(t.stdout) as { status: string; runDir: string; steps: number };
  assert.equal(result.status, "completed");
  // runs/<folder>-<model>-<time>, under the working folder
  assert.equal(path.dirname(result.runDir), path.join(fs.realpathSync(cwd), "runs"));
  assert.match(path.basename(result.runDir), /^shapes-resnet20-\d{4}-\d\d-\d\dT/);
  // the start line gives the model's size for this input
  assert.match(
    t.stderr,
    /budgetnet: training resnet20 \(272,\d{3} parameters, [\d.]+M MACs per 3x24x24 image\) on image folder .*shapes \(81 training images, 3 classes; recipe folder-default\)/,
  );
  const config = JSON.parse(fs.readFileSync(path.join(result.runDir, "config.json"), "utf8")) as RunConfigJson;
  assert.equal(config.recipe.name, "folder-default");
  assert.equal(config.recipe.dataset, "folder");
  assert.equal(config.recipe.augment.flip, false, "no flip carried over from the demo recipe");
  assert.equal(config.recipe.precision, "fp32");
  assert.equal(config.recipe.channelsLast, false);
  assert.equal(config.recipe.schedule.type, "cosine");
  assert.equal(config.recipe.augment.crop?.padding, 3, "crop padding 1/8 of the 24-pixel side");
  assert.deepEqual(config.data.imageShape, [3, 24, 24]);
  assert.deepEqual(config.data.classNames, ["circle", "square", "triangle"]);
  assert.equal(config.data.train + config.data.val, 90);
  assert.equal(result.steps, 2 * Math.floor(config.data.train / 16));

  const tta = run(cwd, "eval", "--run", result.runDir, "--split", "val", "--tta");
  assert.equal(tta.status, 2);
  assert.match(
    tta.stderr,
    /--tta averages each image with its mirror, but the run in .* trained without horizontal flips/,
  );
  const plain = run(cwd, "eval", "--run", result.runDir, "--split", "val", "--json");
  assert.equal(plain.status, 0, plain.stderr);
  const ev = JSON.parse(plain.stdout) as { n: number; tta: boolean };
  assert.equal(ev.n, config.data.val);
  assert.equal(ev.tta, false);
  // a recipe's tta needs flips too, refused before anything trains
  const ttaRecipe = run(cwd, "train", "--data", data, "--tta", "true", "--epochs", "1", "--dry-run");
  assert.equal(ttaRecipe.status, 2);
  assert.match(
    ttaRecipe.stderr,
    /recipe field tta averages each image with its mirror, which needs training with flips: set augment\.flip true, or tta false\. Received: tta=true/,
  );

  // summary --data gives the model this run trained
  const s = run(cwd, "summary", "--data", data, "--image-size", "24", "--json");
  assert.equal(s.status, 0, s.stderr);
  const sj = JSON.parse(s.stdout) as { params: number; inputShape: number[]; options: Record<string, unknown> };
  assert.equal(sj.params, config.parameters);
  assert.deepEqual(sj.inputShape, config.data.imageShape);
  assert.deepEqual(sj.options, config.model.options);
});

test("flips and flip TTA come with --augment.flip true; the recipe's tta validates with the mirror and is eval's default", async () => {
  const data = await shapes();
  const cwd = tempDir();
  const out = path.join(cwd, "flipped");
  const t = run(
    cwd,
    "train",
    "--data",
    data,
    "--out",
    out,
    "--epochs",
    "1",
    "--batch-size",
    "16",
    "--augment.flip",
    "true",
    "--tta",
    "true",
  );
  assert.equal(t.status, 0, t.stderr);
  const config = JSON.parse(fs.readFileSync(path.join(out, "config.json"), "utf8")) as RunConfigJson;
  assert.equal(config.recipe.augment.flip, true);
  assert.equal(config.recipe.tta, true);
  // the default 32x32 resize keeps the recipe's padding of 4 (1/8 of the side)
  assert.deepEqual(config.data.imageShape, [3, 32, 32]);
  assert.equal(config.recipe.augment.crop?.padding, 4);
  const evalVal = (...flags: string[]): { tta: boolean; accuracy: number } => {
    const e = run(cwd, "eval", "--run", out, "--split", "val", "--json", "--engine", "libtorch", ...flags);
    assert.equal(e.status, 0, e.stderr);
    return JSON.parse(e.stdout) as { tta: boolean; accuracy: number };
  };
  const both = run(cwd, "eval", "--run", out, "--split", "val", "--tta", "--no-tta");
  assert.equal(both.status, 2);
  assert.match(both.stderr, /--tta and --no-tta contradict each other/);
  const byRecipe = evalVal();
  assert.equal(byRecipe.tta, true, "eval takes the recipe's tta");
  assert.equal(evalVal("--tta").tta, true);
  assert.equal(evalVal("--no-tta").tta, false);
  // the epoch's validation ran with the mirror too: the journal's accuracy is eval's with tta
  const epoch = fs
    .readFileSync(path.join(out, "metrics.jsonl"), "utf8")
    .split("\n")
    .filter((l) => l.includes('"type":"epoch"'))
    .map((l) => JSON.parse(l) as { valAccuracy: number })
    .at(-1);
  assert.equal(epoch?.valAccuracy, byRecipe.accuracy);
});

test("train --data DIR --dry-run prints the config, the model's size and the data, and makes no run folder", async () => {
  const data = await shapes();
  const cwd = tempDir();
  const d = run(cwd, "train", "--data", data, "--model", "efficient_resnet", "--dry-run", "--json");
  assert.equal(d.status, 0, d.stderr);
  const plan = JSON.parse(d.stdout) as {
    dryRun: boolean;
    runDir: string;
    config: { model: string; dataset: string };
    model: { name: string; parameters: number; macs: number; method: string; options: Record<string, unknown> };
    data: { train: number; val: number; imageShape: number[]; numClasses: number; classNames: string[] };
  };
  assert.equal(plan.dryRun, true);
  assert.match(plan.runDir, /^runs[/\\]shapes-efficient_resnet-/);
  assert.equal(plan.config.dataset, "folder");
  assert.equal(plan.model.name, "efficient_resnet");
  assert.equal(plan.model.method, "analytic");
  assert.ok(plan.model.parameters > 4e6, `parameters ${plan.model.parameters}`);
  assert.equal(plan.model.options.imageSize, 32);
  assert.equal(plan.data.train + plan.data.val, 90);
  assert.deepEqual(plan.data.imageShape, [3, 32, 32]);
  assert.equal(plan.data.numClasses, 3);
  assert.deepEqual(fs.readdirSync(cwd), [], "a dry run creates nothing");
  const text = run(cwd, "train", "--data", data, "--dry-run");
  assert.equal(text.status, 0, text.stderr);
  assert.match(text.stdout, /^dry run: nothing was trained and no run folder was made/);
  assert.match(text.stdout, /^model: resnet20 \(272,\d{3} parameters, [\d.]+M MACs per 3x32x32 image\)/m);
  assert.match(text.stdout, /^data: folder \(shapes\): 81 training and 9 validation images/m);
  assert.match(text.stdout, /"flip": false/);
  assert.deepEqual(fs.readdirSync(cwd), []);
  const missing = run(cwd, "train", "--data", path.join(cwd, "nope"), "--dry-run");
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, /--data .*nope is not a folder/);
});
