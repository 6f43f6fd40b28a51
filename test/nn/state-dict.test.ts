// State dicts: PyTorch's key names and order for a nested model, loadStateDict's strict and
// non-strict behaviour, and PyTorch weights loaded through safetensors giving PyTorch's output.
import assert from "node:assert/strict";
import * as path from "node:path";
import { test } from "node:test";
import * as bn from "../../src";
import { checkNoLeaks, havePyTorch, peerSkip, requirePyTorch, runPython, tempDir } from "../helpers";

checkNoLeaks();
const { nn } = bn;

/** A small module of our own: a parameter, a buffer and a child, in PyTorch's registration order. */
class Scaled extends nn.Module {
  readonly scale: bn.Tensor;
  readonly conv: bn.nn.Conv2d;
  constructor() {
    super();
    this.scale = this.registerParameter("scale", bn.ones([4]));
    this.registerBuffer("steps", bn.zeros([1]));
    this.conv = this.registerModule("conv", new nn.Conv2d({ inChannels: 4, outChannels: 4, kernelSize: 1 }));
  }
  forward(x: bn.Tensor): bn.Tensor {
    return this.conv.forward(x).mul(this.scale.reshape([1, 4, 1, 1]));
  }
  toConfig() {
    return {};
  }
}

function model(): bn.nn.Sequential {
  return new nn.Sequential([
    new nn.Conv2d({ inChannels: 3, outChannels: 4, kernelSize: 3, padding: 1, bias: false }),
    new nn.BatchNorm2d({ numFeatures: 4 }),
    new nn.ReLU(),
    new nn.Sequential([
      new nn.Conv2d({ inChannels: 4, outChannels: 4, kernelSize: 3, padding: 1, groups: 2 }),
      new nn.BatchNorm2d({ numFeatures: 4 }),
    ]),
    new nn.SqueezeExcite({ channels: 4, reducedChannels: 2 }),
    new Scaled(),
    new nn.AdaptiveAvgPool2d(1),
    new nn.Flatten(),
    new nn.Linear({ inFeatures: 4, outFeatures: 3 }),
  ]);
}

const PEER = `
import json, struct, sys, torch, torch.nn as nn
file = json.load(sys.stdin)
class SE(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Conv2d(4, 2, 1); self.act = nn.ReLU(); self.fc2 = nn.Conv2d(2, 4, 1); self.gate = nn.Sigmoid()
    def forward(self, x):
        return x * self.gate(self.fc2(self.act(self.fc1(x.mean((2, 3), keepdim=True)))))
class Scaled(nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(4)); self.register_buffer("steps", torch.zeros(1)); self.conv = nn.Conv2d(4, 4, 1)
    def forward(self, x):
        return self.conv(x) * self.scale.reshape(1, 4, 1, 1)
torch.manual_seed(3)
m = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU(),
                  nn.Sequential(nn.Conv2d(4, 4, 3, padding=1, groups=2), nn.BatchNorm2d(4)), SE(), Scaled(),
                  nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3))
sd = m.state_dict()
keys = [[k, list(v.shape), str(v.dtype).replace("torch.", "")] for k, v in sd.items()]
init = {k: v.double().flatten().tolist() for k, v in sd.items()}
# two training steps move the running stats and num_batches_tracked, then eval on a fixed input
x = torch.linspace(-2, 2, 2 * 3 * 5 * 5).reshape(2, 3, 5, 5)
m.train(); m(x); m(x * 0.5 + 0.3)
stats = {k: v.double().flatten().tolist() for k, v in m.state_dict().items() if "running" in k or "num_batches" in k}
with torch.no_grad():
    for p in m.parameters(): p.add_(0.01 * torch.arange(p.numel()).reshape(p.shape).sin())
m.eval()
y = m(x).flatten().tolist()
names = {torch.float32: "F32", torch.int64: "I64"}
header, data = {}, b""
for k, v in m.state_dict().items():
    b = v.contiguous().numpy().tobytes()
    header[k] = {"dtype": names[v.dtype], "shape": list(v.shape), "data_offsets": [len(data), len(data) + len(b)]}
    data += b
h = json.dumps(header).encode()
open(file, "wb").write(struct.pack("<Q", len(h)) + h + data)
print(json.dumps({"keys": keys, "init": init, "stats": stats, "y": y}))
`;

interface Peer {
  keys: [string, number[], string][];
  init: Record<string, number[]>;
  stats: Record<string, number[]>;
  y: number[];
}
// One PyTorch run serves both parity tests: it writes its trained weights to peerFile.
const peerFile = path.join(tempDir(), "torch-model.safetensors");
const peer = havePyTorch() ? runPython<Peer>(PEER, peerFile) : undefined;

test(
  "stateDict key names, order, shapes and dtypes of a nested model equal PyTorch's; same seed gives same values",
  { skip: peerSkip() },
  () => {
    requirePyTorch();
    const want = peer as Peer;
    bn.manualSeed(3);
    const m = model();
    const sd = m.stateDict();
    assert.deepEqual(
      [...sd.entries()].map(([k, t]) => [k, t.shape, t.dtype]),
      want.keys,
    );
    assert.ok(sd.has("1.num_batches_tracked") && sd.has("3.1.num_batches_tracked"));
    for (const [k, t] of sd) assert.deepEqual(t.toArray(), want.init[k], `value of ${k}`);
    m.dispose();
  },
);

test(
  "PyTorch weights saved as safetensors load into our model and give PyTorch's eval output",
  { skip: peerSkip() },
  () => {
    requirePyTorch();
    const want = peer as Peer;
    const m = model();
    bn.scope(() => {
      const { tensors } = bn.loadSafetensors(peerFile);
      assert.deepEqual(m.loadStateDict(tensors), { missing: [], unexpected: [] });
      assert.equal((m.stateDict().get("1.num_batches_tracked") as bn.Tensor).item(), 2);
      m.eval();
      const x = bn.reshape(
        bn
          .arange(0, 150, 1, { dtype: "float32" })
          .mul(4 / 149)
          .sub(2),
        [2, 3, 5, 5],
      );
      const y = bn.noGrad(() => m.forward(x)).toArray();
      for (const [i, v] of y.entries())
        assert.ok(Math.abs(v - (want.y[i] as number)) < 1e-5, `y[${i}] ${v} vs ${want.y[i]}`);
      return undefined;
    });
    m.dispose();
  },
);

test(
  "two training-mode forwards update running stats and num_batches_tracked like PyTorch's modules",
  { skip: peerSkip() },
  () => {
    requirePyTorch();
    const want = peer as Peer;
    bn.manualSeed(3);
    const m = model();
    bn.scope(() => {
      const x = bn.reshape(
        bn
          .arange(0, 150, 1, { dtype: "float32" })
          .mul(4 / 149)
          .sub(2),
        [2, 3, 5, 5],
      );
      m.forward(x);
      m.forward(x.mul(0.5).add(0.3));
      const sd = m.stateDict();
      assert.deepEqual(Object.keys(want.stats).sort(), [
        "1.num_batches_tracked",
        "1.running_mean",
        "1.running_var",
        "3.1.num_batches_tracked",
        "3.1.running_mean",
        "3.1.running_var",
      ]);
      for (const [k, v] of Object.entries(want.stats)) {
        const got = (sd.get(k) as bn.Tensor).toArray();
        for (const [i, e] of v.entries())
          assert.ok(Math.abs((got[i] as number) - e) < 1e-5, `${k}[${i}] ${got[i]} vs ${e}`);
      }
      return undefined;
    });
    m.dispose();
  },
);

test("strict loadStateDict lists every missing, unexpected and mis-shaped key at once and changes nothing", () => {
  const m = model();
  bn.scope(() => {
    const before = (m.stateDict().get("8.weight") as bn.Tensor).toArray();
    const sd = new Map(m.stateDict());
    sd.delete("0.weight");
    sd.delete("3.1.running_var");
    sd.set("extra.weight", bn.zeros([2]));
    sd.set("8.weight", bn.zeros([3, 5]));
    sd.set("8.bias", bn.zeros([4]));
    assert.throws(
      () => m.loadStateDict(sd),
      (e: unknown) => {
        assert.ok(e instanceof nn.StateDictError);
        assert.deepEqual(e.missing, ["0.weight", "3.1.running_var"]);
        assert.deepEqual(e.unexpected, ["extra.weight"]);
        assert.deepEqual(e.mismatched, [
          { key: "8.weight", expected: [3, 4], received: [3, 5] },
          { key: "8.bias", expected: [3], received: [4] },
        ]);
        assert.match(e.message, /missing keys \(2\): 0.weight, 3.1.running_var/);
        assert.match(e.message, /unexpected keys \(1\): extra.weight/);
        assert.match(e.message, /8.weight expects \[3, 4\] but got \[3, 5\]/);
        return true;
      },
    );
    assert.deepEqual((m.stateDict().get("8.weight") as bn.Tensor).toArray(), before);
    return undefined;
  });
  m.dispose();
});

test("non-strict loadStateDict returns missing and unexpected keys and loads the rest by copy", () => {
  bn.manualSeed(1);
  const a = model();
  bn.manualSeed(2);
  const b = model();
  bn.scope(() => {
    const sd = new Map(a.stateDict());
    sd.delete("8.bias");
    sd.set("head.weight", bn.zeros([1]));
    const r = b.loadStateDict(sd, { strict: false });
    assert.deepEqual(r, { missing: ["8.bias"], unexpected: ["head.weight"] });
    const bw = b.stateDict().get("0.weight") as bn.Tensor;
    assert.equal(bn.maxAbsDiff(bw, a.stateDict().get("0.weight") as bn.Tensor), 0);
    assert.notEqual(
      bn.maxAbsDiff(b.stateDict().get("8.bias") as bn.Tensor, a.stateDict().get("8.bias") as bn.Tensor),
      0,
    );
    // copied, not aliased: changing a's weight leaves b's alone
    bn.fillInPlace(a.stateDict().get("0.weight") as bn.Tensor, 9);
    assert.notEqual(bw.toArray()[0], 9);
    assert.equal(bw.requiresGrad, true);
    // mis-shaped keys still throw when not strict
    sd.set("8.weight", bn.zeros([1]));
    assert.throws(() => b.loadStateDict(sd, { strict: false }), /8.weight expects \[3, 4\] but got \[1\]/);
    return undefined;
  });
  a.dispose();
  b.dispose();
});

test("a plain object works as a state dict; train() and eval() recurse", () => {
  const m = new nn.Sequential([
    new nn.Linear({ inFeatures: 2, outFeatures: 2 }),
    new nn.Sequential([new nn.Dropout(0.5)]),
  ]);
  m.eval(); // Dropout is the identity in eval mode
  bn.scope(() => {
    m.loadStateDict({
      "0.weight": bn.tensor([
        [1, 2],
        [3, 4],
      ]),
      "0.bias": bn.tensor([0, 1]),
    });
    assert.deepEqual(m.forward(bn.tensor([[1, 1]])).toArray(), [3, 8]);
    return undefined;
  });
  m.eval();
  assert.ok(m.namedModules().every(([, c]) => !c.training));
  m.train();
  assert.ok(m.namedModules().every(([, c]) => c.training));
  assert.deepEqual(
    m.namedModules().map(([k]) => k),
    ["", "0", "1", "1.0"],
  );
  m.dispose();
});

test("registering a name twice or a dotted name is refused", () => {
  class Bad extends nn.Module {
    constructor(name: string, twice: boolean) {
      super();
      this.registerModule(name, new nn.ReLU());
      if (twice) this.registerModule(name, new nn.ReLU());
    }
    forward(x: bn.Tensor) {
      return x;
    }
    toConfig() {
      return {};
    }
  }
  assert.throws(() => new Bad("a.b", false), /no '\.'.*Received: name="a.b"/);
  assert.throws(() => new Bad("a", true), /"a" is already registered/);
});
