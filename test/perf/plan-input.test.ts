// The fused plan refuses what it would otherwise hide: NaN or infinite inputs and zero-size images
// (oneDNN gives confident outputs where libtorch gives NaN or an error), and models whose weights
// are not finite. An empty batch gives what libtorch gives.
import assert from "node:assert/strict";
import { test } from "node:test";
import { createModel, fillInPlace, full, manualSeed, noGrad, randn, scope, tensor } from "../../src";
import { compileInference, planAvailable } from "../../src/perf/plan";
import { checkNoLeaks } from "../helpers";

checkNoLeaks();

const skip = planAvailable() ? false : "addon built without oneDNN (libdnnl-dev): no inference plan";

/** A [2, 3, 8, 8] batch of random values with `value` at one position. */
function batchWith(value: number) {
  const data = Float32Array.from(randn([2, 3, 8, 8]).toArray());
  data[77] = value;
  return tensor(data, [2, 3, 8, 8]);
}

test("plan forward refuses NaN and infinite inputs, naming the count and the shape", { skip }, () => {
  manualSeed(1);
  const model = createModel("resnet20", { depth: 8 });
  const compiled = compileInference(model, { inputShape: [2, 3, 8, 8] });
  try {
    noGrad(() =>
      scope(() => {
        for (const v of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY])
          assert.throws(
            () => compiled.forward(batchWith(v)),
            /CompiledInference\.forward: x holds 1 NaN or infinite value\(s\).*Received: x of shape \[2, 3, 8, 8\]/,
            String(v),
          );
        // large finite values overflow the sum used as the quick check, but are not refused
        assert.deepEqual(compiled.forward(full([2, 3, 8, 8], 3e38)).shape, [2, 10]);
        assert.deepEqual(compiled.forward(batchWith(0.5)).shape, [2, 10]);
      }),
    );
  } finally {
    compiled.dispose();
    model.dispose();
  }
});

test("plan forward: an empty batch gives [0, classes] as libtorch does; a zero-size image is refused", { skip }, () => {
  manualSeed(2);
  const model = createModel("resnet20", { depth: 8 });
  const compiled = compileInference(model, { inputShape: [2, 3, 8, 8] });
  try {
    noGrad(() =>
      scope(() => {
        const empty = randn([0, 3, 8, 8]);
        assert.deepEqual(compiled.forward(empty).shape, model.eval().forward(empty).shape);
        assert.deepEqual(compiled.forward(empty).shape, [0, 10]);
        for (const shape of [
          [2, 3, 0, 8],
          [2, 3, 8, 0],
        ])
          assert.throws(
            () => compiled.forward(randn(shape)),
            new RegExp(`zero-size channel or image side.*Received: x of shape \\[${shape.join(", ")}\\]`),
          );
      }),
    );
  } finally {
    compiled.dispose();
    model.dispose();
  }
});

test("compileInference refuses a model whose weights are not finite", { skip }, () => {
  manualSeed(3);
  const model = createModel("resnet20", { depth: 8 });
  try {
    const w = model.stateDict().get("fc.weight");
    assert.ok(w !== undefined);
    noGrad(() => fillInPlace(w, Number.NaN));
    assert.throws(() => compileInference(model, { inputShape: [2, 3, 8, 8] }), /weights .* are not finite/);
  } finally {
    model.dispose();
  }
});
