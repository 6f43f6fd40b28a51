// The CUDA path: a model moved to the GPU (Module.to) computes what it computes on the CPU,
// forward and backward; CUDA autocast (bf16) leaves CPU autocast alone; the loader assembles
// batches for the GPU; the trainer runs, checkpoints, resumes and evaluates with device "cuda".
// These need the addon built against a CUDA libtorch on a machine with a GPU (docs/gpu.md) and
// skip elsewhere, saying so; the first tests (the refusals and the CPU half of Module.to) run everywhere.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import * as bn from "../../src";
import { DataLoader } from "../../src/data/loader";
import { createModel } from "../../src/models";
import { conv2d, crossEntropy } from "../../src/ops/nn";
import { to } from "../../src/ops/shape";
import { buildInfo } from "../../src/tensor/tensor";
import { applyOverrides, loadRecipe, type TrainConfig } from "../../src/train/config";
import { Progress } from "../../src/train/metrics";
import { loadRunModel } from "../../src/train/run";
import { train } from "../../src/train/trainer";
import { assertClose, checkNoLeaks, tempDir } from "../helpers";

checkNoLeaks();

const HAVE_CUDA = buildInfo().cuda;
const skip = HAVE_CUDA
  ? false
  : `the addon was built against ${buildInfo().torchVersion} without CUDA (or no GPU is visible)`;
const quiet = { write: () => true, isTTY: false } as unknown as NodeJS.WriteStream;

function smallConfig(overrides: Record<string, string> = {}): TrainConfig {
  return applyOverrides(loadRecipe("fashion-mnist-quick"), {
    "train-subset": "6144",
    "val-subset": "512",
    "batch-size": "128",
    epochs: "3",
    threads: "1",
    "log-every": "4",
    ...overrides,
  });
}

const values = (t: bn.Tensor): number[] =>
  Array.from(to(t, { device: "cpu", dtype: "float32" }).toArray() as ArrayLike<number>);

test("device: a recipe's device is checked, and cuda is refused with what to do where the addon has no CUDA", async () => {
  assert.throws(() => applyOverrides(loadRecipe("fashion-mnist-quick"), { device: "gpu" }), /device/);
  if (HAVE_CUDA) return;
  await assert.rejects(
    train(smallConfig({ device: "cuda" }), { runDir: path.join(tempDir(), "r"), handleSignals: false }),
    /device "cuda" asked for, but the budgetnet addon was built against a libtorch without CUDA.*--device cpu/s,
  );
});

test("Module.to checks its device, keeps the same tensors and reports where they are", () => {
  const model = createModel("resnet20", { inChannels: 1 });
  try {
    assert.equal(model.device, "cpu");
    const before = model.parameters();
    assert.equal(model.to("cpu"), model);
    assert.deepEqual(model.parameters(), before);
    assert.throws(() => model.to("gpu"), /Module.to: device must be "cpu", "cuda" or "cuda:N". Received: device="gpu"/);
  } finally {
    model.dispose();
  }
});

test("a model moved to cuda and back keeps its values, its tensor objects and their layout", { skip }, () => {
  const model = createModel("resnet20", { inChannels: 1 });
  try {
    bn.toChannelsLast(model);
    const params = model.parameters();
    const snapshot = params.map((p) => values(p));
    model.to("cuda");
    assert.match(model.device, /^cuda/);
    assert.ok(model.parameters().every((p, i) => p === params[i] && p.device.startsWith("cuda")));
    assert.ok(bn.isContiguous(params[0] as bn.Tensor, "channelsLast"), "channels-last survives the move");
    model.to("cpu");
    assert.equal(model.device, "cpu");
    for (const [i, p] of params.entries()) assert.deepEqual(values(p), snapshot[i]);
  } finally {
    model.dispose();
  }
});

test("resnet20 on cuda: logits and weight gradients match the cpu's", { skip }, () => {
  bn.manualSeed(3);
  const cpu = createModel("resnet20", { inChannels: 1 });
  const gpu = createModel("resnet20", { inChannels: 1 });
  try {
    gpu.loadStateDict(cpu.stateDict());
    gpu.to("cuda");
    bn.scope(() => {
      const x = bn.randn([8, 1, 28, 28]);
      const y = bn.tensor([0, 1, 2, 3, 4, 5, 6, 7], [8], { dtype: "int64" });
      const lc = crossEntropy(cpu.forward(x), y, { labelSmoothing: 0.1 });
      const lg = crossEntropy(gpu.forward(to(x, { device: "cuda" })), to(y, { device: "cuda" }), {
        labelSmoothing: 0.1,
      });
      // cuDNN may use TF32 for convolutions: agreement to about 1e-3, not bit for bit
      assertClose(values(lg), values(lc), 2e-3, 2e-3);
      lc.backward();
      lg.backward();
      const pc = cpu.parameters();
      const pg = gpu.parameters();
      // the stem's gradient has come back through all 19 layers: compared as a whole (relative
      // L2 error; TF32 and another summation order move single small elements by more)
      for (const i of [0, 1, pc.length - 2]) {
        const gc = values((pc[i] as bn.Tensor).grad as bn.Tensor);
        const gg = values((pg[i] as bn.Tensor).grad as bn.Tensor);
        const norm = (v: number[]) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));
        const rel = norm(gg.map((g, j) => g - (gc[j] as number))) / norm(gc);
        assert.ok(rel < 0.05, `parameter ${i}: relative L2 error of the gradient ${rel}`);
      }
      // the BatchNorm running statistics moved on the GPU as on the CPU
      const rc = values(cpu.stateDict().get("bn1.running_mean") as bn.Tensor);
      const rg = values(gpu.stateDict().get("bn1.running_mean") as bn.Tensor);
      assertClose(rg, rc, 1e-3, 1e-3);
    });
  } finally {
    cpu.dispose();
    gpu.dispose();
  }
});

test(
  "SGD's one-call step on cuda (foreach kernels) follows the cpu's trajectory; labels cross through pinned memory",
  { skip },
  () => {
    const shapes = [[16, 3, 3, 3], [16], [10, 16]];
    const init = shapes.map((s, j) => bn.scope(() => bn.randn(s).mul(0.5 + j)));
    const make = (device: "cpu" | "cuda") => init.map((t) => bn.scope(() => to(t, { device }).detach().requireGrad()));
    const [pc, pg] = [make("cpu"), make("cuda")];
    const opts = { lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 5e-4 };
    const oc = new bn.SGD([{ params: [pc[0]!, pc[2]!] }, { params: [pc[1]!], weightDecay: 0 }], opts);
    const og = new bn.SGD([{ params: [pg[0]!, pg[2]!] }, { params: [pg[1]!], weightDecay: 0 }], opts);
    try {
      for (let step = 0; step < 4; step++) {
        bn.scope(() => {
          for (const [j, s] of shapes.entries()) {
            const g = bn.randn(s);
            pc[j]!.setGrad(g);
            pg[j]!.setGrad(to(g, { device: "cuda" }));
          }
        });
        oc.step();
        og.step();
      }
      for (const j of shapes.keys()) assertClose(values(pg[j]!), values(pc[j]!), 1e-5, 1e-5);
      assert.equal(og.stateDict().state.size, 3);
      // tensor() to cuda copies from pinned memory asynchronously: the values arrive all the same
      bn.scope(() => {
        const y = bn.tensor([3, 1, 4, 1, 5], [5], { dtype: "int64", device: "cuda" });
        assert.deepEqual(values(y), [3, 1, 4, 1, 5]);
      });
    } finally {
      oc.dispose();
      og.dispose();
      for (const t of [...init, ...pc, ...pg]) t.dispose();
    }
  },
);

test("cuda autocast runs convolutions in bfloat16 and leaves cpu autocast as it was", { skip }, () => {
  bn.scope(() => {
    const x = bn.randn([2, 3, 8, 8], { device: "cuda" });
    const w = bn.randn([4, 3, 3, 3], { device: "cuda" });
    const y = bn.autocast(
      () => {
        assert.equal(bn.autocastState("cuda").enabled, true);
        assert.equal(bn.autocastState("cpu").enabled, false);
        return conv2d(x, w);
      },
      { device: "cuda" },
    );
    assert.equal(y.dtype, "bfloat16");
    assert.equal(bn.autocastState("cuda").enabled, false);
    assertClose(values(y), values(conv2d(x, w)), 5e-2, 2e-2);
  });
});

test("the loader assembles batches on the GPU", { skip }, () => {
  const ds = {
    images: new Uint8Array(8 * 1 * 4 * 4).map((_, i) => i % 251),
    labels: new Int32Array([0, 1, 2, 3, 0, 1, 2, 3]),
    n: 8,
    channels: 1,
    height: 4,
    width: 4,
    numClasses: 4,
    classNames: ["a", "b", "c", "d"],
  };
  const opts = { batchSize: 4, shuffle: false, seed: 0, mean: [0.5], std: [0.25], numClasses: 4 };
  const cpu = new DataLoader(ds as never, opts);
  const gpu = new DataLoader(ds as never, { ...opts, device: "cuda" });
  const a = [...cpu.batches(0)];
  const b = [...gpu.batches(0)];
  assert.equal(b.length, 2);
  for (let i = 0; i < a.length; i++) {
    const [p, q] = [a[i] as (typeof a)[0], b[i] as (typeof b)[0]];
    assert.match(q.x.device, /^cuda/);
    assert.match(q.y.device, /^cuda/);
    assert.deepEqual(values(q.x), values(p.x));
    for (const t of [p.x, p.y, p.target, q.x, q.y, q.target]) t.dispose();
  }
});

test("the trainer on cuda: trains, checkpoints, resumes after an interruption and evaluates", { skip }, async () => {
  const cfg = smallConfig({ device: "cuda" });
  const a = path.join(tempDir(), "a");
  const b = path.join(tempDir(), "b");
  const full = await train(cfg, { runDir: a, handleSignals: false, progress: new Progress(quiet) });
  assert.equal(full.status, "completed");
  // the same settings reach about 0.8 on the CPU
  assert.ok(full.finalValAccuracy > 0.6, `3 epochs on 6,144 images learn: ${full.finalValAccuracy}`);
  const config = JSON.parse(fs.readFileSync(path.join(a, "config.json"), "utf8"));
  assert.equal(config.recipe.device, "cuda");
  const stop = await train(cfg, { runDir: b, handleSignals: false, stopAfterSteps: 70, progress: new Progress(quiet) });
  assert.equal(stop.status, "interrupted");
  const resumed = await train(cfg, { runDir: b, resume: true, handleSignals: false, progress: new Progress(quiet) });
  assert.equal(resumed.status, "completed");
  assert.equal(resumed.steps, full.steps);
  // cuDNN's kernels need not be deterministic: the resumed run lands near the uninterrupted one
  assert.ok(Math.abs(resumed.finalValAccuracy - full.finalValAccuracy) < 0.1);
  // the saved weights load on the CPU
  const { model } = loadRunModel(a);
  try {
    assert.equal(model.device, "cpu");
  } finally {
    model.dispose();
  }
});
