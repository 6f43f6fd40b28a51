// The one native-call tracer (src/tensor/trace.ts) that profiling, BatchNorm folding,
// compileInference and ONNX export share.
import assert from "node:assert/strict";
import { test } from "node:test";
import { nn, noGrad, ones, scope } from "../../src";
import { exportOnnx } from "../../src/export/onnx";
import { profileNative } from "../../src/perf/trace";
import { NATIVE_FUNCTIONS, native, nativeCalls } from "../../src/tensor/binding";
import { handleShape, interceptNative, type NativeCall, traceNative } from "../../src/tensor/trace";
import { checkNoLeaks } from "../helpers";

checkNoLeaks();

test("traceNative reports each call with its shapes; the hook's own calls are not reported", () => {
  const calls: NativeCall[] = [];
  traceNative(
    () => scope(() => void ones([2, 3]).add(1)),
    (c) => {
      calls.push(c);
      if (c.name === "add") handleShape(c.result as never); // inside the hook: straight to the addon
    },
    { shapes: true },
  );
  const add = calls.find((c) => c.name === "add");
  assert.deepEqual(add?.argShapes, [[2, 3], undefined]);
  assert.deepEqual(add?.resultShape, [2, 3]);
  assert.equal(calls.filter((c) => c.name === "shape").length, 0, "the hook's shape query was reported");
});

test("interceptNative routes every function but setErrorClass and puts each back, also after a throw", () => {
  const before = new Map(NATIVE_FUNCTIONS.map((name) => [name, nativeCalls[name]]));
  assert.throws(
    () =>
      interceptNative(
        () => {
          const same = NATIVE_FUNCTIONS.filter((name) => nativeCalls[name] === before.get(name));
          assert.deepEqual(same, ["setErrorClass"]);
          throw new Error("inside");
        },
        (_name, _args, call) => call(),
      ),
    /inside/,
  );
  const changed = NATIVE_FUNCTIONS.filter((name) => nativeCalls[name] !== before.get(name));
  assert.deepEqual(changed, []);
  assert.equal(native.add, before.get("add"));
});

test("traces do not nest: an ONNX export inside a profile is refused with a clear error", () => {
  const model = new nn.Sequential([
    new nn.Conv2d({ inChannels: 3, outChannels: 4, kernelSize: 3 }),
    new nn.ReLU(),
    new nn.AdaptiveAvgPool2d(1),
    new nn.Flatten(),
    new nn.Linear({ inFeatures: 4, outFeatures: 2 }),
  ]);
  try {
    assert.throws(
      () => profileNative(() => noGrad(() => void exportOnnx(model, { inputShape: [3, 8, 8] }))),
      /exportOnnx: a native trace .* is already running; traces do not nest/,
    );
    // and the binding is whole again: an export after it works
    assert.ok(exportOnnx(model, { inputShape: [3, 8, 8] }).length > 0);
  } finally {
    model.dispose();
  }
});
