// The int8 ONNX export (QDQ): onnxruntime-node runs it and agrees with budgetnet's simulated int8
// forward, every quant.json scale is in the graph, the weights are int8 initializers, and the
// file is at most 0.3x of the float ONNX.
//
// Tolerance: onnxruntime fuses DQ -> Conv -> Q into int8 kernels that requantize with their own
// fixed-point rounding, and runs the unfused ops in float; budgetnet's simulation rounds at the
// same sites in float32. A value that lands within float rounding of a half step can round the
// other way, one quantization step at one site, and that propagates. So logits agree to a few
// quantization steps, not bit for bit, and the argmax on a batch agrees almost everywhere.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import { createModel, noGrad, randn, scope } from "../../src";
import { exportOnnx, loadOnnx } from "../../src/export/onnx";
import { foldBatchNorm } from "../../src/perf/fold";
import { calibrateActivations, quantizeWeights, quantLayout } from "../../src/quant/calibrate";
import { loadQuantized, saveQuantized } from "../../src/quant/files";
import { applyQuantizedWeights, simulatedForward } from "../../src/quant/simulate";
import type { QuantSpec } from "../../src/quant/spec";
import { checkNoLeaks, tempDir } from "../helpers";
import { ortSession, randomizeBatchNorms, runOrt } from "./onnx_helpers";

checkNoLeaks();

const SHAPE = [1, 16, 16];

/** A quantized resnet20 (random weights, calibrated on random images) written to and read back from a folder. */
function quantizedFolder(): string {
  const dir = tempDir();
  const m = createModel("resnet20", { numClasses: 10, inChannels: 1 });
  randomizeBatchNorms(m);
  m.eval();
  const folded = foldBatchNorm(m, { inputShape: [2, ...SHAPE] }).model;
  m.dispose();
  try {
    const layout = scope(() => quantLayout(folded, randn([2, ...SHAPE])));
    const weights = quantizeWeights(folded, layout.weights, true);
    const batches = scope(() => [randn([64, ...SHAPE]), randn([64, ...SHAPE])].map((t) => t.clone()));
    const activations = calibrateActivations(folded, layout, batches, { observer: "minmax", perChannel: true });
    for (const b of batches) b.dispose();
    applyQuantizedWeights(folded, weights);
    const spec: QuantSpec = {
      format: "budgetnet-int8",
      version: 1,
      model: "resnet20",
      modelOptions: { numClasses: 10, inChannels: 1 },
      inputShape: SHAPE,
      observer: "minmax",
      calibrationImages: 128,
      perChannel: true,
      method: "ptq",
      activations,
      weights: Object.fromEntries([...weights].map(([k, w]) => [k, w.quant])),
      float: layout.float,
    };
    saveQuantized(dir, spec, folded, weights);
  } finally {
    folded.dispose();
  }
  return dir;
}

test("the QDQ export runs in onnxruntime and agrees with the simulated int8 forward", async () => {
  const dir = quantizedFolder();
  const { model, spec } = loadQuantized(dir);
  try {
    const bytes = exportOnnx(model, { inputShape: SHAPE, int8: spec });
    const floatBytes = exportOnnx(model, { inputShape: SHAPE });
    assert.ok(bytes.byteLength <= 0.3 * floatBytes.byteLength, `${bytes.byteLength} vs ${floatBytes.byteLength}`);
    const file = path.join(dir, "m.onnx");
    fs.writeFileSync(file, bytes);
    const onnx = loadOnnx(file);
    const q = onnx.nodes.filter((n) => n.opType === "QuantizeLinear");
    assert.equal(q.length, Object.keys(spec.activations).length);
    assert.equal(
      onnx.nodes.filter((n) => n.opType === "DequantizeLinear").length,
      q.length + Object.keys(spec.weights).length,
    );
    assert.match(onnx.metadata.quantization as string, /int8 QDQ/);

    const n = 128;
    const { x, want } = noGrad(() =>
      scope(() => {
        const input = randn([n, ...SHAPE]);
        return { x: input.toFloat32Array(), want: simulatedForward(model, spec.activations)(input).toFloat32Array() };
      }),
    );
    const session = await ortSession(bytes);
    const got = (await runOrt(session, x, [n, ...SHAPE])).logits as Float32Array;
    await session.release();
    let agree = 0;
    let diff = 0;
    let range = 0;
    for (let i = 0; i < n; i++) {
      const row = (a: Float32Array) => Array.from(a.subarray(i * 10, i * 10 + 10));
      const [a, b] = [row(want), row(got)];
      if (a.indexOf(Math.max(...a)) === b.indexOf(Math.max(...b))) agree++;
      for (let j = 0; j < 10; j++) diff += Math.abs((a[j] as number) - (b[j] as number)) / (n * 10);
      range = Math.max(range, ...a.map(Math.abs));
    }
    assert.ok(agree / n >= 0.95, `argmax agreement ${agree / n}`);
    assert.ok(diff <= 0.02 * range, `mean |difference| ${diff} of logits up to ${range}`);
  } finally {
    model.dispose();
  }
});

test("the QDQ export refuses a spec made for another model, naming the missing sites", () => {
  const dir = quantizedFolder();
  const { model, spec } = loadQuantized(dir);
  try {
    const other: QuantSpec = {
      ...spec,
      activations: {
        ...spec.activations,
        "layer9.0:conv2d#0": spec.activations.input as QuantSpec["activations"][string],
      },
    };
    assert.throws(() => exportOnnx(model, { inputShape: SHAPE, int8: other }), /layer9\.0:conv2d#0/);
  } finally {
    model.dispose();
  }
});
