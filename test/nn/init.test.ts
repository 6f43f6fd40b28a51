// Initializers: with the same manualSeed, layers and torch.nn.init functions draw the very same
// numbers as PyTorch with torch.manual_seed.
import assert from "node:assert/strict";
import { test } from "node:test";
import * as bn from "../../src";
import { checkNoLeaks, havePyTorch, peerSkip, requirePyTorch, runPython } from "../helpers";

checkNoLeaks();
const { init } = bn.nn;

const PEER = `
import json, torch, torch.nn as nn
out = {}
def take(name, *ts):
    out[name] = [t.detach().flatten().tolist() for t in ts]
torch.manual_seed(0)
c = nn.Conv2d(3, 8, 3); take("conv2d", c.weight, c.bias)
g = nn.Conv2d(6, 4, (3, 5), groups=2, bias=False); take("conv2d-grouped", g.weight)
l = nn.Linear(10, 4); take("linear", l.weight, l.bias)
t = nn.ConvTranspose2d(4, 6, 3, groups=2); take("convTranspose2d", t.weight, t.bias)
b = nn.BatchNorm2d(5); take("batchNorm2d", b.weight, b.bias, b.running_mean, b.running_var)
torch.manual_seed(42)
w = torch.empty(16, 8, 3, 3)
nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu"); take("kaimingNormal-fan_out-relu", w)
nn.init.kaiming_uniform_(w); take("kaimingUniform-default", w)
nn.init.kaiming_uniform_(w, a=0.1, nonlinearity="leaky_relu"); take("kaimingUniform-leaky", w)
nn.init.xavier_uniform_(w); take("xavierUniform", w)
nn.init.xavier_normal_(w, gain=nn.init.calculate_gain("tanh")); take("xavierNormal-tanh", w)
nn.init.normal_(w, 0.0, 0.01); take("normal", w)
nn.init.uniform_(w, -0.1, 0.3); take("uniform", w)
out["gains"] = [nn.init.calculate_gain(n) for n in ["linear", "conv2d", "sigmoid", "tanh", "relu", "selu"]] + [nn.init.calculate_gain("leaky_relu", 0.2)]
print(json.dumps(out))
`;

function ours(): Record<string, number[][] | number[]> {
  const out: Record<string, number[][] | number[]> = {};
  const take = (name: string, ...ts: (bn.Tensor | undefined)[]) => {
    out[name] = ts.map((t) => (t as bn.Tensor).toArray());
  };
  const layers: bn.nn.Module[] = [];
  const keepLayer = <M extends bn.nn.Module>(m: M) => {
    layers.push(m);
    return m;
  };
  bn.manualSeed(0);
  const c = keepLayer(new bn.nn.Conv2d({ inChannels: 3, outChannels: 8, kernelSize: 3 }));
  take("conv2d", c.weight, c.bias);
  const g = keepLayer(new bn.nn.Conv2d({ inChannels: 6, outChannels: 4, kernelSize: [3, 5], groups: 2, bias: false }));
  take("conv2d-grouped", g.weight);
  const l = keepLayer(new bn.nn.Linear({ inFeatures: 10, outFeatures: 4 }));
  take("linear", l.weight, l.bias);
  const t = keepLayer(new bn.nn.ConvTranspose2d({ inChannels: 4, outChannels: 6, kernelSize: 3, groups: 2 }));
  take("convTranspose2d", t.weight, t.bias);
  const b = keepLayer(new bn.nn.BatchNorm2d({ numFeatures: 5 }));
  take("batchNorm2d", b.weight, b.bias, b.runningMean, b.runningVar);
  for (const m of layers) m.dispose();
  bn.scope(() => {
    bn.manualSeed(42);
    const w = bn.empty([16, 8, 3, 3]);
    take("kaimingNormal-fan_out-relu", init.kaimingNormal(w, { mode: "fan_out", nonlinearity: "relu" }));
    take("kaimingUniform-default", init.kaimingUniform(w));
    take("kaimingUniform-leaky", init.kaimingUniform(w, { a: 0.1, nonlinearity: "leaky_relu" }));
    take("xavierUniform", init.xavierUniform(w));
    take("xavierNormal-tanh", init.xavierNormal(w, init.calculateGain("tanh")));
    take("normal", init.normal(w, 0, 0.01));
    take("uniform", init.uniform(w, -0.1, 0.3));
    return undefined;
  });
  out.gains = [
    ...(["linear", "conv2d", "sigmoid", "tanh", "relu", "selu"] as const).map((n) => init.calculateGain(n)),
    init.calculateGain("leaky_relu", 0.2),
  ];
  return out;
}

const peer = havePyTorch() ? runPython<Record<string, number[][] | number[]>>(PEER) : undefined;
const mine = ours();
const names = [
  "conv2d",
  "conv2d-grouped",
  "linear",
  "convTranspose2d",
  "batchNorm2d",
  "kaimingNormal-fan_out-relu",
  "kaimingUniform-default",
  "kaimingUniform-leaky",
  "xavierUniform",
  "xavierNormal-tanh",
  "normal",
  "uniform",
];

for (const name of names) {
  test(`${name} init draws the same numbers as PyTorch with the same seed`, { skip: peerSkip() }, () => {
    requirePyTorch();
    const want = peer?.[name] as number[][];
    const got = mine[name] as number[][];
    assert.equal(got.length, want.length);
    for (let i = 0; i < want.length; i++) {
      const w = want[i] as number[];
      const g = got[i] as number[];
      assert.equal(g.length, w.length, `tensor ${i} size`);
      // both are float32 draws from the same generator: equal exactly
      assert.deepEqual(g, w, `tensor ${i}`);
    }
  });
}

test("calculateGain matches torch.nn.init.calculate_gain", { skip: peerSkip() }, () => {
  requirePyTorch();
  const want = peer?.gains as number[];
  (mine.gains as number[]).forEach((g, i) => {
    assert.ok(Math.abs(g - (want[i] as number)) < 1e-12, `gain ${i}: ${g} vs ${want[i]}`);
  });
});

test("initializers explain bad arguments", () => {
  bn.scope(() => {
    assert.throws(() => init.kaimingNormal(bn.empty([5])), /fan in and fan out need a tensor of 2 or more dimensions/);
    assert.throws(() => init.kaimingNormal(bn.empty([5, 5]), { mode: "fan_both" as "fan_in" }), /mode must be/);
    assert.throws(() => init.calculateGain("swish" as "relu"), /unknown nonlinearity/);
    return undefined;
  });
});

test("kaimingNormal(fan_out, relu) has the standard deviation sqrt(2 / fan_out)", () => {
  bn.scope(() => {
    bn.manualSeed(5);
    const w = init.kaimingNormal(bn.empty([64, 32, 3, 3]), { mode: "fan_out", nonlinearity: "relu" });
    const sd = bn.std(w).item();
    const expected = Math.sqrt(2 / (64 * 9));
    assert.ok(Math.abs(sd / expected - 1) < 0.02, `std ${sd} vs ${expected}`);
    return undefined;
  });
});
