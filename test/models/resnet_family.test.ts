// Parameter counts and layouts of the ResNet family files: preact_resnet.ts (ResNet-164,
// pre-activation ResNets), resnet_imagenet.ts (ResNet-18/34/50 at 32x32), efficient_resnet.ts,
// and the one builder under them all (resnet_network.ts).
import assert from "node:assert/strict";
import { test } from "node:test";
import { createModel, type ModelOptions, manualSeed, noGrad, randn, scope } from "../../src";
import { ResNet, type ResNetConfig } from "../../src/models/resnet_network";
import { Dropout } from "../../src/nn/layers";
import { checkNoLeaks } from "../helpers";

checkNoLeaks();

function params(name: string, options: ModelOptions = {}): number {
  const m = createModel(name, options);
  const n = m.numParameters();
  m.dispose();
  return n;
}

// Exact counts from the papers' layouts; where a source prints the count, it is named.
const PUBLISHED: [string, number, string][] = [
  ["resnet164", 1_704_154, "He et al. 2016 Table 3: 1.7M"],
  ["preact_resnet164", 1_703_258, "He et al. 2016 Table 3: 1.7M"],
  ["preact_resnet1001", 10_327_706, "He et al. 2016 Table 3: 10.2M"],
  ["resnet18", 11_173_962, "kuangliu/pytorch-cifar ResNet18"],
  ["resnet34", 21_282_122, "kuangliu/pytorch-cifar ResNet34"],
  ["resnet50", 23_520_842, "kuangliu/pytorch-cifar ResNet50"],
  ["preact_resnet18", 11_171_146, "kuangliu/pytorch-cifar PreActResNet18"],
  ["efficient_resnet", 4_697_742, "arXiv 2306.12100, best model"],
];
for (const [name, count, source] of PUBLISHED)
  test(`${name} has exactly ${count.toLocaleString("en-US")} parameters (${source})`, () => {
    assert.equal(params(name), count);
  });

// A closed-form count written from the papers' block diagrams, independent of the model code.
interface Layout {
  block: "basic" | "bottleneck";
  preact: boolean;
  layers: number[];
  widths: number[];
  stem: number;
  finalNorm: boolean;
  se?: number;
  numClasses?: number;
  inChannels?: number;
}
const seParams = (c: number, r: number): number => {
  const h = Math.max(1, Math.floor(c / r));
  return c * h + h + h * c + c;
};
function closedForm(l: Layout): number {
  const bn = (c: number): number => 2 * c;
  let n = (l.inChannels ?? 3) * l.stem * 9 + (l.preact ? 0 : bn(l.stem));
  let cin = l.stem;
  l.layers.forEach((blocks, i) => {
    const p = l.widths[i] as number;
    const out = l.block === "basic" ? p : 4 * p;
    for (let j = 0; j < blocks; j++) {
      const convs: [number, number, number][] =
        l.block === "basic"
          ? [
              [cin, p, 9],
              [p, p, 9],
            ]
          : [
              [cin, p, 1],
              [p, p, 9],
              [p, out, 1],
            ];
      for (const [a, b, k] of convs) n += a * b * k + bn(l.preact ? a : b);
      if (j === 0 && (i > 0 || cin !== out)) n += cin * out + (l.preact ? 0 : bn(out));
      if (l.se) n += seParams(out, l.se);
      cin = out;
    }
  });
  if (l.finalNorm) n += bn(cin);
  const k = l.numClasses ?? 10;
  return n + cin * k + k;
}

const CIFAR = { widths: [16, 32, 64], stem: 16 };
const BOTTLE_PRE = { block: "bottleneck", preact: true, finalNorm: true, ...CIFAR } as const;
const NO_PUBLISHED: [string, ModelOptions, Layout][] = [
  ["resnet29", {}, { ...BOTTLE_PRE, layers: [3, 3, 3] }],
  ["se_resnet29", {}, { ...BOTTLE_PRE, layers: [3, 3, 3], se: 16 }],
  ["se_preact_resnet164", {}, { ...BOTTLE_PRE, layers: [18, 18, 18], se: 16 }],
  [
    "se_resnet164",
    {},
    { block: "bottleneck", preact: false, finalNorm: false, ...CIFAR, layers: [18, 18, 18], se: 16 },
  ],
  [
    "mini_resnet34",
    {},
    { block: "basic", preact: false, finalNorm: false, layers: [3, 4, 6, 3], widths: [16, 32, 64, 128], stem: 16 },
  ],
  [
    "se_resnet18",
    {},
    {
      block: "basic",
      preact: false,
      finalNorm: false,
      layers: [2, 2, 2, 2],
      widths: [64, 128, 256, 512],
      stem: 64,
      se: 16,
    },
  ],
  [
    "se_preact_resnet18",
    {},
    {
      block: "basic",
      preact: true,
      finalNorm: false,
      layers: [2, 2, 2, 2],
      widths: [64, 128, 256, 512],
      stem: 64,
      se: 16,
    },
  ],
  [
    "preact_resnet164",
    { numClasses: 100, inChannels: 1 },
    { ...BOTTLE_PRE, layers: [18, 18, 18], numClasses: 100, inChannels: 1 },
  ],
];
for (const [name, options, layout] of NO_PUBLISHED)
  test(`${name} ${JSON.stringify(options)} matches its closed-form count (no published count)`, () => {
    assert.equal(params(name, options), closedForm(layout));
  });

test("the closed form reproduces the published counts it is checked against", () => {
  assert.equal(
    closedForm({ block: "bottleneck", preact: false, finalNorm: false, ...CIFAR, layers: [18, 18, 18] }),
    1_704_154,
  );
  assert.equal(closedForm({ ...BOTTLE_PRE, layers: [18, 18, 18] }), 1_703_258);
});

test("state-dict keys follow torchvision: bottleneck conv3/bn3, downsample.0/.1; pre-activation has no downsample.1", () => {
  const post = createModel("resnet164");
  const keys = [...post.stateDict().keys()];
  for (const k of ["conv1.weight", "bn1.running_mean", "layer1.0.conv3.weight", "layer1.0.bn3.num_batches_tracked"])
    assert.ok(keys.includes(k), k);
  for (const k of [
    "layer1.0.downsample.0.weight",
    "layer2.0.downsample.1.running_var",
    "layer3.17.bn3.bias",
    "fc.bias",
  ])
    assert.ok(keys.includes(k), k);
  assert.ok(!keys.includes("layer1.1.downsample.0.weight"));
  post.dispose();
  const pre = createModel("se_resnet29");
  const preKeys = [...pre.stateDict().keys()];
  assert.ok(preKeys.includes("layer2.0.downsample.0.weight"));
  assert.ok(!preKeys.some((k) => k.includes("downsample.1")));
  assert.ok(!preKeys.includes("bn1.weight"), "a pre-activation stem is a bare convolution");
  assert.ok(preKeys.includes("final_bn.running_mean") && preKeys.includes("layer3.2.se.fc2.weight"));
  assert.deepEqual(preKeys.filter((k) => k.startsWith("layer1.0.")).slice(0, 3), [
    "layer1.0.bn1.weight",
    "layer1.0.bn1.bias",
    "layer1.0.bn1.running_mean",
  ]);
  pre.dispose();
});

test("1-channel 28x28 input (Fashion-MNIST) and 100 classes run through every layout", () => {
  for (const [name, options] of [
    ["resnet29", {}],
    ["mini_resnet34", {}],
    ["efficient_resnet", { imageSize: 28, poolSize: 7, channels: 8 }],
  ] as [string, ModelOptions][]) {
    const m = createModel(name, { ...options, inChannels: 1, numClasses: 100 }).eval();
    const shape = scope(() => noGrad(() => m.forward(randn([2, 1, 28, 28])).shape));
    assert.deepEqual(shape, [2, 100], name);
    m.dispose();
  }
});

test("efficient_resnet: P sizes the classifier (P=4 on the 8x8 map gives 4 pooled pixels)", () => {
  const p8 = params("efficient_resnet");
  const p4 = params("efficient_resnet", { poolSize: 4 });
  assert.equal(p4 - p8, 256 * 3 * 10);
  // 64x64 input: the last map is 16x16, P=8 leaves 2x2
  assert.equal(params("efficient_resnet", { imageSize: 64 }) - p8, 256 * 3 * 10);
});

test("efficient_resnet: F and K change the kernels; SE after the stem is the only SE", () => {
  const m = createModel("efficient_resnet", { convKernels: [5, 3, 3], skipKernels: [1, 3, 3] });
  const sd = m.stateDict();
  assert.deepEqual(sd.get("layer1.0.conv1.weight")?.shape, [64, 64, 5, 5]);
  assert.deepEqual(sd.get("layer2.0.conv2.weight")?.shape, [128, 128, 3, 3]);
  assert.deepEqual(sd.get("layer2.0.downsample.0.weight")?.shape, [128, 64, 3, 3]);
  assert.deepEqual(sd.get("se.fc1.weight")?.shape, [4, 64, 1, 1]);
  assert.equal([...sd.keys()].filter((k) => k.includes(".se.")).length, 0);
  m.dispose();
  assert.equal(params("efficient_resnet") - params("efficient_resnet", { se: false }), seParams(64, 16));
});

test("efficient_resnet rejects impossible configurations with the option's name and value", () => {
  const bad: [ModelOptions, RegExp][] = [
    [{ poolSize: 16 }, /poolSize must not exceed the last stage's 8x8 feature map.*Received: poolSize=16/],
    [{ imageSize: 28 }, /poolSize must not exceed the last stage's 7x7/],
    [{ convKernels: 0 }, /convKernels must be an integer >= 1 or a non-empty list of them.*Received: convKernels=0/],
    [{ convKernels: [3, 4, 3] }, /positive odd integer.*Received: kernelSizes=4/],
    [{ convKernels: [3, 3] }, /kernelSizes must have one entry per stage \(3, as layers has\)/],
    [{ skipKernels: [1, 1, 1, 1] }, /skipKernelSizes must have one entry per stage/],
    [{ blocks: [4, 0, 3] }, /blocks must be a non-empty list of integers >= 1/],
    [{ blocks: [] }, /blocks must be a non-empty list of integers >= 1/],
    [{ dropout: 1 }, /dropout must be a number in \[0, 1\)/],
    [{ convKernels: 2 }, /kernelSizes must be a positive odd integer.*Received: kernelSizes=2/],
    [{ chanels: 32 }, /unknown option "chanels"\. Known options: .*channels/],
  ];
  for (const [options, message] of bad) assert.throws(() => createModel("efficient_resnet", options), message);
});

test("a model built for one image size names the size it needs when given another", () => {
  const m = createModel("efficient_resnet", { channels: 8 }).eval();
  assert.throws(
    () => scope(() => noGrad(() => m.forward(randn([1, 3, 28, 28])))),
    /sized for 32x32 inputs; pass imageSize/,
  );
  m.dispose();
});

test("pre-activation depths must be 9n+2 with bottlenecks, 6n+2 with basic blocks", () => {
  assert.throws(
    () => createModel("resnet29", { depth: 30 }),
    /depth must be 9n \+ 2 for bottleneck blocks.*Received: depth=30/,
  );
  assert.throws(() => createModel("resnet29", { block: "basic", depth: 29 }), /depth must be 6n \+ 2 for basic blocks/);
  assert.equal(params("resnet29", { depth: 47 }), closedForm({ ...BOTTLE_PRE, layers: [5, 5, 5] }));
  assert.throws(() => createModel("resnet18", { block: "wide" }), /block must be one of "basic", "bottleneck"/);
});

test("one builder: ResNetCifar, ResNeXt and WideResNet are ResNet argument sets with their own unit classes", () => {
  for (const [name, unit] of [
    ["resnet20", "CifarBasicBlock"],
    ["resnext29_8x8d_w32", "ResNeXtBlock"],
    ["wrn16_2", "WideBlock"],
    ["resnet18", "BasicBlock"],
    ["resnet164", "Bottleneck"],
    ["preact_resnet18", "PreActBasicBlock"],
    ["resnet29", "PreActBottleneck"],
  ] as const) {
    const m = createModel(name);
    assert.ok(m instanceof ResNet, name);
    assert.equal(m.namedModules().find(([k]) => k === "layer1.0")?.[1].constructor.name, unit, name);
    m.dispose();
  }
});

test("builder arguments: shortcut A on bottlenecks, grouped 3x3, dropout between convs, stochastic depth", () => {
  const base: ResNetConfig = {
    numClasses: 5,
    inChannels: 3,
    block: "bottleneck",
    preact: true,
    layers: [2, 2],
    widths: [4, 8],
    stemWidth: 8,
    kernelSizes: [3, 3],
    skipKernelSizes: [1, 1],
    seReduction: 4,
    seStemReduction: 0,
    finalNorm: true,
    poolSize: 0,
    imageSize: 16,
    dropout: 0,
  };
  manualSeed(0);
  const a = new ResNet({ ...base, shortcut: "A", cardinality: 2, bottleneckWidths: [8, 16], dropPath: 0.5 });
  const b = new ResNet({ ...base, cardinality: 2, bottleneckWidths: [8, 16], blockDropout: 0.2 });
  const keys = [...a.stateDict().keys()];
  assert.ok(!keys.some((k) => k.includes("downsample")), "option A has no parameters");
  assert.deepEqual(a.stateDict().get("layer1.0.conv2.weight")?.shape, [8, 4, 3, 3], "2 groups of 4 channels");
  assert.ok([...b.stateDict().keys()].includes("layer2.0.downsample.0.weight"));
  assert.ok(b.namedModules().some(([k, m]) => k === "layer1.0.dropout" && m instanceof Dropout));
  scope(() => {
    const x = randn([3, 3, 16, 16]);
    for (const m of [a, b]) {
      m.train();
      assert.deepEqual(m.forward(x).shape, [3, 5]);
      m.eval();
      const y1 = noGrad(() => m.forward(x));
      const y2 = noGrad(() => m.forward(x));
      assert.equal(y1.sub(y2).abs().max().item(), 0, "eval is deterministic");
    }
    return undefined;
  });
  a.dispose();
  b.dispose();
  assert.throws(() => new ResNet({ ...base, dropPath: 1 }), /dropPath must be in \[0, 1\)/);
  assert.throws(() => new ResNet({ ...base, bottleneckWidths: [8] }), /bottleneckWidths must have one entry per stage/);
});
