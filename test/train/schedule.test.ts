import assert from "node:assert/strict";
import { test } from "node:test";
import { createSchedule, type ScheduleConfig } from "../../src/train";
import { runPython } from "../helpers";

// The peer builds the torch.optim.lr_scheduler equivalent of each config and records the lr
// before each scheduler step, one entry per schedule unit (epoch or iteration).
const PEER = `
import json, sys, torch
from torch.optim import lr_scheduler as S
inp = json.load(sys.stdin)
out = []
for c in inp:
    per = c.get("per") or ("iteration" if c["type"] == "onecycle" else "epoch")
    upe = 1 if per == "epoch" else c["stepsPerEpoch"]
    T = c["epochs"] * upe
    W = round(c.get("warmupEpochs", 0) * upe)
    sf = c.get("warmupStartFactor", 1 / 3)
    lr, min_lr = c["lr"], c.get("minLr", 0.0)
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)
    warm = lambda: S.LinearLR(opt, start_factor=sf, end_factor=1.0, total_iters=W)
    t = c["type"]
    if t == "constant":
        sched = warm() if W > 0 else None
    elif t == "multistep":
        ms = S.MultiStepLR(opt, [round(m * upe) for m in c["milestones"]], gamma=c.get("gamma", 0.1))
        sched = S.ChainedScheduler([warm(), ms]) if W > 0 else ms
    elif t in ("cosine", "linear"):
        main = lambda: (S.CosineAnnealingLR(opt, T_max=T - W, eta_min=min_lr) if t == "cosine"
                        else S.LinearLR(opt, start_factor=1.0, end_factor=min_lr / lr, total_iters=T - W))
        sched = S.SequentialLR(opt, [warm(), main()], milestones=[W]) if W > 0 else main()
    elif t == "onecycle":
        sched = S.OneCycleLR(opt, max_lr=lr, total_steps=T, pct_start=c.get("pctStart", 0.3),
                             div_factor=c.get("divFactor", 25.0), final_div_factor=c.get("finalDivFactor", 1e4),
                             anneal_strategy=c.get("anneal", "cos"), cycle_momentum=False)
    lrs = []
    for _ in range(T):
        lrs.append(opt.param_groups[0]["lr"])
        if sched is not None and len(lrs) < T:
            sched.step()
    out.append(lrs)
print(json.dumps(out))
`;

const CASES: ScheduleConfig[] = [
  // ResNet on CIFAR (He et al. 2016): 0.1 → 0.01 at 80 → 0.001 at 120 of 160 epochs
  { type: "multistep", lr: 0.1, epochs: 160, stepsPerEpoch: 3, milestones: [80, 120] },
  {
    type: "multistep",
    lr: 0.1,
    epochs: 12,
    stepsPerEpoch: 5,
    per: "iteration",
    milestones: [6, 9],
    warmupEpochs: 2,
    warmupStartFactor: 0.1,
  },
  {
    type: "multistep",
    lr: 0.4,
    epochs: 20,
    stepsPerEpoch: 2,
    milestones: [10, 15, 15],
    gamma: 0.2,
    warmupEpochs: 5,
    warmupStartFactor: 0.25,
  },
  { type: "cosine", lr: 0.05, epochs: 30, stepsPerEpoch: 3, minLr: 0.001 },
  { type: "cosine", lr: 0.1, epochs: 10, stepsPerEpoch: 7, per: "iteration", warmupEpochs: 2, warmupStartFactor: 0.01 },
  { type: "cosine", lr: 0.2, epochs: 20, stepsPerEpoch: 4, warmupEpochs: 3, minLr: 1e-4 },
  { type: "cosine", lr: 0.1, epochs: 200, stepsPerEpoch: 20, per: "iteration", warmupEpochs: 0.5, minLr: 1e-5 },
  { type: "onecycle", lr: 0.1, epochs: 5, stepsPerEpoch: 20 },
  {
    type: "onecycle",
    lr: 0.4,
    epochs: 4,
    stepsPerEpoch: 9,
    pctStart: 0.25,
    divFactor: 10,
    finalDivFactor: 100,
    anneal: "linear",
  },
  { type: "onecycle", lr: 0.2, epochs: 30, stepsPerEpoch: 4, per: "epoch" },
  { type: "linear", lr: 0.1, epochs: 6, stepsPerEpoch: 10, per: "iteration" },
  { type: "linear", lr: 0.1, epochs: 15, stepsPerEpoch: 2, warmupEpochs: 3, minLr: 0.01 },
  { type: "constant", lr: 0.1, epochs: 3, stepsPerEpoch: 10, per: "iteration", warmupEpochs: 1.5 },
  { type: "constant", lr: 0.3, epochs: 4, stepsPerEpoch: 2 },
];

test(`${CASES.length} schedules match torch.optim.lr_scheduler at every step (relative 1e-9)`, () => {
  const expected = runPython<number[][]>(PEER, CASES);
  for (const [i, cfg] of CASES.entries()) {
    const s = createSchedule(cfg);
    const perEpoch = s.config.per === "epoch";
    assert.equal(expected[i].length, perEpoch ? cfg.epochs : s.totalSteps);
    for (let step = 0; step < s.totalSteps; step++) {
      const e = expected[i][perEpoch ? Math.floor(step / cfg.stepsPerEpoch) : step];
      const a = s.lrAt(step);
      if (!(Math.abs(a - e) <= 1e-9 * Math.abs(e) + 1e-15))
        assert.fail(`${JSON.stringify(cfg)} step ${step}: lr ${a} vs PyTorch ${e}`);
    }
  }
});

test("multistep follows the ResNet recipe and holds the lr within an epoch", () => {
  const s = createSchedule({ type: "multistep", lr: 0.1, epochs: 160, stepsPerEpoch: 391, milestones: [80, 120] });
  const at = (epoch: number, i = 0) => s.lrAt(epoch * 391 + i);
  assert.equal(at(0), 0.1);
  assert.equal(at(79, 390), 0.1);
  assert.ok(Math.abs(at(80) - 0.01) < 1e-15);
  assert.ok(Math.abs(at(119, 390) - 0.01) < 1e-15);
  assert.ok(Math.abs(at(120) - 0.001) < 1e-15);
  assert.equal(s.totalSteps, 160 * 391);
  assert.equal(s.lrAt(10 * s.totalSteps), at(159, 390), "past the end the lr stays at its last value");
});

test("per iteration moves every step, per epoch only at epoch boundaries", () => {
  const base = { type: "cosine", lr: 0.1, epochs: 4, stepsPerEpoch: 5 } as const;
  const byEpoch = createSchedule(base);
  const byStep = createSchedule({ ...base, per: "iteration" });
  assert.equal(byEpoch.lrAt(5), byEpoch.lrAt(9));
  assert.ok(byStep.lrAt(5) > byStep.lrAt(6));
  assert.equal(byEpoch.lrAt(5), byStep.lrAt(5));
  assert.equal(byStep.lrAt(20), 0);
});

test("bad configs give errors that name the option", () => {
  const ok = { lr: 0.1, epochs: 10, stepsPerEpoch: 5 };
  const bad = (cfg: object, re: RegExp) => assert.throws(() => createSchedule(cfg as ScheduleConfig), re);
  bad(
    { ...ok, type: "step" },
    /unknown schedule type; known types: constant, multistep, cosine, onecycle, linear. Received: type="step"/,
  );
  bad({ ...ok, type: "multistep" }, /multistep needs milestones/);
  bad(
    { ...ok, type: "multistep", milestones: [8, 4] },
    /non-decreasing epochs in \(0, 10\]. Received: milestones=\[8, 4\]/,
  );
  bad({ ...ok, type: "multistep", milestones: [2.5] }, /integers when per is "epoch"/);
  bad({ ...ok, type: "onecycle", warmupEpochs: 1 }, /onecycle has its own warmup/);
  bad({ ...ok, type: "onecycle", pctStart: 1 }, /pctStart must be below 1/);
  bad({ ...ok, type: "cosine", warmupEpochs: 10 }, /warmupEpochs must be >= 0 and below epochs \(10\)/);
  bad({ ...ok, type: "cosine", minLr: 1 }, /minLr must be in \[0, lr=0.1\]. Received: minLr=1/);
  bad({ ...ok, type: "cosine", epochs: 0 }, /epochs must be an integer >= 1. Received: epochs=0/);
  bad({ ...ok, type: "cosine", lr: 0 }, /lr must be a finite number > 0/);
  bad({ ...ok, type: "cosine", per: "batch" }, /per must be "epoch" or "iteration". Received: per="batch"/);
  bad(
    { ...ok, type: "cosine", warmup_epochs: 2 },
    /unknown option; known options: type, lr, .*Received: warmup_epochs=2/,
  );
  bad({ ...ok, type: "constant", warmupEpochs: 2, warmupStartFactor: 0 }, /warmupStartFactor must be in \(0, 1\]/);
  assert.throws(() => createSchedule({ ...ok, type: "constant" }).lrAt(-1), /step must be an integer >= 0/);
});

// OneCycleLR's cycle_momentum (PyTorch's default): the momentum of an SGD group before each step.
const MOMENTUM_PEER = `
import json, sys, torch
from torch.optim import lr_scheduler as S
out = []
for c in json.load(sys.stdin):
    T = c["epochs"] * c["stepsPerEpoch"]
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=c["lr"], momentum=0.9)
    sched = S.OneCycleLR(opt, max_lr=c["lr"], total_steps=T, pct_start=c.get("pctStart", 0.3),
                         anneal_strategy=c.get("anneal", "cos"), cycle_momentum=True,
                         base_momentum=c.get("baseMomentum", 0.85), max_momentum=c.get("maxMomentum", 0.95))
    ms = []
    for _ in range(T):
        ms.append(opt.param_groups[0]["momentum"])
        if len(ms) < T:
            sched.step()
    out.append(ms)
print(json.dumps(out))
`;

test("onecycle with cycleMomentum moves the momentum as OneCycleLR(cycle_momentum=True) at every step", () => {
  const cases: ScheduleConfig[] = [
    { type: "onecycle", lr: 0.2, epochs: 3, stepsPerEpoch: 11, pctStart: 0.25, cycleMomentum: true },
    {
      type: "onecycle",
      lr: 0.1,
      epochs: 2,
      stepsPerEpoch: 13,
      anneal: "linear",
      cycleMomentum: true,
      baseMomentum: 0.8,
      maxMomentum: 0.9,
    },
  ];
  const expected = runPython<number[][]>(MOMENTUM_PEER, cases);
  for (const [i, cfg] of cases.entries()) {
    const s = createSchedule(cfg);
    for (let step = 0; step < s.totalSteps; step++) {
      const e = expected[i]?.[step] as number;
      const a = s.momentumAt(step) as number;
      if (!(Math.abs(a - e) <= 1e-12))
        assert.fail(`${JSON.stringify(cfg)} step ${step}: momentum ${a} vs PyTorch ${e}`);
    }
  }
  assert.equal(createSchedule({ type: "onecycle", lr: 0.1, epochs: 2, stepsPerEpoch: 5 }).momentumAt(3), undefined);
});

test("cycleMomentum outside onecycle, or with base above max, is refused", () => {
  assert.throws(
    () => createSchedule({ type: "cosine", lr: 0.1, epochs: 2, stepsPerEpoch: 5, cycleMomentum: true }),
    /cycleMomentum belongs to onecycle; a cosine schedule keeps the optimizer's momentum/,
  );
  assert.throws(
    () =>
      createSchedule({
        type: "onecycle",
        lr: 0.1,
        epochs: 2,
        stepsPerEpoch: 5,
        cycleMomentum: true,
        baseMomentum: 0.95,
        maxMomentum: 0.9,
      }),
    /0 < baseMomentum <= maxMomentum < 1\. Received: \[baseMomentum, maxMomentum\]=\[0\.95, 0\.9\]/,
  );
});
