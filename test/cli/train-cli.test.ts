// train → eval → predict → export as a user runs them, on a slice of the real Fashion-MNIST.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import * as ort from "onnxruntime-node";
import sharp from "sharp";
import { exportForWeb } from "../../src/cli/serve";
import { loadDataset } from "../../src/data";
import { planAvailable } from "../../src/perf/plan";
import { checkNoLeaks, tempDir } from "../helpers";

checkNoLeaks();

const BIN = path.resolve(__dirname, "../../../bin/budgetnet.js");
const env = { ...process.env, BUDGETNET_THREADS: "1", BUDGETNET_PLAIN: "1" };

function run(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: "utf8", env });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const SMALL = ["--train-subset", "600", "--val-subset", "200", "--epochs", "1", "--batch-size", "50", "--threads", "1"];

test("train, eval, predict and export a run from the command line", async () => {
  const dir = path.join(tempDir(), "run");
  const t = run("train", "--recipe", "fashion-mnist-quick", "--out", dir, ...SMALL, "--json");
  assert.equal(t.status, 0, t.stderr);
  const result = JSON.parse(t.stdout) as { status: string; steps: number };
  assert.equal(result.status, "completed");
  assert.equal(result.steps, 12);

  const e = run("eval", "--run", dir, "--split", "val", "--json");
  assert.equal(e.status, 0, e.stderr);
  const ev = JSON.parse(e.stdout) as { n: number; accuracy: number; confusion: number[][]; perClass: unknown[] };
  assert.equal(ev.n, 200);
  assert.equal(ev.confusion.length, 10);
  assert.equal(
    ev.confusion.flat().reduce((a, b) => a + b, 0),
    200,
  );
  assert.equal(ev.perClass.length, 10);
  // the fused float32 plan (default where the addon has it) and libtorch give the same evaluation
  const el = run("eval", "--run", dir, "--split", "val", "--json", "--engine", "libtorch");
  assert.equal(el.status, 0, el.stderr);
  const evl = JSON.parse(el.stdout) as { accuracy: number; loss: number; engine: string };
  assert.equal((ev as unknown as { engine: string }).engine, planAvailable() ? "plan" : "libtorch");
  assert.equal(evl.engine, "libtorch");
  assert.equal(ev.accuracy, evl.accuracy);
  assert.ok(Math.abs((ev as unknown as { loss: number }).loss - evl.loss) < 1e-4);
  const badEngine = run("eval", "--run", dir, "--engine", "gpu");
  assert.notEqual(badEngine.status, 0);
  assert.match(badEngine.stderr, /--engine must be auto, plan or libtorch/);

  // Two real test images as PNG files.
  const test = loadDataset("fashion-mnist", { split: "test" });
  const files: string[] = [];
  for (const i of [0, 1]) {
    const f = path.join(dir, `img${i}.png`);
    await sharp(Buffer.from(test.images.subarray(i * 784, (i + 1) * 784)), {
      raw: { width: 28, height: 28, channels: 1 },
    })
      .png()
      .toFile(f);
    files.push(f);
  }
  const p = run("predict", "--run", dir, "--top-k", "3", "--json", ...files);
  assert.equal(p.status, 0, p.stderr);
  const preds = JSON.parse(p.stdout) as {
    file: string;
    top: { class: string; index: number; probability: number }[];
  }[];
  assert.equal(preds.length, 2);
  for (const pr of preds) {
    assert.equal(pr.top.length, 3);
    assert.ok(pr.top[0]!.probability >= pr.top[1]!.probability);
    assert.ok(test.classNames.includes(pr.top[0]!.class));
  }
  const pl = run("predict", "--run", dir, "--top-k", "3", "--json", "--engine", "libtorch", ...files);
  assert.equal(pl.status, 0, pl.stderr);
  const predsLibtorch = JSON.parse(pl.stdout) as typeof preds;
  preds.forEach((pr, i) => {
    assert.equal(pr.top[0]!.class, predsLibtorch[i]!.top[0]!.class);
    assert.ok(Math.abs(pr.top[0]!.probability - predsLibtorch[i]!.top[0]!.probability) < 1e-4);
  });

  // the int8 quantization classifies the same images (the int8 plan where built)
  const q = run("quantize", "--run", dir, "--calibration", "256");
  assert.equal(q.status, 0, q.stderr);
  const pi = run("predict", "--run", dir, "--top-k", "3", "--json", "--int8", ...files);
  assert.equal(pi.status, 0, pi.stderr);
  const predsInt8 = JSON.parse(pi.stdout) as typeof preds;
  assert.equal(predsInt8.length, 2);
  for (const pr of predsInt8) assert.ok(test.classNames.includes(pr.top[0]!.class) && pr.top[0]!.probability > 0);
  // serve --int8's model: the same quantization as QDQ ONNX taking [0, 1] pixels, in onnxruntime
  const web = path.join(dir, "web.int8.onnx");
  exportForWeb(dir, "best", web, path.join(dir, "int8"));
  const session = await ort.InferenceSession.create(web);
  for (const [i, pr] of predsInt8.entries()) {
    const pixels = Float32Array.from(test.images.subarray(i * 784, (i + 1) * 784), (v) => v / 255);
    const out = await session.run({
      [session.inputNames[0] as string]: new ort.Tensor("float32", pixels, [1, 1, 28, 28]),
    });
    const logits = Array.from(out[session.outputNames[0] as string]?.data as Float32Array);
    // the same quantization up to rounding: each of the plan's top-3 probabilities within 0.02, and
    // the same top class unless the plan's first two are a near-tie (under 0.01 apart) that the
    // rounding may flip (a 12-step model's probabilities are nearly flat)
    const z = logits.map((v) => Math.exp(v - Math.max(...logits)));
    const probs = z.map((v) => v / z.reduce((a, b) => a + b, 0));
    for (const t of pr.top)
      assert.ok(
        Math.abs((probs[t.index] as number) - t.probability) < 0.02,
        `image ${i}, ${t.class}: ${probs[t.index]} vs ${t.probability}`,
      );
    const onnxTop = test.classNames[logits.indexOf(Math.max(...logits))];
    if (onnxTop !== pr.top[0]!.class) {
      assert.equal(onnxTop, pr.top[1]!.class, `image ${i}`);
      assert.ok(pr.top[0]!.probability - pr.top[1]!.probability < 0.01, `image ${i}: not a near-tie`);
    }
  }
  await session.release();
  const mixed = run("predict", "--run", dir, "--int8", "--engine", "libtorch", ...files);
  assert.notEqual(mixed.status, 0);
  assert.match(mixed.stderr, /--int8 chooses the int8 engine itself/);

  const onnx = path.join(dir, "model.onnx");
  const x = run("export", "--run", dir, "--format", "onnx", "--out", onnx, "--fold-bn");
  assert.equal(x.status, 0, x.stderr);
  assert.ok(fs.statSync(onnx).size > 100_000);

  const bad = run("predict", "--run", dir, path.join(dir, "config.json"));
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /could not read the image .*config\.json/);
});

test("Ctrl-C checkpoints the run and --resume finishes it", async () => {
  const dir = path.join(tempDir(), "sigint");
  const args = [
    BIN,
    "train",
    "--recipe",
    "fashion-mnist-quick",
    "--out",
    dir,
    ...SMALL,
    "--epochs",
    "3",
    "--log-every",
    "1",
  ];
  const child = spawn(process.execPath, args, { env, stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  await new Promise<void>((resolve) => {
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
      if (/step 2\//.test(stderr)) resolve();
    });
  });
  child.kill("SIGINT");
  assert.equal(await exited, 130, stderr);
  assert.match(stderr, /checkpoint saved\. Resume with --resume/);
  assert.ok(fs.existsSync(path.join(dir, "checkpoint.safetensors")));
  const r = run("train", "--out", dir, "--resume", "--json");
  assert.equal(r.status, 0, r.stderr);
  assert.equal((JSON.parse(r.stdout) as { status: string; epochs: number }).epochs, 3);
});

test("bad command lines fail with what to do", () => {
  const a = run("train", "--recipe", "fashion-mnist-quick", "--batch-sise", "2");
  assert.notEqual(a.status, 0);
  assert.match(a.stderr, /unknown recipe field "batchSise"\. Known fields: .*batchSize/);
  const b = run("train", "--recipe", "nope");
  assert.match(b.stderr, /unknown recipe "nope"\. Built-in recipes: /);
  const c = run("eval", "--run", "/nonexistent");
  assert.notEqual(c.status, 0);
  assert.match(c.stderr, /not a budgetnet run folder/);
  const d = run("data", "download", "imagenet");
  assert.equal(d.status, 2);
  assert.match(d.stderr, /unknown data set "imagenet"\. Known: cifar10, cifar100, fashion-mnist, mnist/);
  const e = run("train", "--resume");
  assert.match(e.stderr, /--resume needs --out DIR/);
});
