// --resume with another epoch count: continued exactly when the schedule does not depend on the
// run's length (and recorded in config.json), refused with the rates that would jump when it does.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import { loadSafetensors } from "../../src/export/safetensors";
import { maxAbsDiff } from "../../src/ops/math";
import { ArgumentError } from "../../src/tensor/errors";
import { applyOverrides, loadRecipe, type TrainConfig } from "../../src/train/config";
import { Progress, readMetrics } from "../../src/train/metrics";
import { train } from "../../src/train/trainer";
import { checkNoLeaks, tempDir } from "../helpers";

checkNoLeaks();

const quiet = { write: () => true, isTTY: false } as unknown as NodeJS.WriteStream;
const opts = { handleSignals: false, progress: new Progress(quiet) };

/** The demo recipe on 256 Fashion-MNIST images: 4 steps an epoch, float32, one thread. */
function small(overrides: Record<string, string>): TrainConfig {
  return applyOverrides(loadRecipe("fashion-mnist-quick"), {
    "train-subset": "256",
    "val-subset": "64",
    "batch-size": "64",
    threads: "1",
    precision: "fp32",
    "channels-last": "false",
    "log-every": "1",
    ...overrides,
  });
}

function readConfig(dir: string): {
  recipe: TrainConfig;
  resumes?: { epoch: number; step: number; changed: object }[];
} {
  return JSON.parse(fs.readFileSync(path.join(dir, "config.json"), "utf8"));
}

test("a one-cycle run resumed with more epochs is refused: its learning rate would jump back up", async () => {
  const dir = path.join(tempDir(), "onecycle");
  const cfg = small({ epochs: "2" });
  const first = await train(cfg, { runDir: dir, ...opts });
  assert.equal(first.status, "completed");
  const before = fs.readFileSync(path.join(dir, "config.json"), "utf8");
  const longer = applyOverrides(cfg, { epochs: "4" });
  await assert.rejects(
    train(longer, { runDir: dir, resume: true, ...opts }),
    (e: Error) =>
      e instanceof ArgumentError &&
      /--epochs 4 on resume: the run's onecycle schedule spreads the learning rate over all 2 epochs/.test(e.message) &&
      /continuing would move the rate from \S+ \(the last step\) to \S+/.test(e.message) &&
      /Leave --epochs out to finish the run's 2 epochs, or start a new run \(another --out\) with --epochs 4/.test(
        e.message,
      ),
  );
  assert.equal(fs.readFileSync(path.join(dir, "config.json"), "utf8"), before, "a refused resume changes nothing");
  // the jump the refusal names is real: the last lr trained is tiny, a 4-epoch schedule's at step 8 is not
  const lrs = readMetrics(path.join(dir, "metrics.jsonl"))
    .filter((m) => m.type === "step")
    .map((m) => m.lr as number);
  assert.ok((lrs[lrs.length - 1] as number) < 1e-3, `last lr ${lrs[lrs.length - 1]}`);
});

test("a constant-schedule run resumed with more epochs ends exactly as a run started with them, and config.json says so", async () => {
  const cfg = small({ epochs: "1", schedule: "constant", lr: "0.05" });
  const a = path.join(tempDir(), "extended");
  const b = path.join(tempDir(), "straight");
  await train(cfg, { runDir: a, ...opts });
  const extended = await train(applyOverrides(cfg, { epochs: "2" }), { runDir: a, resume: true, ...opts });
  assert.equal(extended.status, "completed");
  assert.equal(extended.epochs, 2);
  const straight = await train(applyOverrides(cfg, { epochs: "2" }), { runDir: b, ...opts });
  assert.equal(extended.steps, straight.steps);
  const wa = loadSafetensors(path.join(a, "model.safetensors")).tensors;
  const wb = loadSafetensors(path.join(b, "model.safetensors")).tensors;
  try {
    for (const [k, t] of wa) assert.equal(maxAbsDiff(t, wb.get(k)!), 0, `weights differ at ${k}`);
  } finally {
    for (const t of wa.values()) t.dispose();
    for (const t of wb.values()) t.dispose();
  }
  const config = readConfig(a);
  assert.equal(config.recipe.epochs, 2);
  assert.equal(config.resumes?.length, 1);
  assert.deepEqual(config.resumes?.[0]?.changed, { epochs: { from: 1, to: 2 } });
  assert.equal(config.resumes?.[0]?.epoch, 1);
  assert.equal(config.resumes?.[0]?.step, 4);
  // resuming again with the recorded count is a plain resume (nothing left to do, nothing recorded)
  const again = await train(applyOverrides(cfg, { epochs: "2" }), { runDir: a, resume: true, ...opts });
  assert.equal(again.steps, 8);
  assert.equal(readConfig(a).resumes?.length, 1);
});

test("fewer epochs than the run has already begun is refused, naming how many", async () => {
  const dir = path.join(tempDir(), "fewer");
  const cfg = small({ epochs: "3", schedule: "constant", lr: "0.05" });
  const stopped = await train(cfg, { runDir: dir, stopAfterSteps: 6, ...opts });
  assert.equal(stopped.status, "interrupted");
  await assert.rejects(
    train(applyOverrides(cfg, { epochs: "1" }), { runDir: dir, resume: true, ...opts }),
    /--epochs 1 on resume: the run has already begun 2 of its 3 epochs \(its checkpoint is at epoch 2, step 6\)\. Give --epochs 2 or more/,
  );
  const finished = await train(applyOverrides(cfg, { epochs: "2" }), { runDir: dir, resume: true, ...opts });
  assert.equal(finished.status, "completed");
  assert.equal(finished.steps, 8);
  assert.equal(readConfig(dir).recipe.epochs, 2);
});
