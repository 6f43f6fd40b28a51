// manualSeed determinism (draws, dropout masks, layer init, whole training steps) and the
// validation of manualSeed and setNumThreads.
import assert from "node:assert/strict";
import { test } from "node:test";
import * as bn from "../../src";
import { checkNoLeaks } from "../helpers";

checkNoLeaks();

function draws(seed: number): number[] {
  return bn.scope(() => {
    bn.manualSeed(seed);
    return [
      ...bn.randn([5]).toArray(),
      ...bn.rand([3]).toArray(),
      ...bn.randint(0, 100, [3]).toArray(),
      ...bn.dropout(bn.ones([8]), 0.5, true).toArray(),
    ];
  });
}

test("the same seed gives the same draws and dropout masks; another seed does not", () => {
  assert.deepEqual(draws(7), draws(7));
  assert.notDeepEqual(draws(7), draws(8));
  assert.deepEqual(draws(0), draws(0));
  assert.deepEqual(draws(2 ** 40), draws(2 ** 40));
});

/** A few SGD steps of a small conv net from a seed; returns the final weights. */
function train(seed: number, threads: number): number[] {
  const before = bn.getNumThreads();
  bn.setNumThreads(threads);
  bn.manualSeed(seed);
  const net = new bn.nn.Sequential([
    new bn.nn.Conv2d({ inChannels: 3, outChannels: 8, kernelSize: 3, padding: 1 }),
    new bn.nn.BatchNorm2d({ numFeatures: 8 }),
    new bn.nn.ReLU(),
    new bn.nn.Dropout2d(0.2),
    new bn.nn.AdaptiveAvgPool2d(1),
    new bn.nn.Flatten(),
    new bn.nn.Linear({ inFeatures: 8, outFeatures: 4 }),
  ]);
  try {
    for (let step = 0; step < 3; step++) {
      bn.scope(() => {
        const x = bn.randn([4, 3, 8, 8]);
        const y = bn.randint(0, 4, [4]);
        const loss = bn.crossEntropy(net.forward(x), y, { labelSmoothing: 0.1 });
        net.zeroGrad();
        loss.backward();
        for (const p of net.parameters()) bn.scope(() => bn.addScaledInPlace(p, p.grad as bn.Tensor, -0.1));
        return undefined;
      });
    }
    return net.parameters().flatMap((p) => p.toArray());
  } finally {
    net.dispose();
    bn.setNumThreads(before);
  }
}

test("three training steps from the same seed end in bitwise identical weights", () => {
  const a = train(21, 1);
  const b = train(21, 1);
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, train(22, 1));
});

test("two threads give the same weights as one, up to float rounding", () => {
  const a = train(23, 1);
  const b = train(23, 2);
  assert.equal(a.length, b.length);
  a.forEach((v, i) => {
    assert.ok(Math.abs(v - (b[i] as number)) < 1e-5, `weight ${i}: ${v} vs ${b[i]}`);
  });
});

test("manualSeed accepts non-negative safe integers only", () => {
  for (const bad of [-1, 1.5, Number.NaN, Infinity, 2 ** 64, "3" as unknown as number, undefined as unknown as number])
    assert.throws(() => bn.manualSeed(bad), /manualSeed: seed must be a non-negative integer. Received: seed=/);
});

test("setNumThreads takes an integer in [1, 1024] and getNumThreads reports it", () => {
  const before = bn.getNumThreads();
  try {
    bn.setNumThreads(2);
    assert.equal(bn.getNumThreads(), 2);
    bn.setNumThreads(1);
    assert.equal(bn.getNumThreads(), 1);
    for (const bad of [0, -1, 1.5, Number.NaN, 1025, 3e9, "2" as unknown as number])
      assert.throws(() => bn.setNumThreads(bad), /setNumThreads: n must be an integer in \[1, 1024\]. Received: n=/);
    assert.equal(bn.getNumThreads(), 1, "a refused value changes nothing");
  } finally {
    bn.setNumThreads(before);
  }
});
