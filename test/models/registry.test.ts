// One test over the whole registry (timm's way): every registered model builds, runs forward
// on a small batch to the right shape without NaN, trains one step (every parameter gets a
// finite gradient), has a state dict made of exactly its parameters and buffers, and frees every
// tensor it made. Models marked `large` are only built and counted.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  createModel,
  crossEntropy,
  listModels,
  liveTensors,
  manualSeed,
  noGrad,
  randint,
  randn,
  scope,
} from "../../src";
import { checkNoLeaks } from "../helpers";

checkNoLeaks();

const NUM_CLASSES = 7;

for (const entry of listModels()) {
  test(`${entry.name}${entry.large ? " (large: parameters only)" : ""}: state dict, forward, backward, no leak`, () => {
    const start = liveTensors();
    manualSeed(0);
    const model = createModel(entry.name, { numClasses: NUM_CLASSES });
    try {
      const params = model.namedParameters();
      const expectedKeys = [...params, ...model.namedBuffers()].map(([k]) => k).sort();
      assert.deepEqual([...model.stateDict().keys()].sort(), expectedKeys, "state dict = parameters + buffers");
      assert.ok(params.length > 0 && model.numParameters() > 0);
      assert.equal(
        model.numParameters(),
        params.reduce((n, [, p]) => n + p.size, 0),
      );
      if (entry.large) return;

      model.eval();
      const logits = scope(() => noGrad(() => model.forward(randn([2, 3, 32, 32])).toArray()));
      assert.equal(logits.length, 2 * NUM_CLASSES, "eval output is [2, numClasses]");
      assert.ok(
        logits.every((v) => Number.isFinite(v)),
        "eval logits are finite",
      );

      model.train();
      scope(() => {
        const out = model.forward(randn([2, 3, 32, 32]));
        assert.deepEqual(out.shape, [2, NUM_CLASSES]);
        crossEntropy(out, randint(0, NUM_CLASSES, [2])).backward();
        const missing = params.filter(([, p]) => p.grad === undefined).map(([k]) => k);
        assert.deepEqual(missing, [], "every parameter receives a gradient");
        const bad = params
          .filter(([, p]) => !Number.isFinite(p.grad?.abs().sum().item() ?? Number.NaN))
          .map(([k]) => k);
        assert.deepEqual(bad, [], "gradients are finite");
      });
    } finally {
      model.dispose();
    }
    assert.equal(liveTensors(), start, "live tensor count is back to its start");
  });
}

test("createModel with an unknown name lists the known ones", () => {
  assert.throws(
    () => createModel("resnet_does_not_exist"),
    (err: Error) =>
      /unknown model "resnet_does_not_exist"/.test(err.message) &&
      listModels().every((m) => err.message.includes(m.name)),
  );
});

test("every registry entry names its family, a description and its source", () => {
  for (const m of listModels()) {
    assert.ok(m.family.length > 0 && m.description.length > 0 && m.source.length > 0, m.name);
  }
});
