import assert from "node:assert/strict";
import * as path from "node:path";
import { test } from "node:test";
import {
  ArgumentError,
  copyInPlace,
  createModel,
  crossEntropy,
  getModelEntry,
  liveTensors,
  manualSeed,
  noGrad,
  ResNetCifar,
  randint,
  randn,
  scope,
  tensor,
} from "../../src";
import { assertClose, checkNoLeaks, peerSkip, requirePyTorch, runPython } from "../helpers";

checkNoLeaks();

function countOf(name: string, options: Record<string, unknown> = {}): number {
  const m = createModel(name, options);
  const n = m.numParameters();
  m.dispose();
  return n;
}

// Option B (1x1 projection + BN where the shape changes), 10 classes.
const OPTION_B: [string, number][] = [
  ["resnet20", 272_474],
  ["resnet32", 466_906],
  ["resnet44", 661_338],
  ["resnet56", 855_770],
  ["resnet110", 1_730_714],
  ["resnet1202", 19_424_026],
];
for (const [name, count] of OPTION_B)
  test(`${name} option B has exactly ${count.toLocaleString("en-US")} trainable parameters`, () => {
    assert.equal(countOf(name), count);
  });

// Option A (zero-padding identity): the paper's Table 6 lists 0.27M, 0.46M, 0.66M, 0.85M, 1.7M, 19.4M.
const OPTION_A: [string, number, number][] = [
  ["resnet20", 269_722, 0.27],
  ["resnet32", 464_154, 0.46],
  ["resnet44", 658_586, 0.66],
  ["resnet56", 853_018, 0.85],
  ["resnet110", 1_727_962, 1.7],
  ["resnet1202", 19_421_274, 19.4],
];
for (const [name, count, paperMillions] of OPTION_A)
  test(`${name} option A has exactly ${count.toLocaleString("en-US")} parameters, the paper's ${paperMillions}M`, () => {
    const n = countOf(name, { shortcut: "A" });
    assert.equal(n, count);
    const digits = paperMillions >= 1 ? 1 : 2; // the table's own precision
    assert.equal(Number((n / 1e6).toFixed(digits)), paperMillions);
  });

test("se_resnet20/56/110 (r=16) have 274,847 / 862,889 / 1,744,952 parameters", () => {
  assert.equal(countOf("se_resnet20"), 274_847);
  assert.equal(countOf("se_resnet56"), 862_889);
  assert.equal(countOf("se_resnet110"), 1_744_952);
});

test("resnet1202 is marked large for the registry-wide test", () => {
  assert.equal(getModelEntry("resnet1202")?.large, true);
  assert.notEqual(getModelEntry("resnet20")?.large, true);
});

test("resnet20 on x=[2,3,32,32] gives finite logits [2,10]; 100 classes and 1-channel 28x28 input work", () => {
  manualSeed(0);
  scope(() => {
    const m = createModel("resnet20");
    const y = m.forward(randn([2, 3, 32, 32]));
    assert.deepEqual(y.shape, [2, 10]);
    assert.ok(y.toArray().every(Number.isFinite));
    const m2 = createModel("resnet20", { numClasses: 100, inChannels: 1, shortcut: "A" });
    const y2 = m2.forward(randn([3, 1, 28, 28]));
    assert.deepEqual(y2.shape, [3, 100]);
    assert.ok(y2.toArray().every(Number.isFinite));
    m.dispose();
    m2.dispose();
    return undefined;
  });
});

test("width=2 doubles every stage (32/64/128 channels)", () => {
  const m = createModel("resnet20", { width: 2 });
  const sd = m.stateDict();
  assert.deepEqual(sd.get("conv1.weight")?.shape, [32, 3, 3, 3]);
  assert.deepEqual(sd.get("layer3.2.conv2.weight")?.shape, [128, 128, 3, 3]);
  assert.deepEqual(sd.get("fc.weight")?.shape, [10, 128]);
  m.dispose();
});

test("state-dict keys follow torchvision (conv1, bn1, layer{i}.{j}, downsample.0/.1, fc)", () => {
  const m = createModel("resnet20");
  const keys = [...m.stateDict().keys()];
  const bn = (p: string) => [
    `${p}.weight`,
    `${p}.bias`,
    `${p}.running_mean`,
    `${p}.running_var`,
    `${p}.num_batches_tracked`,
  ];
  const expected = ["conv1.weight", ...bn("bn1")];
  for (const i of [1, 2, 3])
    for (const j of [0, 1, 2]) {
      const p = `layer${i}.${j}`;
      expected.push(`${p}.conv1.weight`, ...bn(`${p}.bn1`), `${p}.conv2.weight`, ...bn(`${p}.bn2`));
      if (i > 1 && j === 0) expected.push(`${p}.downsample.0.weight`, ...bn(`${p}.downsample.1`));
    }
  expected.push("fc.weight", "fc.bias");
  assert.deepEqual(keys, expected);
  m.dispose();
  const a = createModel("resnet20", { shortcut: "A" });
  assert.ok(![...a.stateDict().keys()].some((k) => k.includes("downsample")), "option A has no parameters");
  a.dispose();
  const se = createModel("se_resnet20");
  const seKeys = [...se.stateDict().keys()].filter((k) => k.startsWith("layer1.0.se."));
  assert.deepEqual(seKeys, [
    "layer1.0.se.fc1.weight",
    "layer1.0.se.fc1.bias",
    "layer1.0.se.fc2.weight",
    "layer1.0.se.fc2.bias",
  ]);
  se.dispose();
});

test("convolutions start Kaiming normal (fan_out, relu); BatchNorm at weight 1, bias 0", () => {
  manualSeed(1);
  const m = createModel("resnet56");
  const sd = m.stateDict();
  // layer3.*.conv2: fan_out = 64·3·3 = 576, so std = √(2/576) ≈ 0.0589; 9 such tensors of 36,864.
  const values = [...sd.entries()]
    .filter(([k]) => /^layer3\.\d+\.conv2\.weight$/.test(k))
    .flatMap(([, t]) => t.toArray());
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  const sd2 = Math.sqrt(values.reduce((a, b) => a + (b - mean) ** 2, 0) / values.length);
  assert.ok(Math.abs(sd2 - Math.sqrt(2 / 576)) < 0.01 * Math.sqrt(2 / 576), `std ${sd2}`);
  assert.ok(Math.abs(mean) < 0.001, `mean ${mean}`);
  assert.ok(
    sd
      .get("layer2.4.bn1.weight")
      ?.toArray()
      .every((v) => v === 1),
  );
  assert.ok(
    sd
      .get("layer2.4.bn1.bias")
      ?.toArray()
      .every((v) => v === 0),
  );
  m.dispose();
});

test("forward + backward in training mode gives every parameter a finite gradient", () => {
  manualSeed(2);
  for (const name of ["resnet20", "se_resnet20"])
    for (const shortcut of ["A", "B"]) {
      const m = createModel(name, { shortcut });
      const before = liveTensors();
      scope(() => {
        const loss = crossEntropy(m.forward(randn([4, 3, 32, 32])), randint(0, 10, [4], { dtype: "int64" }));
        assert.ok(Number.isFinite(loss.item()));
        loss.backward();
        for (const [key, p] of m.namedParameters()) {
          const g = p.grad;
          assert.ok(g !== undefined, `${name}/${shortcut}: ${key} has no gradient`);
          assert.ok(g.toArray().every(Number.isFinite), `${name}/${shortcut}: ${key} gradient not finite`);
        }
        return undefined;
      });
      m.zeroGrad();
      assert.equal(liveTensors(), before, `${name}/${shortcut}: a training step leaked tensors`);
      m.dispose();
    }
});

test("bad options give clear errors", () => {
  assert.throws(() => createModel("resnet20", { depth: 21 }), /depth must be 6n\+2.*Received: depth=21/);
  assert.throws(
    () => createModel("resnet20", { shortcut: "C" }),
    /shortcut must be one of "A", "B"\. Received: shortcut="C"/,
  );
  assert.throws(() => createModel("resnet20", { se: -1 }), ArgumentError);
  assert.throws(() => createModel("resnet20", { width: 0 }), /width must be a number > 0/);
  assert.throws(() => new ResNetCifar({ depth: 20, numClasses: 0 }), /numClasses must be an integer >= 1/);
});

const PEER = `
import json, sys
sys.path.insert(0, ${JSON.stringify(path.resolve(__dirname, "../../../bench/peers"))})
import torch
from resnet_cifar import ResNetCifar
inp = json.load(sys.stdin)
torch.set_num_threads(1)
m = ResNetCifar(depth=inp["depth"], shortcut=inp["shortcut"], se=inp["se"])
own = m.state_dict()
m.load_state_dict({k: torch.tensor(v, dtype=own[k].dtype).reshape(own[k].shape) for k, v in inp["state"].items()})
x = torch.tensor(inp["x"]).reshape(inp["xshape"])
with torch.no_grad():
    m.eval(); ev = m(x).flatten().tolist()
    m.train(); tr = m(x).flatten().tolist()
print(json.dumps({"eval": ev, "train": tr, "keys": list(own.keys())}))
`;

for (const [name, shortcut] of [
  ["resnet20", "B"],
  ["resnet20", "A"],
  ["se_resnet20", "B"],
] as const)
  test(
    `${name} shortcut ${shortcut} matches the PyTorch peer (same weights, train and eval)`,
    { skip: peerSkip() },
    () => {
      requirePyTorch(); // before any tensor is made, so a missing peer fails without a leak report
      manualSeed(3);
      const m = createModel(name, { shortcut });
      const { x, state, xshape } = noGrad(() =>
        scope(() => {
          // Non-trivial running statistics so eval mode is tested on more than the identity.
          for (const [k, t] of m.namedBuffers())
            if (k.endsWith("running_mean")) copyInPlace(t, randn(t.shape).mul(0.1));
            else if (k.endsWith("running_var")) copyInPlace(t, randn(t.shape).abs().add(0.5));
          const xt = randn([2, 3, 32, 32]);
          const st: Record<string, number[]> = {};
          for (const [k, t] of m.stateDict()) st[k] = t.toArray();
          return { x: xt.toArray(), state: st, xshape: xt.shape };
        }),
      );
      const depth = 20;
      const se = name.startsWith("se_") ? 16 : 0;
      const peer = runPython<{ eval: number[]; train: number[]; keys: string[] }>(PEER, {
        depth,
        shortcut,
        se,
        state,
        x,
        xshape,
      });
      assert.deepEqual([...m.stateDict().keys()], peer.keys);
      scope(() => {
        const xt = tensor(x, xshape);
        m.eval();
        assertClose(noGrad(() => m.forward(xt)).toArray(), peer.eval, 1e-4, 1e-4);
        m.train();
        assertClose(noGrad(() => m.forward(xt)).toArray(), peer.train, 1e-4, 1e-4);
        return undefined;
      });
      m.dispose();
    },
  );
