// Budgets before training: the analytic parameters and MACs of points drawn from every built-in
// space equal the built model's (summary()), over-budget points are never accepted, impossible
// points are repaired or rejected and counted, and the latency is measured through the plan.
import assert from "node:assert/strict";
import { test } from "node:test";
import "../../src"; // registers the model families
import { summary } from "../../src/analysis/summary";
import { CounterRng } from "../../src/data/rng";
import { analyticCost, createModel } from "../../src/models/registry";
import { planAvailable } from "../../src/perf/plan";
import { BudgetChecker } from "../../src/search/budget";
import { listSpaces, loadSpace, parseSpace, samplePoint } from "../../src/search/space";
import { checkNoLeaks } from "../helpers";

checkNoLeaks();

const FMNIST = { channels: 1, size: 28, numClasses: 10 };
const CIFAR = { channels: 3, size: 32, numClasses: 100 };

test("the built-in spaces are the four the issue names and speednet's", () => {
  assert.deepEqual(listSpaces(), ["efficient-resnet", "mobilenetv2", "resnext", "speednet", "wrn"]);
});

test("speednet's seeds fit ResNet-20's budget at 1x28x28: the first has 209,274 parameters", () => {
  const space = loadSpace("speednet");
  const resnet20 = analyticCost("resnet20", { numClasses: 10, inChannels: 1 }, [1, 28, 28]);
  const checker = new BudgetChecker(space, FMNIST, { maxParams: resnet20?.params, maxMacs: resnet20?.macs });
  const verdicts = space.seeds.map((p) => checker.check(p));
  assert.ok(
    verdicts.every((v) => v.ok),
    JSON.stringify(verdicts),
  );
  assert.equal(verdicts[0]?.ok && verdicts[0].cost.params, 209_274);
});

test("efficient-resnet's seeds are the networks they name: the paper's 4.70M net and ResNet-20's exact cost", () => {
  const space = loadSpace("efficient-resnet");
  const cost = (p: Record<string, unknown>, data: typeof FMNIST) => {
    const v = new BudgetChecker(space, data, {}).check(p);
    assert.ok(v.ok, JSON.stringify(p));
    return v.cost;
  };
  const paper = space.seeds.find((p) => p.channels === 64);
  const r20 = space.seeds.find((p) => JSON.stringify(p.blocks) === "[3,3,3]" && p.channels === 16);
  assert.ok(paper !== undefined && r20 !== undefined);
  // the paper: 4,697,742 parameters on CIFAR-10 (3x32x32, 10 classes)
  assert.equal(cost(paper, { channels: 3, size: 32, numClasses: 10 }).params, 4_697_742);
  const resnet20 = analyticCost("resnet20", { numClasses: 10, inChannels: 1 }, [1, 28, 28]);
  const seeded = cost(r20, FMNIST);
  assert.deepEqual([seeded.params, seeded.macs], [resnet20?.params, resnet20?.macs]);
});

for (const name of ["efficient-resnet", "mobilenetv2", "resnext", "speednet", "wrn"]) {
  test(`${name}: analytic params and MACs equal the built model's for random points under budget`, () => {
    const space = loadSpace(name);
    let compared = 0;
    for (const [data, seed] of [
      [FMNIST, 1],
      [CIFAR, 2],
    ] as const) {
      // a budget keeps the built models small enough for a test; over-budget points are counted
      const checker = new BudgetChecker(space, data, { maxParams: 400_000 });
      const rng = new CounterRng(seed, 0, 0, 77);
      let n = 0;
      for (let draw = 0; draw < 5000 && n < 40; draw++) {
        const v = checker.check(samplePoint(space, rng));
        if (!v.ok) {
          if (v.reason === "over-budget") assert.ok((v.cost?.params ?? 0) > 400_000, v.message);
          continue;
        }
        assert.equal(v.cost.method, "analytic");
        assert.ok(v.cost.params <= 400_000);
        const model = createModel(space.model, checker.modelOptions(v.point));
        try {
          const s = summary(model, { inputShape: [data.channels, data.size, data.size] });
          assert.equal(v.cost.params, s.params, `${name} ${JSON.stringify(v.point)} params`);
          assert.equal(v.cost.macs, s.macs, `${name} ${JSON.stringify(v.point)} MACs`);
        } finally {
          model.dispose();
        }
        n++;
      }
      assert.ok(n >= 10, `${name}: only ${n} points fitted the test budget`);
      compared += n;
      const c = checker.counts;
      assert.equal(c.checked, c.accepted + c.overBudget + c.invalid);
    }
    assert.ok(compared >= 20);
  });
}

test("floors turn down candidates below them as budgets turn down those above", () => {
  const space = loadSpace("efficient-resnet");
  const band = { minParams: 100_000, maxParams: 272_474 };
  const checker = new BudgetChecker(space, FMNIST, band);
  const rng = new CounterRng(5, 0, 0, 77);
  let accepted = 0;
  let below = 0;
  for (let draw = 0; draw < 3000; draw++) {
    const v = checker.check(samplePoint(space, rng));
    if (v.ok) {
      assert.ok(v.cost.params >= band.minParams && v.cost.params <= band.maxParams, JSON.stringify(v.cost));
      accepted++;
    } else if (v.reason === "over-budget" && (v.cost?.params ?? 0) < band.minParams) {
      assert.match(v.message, /parameters < --min-params 100000/);
      below++;
    }
  }
  assert.ok(accepted > 0 && below > 0, `accepted ${accepted}, below the floor ${below}`);
});

test("an impossible pool is repaired to the largest choice that fits, and counted", () => {
  const space = parseSpace(
    {
      model: "efficient_resnet",
      stages: { choices: [3] },
      options: {
        blocks: { perStage: { choices: [1] } },
        channels: { choices: [8] },
        poolSize: { choices: [1, 2, 4, 8] },
      },
      fixed: { se: false },
    },
    "test",
  );
  const checker = new BudgetChecker(space, FMNIST, {});
  // 28 -> 14 -> 7 after two strided stages: a pool of 8 cannot fit, 4 can
  const v = checker.check({ blocks: [1, 1, 1], channels: 8, poolSize: 8 });
  assert.ok(v.ok);
  assert.equal(v.repaired, true);
  assert.equal(v.point.poolSize, 4);
  assert.equal(checker.counts.repaired, 1);
  const fine = checker.check({ blocks: [1, 1, 1], channels: 8, poolSize: 2 });
  assert.ok(fine.ok && !fine.repaired);
});

test("a point the family refuses and cannot be repaired is rejected with the family's reason", () => {
  const space = parseSpace(
    { model: "mobilenetv2", stages: { choices: [6] }, options: { blocks: { perStage: { choices: [1] } } } },
    "test",
  );
  const checker = new BudgetChecker(space, FMNIST, {});
  const v = checker.check({ blocks: [1, 1, 1, 1, 1, 1] });
  assert.equal(v.ok, false);
  assert.ok(!v.ok && v.reason === "invalid" && /blocks must list 7 stages/.test(v.message));
  assert.equal(checker.counts.invalid, 1);
});

test(
  "latency is measured through the plan only for points under the other budgets, and cached",
  { skip: planAvailable() ? false : "this addon has no inference plan" },
  () => {
    const space = parseSpace(
      {
        model: "efficient_resnet",
        stages: { choices: [2] },
        options: { blocks: { perStage: { choices: [1] } }, channels: { choices: [8, 64] } },
        fixed: { poolSize: 0, se: false },
      },
      "test",
    );
    const checker = new BudgetChecker(
      space,
      FMNIST,
      { maxParams: 50_000, maxLatencyMs: 1e6 },
      { measureLatency: true, latencyRepeats: 3 },
    );
    const small = checker.check({ blocks: [1, 1], channels: 8 });
    assert.ok(small.ok && typeof small.cost.latencyMs === "number" && small.cost.latencyMs > 0);
    const big = checker.check({ blocks: [1, 1], channels: 64 });
    assert.equal(big.ok, false, "over the parameter budget");
    assert.equal(checker.counts.latencyMeasured, 1, "the over-budget point was never built");
    checker.check({ blocks: [1, 1], channels: 8 });
    assert.equal(checker.counts.latencyMeasured, 1, "cached");
    const tight = new BudgetChecker(space, FMNIST, { maxLatencyMs: 1e-6 }, { measureLatency: true, latencyRepeats: 3 });
    const slow = tight.check({ blocks: [1, 1], channels: 8 });
    assert.ok(!slow.ok && slow.reason === "over-budget" && /--max-latency-ms/.test(slow.message));
  },
);
