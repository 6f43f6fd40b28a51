// WRN, ResNeXt, DenseNet, MobileNet v1/v2/v3 and EfficientNet: parameter counts against the
// published figures, forward/backward on the small variants, and the errors on impossible options.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  ArgumentError,
  createModel,
  crossEntropy,
  getModelEntry,
  isfinite,
  liveTensors,
  type ModelOptions,
  manualSeed,
  noGrad,
  ones,
  randint,
  randn,
  scope,
  type Tensor,
} from "../../src";
import { dropPath } from "../../src/models/building_blocks";
import { checkNoLeaks } from "../helpers";

checkNoLeaks();

function count(name: string, options: ModelOptions = {}): number {
  const model = createModel(name, options);
  try {
    return model.numParameters();
  } finally {
    model.dispose();
  }
}
const allFinite = (t: Tensor) => isfinite(t).to("float32").min().item() === 1;
const IMAGENET: ModelOptions = { numClasses: 1000, strides: "imagenet" };
/** The count in millions, rounded as the papers' tables round it. */
const millions = (n: number, decimals = 1) => Number((n / 1e6).toFixed(decimals));

// ---- exact counts (10 classes) ----

test("exact parameter counts: wrn28_10 36,479,194, wrn16_10 17,116,634, resnext29_32x4d 4,775,754, densenet_bc_100_12 769,162", () => {
  assert.equal(count("wrn28_10"), 36_479_194);
  assert.equal(count("wrn16_10"), 17_116_634);
  assert.equal(count("resnext29_32x4d"), 4_775_754);
  assert.equal(count("densenet_bc_100_12"), 769_162);
});

// ---- published CIFAR tables ----

test("WRN-40-4 8.9M, WRN-16-8 11.0M, WRN-28-10 36.5M as in the WRN paper's CIFAR results table", () => {
  assert.equal(millions(count("wrn40_4")), 8.9);
  assert.equal(millions(count("wrn16_8")), 11.0);
  assert.equal(millions(count("wrn28_10")), 36.5);
});

test("WRN-d-2 block types match the WRN paper's Table 1 sizes (as recalled: the table text was not retrievable here)", () => {
  // [block type, depth, published params in M]; depth is 6N+4 for every block type.
  const table: [string, number, number][] = [
    ["1,3,1", 40, 1.4],
    ["3,1", 40, 1.2],
    ["1,3", 40, 1.3],
    ["3,1,1", 40, 1.3],
    ["3,3", 28, 1.5],
    ["3,1,3", 22, 1.1],
  ];
  for (const [blockType, depth, published] of table) {
    const n = count("wrn40_2", { depth, blockType });
    assert.ok(Math.abs(n / 1e6 - published) <= 0.05, `B(${blockType}) depth ${depth}: ${n} vs ${published}M`);
  }
});

test("ResNeXt-29 8x64d and 16x64d: the paper's Table 7 (34.4M, 68.1M) and bearpaw/pytorch-classification's 34.43M, 68.16M", () => {
  const c8 = count("resnext29_8x64d");
  const c16 = count("resnext29_16x64d");
  assert.equal(millions(c8, 2), 34.43);
  assert.equal(millions(c16, 2), 68.16);
  // The paper truncates to one decimal (68.155M is printed 68.1M).
  assert.ok(Math.abs(c8 / 1e6 - 34.4) < 0.1 && Math.abs(c16 / 1e6 - 68.1) < 0.1);
});

test("DenseNet sizes match the DenseNet paper's Table 2 (as listed in the authors' README)", () => {
  assert.equal(millions(count("densenet40_12")), 1.0);
  assert.equal(millions(count("densenet100_12")), 7.0);
  assert.equal(millions(count("densenet100_12", { growthRate: 24 })), 27.2);
  assert.equal(millions(count("densenet_bc_100_12")), 0.8);
  assert.equal(millions(count("densenet_bc_250_24")), 15.3);
  assert.equal(millions(count("densenet_bc_190_40")), 25.6);
});

test("no published count exists for wrn16_2, wrn28_2, wrn40_2, resnext29_2x64d, resnext29_4x64d, resnext29_8x8d_w32: closed-form counts instead", () => {
  // WRN: stem + per block (BN + convs + inner BNs + projection) + final BN + classifier.
  const wrn = (depth: number, k: number) => {
    const n = (depth - 4) / 6;
    let params = 3 * 16 * 9;
    let cin = 16;
    for (const w of [16 * k, 32 * k, 64 * k])
      for (let b = 0; b < n; b++) {
        params += 2 * cin + cin * w * 9 + 2 * w + w * w * 9 + (cin !== w ? cin * w : 0);
        cin = w;
      }
    return params + 2 * cin + cin * 10 + 10;
  };
  for (const [name, d, k] of [
    ["wrn16_2", 16, 2],
    ["wrn28_2", 28, 2],
    ["wrn40_2", 40, 2],
  ] as const)
    assert.equal(count(name), wrn(d, k), name);
  // ResNeXt-29: stem, 3 stages x 3 bottlenecks (1x1, grouped 3x3, 1x1, BNs, projection), classifier.
  const resnext = (C: number, d: number, base: number) => {
    let params = 3 * base * 9 + 2 * base;
    let cin = base;
    for (let s = 0; s < 3; s++) {
      const gw = C * d * 2 ** s;
      const out = base * 4 * 2 ** s;
      for (let b = 0; b < 3; b++) {
        params += cin * gw + 2 * gw + gw * (gw / C) * 9 + 2 * gw + gw * out + 2 * out;
        if (cin !== out || (b === 0 && s > 0)) params += cin * out + 2 * out;
        cin = out;
      }
    }
    return params + cin * 10 + 10;
  };
  assert.equal(count("resnext29_2x64d"), resnext(2, 64, 64));
  assert.equal(count("resnext29_4x64d"), resnext(4, 64, 64));
  assert.equal(count("resnext29_8x8d_w32"), resnext(8, 8, 32));
});

// ---- ImageNet counts (1000 classes, ImageNet strides) ----

test("MobileNet v1 at 1000 classes: 4,231,976 (TF-slim table) and widths 0.75/0.5/0.25: 2,585,560/1,331,592/470,072 (osmr/imgclsmob)", () => {
  assert.equal(count("mobilenetv1", IMAGENET), 4_231_976);
  assert.equal(count("mobilenetv1", { ...IMAGENET, widthMultiplier: 0.75 }), 2_585_560);
  assert.equal(count("mobilenetv1", { ...IMAGENET, widthMultiplier: 0.5 }), 1_331_592);
  assert.equal(count("mobilenetv1", { ...IMAGENET, widthMultiplier: 0.25 }), 470_072);
});

test("MobileNet v2 3,504,872, v3-Large 5,483,032, v3-Small 2,542,856 at 1000 classes (torchvision's num_params)", () => {
  assert.equal(count("mobilenetv2", IMAGENET), 3_504_872);
  assert.equal(count("mobilenetv3_large", IMAGENET), 5_483_032);
  assert.equal(count("mobilenetv3_small", IMAGENET), 2_542_856);
});

test("EfficientNet B0-B3 at 1000 classes: 5,288,548 / 7,794,184 / 9,109,994 / 12,233,232 (torchvision's num_params)", () => {
  assert.equal(count("efficientnet_b0", IMAGENET), 5_288_548);
  assert.equal(count("efficientnet_b1", IMAGENET), 7_794_184);
  assert.equal(count("efficientnet_b2", IMAGENET), 9_109_994);
  assert.equal(count("efficientnet_b3", IMAGENET), 12_233_232);
});

test("the CIFAR stride layout changes no parameter (same count as the ImageNet layout)", () => {
  for (const name of ["mobilenetv1", "mobilenetv2", "mobilenetv3_small", "mobilenetv3_large", "efficientnet_b0"])
    assert.equal(count(name, { strides: "cifar" }), count(name, { strides: "imagenet" }), name);
});

// ---- forward / backward ----

const SMALL: [string, ModelOptions][] = [
  ["wrn16_2", { dropout: 0.3 }],
  ["wrn16_2", { blockType: "1,3,1" }],
  ["resnext29_8x8d_w32", { se: true }],
  ["densenet40_12", {}],
  ["densenet_bc_100_12", { depth: 40 }],
  ["mobilenetv1", { widthMultiplier: 0.25 }],
  ["mobilenetv2", { widthMultiplier: 0.5 }],
  ["mobilenetv3_small", {}],
  ["mobilenetv3_large", { widthMultiplier: 0.5 }],
  ["efficientnet_b0", { widthCoefficient: 0.5 }],
];

for (const [name, options] of SMALL)
  test(`${name} ${JSON.stringify(options)}: [2,3,32,32] and 1-channel [2,1,28,28] give finite logits and gradients for every parameter`, () => {
    const before = liveTensors();
    manualSeed(0);
    for (const [inChannels, size, classes] of [
      [3, 32, 10],
      [1, 28, 7],
    ] as const) {
      const model = createModel(name, { ...options, inChannels, numClasses: classes });
      scope(() => {
        const x = randn([2, inChannels, size, size]);
        const logits = model.forward(x);
        assert.deepEqual(logits.shape, [2, classes]);
        assert.ok(allFinite(logits), "logits are finite");
        crossEntropy(logits, randint(0, classes, [2])).backward();
        for (const [key, p] of model.namedParameters()) {
          const g = p.grad;
          assert.ok(g !== undefined, `${key} got no gradient`);
          assert.ok(allFinite(g), `${key} has a non-finite gradient`);
        }
        model.zeroGrad();
        model.eval();
        const a = noGrad(() => model.forward(x));
        const b = noGrad(() => model.forward(x));
        assert.equal(a.sub(b).abs().max().item(), 0, "eval forward is deterministic");
        return undefined;
      });
      model.dispose();
    }
    assert.equal(liveTensors(), before, "no tensor outlives the model");
  });

test("state-dict keys are attribute paths (PyTorch style)", () => {
  const keysOf = (name: string, options: ModelOptions = {}) => {
    const model = createModel(name, options);
    const keys = [...model.stateDict().keys()];
    model.dispose();
    return keys;
  };
  const wrn = keysOf("wrn16_2");
  for (const k of ["conv1.weight", "layer1.0.bn1.running_mean", "layer2.0.shortcut.weight", "bn.weight", "fc.bias"])
    assert.ok(wrn.includes(k), k);
  assert.ok(!wrn.includes("layer1.1.shortcut.weight"), "identity shortcut has no conv");
  assert.ok(keysOf("resnext29_8x8d_w32", { se: true }).includes("layer3.0.se.fc1.weight"));
  assert.ok(keysOf("densenet40_12").includes("block2.11.conv1.weight"));
  const v3 = keysOf("mobilenetv3_small");
  assert.ok(v3.includes("blocks.0.se.fc2.bias") && !v3.includes("blocks.0.expand.conv.weight"));
  assert.ok(keysOf("efficientnet_b0").includes("blocks.15.depthwise.bn.num_batches_tracked"));
});

test("toConfig gives back the resolved options and the registry marks the big models large", () => {
  const model = createModel("efficientnet_b2");
  assert.deepEqual(model.toConfig(), {
    numClasses: 10,
    inChannels: 3,
    widthCoefficient: 1.1,
    depthCoefficient: 1.2,
    resolution: 260,
    dropout: 0.3,
    dropPath: 0.2,
    strides: "cifar",
  });
  model.dispose();
  for (const name of ["wrn28_10", "wrn16_10", "wrn40_8", "resnext29_8x64d", "resnext29_16x64d"])
    assert.equal(getModelEntry(name)?.large, true, name);
  for (const name of ["densenet_bc_250_24", "densenet_bc_190_40", "efficientnet_b3"])
    assert.equal(getModelEntry(name)?.large, true, name);
  assert.notEqual(getModelEntry("wrn16_2")?.large, true);
});

test("dropPath zeroes whole samples with probability p and rescales the rest; identity in eval", () => {
  manualSeed(1);
  scope(() => {
    const x = ones([4000, 2, 1, 1]);
    const y = dropPath(x, 0.25, true).toArray();
    const perSample = Array.from({ length: 4000 }, (_, i) => [y[2 * i], y[2 * i + 1]]);
    assert.ok(perSample.every(([a, b]) => a === b && (a === 0 || Math.abs((a as number) - 4 / 3) < 1e-6)));
    const dropped = perSample.filter(([a]) => a === 0).length / 4000;
    assert.ok(Math.abs(dropped - 0.25) < 0.03, `dropped fraction ${dropped}`);
    assert.equal(dropPath(x, 0.25, false), x);
    return undefined;
  });
});

// ---- impossible options ----

const rejects = (name: string, options: ModelOptions, message: RegExp) =>
  assert.throws(
    () => createModel(name, options),
    (e: unknown) => e instanceof ArgumentError && message.test(e.message),
  );

test("impossible options fail with the option, its value and what is accepted", () => {
  rejects("wrn28_10", { depth: 27 }, /WideResNet: depth must be 6N\+4 .*Received: depth=27/);
  rejects("wrn16_2", { depth: 22 + 9, blockType: "3,1,3" }, /6N\+4 .*B\(3,1,3\).*Received: depth=31/);
  rejects("wrn16_2", { blockType: "3,2" }, /blockType must be one of "3,3", "3,1,3".*Received: blockType="?3,2/);
  rejects("wrn16_2", { widenFactor: 0 }, /widenFactor must be an integer >= 1.*Received: widenFactor=0/);
  rejects(
    "resnext29_32x4d",
    { cardinality: 0 },
    /ResNeXt: cardinality must be an integer >= 1.*Received: cardinality=0/,
  );
  rejects("resnext29_32x4d", { depth: 30 }, /ResNeXt: depth must be 9N\+2.*Received: depth=30/);
  rejects("densenet_bc_100_12", { depth: 99 }, /DenseNet: depth must be 6N\+4 .*bottleneck=true.*Received: depth=99/);
  rejects("densenet40_12", { depth: 41 }, /DenseNet: depth must be 3N\+4 .*bottleneck=false.*Received: depth=41/);
  rejects("densenet40_12", { compression: 0 }, /compression must be a number in \(0, 1\].*Received: compression=0/);
  rejects("mobilenetv2", { widthMultiplier: 0 }, /MobileNetV2: widthMultiplier must be a number in \(0, 4\]/);
  rejects("mobilenetv3_small", { strides: "tiny" }, /strides must be one of "cifar", "imagenet"/);
  rejects(
    "efficientnet_b0",
    { dropPath: 1 },
    /EfficientNet: dropPath must be a number in \[0, 1\).*Received: dropPath=1/,
  );
  rejects("efficientnet_b0", { numClasses: 0 }, /numClasses must be an integer >= 1.*Received: numClasses=0/);
  rejects("mobilenetv2", { widthMultipler: 0.5 }, /unknown option "widthMultipler"\. Known options: .*widthMultiplier/);
});
