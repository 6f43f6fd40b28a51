// On demand (BUDGETNET_SLOW=1): every registered model, large ones included, exported with
// BatchNorm folded and the normalization inside, run in onnxruntime-node at batch 2 and 3 and
// compared with budgetnet's eval output. Minutes on two cores; onnx.test.ts covers a subset.
import assert from "node:assert/strict";
import { test } from "node:test";
import { createModel, listModels, manualSeed, noGrad, rand, scope, tensor } from "../../src";
import { exportOnnx } from "../../src/export/onnx";
import { checkNoLeaks } from "../helpers";
import { maxAbs, maxAbsDiff, ortSession, randomizeBatchNorms, runOrt } from "./onnx_helpers";

checkNoLeaks();

const SLOW = process.env.BUDGETNET_SLOW === "1";
const MEAN = [0.5, 0.45, 0.4];
const STD = [0.25, 0.25, 0.25];

for (const entry of listModels()) {
  test(
    `${entry.name}${entry.large ? " (large)" : ""}: folded, normalized ONNX matches budgetnet`,
    {
      skip: SLOW ? false : "set BUDGETNET_SLOW=1 to check every registered model",
    },
    async () => {
      manualSeed(11);
      const model = createModel(entry.name);
      try {
        randomizeBatchNorms(model);
        model.eval();
        const bytes = exportOnnx(model, {
          inputShape: [3, 32, 32],
          foldBn: true,
          withNormalization: { mean: MEAN, std: STD },
        });
        const session = await ortSession(bytes, 2);
        for (const batch of [2, 3]) {
          const shape = [batch, 3, 32, 32];
          const pixels = scope(() => rand(shape).toFloat32Array());
          const expected = noGrad(() =>
            scope(() => {
              const x = tensor(pixels, shape)
                .sub(tensor(MEAN).reshape([1, 3, 1, 1]))
                .div(tensor(STD).reshape([1, 3, 1, 1]));
              return model.forward(x).toFloat32Array();
            }),
          );
          const got = (await runOrt(session, pixels, shape)).logits as Float32Array;
          const diff = maxAbsDiff(got, expected);
          assert.ok(
            diff < 1e-4 * Math.max(1, maxAbs(expected)),
            `batch ${batch}: max abs diff ${diff} (outputs up to ${maxAbs(expected)})`,
          );
        }
        await session.release();
      } finally {
        model.dispose();
      }
    },
  );
}
