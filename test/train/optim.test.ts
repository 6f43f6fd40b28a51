import assert from "node:assert/strict";
import { test } from "node:test";
import { maxAbsDiff, nn, scope, type Tensor, tensor } from "../../src";
import { sgdStep } from "../../src/tensor/native_calls";
import { Adam, AdamW, type Optimizer, type ParamGroup, paramGroupsWithoutDecay, SGD } from "../../src/train";
import { assertClose, checkNoLeaks, runPython } from "../helpers";

checkNoLeaks();

// Three parameters of different ranks and fixed gradients for each step. Parameter 1 has no
// gradient at step 2, so it must be skipped there (and its Adam step count falls behind).
const SHAPES = [[3, 4], [4], [2, 2, 3]];
const STEPS = 5;
const size = (s: number[]) => s.reduce((a, b) => a * b, 1);
const values = (n: number, seed: number) =>
  Array.from({ length: n }, (_, i) => Math.fround(Math.sin(i * 1.7 + seed * 2.3) * (1 + (i % 3))));
const INITIAL = SHAPES.map((s, j) => values(size(s), 100 + j));
const GRADS: (number[] | null)[][] = Array.from({ length: STEPS }, (_, step) =>
  SHAPES.map((s, j) => (step === 2 && j === 1 ? null : values(size(s), 10 * step + j))),
);

type OptName = "SGD" | "Adam" | "AdamW";
interface Case {
  name: string;
  opt: OptName;
  defaults: Record<string, unknown>;
  /** Parameter indices and per-group options; one group with every parameter when absent. */
  groups?: { params: number[]; opts: Record<string, unknown> }[];
}

function makeParams(): Tensor[] {
  return INITIAL.map((v, j) => tensor(v, SHAPES[j]).requireGrad());
}

function build(c: Case, params: Tensor[]): Optimizer {
  const groups: ParamGroup[] = (c.groups ?? [{ params: [0, 1, 2], opts: {} }]).map((g) => ({
    params: g.params.map((i) => params[i]),
    ...g.opts,
  }));
  if (c.opt === "SGD") return new SGD(groups, c.defaults as { lr: number });
  return c.opt === "Adam" ? new Adam(groups, c.defaults) : new AdamW(groups, c.defaults);
}

function setGrads(params: Tensor[], step: number): void {
  scope(() => {
    params.forEach((p, j) => {
      const g = GRADS[step][j];
      if (g === null) p.zeroGrad();
      else p.setGrad(tensor(g, SHAPES[j]));
    });
  });
}

/** Parameter values after each step, flattened per parameter. */
function trajectory(c: Case): number[][][] {
  const params = makeParams();
  const opt = build(c, params);
  const out: number[][][] = [];
  for (let s = 0; s < STEPS; s++) {
    setGrads(params, s);
    opt.step();
    out.push(params.map((p) => p.toArray()));
  }
  opt.dispose();
  for (const p of params) p.dispose();
  return out;
}

const PEER = `
import json, sys, torch
inp = json.load(sys.stdin)
snake = {"weightDecay": "weight_decay"}
def opts(d):
    return {snake.get(k, k): v for k, v in d.items()}
out = {}
for c in inp["cases"]:
    params = [torch.tensor(v, dtype=torch.float32).reshape(s).requires_grad_() for v, s in zip(inp["initial"], inp["shapes"])]
    groups = [dict(params=[params[i] for i in g["params"]], **opts(g["opts"])) for g in (c.get("groups") or [{"params": [0, 1, 2], "opts": {}}])]
    opt = getattr(torch.optim, c["opt"])(groups, **opts(c["defaults"]))
    traj = []
    for grads in inp["grads"]:
        for p, g, s in zip(params, grads, inp["shapes"]):
            p.grad = None if g is None else torch.tensor(g, dtype=torch.float32).reshape(s)
        opt.step()
        traj.append([p.detach().flatten().tolist() for p in params])
    out[c["name"]] = traj
print(json.dumps(out))
`;

const CASES: Case[] = [];
for (const momentum of [0, 0.9])
  for (const dampening of [0, 0.1])
    for (const weightDecay of [0, 0.1])
      for (const nesterov of [false, true]) {
        if (nesterov && (momentum === 0 || dampening !== 0)) continue;
        CASES.push({
          name: `SGD momentum=${momentum} dampening=${dampening} weightDecay=${weightDecay} nesterov=${nesterov}`,
          opt: "SGD",
          defaults: { lr: 0.1, momentum, dampening, weightDecay, nesterov },
        });
      }
for (const opt of ["Adam", "AdamW"] as const)
  for (const amsgrad of [false, true])
    for (const weightDecay of [0, 0.1])
      CASES.push({
        name: `${opt} amsgrad=${amsgrad} weightDecay=${weightDecay}`,
        opt,
        defaults: { lr: 0.05, amsgrad, weightDecay },
      });
CASES.push(
  { name: "Adam defaults", opt: "Adam", defaults: {} },
  { name: "AdamW defaults", opt: "AdamW", defaults: {} },
  { name: "Adam betas=[0.8, 0.99] eps=1e-3", opt: "Adam", defaults: { lr: 0.02, betas: [0.8, 0.99], eps: 1e-3 } },
  {
    name: "SGD param groups with their own lr, weightDecay, momentum",
    opt: "SGD",
    defaults: { lr: 0.1, momentum: 0.9 },
    groups: [
      { params: [0], opts: { lr: 0.05, weightDecay: 0.01 } },
      { params: [2, 1], opts: { momentum: 0.5, nesterov: true } },
    ],
  },
  {
    name: "AdamW param groups with their own lr, weightDecay, amsgrad",
    opt: "AdamW",
    defaults: { lr: 0.01 },
    groups: [
      { params: [1, 0], opts: { lr: 0.03, amsgrad: true } },
      { params: [2], opts: { weightDecay: 0.5 } },
    ],
  },
);

test(`${CASES.length} optimizer configurations match torch.optim over ${STEPS} steps`, () => {
  const expected = runPython<Record<string, number[][][]>>(PEER, {
    cases: CASES,
    initial: INITIAL,
    shapes: SHAPES,
    grads: GRADS,
  });
  let worst = 0;
  for (const c of CASES) {
    const got = trajectory(c);
    for (let s = 0; s < STEPS; s++)
      for (let j = 0; j < SHAPES.length; j++) {
        const a = got[s][j];
        const e = expected[c.name][s][j];
        for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - e[i]));
        try {
          assertClose(a, e, 1e-6, 1e-6);
        } catch (err) {
          throw new Error(`${c.name}, step ${s}, parameter ${j}: ${(err as Error).message}`);
        }
      }
  }
  // Same libtorch kernels in the same order: the trajectories agree to the last bit.
  assert.equal(worst, 0, `largest difference from PyTorch: ${worst}`);
});

/** Runs `steps` steps from the given step index with the fixed gradients. */
function run(opt: Optimizer, params: Tensor[], from: number, to: number): void {
  for (let s = from; s < to; s++) {
    setGrads(params, s);
    opt.step();
  }
}

for (const c of [
  CASES.find((x) => x.name.includes("nesterov=true"))!,
  CASES.find((x) => x.opt === "AdamW" && x.groups)!,
])
  test(`${c.opt}: a state dict round trip continues the same trajectory (${c.name})`, () => {
    const a = makeParams();
    const optA = build(c, a);
    run(optA, a, 0, 3);
    // Simulate a checkpoint: copies of the tensors, metadata through JSON.
    const sd = optA.stateDict();
    const copies = scope(() => new Map([...sd.state].map(([k, t]) => [k, t.detach().add(0)])));
    const meta = JSON.parse(JSON.stringify(sd.meta));
    assert.ok(copies.size > 0);
    const b = scope(() => a.map((p) => p.detach().add(0).requireGrad()));
    const optB = build({ ...c, defaults: { ...c.defaults, lr: 0.5 } }, b);
    optB.loadStateDict({ state: copies, meta });
    for (const t of copies.values()) t.dispose();
    assert.deepEqual(
      optB.paramGroups.map((g) => g.lr),
      optA.paramGroups.map((g) => g.lr),
    );
    run(optA, a, 3, STEPS);
    run(optB, b, 3, STEPS);
    for (const [j, p] of a.entries()) assert.equal(maxAbsDiff(p, b[j]), 0);
    for (const t of [optA, optB]) t.dispose();
    for (const p of [...a, ...b]) p.dispose();
  });

test("loadStateDict reports every key and shape that does not fit, and changes nothing", () => {
  const params = makeParams();
  const opt = new SGD(params, { lr: 0.1, momentum: 0.9 });
  run(opt, params, 0, 1);
  const good = opt.stateDict();
  const bad = scope(() => tensor([1, 2]));
  const state = new Map(good.state);
  state.set("0.momentum_buffer", bad);
  state.set("7.momentum_buffer", bad);
  state.set("1.exp_avg", bad);
  assert.throws(
    () => opt.loadStateDict({ state, meta: good.meta }),
    (e: Error) =>
      /"0.momentum_buffer" has shape \[2\] but parameter 0 has \[3, 4\]/.test(e.message) &&
      /unexpected key "7.momentum_buffer"/.test(e.message) &&
      /unexpected key "1.exp_avg"/.test(e.message) &&
      /3 problems/.test(e.message),
  );
  assert.deepEqual(opt.stateDict().state.get("0.momentum_buffer")?.shape, [3, 4]);
  const adam = new Adam(params);
  assert.throws(() => adam.loadStateDict(good), /saved by a different optimizer.*Received: type="SGD"/);
  const fewer = new SGD([params[0]], { lr: 0.1 });
  assert.throws(() => fewer.loadStateDict(good), /group sizes \[1\].*Received: group sizes=\[3\]/);
  for (const t of [opt, adam, fewer]) t.dispose();
  bad.dispose();
  for (const p of params) p.dispose();
});

test("bad options give errors that name the option and the value", () => {
  const params = makeParams();
  assert.throws(
    () => new SGD(params, { lr: 0.1, nesterov: true }),
    /nesterov momentum requires momentum > 0 and dampening = 0.*Received: momentum=0, dampening=0/,
  );
  assert.throws(
    () => new SGD(params, { lr: 0.1, momentum: 0.9, dampening: 0.1, nesterov: true }),
    /Received: momentum=0.9, dampening=0.1/,
  );
  assert.throws(() => new SGD(params, {} as { lr: number }), /lr is required/);
  assert.throws(() => new SGD(params, { lr: -1 }), /lr must be a finite number >= 0. Received: lr=-1/);
  assert.throws(() => new SGD(params, { lr: 0.1, momentum: -0.5 }), /Received: momentum=-0.5/);
  assert.throws(
    () => new Adam(params, { betas: [0.9, 1] }),
    /betas must be two numbers in \[0, 1\). Received: betas=\[0.9, 1\]/,
  );
  assert.throws(() => new AdamW(params, { eps: -1 }), /AdamW: eps must be >= 0/);
  assert.throws(() => new Adam([]), /empty parameter list/);
  assert.throws(
    () => new SGD([{ params: [params[0]] }, { params: [params[0]] }], { lr: 0.1 }),
    /appears in more than one group/,
  );
  assert.throws(() => new Adam([{ params: [params[0]], lr: Number.NaN }]), /Received: lr=NaN/);
  for (const p of params) p.dispose();
});

test("setLr scales each group by its lrScale; zeroGrad drops the gradients", () => {
  const params = makeParams();
  const opt = new SGD(
    [
      { params: [params[0]], lrScale: 0.1 },
      { params: [params[1], params[2]], lr: 7 },
    ],
    { lr: 0.1 },
  );
  assert.deepEqual(
    opt.paramGroups.map((g) => g.lr),
    [0.1, 7],
  );
  opt.setLr(0.5);
  assert.deepEqual(
    opt.paramGroups.map((g) => g.lr),
    [0.05, 0.5],
  );
  assert.equal(opt.lr, 0.05);
  assert.throws(() => opt.setLr(Number.POSITIVE_INFINITY), /Received: lr=Infinity/);
  setGrads(params, 0);
  assert.ok(params[0].requiresGrad);
  scope(() => assert.ok(params[0].grad !== undefined));
  opt.zeroGrad();
  scope(() => assert.ok(params.every((p) => p.grad === undefined)));
  opt.step(); // no gradients: nothing moves, nothing throws
  scope(() => assert.deepEqual(params[0].toArray(), tensor(INITIAL[0]).toArray()));
  opt.dispose();
  for (const p of params) p.dispose();
});

test("setMomentum sets SGD's momentum and Adam's beta1 in every group (what onecycle's cycleMomentum moves)", () => {
  const params = makeParams();
  const sgd = new SGD([{ params: [params[0]] }, { params: [params[1]], momentum: 0.5 }], { lr: 0.1, momentum: 0.9 });
  sgd.setMomentum(0.85);
  assert.deepEqual(
    sgd.paramGroups.map((g) => g.momentum),
    [0.85, 0.85],
  );
  assert.throws(() => sgd.setMomentum(1), /setMomentum: momentum must be in \[0, 1\)\. Received: momentum=1/);
  const adam = new AdamW(params, { lr: 0.01, betas: [0.9, 0.99] });
  adam.setMomentum(0.95);
  assert.deepEqual(adam.paramGroups[0]?.betas, [0.95, 0.99]);
  sgd.dispose();
  adam.dispose();
  for (const p of params) p.dispose();
});

test("paramGroupsWithoutDecay puts biases and BatchNorm parameters in a group without decay", () => {
  const model = new nn.Sequential([
    new nn.Conv2d({ inChannels: 3, outChannels: 4, kernelSize: 3, bias: false }),
    new nn.BatchNorm2d({ numFeatures: 4 }),
    new nn.Flatten(),
    new nn.Linear({ inFeatures: 4, outFeatures: 2 }),
  ]);
  const groups = paramGroupsWithoutDecay(model, 5e-4);
  const names = new Map(model.namedParameters().map(([k, t]) => [t, k]));
  assert.deepEqual(
    groups.map((g) => ({ wd: g.weightDecay, names: g.params.map((p) => names.get(p)) })),
    [
      { wd: 5e-4, names: ["0.weight", "3.weight"] },
      { wd: 0, names: ["1.weight", "1.bias", "3.bias"] },
    ],
  );
  const opt = new SGD(groups, { lr: 0.1, momentum: 0.9, weightDecay: 1 });
  assert.deepEqual(
    opt.paramGroups.map((g) => g.weightDecay),
    [5e-4, 0],
  );
  assert.throws(() => paramGroupsWithoutDecay(model, -1), /Received: weightDecay=-1/);
  opt.dispose();
  model.dispose();
});

test("SGD steps a group in one call: a parameter's first gradient later starts its buffer, the gradients stay as they were", () => {
  // p0 has gradients from step 0, p1 first at step 2: at step 2 one has a momentum buffer and
  // one does not. The rule, in doubles: d = g + wd·p; buf = d, then m·buf + d; p -= lr·(d + m·buf).
  const [lr, m, wd] = [0.1, 0.9, 0.01];
  const p = [tensor([1, -2, 3], [3]).requireGrad(), tensor([0.5, 0.25], [2]).requireGrad()];
  const opt = new SGD([p[0], p[1]], { lr, momentum: m, nesterov: true, weightDecay: wd });
  const ref = [
    [1, -2, 3],
    [0.5, 0.25],
  ];
  const buf: (number[] | undefined)[] = [undefined, undefined];
  for (let step = 0; step < 4; step++) {
    const grads = [[0.3 * step - 1, 0.5, -0.2 * step], step >= 2 ? [1 - step, 0.1 * step] : null];
    scope(() => {
      p.forEach((t, j) => {
        const g = grads[j];
        if (g === null) t.zeroGrad();
        else t.setGrad(tensor(g, [g.length]));
      });
    });
    opt.step();
    for (const [j, g] of grads.entries()) {
      if (g === null) continue;
      const now = scope(() => p[j].grad!.toArray() as number[]);
      assert.deepEqual(now, g.map(Math.fround), "the gradient is unchanged");
      const d = g.map((x, i) => x + wd * ref[j][i]);
      const b = buf[j] === undefined ? d : buf[j]!.map((x, i) => m * x + d[i]);
      buf[j] = b;
      ref[j] = ref[j].map((x, i) => x - lr * (d[i] + m * b[i]));
    }
    for (const j of [0, 1]) assertClose(p[j].toArray() as number[], ref[j], 1e-6, 1e-6);
  }
  assert.deepEqual([...opt.stateDict().state.keys()].sort(), ["0.momentum_buffer", "1.momentum_buffer"]);
  opt.dispose();
  for (const t of p) t.dispose();
});

test("sgdStep (the native one-call step) rejects lists that do not fit, naming the op and the shapes", () => {
  const p = [tensor([1, 2, 3], [3]), tensor([1, 2], [2])];
  const g = [tensor([0.1, 0.1, 0.1], [3])];
  const opts = { lr: 0.1, momentum: 0.9, dampening: 0, weightDecay: 0, nesterov: false };
  try {
    assert.throws(() => sgdStep(p, g, undefined, opts), /sgdStep.*same length \(got 2, 1, 0\)/);
    const wrong = [tensor([0.1, 0.1, 0.1], [3]), tensor([0.1, 0.1, 0.1], [3])];
    assert.throws(() => sgdStep(p, wrong, undefined, opts), /sgdStep.*parameter 1 has shape \[2\].*gradient \[3\]/);
    // nothing moved
    assert.deepEqual(p[0]!.toArray(), [1, 2, 3]);
    for (const t of wrong) t.dispose();
  } finally {
    for (const t of [...p, ...g]) t.dispose();
  }
});
