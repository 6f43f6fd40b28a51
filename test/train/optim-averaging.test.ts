import assert from "node:assert/strict";
import { test } from "node:test";
import { fillInPlace, maxAbsDiff, nn, noGrad, scope, type Tensor, tensor } from "../../src";
import { Adam, EMA, Lookahead, SGD } from "../../src/train";
import { assertClose, checkNoLeaks, runPython } from "../helpers";

checkNoLeaks();

const SHAPES = [[2, 3], [3]];
const STEPS = 11;
const values = (n: number, seed: number) => Array.from({ length: n }, (_, i) => Math.cos(i * 0.9 + seed * 1.1) * 0.5);
const INITIAL = SHAPES.map((s, j) => values(s[0] * (s[1] ?? 1), 50 + j));
const GRADS = Array.from({ length: STEPS }, (_, step) =>
  SHAPES.map((s, j) => values(s[0] * (s[1] ?? 1), 7 * step + j)),
);

function makeParams(): Tensor[] {
  return INITIAL.map((v, j) => tensor(new Float64Array(v), SHAPES[j]).requireGrad());
}
function stepWith(opt: { step(): void }, params: Tensor[], step: number): void {
  scope(() => {
    for (const [j, p] of params.entries()) p.setGrad(tensor(new Float64Array(GRADS[step][j]), SHAPES[j]));
  });
  opt.step();
}

// PyTorch has no Lookahead: the reference is the paper's Algorithm 1 written out by hand around
// torch.optim.SGD, in float64.
const LOOKAHEAD_REFERENCE = `
import json, sys, torch
inp = json.load(sys.stdin)
params = [torch.tensor(v, dtype=torch.float64).reshape(s).requires_grad_() for v, s in zip(inp["initial"], inp["shapes"])]
slow = [p.detach().clone() for p in params]
opt = torch.optim.SGD(params, lr=0.1, momentum=0.9)
k, alpha = inp["k"], inp["alpha"]
traj = []
for t, grads in enumerate(inp["grads"]):
    for p, g, s in zip(params, grads, inp["shapes"]):
        p.grad = torch.tensor(g, dtype=torch.float64).reshape(s)
    opt.step()
    if (t + 1) % k == 0:
        with torch.no_grad():
            for p, w in zip(params, slow):
                w += alpha * (p - w)
                p.copy_(w)
    traj.append([p.detach().flatten().tolist() for p in params])
print(json.dumps(traj))
`;

test("Lookahead(SGD momentum 0.9, k=3, alpha=0.6) follows the hand-written Algorithm 1", () => {
  const expected = runPython<number[][][]>(LOOKAHEAD_REFERENCE, {
    initial: INITIAL,
    shapes: SHAPES,
    grads: GRADS,
    k: 3,
    alpha: 0.6,
  });
  const params = makeParams();
  const opt = new Lookahead(new SGD(params, { lr: 0.1, momentum: 0.9 }), { k: 3, alpha: 0.6 });
  for (let s = 0; s < STEPS; s++) {
    stepWith(opt, params, s);
    for (const [j, p] of params.entries()) assertClose(p.toArray(), expected[s][j], 1e-12, 1e-12);
  }
  assert.equal(opt.stepCount, STEPS);
  opt.dispose();
  for (const p of params) p.dispose();
});

test("Lookahead: a state dict taken mid-cycle resumes the same trajectory", () => {
  const a = makeParams();
  const optA = new Lookahead(new Adam(a, { lr: 0.05 }), { k: 4 });
  for (let s = 0; s < 6; s++) stepWith(optA, a, s);
  const sd = optA.stateDict();
  assert.deepEqual([...sd.state.keys()].sort(), [
    "0.exp_avg",
    "0.exp_avg_sq",
    "0.slow_weight",
    "1.exp_avg",
    "1.exp_avg_sq",
    "1.slow_weight",
  ]);
  const meta = JSON.parse(JSON.stringify(sd.meta));
  assert.equal(meta.stepCount, 6);
  const b = scope(() => a.map((p) => p.detach().add(0).requireGrad()));
  const optB = new Lookahead(new Adam(b, { lr: 0.05 }), { k: 4 });
  optB.loadStateDict({ state: sd.state, meta });
  for (let s = 6; s < STEPS; s++) {
    stepWith(optA, a, s);
    stepWith(optB, b, s);
  }
  for (const [j, p] of a.entries()) assert.equal(maxAbsDiff(p, b[j]), 0);
  const { state } = optB.stateDict();
  state.delete("1.slow_weight");
  assert.throws(() => optA.loadStateDict({ state, meta }), /slow weights are missing.*"1.slow_weight"/);
  assert.throws(() => new Lookahead(optA.inner, { k: 0 }), /k must be an integer >= 1. Received: k=0/);
  assert.throws(() => new Lookahead(optA.inner, { alpha: 2 }), /alpha must be in \[0, 1\]/);
  for (const o of [optA, optB]) o.dispose();
  for (const p of [...a, ...b]) p.dispose();
});

function smallModel(): nn.Sequential {
  return new nn.Sequential([
    new nn.Conv2d({ inChannels: 1, outChannels: 2, kernelSize: 1 }),
    new nn.BatchNorm2d({ numFeatures: 2 }),
  ]);
}

/** Sets every parameter and buffer of the model to a value derived from its index and a seed. */
function setModel(model: nn.Module, seed: number): void {
  noGrad(() =>
    scope(() => {
      [...model.stateDict().values()].forEach((t, i) => {
        fillInPlace(t, seed * 10 + i);
      });
    }),
  );
}

test("EMA averages parameters with lerp and copies buffers", () => {
  const model = smallModel();
  setModel(model, 1);
  const ema = new EMA(model, { decay: 0.9 });
  const expected = new Map([...model.stateDict()].map(([k, t]) => [k, t.toArray()]));
  const params = new Set(model.namedParameters().map(([k]) => k));
  for (const seed of [2, 3, 4]) {
    setModel(model, seed);
    ema.update();
    for (const [k, t] of model.stateDict()) {
      const now = t.toArray();
      const prev = expected.get(k)!;
      expected.set(k, params.has(k) ? prev.map((s, i) => 0.9 * s + 0.1 * now[i]) : now);
    }
  }
  assert.equal(ema.updates, 3);
  const sd = ema.stateDict();
  for (const [k, e] of expected) assertClose(sd.state.get(k)!.toArray(), e, 1e-5, 1e-6);
  // buffers such as running_var and num_batches_tracked are exact copies
  assert.deepEqual(
    sd.state.get("1.num_batches_tracked")?.toArray(),
    model.stateDict().get("1.num_batches_tracked")?.toArray(),
  );
  assert.deepEqual(sd.state.get("1.running_var")?.toArray(), model.stateDict().get("1.running_var")?.toArray());
  ema.dispose();
  model.dispose();
});

test("EMA.apply runs with the averaged weights and restores the model; copyTo and state dicts", () => {
  const model = smallModel();
  setModel(model, 1);
  const ema = new EMA(model, { decay: 0.5 });
  setModel(model, 2);
  ema.update();
  const trained = new Map([...model.stateDict()].map(([k, t]) => [k, t.toArray()]));
  const averaged = new Map([...ema.stateDict().state].map(([k, t]) => [k, t.toArray()]));
  assert.notDeepEqual(averaged.get("0.weight"), trained.get("0.weight"));
  const seen = ema.apply(() => model.stateDict().get("0.weight")!.toArray());
  assert.deepEqual(seen, averaged.get("0.weight"));
  for (const [k, t] of model.stateDict()) assert.deepEqual(t.toArray(), trained.get(k));
  assert.throws(() =>
    ema.apply(() => {
      throw new Error("eval failed");
    }),
  );
  for (const [k, t] of model.stateDict()) assert.deepEqual(t.toArray(), trained.get(k));

  const other = smallModel();
  ema.copyTo(other);
  for (const [k, t] of other.stateDict()) assert.deepEqual(t.toArray(), averaged.get(k));

  const sd = ema.stateDict();
  const restored = new EMA(other, { decay: 0.5 });
  restored.loadStateDict({ state: sd.state, meta: JSON.parse(JSON.stringify(sd.meta)) });
  assert.equal(restored.updates, 1);
  for (const [k, t] of restored.stateDict().state) assert.deepEqual(t.toArray(), averaged.get(k));
  const wrong = scope(() => new Map([...sd.state].map(([k, t]) => [k, k === "0.bias" ? tensor([1, 2, 3]) : t])));
  assert.throws(
    () => restored.loadStateDict({ state: wrong, meta: sd.meta }),
    /"0.bias" has shape \[3\] but the model has \[2\]/,
  );
  for (const t of wrong.values()) if (t.shape[0] === 3) t.dispose();
  for (const o of [ema, restored, model, other]) o.dispose();
});

test("EMA warmup uses min(decay, (1 + n)/(10 + n)); decay out of range is an error", () => {
  const model = smallModel();
  const ema = new EMA(model, { decay: 0.999, warmup: true });
  assert.equal(ema.currentDecay, 0.1);
  setModel(model, 3);
  const before = ema.stateDict().state.get("0.bias")!.toArray();
  ema.update();
  assert.equal(ema.currentDecay, 2 / 11);
  assertClose(
    ema.stateDict().state.get("0.bias")!.toArray(),
    before.map((s) => 0.1 * s + 0.9 * 31), // setModel(model, 3) filled "0.bias", the second tensor, with 31
    1e-5,
  );
  assert.throws(() => new EMA(model, { decay: 1.5 }), /decay must be in \[0, 1\]. Received: decay=1.5/);
  ema.dispose();
  model.dispose();
});
