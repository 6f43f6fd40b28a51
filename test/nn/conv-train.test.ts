// The training convolutions through oneDNN (native/conv_train.cc) against libtorch's own
// convolution: every kernel (direct on NHWC, direct on 16-channel blocks, Winograd) forced in turn
// gives libtorch's output, input gradient and weight gradient on shapes with 16 channels (same
// bytes as NHWC), 32-64 channels (reordered), stride 2, a 1x1 stride-2 shortcut, one input
// channel, a 5x5 kernel and an NCHW weight; "auto" records one kernel per phase; presets take
// effect; the inputs it declines (and no-grad forwards) still compute; a shape whose primitives were dropped (past 64
// shapes) computes alike; bad modes and presets are refused; a training checkpoint records the
// kernels, and one with a nonsense kernel table is refused.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { after, test } from "node:test";
import * as bn from "../../src";
import { convChoices, setConvChoices, setTrainConvMode } from "../../src/ops/nn";
import { contiguous } from "../../src/ops/shape";
import { planAvailable } from "../../src/tensor/native_calls";
import { disposeCheckpoint, loadCheckpoint } from "../../src/train/checkpoint";
import { applyOverrides, loadRecipe } from "../../src/train/config";
import { Progress } from "../../src/train/metrics";
import { train } from "../../src/train/trainer";
import { assertClose, checkNoLeaks } from "../helpers";

checkNoLeaks();
after(() => setTrainConvMode("auto"));

type Shape = { n: number; c: number; h: number; o: number; k: number; s: number; p: number; nchwWeight?: boolean };
const SHAPES: Shape[] = [
  { n: 8, c: 16, h: 12, o: 16, k: 3, s: 1, p: 1 },
  { n: 4, c: 32, h: 9, o: 32, k: 3, s: 1, p: 1 },
  { n: 4, c: 64, h: 7, o: 64, k: 3, s: 1, p: 1 },
  { n: 2, c: 48, h: 6, o: 32, k: 3, s: 1, p: 1, nchwWeight: true },
  { n: 4, c: 16, h: 12, o: 32, k: 3, s: 2, p: 1 },
  { n: 4, c: 32, h: 14, o: 64, k: 1, s: 2, p: 0 },
  { n: 4, c: 1, h: 10, o: 16, k: 3, s: 1, p: 1 },
  { n: 3, c: 3, h: 11, o: 8, k: 5, s: 2, p: 2 },
  { n: 2, c: 16, h: 5, o: 16, k: 3, s: 1, p: 0 },
];
const key = (s: Shape) => `n${s.n}_c${s.c}_${s.h}x${s.h}_o${s.o}_k${s.k}x${s.k}_s${s.s}x${s.s}_p${s.p}x${s.p}`;

/** y, dL/dx, dL/dw for L = sum(y * g), under `mode` (or the mode and presets as they are). */
function run(s: Shape, mode?: "off" | "auto" | "direct-nhwc" | "direct-blocked" | "winograd" | "libtorch"): number[][] {
  if (mode !== undefined) setTrainConvMode(mode);
  return bn.scope(() => {
    bn.manualSeed(7);
    const x = contiguous(bn.randn([s.n, s.c, s.h, s.h]), "channelsLast");
    const w0 = bn.randn([s.o, s.c, s.k, s.k]).mul(0.2);
    const w = s.nchwWeight ? w0 : contiguous(w0, "channelsLast");
    x.requiresGrad = true;
    w.requiresGrad = true;
    const y = bn.conv2d(x, w, undefined, { stride: s.s, padding: s.p });
    assert.ok(bn.isContiguous(y, "channelsLast"), `${key(s)} ${mode}: output not channels-last`);
    const g = bn.randn(y.shape);
    y.mul(g).sum().backward();
    const out = [y, x.grad as bn.Tensor, w.grad as bn.Tensor].map((t) => Array.from(t.toArray().flat(9) as number[]));
    x.zeroGrad();
    w.zeroGrad();
    return out;
  });
}

test("the build has oneDNN's headers, so the training convolutions are on", () => {
  assert.equal(planAvailable(), true, "built without oneDNN (libdnnl-dev): native/conv_train.cc is compiled out");
});

test("every kernel gives libtorch's output and gradients", () => {
  for (const s of SHAPES) {
    const ref = run(s, "off");
    for (const mode of ["direct-nhwc", "direct-blocked", "winograd", "libtorch", "auto"] as const) {
      const got = run(s, mode);
      ["y", "dx", "dw"].forEach((name, i) => {
        const scale = Math.max(...(ref[i] as number[]).map(Math.abs));
        try {
          assertClose(got[i] as number[], ref[i] as number[], 2e-5 * scale, 0);
        } catch (e) {
          throw new Error(`${key(s)} ${mode} ${name}: ${(e as Error).message}`);
        }
      });
    }
  }
});

test("auto records one kernel per phase, only for the shapes it takes; presets take effect", () => {
  setTrainConvMode("auto");
  const s = SHAPES[0] as Shape;
  run(s, "auto");
  const chosen = convChoices()[key(s)];
  assert.ok(chosen !== undefined, `no choice for ${key(s)}: ${JSON.stringify(convChoices())}`);
  for (const phase of ["forward", "backwardData", "backwardWeights"] as const)
    assert.ok(["direct-nhwc", "direct-blocked", "winograd", "libtorch"].includes(chosen[phase] as string), phase);
  // a stem convolution's input needs no gradient: no backwardData phase
  bn.scope(() => {
    const x = contiguous(bn.randn([2, 16, 6, 6]), "channelsLast");
    const w = contiguous(bn.randn([16, 16, 3, 3]), "channelsLast");
    w.requiresGrad = true;
    bn.conv2d(x, w, undefined, { padding: 1 }).sum().backward();
    const c = convChoices()["n2_c16_6x6_o16_k3x3_s1x1_p1x1"];
    assert.deepEqual(Object.keys(c ?? {}).sort(), ["backwardWeights", "forward"]);
    w.zeroGrad();
  });
  // declined: a bias, groups, an NCHW input (libtorch's convolution computes them)
  bn.scope(() => {
    const x = contiguous(bn.randn([2, 16, 5, 5]), "channelsLast");
    const w = contiguous(bn.randn([16, 16, 3, 3]), "channelsLast");
    const y1 = bn.conv2d(x, w, bn.zeros([16]));
    const y2 = bn.conv2d(x, contiguous(bn.randn([16, 8, 3, 3]), "channelsLast"), undefined, { groups: 2 });
    const y3 = bn.conv2d(contiguous(x, "contiguous"), w);
    // and no-grad forwards (validation, evaluation): the timing would not pay there
    const y4 = bn.noGrad(() => bn.conv2d(x, w));
    for (const y of [y1, y2, y3, y4]) assert.deepEqual(y.shape, [2, 16, 3, 3]);
    assert.equal(convChoices()["n2_c16_5x5_o16_k3x3_s1x1_p0x0"], undefined);
    // a 1-channel NCHW input (contiguous in both formats) stays with libtorch and NCHW, as an NCHW model expects
    const y5 = bn.conv2d(bn.randn([2, 1, 5, 5]), bn.randn([16, 1, 3, 3]));
    assert.ok(
      bn.isContiguous(y5) && !bn.isContiguous(y5, "channelsLast"),
      "the 1-channel NCHW stem's output is not NCHW",
    );
    assert.equal(convChoices()["n2_c1_5x5_o16_k3x3_s1x1_p0x0"], undefined);
  });
  // a preset replaces this process's choice for its shape only
  setConvChoices({ [key(s)]: { forward: "winograd", backwardData: "direct-nhwc", backwardWeights: "libtorch" } });
  run(s);
  assert.deepEqual(convChoices()[key(s)], {
    forward: "winograd",
    backwardData: "direct-nhwc",
    backwardWeights: "libtorch",
  });
});

test("past 64 shapes the oldest primitives are dropped; the shape is rebuilt with its choice and computes alike", () => {
  setTrainConvMode("auto");
  const first: Shape = { n: 2, c: 16, h: 4, o: 16, k: 3, s: 1, p: 1 };
  const before = run(first);
  const chosen = convChoices()[key(first)];
  for (let h = 5; h < 5 + 66; h++)
    bn.scope(() => {
      const x = contiguous(bn.randn([1, 16, h, 3]), "channelsLast");
      bn.conv2d(x, contiguous(bn.randn([16, 16, 3, 3]), "channelsLast"), undefined, { padding: 1 });
    });
  assert.deepEqual(convChoices()[key(first)], chosen);
  const again = run(first);
  for (const [i, name] of ["y", "dx", "dw"].entries())
    assert.deepEqual(again[i], before[i], `${name} differs after the shape's primitives were rebuilt`);
});

test("bad modes and presets are refused with what was wrong", () => {
  assert.throws(() => setTrainConvMode("fast" as "auto"), /mode must be auto, off, direct-nhwc/);
  assert.throws(() => setConvChoices({ n1: { forward: "fastest" as "winograd" } }), /n1\.forward must be direct-nhwc/);
  assert.throws(() => setConvChoices([] as unknown as Record<string, never>), /choices must be an object/);
  // a bad BUDGETNET_TRAIN_CONV: the convolution fails with an error naming the variable, not a crash
  const child = spawnSync(
    process.execPath,
    [
      "-e",
      `const bn = require(${JSON.stringify(path.join(__dirname, "..", "..", "src"))});
       try { bn.conv2d(bn.randn([1, 2, 4, 4]), bn.randn([2, 2, 3, 3])); console.log("no error"); }
       catch (e) { console.log(e.name + ": " + e.message); }`,
    ],
    { env: { ...process.env, BUDGETNET_TRAIN_CONV: "fastest" }, encoding: "utf8" },
  );
  assert.equal(child.status, 0, child.stderr);
  assert.match(child.stdout, /NativeOpError: .*BUDGETNET_TRAIN_CONV .* must be auto, off, .*Received: fastest/);
});

test("a training checkpoint records the kernels its convolutions ran", async () => {
  setTrainConvMode("auto");
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "budgetnet-conv-train-"));
  try {
    const cfg = applyOverrides(loadRecipe("fashion-mnist-quick"), {
      "train-subset": "640",
      "val-subset": "64",
      epochs: "1",
      "batch-size": "64",
    });
    await train(cfg, { runDir: dir, handleSignals: false, progress: Progress.silent() });
    const ck = loadCheckpoint(path.join(dir, "checkpoint.safetensors"));
    try {
      const kernels = ck.meta.convKernels ?? {};
      const trained = kernels["n64_c16_28x28_o16_k3x3_s1x1_p1x1"];
      assert.ok(trained?.forward && trained.backwardData && trained.backwardWeights, JSON.stringify(kernels));
    } finally {
      disposeCheckpoint(ck);
    }
    // a checkpoint whose kernel table was edited into nonsense is refused, naming the field
    const file = path.join(dir, "checkpoint.safetensors");
    const { tensors, metadata } = bn.loadSafetensors(file);
    try {
      const meta = JSON.parse(metadata.budgetnet_checkpoint as string) as Record<string, unknown>;
      const bad = path.join(dir, "bad.safetensors");
      bn.saveSafetensors(bad, tensors, {
        ...metadata,
        budgetnet_checkpoint: JSON.stringify({ ...meta, convKernels: { n1: { forward: "fastest" } } }),
      });
      assert.throws(() => loadCheckpoint(bad), /its convKernels is .*fastest.*not \{ \[shape\]/);
    } finally {
      for (const t of tensors.values()) t.dispose();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
