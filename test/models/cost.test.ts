// Analytic costs (src/models/cost.ts through analyticCost): for every registered model with a cost
// function, the parameter and multiply-add counts computed from its options alone are exactly
// what summary() measures on the built model, at its default options and on a few hundred
// randomly drawn option variants per seed; an impossible configuration throws what createModel
// throws; and 10,000 candidates are costed without building anything (the rate is printed, not
// asserted).
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  ArgumentError,
  analyticCost,
  createModel,
  getModelEntry,
  listModels,
  type ModelCost,
  type ModelOptions,
  registerModel,
  scope,
  summary,
  zeros,
} from "../../src";
import { defineOptions } from "../../src/models/options";
import type { Module } from "../../src/nn/module";
import { checkNoLeaks } from "../helpers";

checkNoLeaks();

type Shape = [number, number, number];

/** summary()'s counts of the built model (disposed after), or the error building or running it threw. */
function measured(name: string, options: ModelOptions, shape: Shape): ModelCost | Error {
  let model: Module | undefined;
  try {
    model = createModel(name, options);
    const s = summary(model, { inputShape: shape });
    return { params: s.params, macs: s.macs, convLinearMacs: s.convLinearMacs };
  } catch (err) {
    return err as Error;
  } finally {
    model?.dispose();
  }
}

/** analyticCost equals summary() of the built model, exactly. */
function assertCostMatches(name: string, options: ModelOptions, shape: Shape, label = ""): void {
  const what = `${name} ${JSON.stringify(options)} on ${shape.join("x")}${label}`;
  const expected = measured(name, options, shape);
  if (expected instanceof Error) assert.fail(`${what}: the model does not build or run: ${expected.message}`);
  assert.deepEqual(analyticCost(name, options, shape), expected, `${what}: analytic cost differs from summary()`);
}

/** The error a call throws (undefined when it returns). */
function thrown(f: () => unknown): Error | undefined {
  try {
    f();
  } catch (err) {
    return err as Error;
  }
  return undefined;
}

// Large models run at 3x8x8 (their 32x32 forward passes take seconds each); the counts are
// still compared exactly, parameters included.
const costed = listModels().filter((e) => e.cost !== undefined);

test("every registered family has an analytic cost", () => {
  assert.deepEqual(
    listModels()
      .filter((e) => e.cost === undefined)
      .map((e) => e.name),
    [],
  );
});

for (const entry of costed) {
  const shapes: [Shape, ModelOptions][] = entry.large
    ? [[[3, 8, 8], {}]]
    : [
        [[3, 32, 32], {}],
        [[1, 28, 28], { inChannels: 1 }],
      ];
  test(`${entry.name}: analytic cost equals summary() at its defaults on ${shapes.map(([s]) => s.join("x")).join(" and ")}`, () => {
    for (const [shape, options] of shapes) {
      const expected = measured(entry.name, options, shape);
      if (!(expected instanceof Error)) {
        assert.deepEqual(analyticCost(entry.name, options, shape), expected, `${entry.name} on ${shape.join("x")}`);
        continue;
      }
      // the family does not take this input (efficient_resnet's pool is sized for 32x32):
      // the analytic cost refuses it too
      assert.ok(expected instanceof ArgumentError, `${entry.name} on ${shape}: ${expected.message}`);
      assert.throws(() => analyticCost(entry.name, options, shape), ArgumentError);
    }
  });
}

// ---------------------------------------------------------------- random variants

/** mulberry32: a small seeded generator, so a failing variant is reproducible from its index. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Draw {
  int(lo: number, hi: number): number;
  pick<T>(xs: readonly T[]): T;
  bool(): boolean;
  list(n: number, lo: number, hi: number): number[];
}

function draw(random: () => number): Draw {
  const int = (lo: number, hi: number) => lo + Math.floor(random() * (hi - lo + 1));
  return {
    int,
    pick: (xs) => xs[int(0, xs.length - 1)] as (typeof xs)[number],
    bool: () => random() < 0.5,
    list: (n, lo, hi) => Array.from({ length: n }, () => int(lo, hi)),
  };
}

/** Side of the last stage's map after `stages - 1` halvings by odd-kernel stride-2 convs. */
function lastMap(size: number, stages: number): number {
  let h = size;
  for (let i = 1; i < stages; i++) h = Math.floor((h - 1) / 2) + 1;
  return h;
}

/** The options every family built on ResNetConfig takes (kernels, SE, pool, image size), drawn. */
function resnetTail(d: Draw, stages: number, side: number): ModelOptions {
  const kernels = () => (d.bool() ? d.pick([1, 3, 5]) : d.list(stages, 0, 2).map((i) => 2 * i + 1));
  const poolSize = d.bool() ? 0 : d.int(1, lastMap(side, stages));
  return {
    kernelSizes: kernels(),
    skipKernelSizes: kernels(),
    se: d.bool(),
    seReduction: d.int(1, 8),
    seStemReduction: d.pick([0, 0, 1, 2, 4]),
    poolSize,
    imageSize: poolSize > 0 ? side : d.pick([side, 32]),
    dropout: d.pick([0, 0.1]),
  };
}

/** An input: 3x32x32, 1x28x28 or, where the family allows, a smaller or non-square one. */
function drawInput(d: Draw, options: ModelOptions, square = false): Shape {
  const channels = options.inChannels as number;
  const [h, w] = d.pick<[number, number]>(
    square
      ? [
          [32, 32],
          [28, 28],
          [12, 12],
        ]
      : [
          [32, 32],
          [28, 28],
          [12, 12],
          [16, 24],
          [9, 13],
        ],
  );
  return [channels, h, w];
}

const common = (d: Draw): ModelOptions => ({ numClasses: d.int(1, 12), inChannels: d.pick([1, 3]) });

type Variant = { name: string; options: ModelOptions; shape: Shape };

/** Families and how to draw their variants (small widths, so each model builds and runs in milliseconds). */
const VARIANTS: Record<string, { count: number; draw: (d: Draw) => Variant }> = {
  efficient_resnet: {
    count: 70,
    draw: (d) => {
      const stages = d.int(1, 4);
      const base = { ...common(d), blocks: d.list(stages, 1, 2) };
      const shape = drawInput(d, base);
      const tail = resnetTail(d, stages, shape[1]);
      if ((tail.poolSize as number) > 0) shape[2] = shape[1]; // a sized pool takes imageSize x imageSize
      const { se, seReduction, kernelSizes, skipKernelSizes, seStemReduction: _, ...rest } = tail;
      const options: ModelOptions = {
        ...base,
        ...rest,
        channels: d.int(1, 8),
        convKernels: kernelSizes,
        skipKernels: skipKernelSizes,
        se,
        seReduction,
        preact: d.bool(),
        finalNorm: d.bool(),
      };
      if (d.bool()) options.widths = d.list(stages, 1, 12);
      return { name: "efficient_resnet", options, shape };
    },
  },
  preact_resnet: {
    count: 35,
    draw: (d) => {
      const block = d.pick(["basic", "bottleneck"]);
      const stages = d.int(1, 4);
      const base: ModelOptions = { ...common(d), block, preact: d.bool(), finalNorm: d.bool() };
      if (d.bool()) base.layers = d.list(stages, 1, 2);
      else base.depth = block === "basic" ? d.pick([8, 14]) : d.pick([11, 20]);
      const n = base.layers === undefined ? 3 : stages;
      if (d.bool()) base.widths = d.list(n, 1, 8);
      else base.baseWidth = d.int(1, 4);
      if (d.bool()) base.stemWidth = d.int(1, 8);
      const shape = drawInput(d, base);
      const tail = resnetTail(d, n, shape[1]);
      if ((tail.poolSize as number) > 0) shape[2] = shape[1];
      return { name: d.pick(["preact_resnet164", "resnet164", "se_resnet29"]), options: { ...base, ...tail }, shape };
    },
  },
  resnet_imagenet: {
    count: 30,
    draw: (d) => {
      const stages = d.int(1, 4);
      const base: ModelOptions = {
        ...common(d),
        block: d.pick(["basic", "bottleneck"]),
        preact: d.bool(),
        layers: d.list(stages, 1, 2),
        baseWidth: d.int(1, 6),
        finalNorm: d.bool(),
      };
      if (d.bool()) base.stemWidth = d.int(1, 8);
      const shape = drawInput(d, base);
      const tail = resnetTail(d, stages, shape[1]);
      if ((tail.poolSize as number) > 0) shape[2] = shape[1];
      return { name: d.pick(["resnet18", "resnet50", "se_resnet18"]), options: { ...base, ...tail }, shape };
    },
  },
  resnet_cifar: {
    count: 25,
    draw: (d) => {
      const options: ModelOptions = {
        ...common(d),
        depth: d.pick([8, 14, 20]),
        shortcut: d.pick(["A", "B"]),
        se: d.bool(),
        seReduction: d.int(1, 8),
        width: d.pick([0.05, 0.1, 0.25, 0.4]),
      };
      return { name: d.pick(["resnet20", "se_resnet20"]), options, shape: drawInput(d, options) };
    },
  },
  wide_resnet: {
    count: 25,
    draw: (d) => {
      const options: ModelOptions = {
        ...common(d),
        depth: d.pick([10, 16]),
        widenFactor: d.int(1, 2),
        blockType: d.pick(["3,3", "3,1,3", "1,3,1", "1,3", "3,1", "3,1,1"]),
        dropout: d.pick([0, 0.3]),
      };
      return { name: "wrn16_2", options, shape: drawInput(d, options) };
    },
  },
  resnext: {
    count: 25,
    draw: (d) => {
      const options: ModelOptions = {
        ...common(d),
        depth: d.pick([11, 20]),
        cardinality: d.int(1, 4),
        bottleneckWidth: d.int(1, 3),
        baseChannels: d.int(1, 6),
        se: d.bool(),
        seReduction: d.int(1, 8),
      };
      return { name: "resnext29_2x64d", options, shape: drawInput(d, options) };
    },
  },
  mobilenet: {
    count: 40,
    draw: (d) => {
      const name = d.pick(["mobilenetv1", "mobilenetv2", "mobilenetv3_small", "mobilenetv3_large"]);
      const options: ModelOptions = {
        ...common(d),
        widthMultiplier: d.pick([0.05, 0.1, 0.15, 0.25]),
        strides: d.pick(["cifar", "imagenet"]),
        dropout: d.pick([0, 0.2]),
      };
      return { name, options, shape: drawInput(d, options) };
    },
  },
  efficientnet: {
    count: 15,
    draw: (d) => {
      const options: ModelOptions = {
        ...common(d),
        widthCoefficient: d.pick([0.05, 0.1, 0.2]),
        depthCoefficient: d.pick([0.1, 0.3, 0.5]),
        strides: d.pick(["cifar", "imagenet"]),
        dropPath: d.pick([0, 0.2]),
      };
      return { name: d.pick(["efficientnet_b0", "efficientnet_b2"]), options, shape: drawInput(d, options) };
    },
  },
  speednet: {
    count: 30,
    draw: (d) => {
      const options: ModelOptions = {
        ...common(d),
        stemWidth: d.int(1, 12),
        widths: Array.from({ length: d.int(1, 3) }, () => d.int(1, 24)),
        convsPerBlock: d.int(1, 3),
        activation: d.pick(["relu", "gelu"]),
      };
      return { name: "speednet", options, shape: drawInput(d, options) };
    },
  },
  densenet: {
    count: 20,
    draw: (d) => {
      const bottleneck = d.bool();
      const options: ModelOptions = {
        ...common(d),
        bottleneck,
        depth: bottleneck ? d.pick([10, 16]) : d.pick([7, 10, 13]),
        growthRate: d.int(1, 6),
        compression: d.pick([0.1, 0.5, 0.75, 1]),
        dropout: d.pick([0, 0.2]),
      };
      return { name: "densenet40_12", options, shape: drawInput(d, options) };
    },
  },
};

let seed = 2024;
for (const [family, spec] of Object.entries(VARIANTS)) {
  const familySeed = seed++;
  test(`${family}: analytic cost equals summary() on ${spec.count} random variants (seed ${familySeed})`, () => {
    const d = draw(rng(familySeed));
    for (let i = 0; i < spec.count; i++) {
      const v = spec.draw(d);
      assert.equal(getModelEntry(v.name)?.family, family, `${v.name} belongs to ${family}`);
      assertCostMatches(v.name, v.options, v.shape, ` (variant ${i})`);
    }
  });
}

// ---------------------------------------------------------------- errors

test("an impossible configuration throws the same ArgumentError through analyticCost as through createModel", () => {
  const cases: [string, ModelOptions][] = [
    ["efficient_resnet", { imageSize: 16 }], // pool 8 on a 4x4 final map
    ["efficient_resnet", { blocks: [1, 1, 1, 1], poolSize: 5 }],
    ["efficient_resnet", { convKernels: [3, 4, 3] }], // even kernel
    ["efficient_resnet", { skipKernels: [1, 1] }], // two kernels for three layers
    ["preact_resnet164", { depth: 100 }], // not 9n+2
    ["resnet18", { widths: [8, 8] }], // two widths for four stages
    ["resnet20", { depth: 21 }],
    ["wrn16_2", { depth: 11 }],
    ["resnext29_2x64d", { depth: 30 }],
    ["densenet40_12", { depth: 41 }],
    ["mobilenetv2", { widthMultiplier: 5 }],
    ["efficientnet_b0", { stride: "cifar" }], // unknown option
    ["speednet", { widths: [] }],
    ["speednet", { convsPerBlock: 5 }],
    ["speednet", { activation: "swish" }],
    ["resnet_does_not_exist", {}],
  ];
  for (const [name, options] of cases) {
    const built = thrown(() => createModel(name, options).dispose());
    assert.ok(built instanceof ArgumentError, `${name} ${JSON.stringify(options)} is impossible`);
    assert.throws(
      () => analyticCost(name, options, [3, 32, 32]),
      (err: Error) => err instanceof ArgumentError && err.message === built.message,
      `${name} ${JSON.stringify(options)}: analyticCost throws createModel's "${built.message}"`,
    );
  }
  assert.match(
    thrown(() => analyticCost("efficient_resnet", { imageSize: 16 }, [3, 16, 16]))?.message ?? "",
    /poolSize must not exceed the last stage's 4x4 feature map/,
  );
});

test("analyticCost rejects an input the model cannot take, as its forward pass would", () => {
  // a sized pool needs imageSize inputs
  assert.throws(
    () => analyticCost("efficient_resnet", { inChannels: 1 }, [1, 28, 28]),
    /ResNet: with poolSize 8 the classifier is sized for 32x32 inputs; pass imageSize/,
  );
  assert.throws(
    () => analyticCost("resnet20", {}, [1, 32, 32]),
    /analyticCost: inputShape has 1 channels but the model takes inChannels=3/,
  );
  assert.throws(() => analyticCost("resnet20", {}, [3, 0, 32] as Shape), /inputShape must be one sample's/);
  assert.throws(() => analyticCost("densenet40_12", {}, [3, 3, 3]), /DenseNet: the input is too small/);
  // six 2x2 pools need a 64x64 input; the forward pass refuses the same way
  const deep = { widths: [4, 4, 4, 4, 4, 4] };
  const tooSmall =
    /speednet: block 6 of 6 halves a 1x1 map; a 32x32 input allows 5 block\(s\)\. Use fewer widths, or larger images/;
  assert.throws(() => analyticCost("speednet", deep, [3, 32, 32]), tooSmall);
  const model = createModel("speednet", deep);
  try {
    assert.throws(() => scope(() => model.forward(zeros([1, 3, 32, 32]))), tooSmall);
    assert.equal(analyticCost("speednet", deep, [3, 64, 64])?.params, model.numParameters());
  } finally {
    model.dispose();
  }
});

test("analyticCost is undefined for a family without a cost function, after validating its options", () => {
  registerModel({
    name: "cost_test_uncosted",
    family: "cost_test",
    description: "a registry entry without a cost function (this test file only)",
    source: "test/models/cost.test.ts",
    defaults: {},
    options: defineOptions("CostTest", {}),
    create: () => createModel("resnet20"),
  });
  assert.equal(analyticCost("cost_test_uncosted", {}, [3, 32, 32]), undefined);
  assert.throws(
    () => analyticCost("cost_test_uncosted", { width: 2 }, [3, 32, 32]),
    /CostTest: unknown option "width"/,
  );
});

// ---------------------------------------------------------------- speed (counted, not timed)

test("10,000 efficient_resnet candidates are costed without building a model", (t) => {
  const d = draw(rng(7));
  const candidates = Array.from({ length: 10_000 }, () => {
    const stages = d.int(1, 4);
    return {
      blocks: d.list(stages, 1, 6),
      channels: d.int(8, 96),
      convKernels: d.pick([3, 5]),
      skipKernels: d.pick([1, 3]),
      poolSize: d.int(1, lastMap(32, stages)),
      se: d.bool(),
      preact: d.bool(),
    };
  });
  const start = performance.now();
  let done = 0;
  let maxParams = 0;
  for (const options of candidates) {
    const cost = analyticCost("efficient_resnet", options, [3, 32, 32]);
    assert.ok(cost !== undefined && cost.params > 0 && cost.macs >= cost.convLinearMacs);
    maxParams = Math.max(maxParams, cost.params);
    done++;
  }
  const seconds = (performance.now() - start) / 1000;
  assert.equal(done, 10_000);
  t.diagnostic(
    `efficient_resnet analyticCost: ${done} candidates in ${seconds.toFixed(3)} s = ${Math.round(done / seconds)} candidates/s (largest ${maxParams} params)`,
  );
});
