// The ONNX file itself: names, symbolic batch, opset and metadata; the protobuf round trip; clear
// errors for unsupported ops, data-dependent models, bad options and files that are not ONNX; and
// that a failed export leaves the binding and the model as they were.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import { ArgumentError, createModel, native, rand, remainder, scope, tensor } from "../../src";
import {
  exportOnnx,
  loadOnnx,
  OnnxExportError,
  OnnxFormatError,
  readOnnx,
  saveOnnx,
  summarizeOnnx,
} from "../../src/export/onnx";
import { decodeModel, encodeModel, type OnnxModel } from "../../src/export/onnx/model";
import { saveSafetensors } from "../../src/export/safetensors";
import { Conv2d } from "../../src/nn/layers";
import { Module } from "../../src/nn/module";
import type { Tensor } from "../../src/tensor/tensor";
import { checkNoLeaks, tempDir } from "../helpers";
import { maxAbsDiff, ortSession, randomizeBatchNorms, runOrt } from "./onnx_helpers";

checkNoLeaks();

const CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];

test("the file names input and logits, keeps the batch symbolic and carries opset 17 and the metadata", async () => {
  const model = createModel("resnet20");
  try {
    const norm = { mean: [0.5, 0.4, 0.3], std: [0.2, 0.25, 0.3] };
    const bytes = exportOnnx(model, {
      inputShape: [3, 32, 32],
      withNormalization: norm,
      classNames: CLASSES,
      probabilities: true,
      metadata: { run: "runs/r1" },
    });
    const m = readOnnx(bytes);
    assert.equal(m.irVersion, 8);
    assert.deepEqual(m.opsetImports, [{ domain: "", version: 17 }]);
    assert.equal(m.producerName, "budgetnet");
    assert.deepEqual(m.inputs, [{ name: "input", elemType: 1, shape: ["batch", 3, 32, 32] }]);
    assert.deepEqual(
      m.outputs.map((o) => [o.name, o.shape]),
      [
        ["logits", ["batch", 10]],
        ["probabilities", ["batch", 10]],
      ],
    );
    assert.deepEqual(JSON.parse(m.metadata.class_names as string), CLASSES);
    assert.deepEqual(JSON.parse(m.metadata.mean as string), norm.mean);
    assert.deepEqual(JSON.parse(m.metadata.std as string), norm.std);
    assert.deepEqual(JSON.parse(m.metadata.input_shape as string), [3, 32, 32]);
    assert.equal(m.metadata.model_name, "resnet20");
    assert.equal(m.metadata.run, "runs/r1");
    // initializers are named by state-dict key
    assert.ok(m.initializers.some((t) => t.name === "conv1.weight"));
    assert.ok(m.initializers.some((t) => t.name === "layer1.0.bn1.running_var"));
    const session = await ortSession(bytes);
    const pixels = scope(() => rand([4, 3, 32, 32]).toFloat32Array());
    const out = await runOrt(session, pixels, [4, 3, 32, 32]);
    const softmax = scope(() =>
      tensor(out.logits as Float32Array, [4, 10])
        .softmax(1)
        .toFloat32Array(),
    );
    assert.ok(maxAbsDiff(out.probabilities as Float32Array, softmax) < 1e-6);
    await session.release();
  } finally {
    model.dispose();
  }
});

test("saveOnnx writes atomically and the unfolded file holds every parameter and running statistic", () => {
  const dir = tempDir();
  const model = createModel("se_resnet20");
  try {
    const file = path.join(dir, "model.onnx");
    saveOnnx(file, model, { inputShape: [3, 32, 32] });
    assert.deepEqual(fs.readdirSync(dir), ["model.onnx"]);
    const s = summarizeOnnx(loadOnnx(file));
    let stateElements = 0;
    for (const [key, t] of model.stateDict()) if (!key.endsWith("num_batches_tracked")) stateElements += t.size;
    assert.equal(s.parameters, stateElements);
    assert.equal(s.ops.BatchNormalization, 21);
  } finally {
    model.dispose();
  }
});

test("export leaves the weights, the training mode and the native binding as they were", () => {
  const model = createModel("resnet20");
  try {
    randomizeBatchNorms(model);
    model.train();
    const before = scope(() => model.stateDict().get("conv1.weight")?.toFloat32Array());
    const relu = native.relu;
    exportOnnx(model, { inputShape: [3, 32, 32], foldBn: true });
    assert.equal(model.training, true);
    assert.ok(model.namedModules().every(([, m]) => m.training && !Object.hasOwn(m, "forward")));
    assert.equal(native.relu, relu);
    assert.deepEqual(
      scope(() => model.stateDict().get("conv1.weight")?.toFloat32Array()),
      before,
    );
  } finally {
    model.dispose();
  }
});

class Remainder extends Module {
  forward(x: Tensor): Tensor {
    return remainder(x, 2);
  }
  toConfig() {
    return {};
  }
}

class Net extends Module {
  readonly conv = this.registerModule("conv", new Conv2d({ inChannels: 1, outChannels: 2, kernelSize: 3 }));
  readonly odd = this.registerModule("odd", new Remainder());
  constructor(readonly peek = false) {
    super();
  }
  forward(x: Tensor): Tensor {
    let y = this.conv.forward(x);
    if (this.peek && y.mean().item() > 1e9) y = y.relu();
    return this.odd.forward(y).flatten(1);
  }
  toConfig() {
    return {};
  }
}

test("an op without an ONNX mapping fails naming the op, the module and the input shapes", () => {
  const net = new Net();
  const remainderBefore = native.remainder;
  try {
    assert.throws(
      () => exportOnnx(net, { inputShape: [1, 6, 6] }),
      (e: Error) =>
        e instanceof OnnxExportError &&
        e.message.includes('op "remainder"') &&
        e.message.includes("odd (Remainder)") &&
        e.message.includes("[2, 2, 4, 4]"),
    );
    assert.equal(native.remainder, remainderBefore);
    assert.ok(!Object.hasOwn(net.odd, "forward"));
  } finally {
    net.dispose();
  }
});

test("a model whose control flow reads its activations is refused as data-dependent", () => {
  const net = new Net(true);
  try {
    assert.throws(() => exportOnnx(net, { inputShape: [1, 6, 6] }), /reads values computed from the input \(item\)/);
  } finally {
    net.dispose();
  }
});

test("bad options fail with the option named", () => {
  const model = createModel("resnet20");
  try {
    assert.throws(() => exportOnnx(model, { inputShape: [3, 32] }), ArgumentError);
    assert.throws(
      () => exportOnnx(model, { inputShape: [3, 32, 32], withNormalization: { mean: [0.5], std: [1, 1, 1] } }),
      /withNormalization.mean must list one finite number per input channel \(3\)/,
    );
    assert.throws(
      () => exportOnnx(model, { inputShape: [3, 32, 32], classNames: ["a", "b"] }),
      /classNames must name each of the 10 outputs/,
    );
  } finally {
    model.dispose();
  }
});

test("files that are not ONNX are refused with the file named", () => {
  const dir = tempDir();
  const files: Record<string, Uint8Array> = {
    "config.json": new TextEncoder().encode(JSON.stringify({ model: { name: "resnet20" } })),
    "empty.onnx": new Uint8Array(0),
    "noise.onnx": Uint8Array.from({ length: 512 }, (_, i) => (i * 7919 + 13) % 251),
    // valid protobuf (an OperatorSetIdProto), but not a ModelProto
    "opset.onnx": Uint8Array.of(0x0a, 0x00, 0x10, 0x11),
  };
  for (const [name, bytes] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), bytes);
  scope(() => saveSafetensors(path.join(dir, "model.safetensors"), { w: rand([4, 4]) }));
  for (const name of [...Object.keys(files), "model.safetensors"]) {
    const file = path.join(dir, name);
    assert.throws(
      () => loadOnnx(file),
      (e: Error) => e instanceof OnnxFormatError && e.message.startsWith(`${file} is not an ONNX model`),
      name,
    );
  }
  assert.throws(() => loadOnnx(path.join(dir, "missing.onnx")), /missing.onnx does not exist/);
});

test("the protobuf encoding round-trips negative ints, floats, strings and raw data", () => {
  const m: OnnxModel = {
    irVersion: 8,
    opsetImports: [{ domain: "", version: 17 }],
    producerName: "test",
    producerVersion: "0",
    docString: "",
    graphName: "g",
    nodes: [
      {
        opType: "Slice",
        name: "n",
        inputs: ["x", "starts"],
        outputs: ["y"],
        attributes: [
          { name: "ints", kind: "ints", value: [-1, 0, 2 ** 40, -(2 ** 40)] },
          { name: "f", kind: "float", value: 0.25 },
          { name: "floats", kind: "floats", value: [1.5, -2] },
          { name: "s", kind: "string", value: "héllo" },
          { name: "i", kind: "int", value: -7 },
        ],
      },
    ],
    initializers: [
      {
        name: "starts",
        dims: [2],
        dataType: 7,
        raw: Uint8Array.from([1, 0, 0, 0, 0, 0, 0, 0, 255, 255, 255, 255, 255, 255, 255, 255]),
      },
    ],
    inputs: [{ name: "x", elemType: 1, shape: ["batch", 4] }],
    outputs: [{ name: "y", elemType: 1, shape: ["batch", 2] }],
    metadata: { key: "value" },
  };
  const back = decodeModel(encodeModel(m));
  assert.deepEqual(
    { ...back, initializers: back.initializers.map((t) => ({ ...t, raw: [...t.raw] })) },
    { ...m, initializers: m.initializers.map((t) => ({ ...t, raw: [...t.raw] })) },
  );
});
