// Search strategies against a cheap synthetic objective: no training, so every strategy's logic
// (aging evolution, ASHA promotion, Pareto ranking) is checked in milliseconds.
import assert from "node:assert/strict";
import { test } from "node:test";
import "../../src"; // registers the model families
import { CounterRng } from "../../src/data/rng";
import type { CandidateCost } from "../../src/search/budget";
import { mutatePoint, type Point, parseSpace, pointKey, samplePoint } from "../../src/search/space";
import {
  type ObjectiveKey,
  rankTrials,
  rungResources,
  SearchStrategy,
  type StrategyName,
  type TrialRecord,
} from "../../src/search/strategies";

const SPACE = parseSpace(
  {
    name: "synthetic",
    model: "efficient_resnet",
    stages: { int: [1, 4] },
    options: {
      blocks: { perStage: { int: [1, 6] } },
      channels: { choices: [16, 24, 32, 48, 64] },
      convKernels: { perStage: { choices: [3, 5] } },
      skipKernels: { perStage: { choices: [1, 3] } },
      dropout: { choices: [0, 0.1, 0.2] },
    },
  },
  "test",
);

/** The noise-free quality of a point: best at 3 stages of 3 blocks, 48 channels, kernel 3, skip 1, no dropout. */
function quality(p: Point): number {
  const blocks = p.blocks as number[];
  let q = 0.95;
  q -= 0.02 * Math.abs(blocks.length - 3);
  for (let i = 0; i < 4; i++) q -= 0.004 * Math.abs((blocks[i] ?? 0) - (i < 3 ? 3 : 0));
  q -= 0.0008 * Math.abs((p.channels as number) - 48);
  q -= 0.006 * (p.convKernels as number[]).filter((k) => k !== 3).length;
  q -= 0.004 * (p.skipKernels as number[]).filter((k) => k !== 1).length;
  q -= 0.05 * (p.dropout as number);
  return q;
}

/** What a trial of `resource` epochs (of at most 9) reports: lower and noisier with less training. */
function observe(p: Point, resource: number, rng: CounterRng): number {
  const noise = (rng.uniform() - 0.5) * 0.02 * Math.sqrt(9 / resource);
  return quality(p) - 0.05 * (1 - resource / 9) + noise;
}

const cost = (p: Point): CandidateCost => ({
  params: (p.channels as number) * 1000,
  macs: (p.blocks as number[]).length * 1e6,
  method: "analytic",
});

/** Runs a strategy with one worker until `budget` epochs of compute are spent; returns the true quality of its pick. */
function simulate(strategy: StrategyName, seed: number, budget = 600): { pick: number; trials: number } {
  const rng = new CounterRng(seed, 0, 0, 99);
  const noise = new CounterRng(seed, 1, 0, 99);
  const seen = new Set<string>();
  const fresh = (p: Point) => {
    const k = pointKey(p);
    if (seen.has(k)) return undefined;
    seen.add(k);
    return { point: p, cost: cost(p) };
  };
  const asha = strategy.endsWith("asha");
  const s = new SearchStrategy(
    {
      strategy,
      objectives: ["accuracy"],
      rungs: asha ? rungResources(1, 9, 3, true) : [9],
      eta: 3,
      population: 20,
      sample: 5,
    },
    {
      rng,
      sample: () => {
        for (let i = 0; i < 100; i++) {
          const c = fresh(samplePoint(SPACE, rng));
          if (c) return c;
        }
        return undefined;
      },
      mutate: (parent) => {
        for (let i = 0; i < 100; i++) {
          const c = fresh(mutatePoint(SPACE, parent, rng));
          if (c) return c;
        }
        return undefined;
      },
    },
  );
  const trials: TrialRecord[] = [];
  let spent = 0;
  while (spent < budget) {
    const p = s.next();
    assert.ok(p !== undefined, "the synthetic space is large enough never to run out");
    const resource = asha ? ([1, 3, 9][p.rung] as number) : 9;
    const t: TrialRecord = {
      id: trials.length,
      point: p.point,
      key: pointKey(p.point),
      rung: p.rung,
      resource,
      cost: p.cost,
      status: "running",
      promotes: p.promotes,
      parent: p.parent,
    };
    s.launched(t);
    spent += resource;
    t.status = "done";
    t.valAccuracy = observe(p.point, resource, noise);
    s.finished(t);
    trials.push(t);
  }
  const top = Math.max(...trials.map((t) => t.rung));
  const best = rankTrials(
    trials.filter((t) => t.rung === top),
    ["accuracy"],
  )[0] as TrialRecord;
  return { pick: quality(best.point), trials: trials.length };
}

test("evolution, ASHA and evolution+ASHA beat random search on a synthetic objective at equal compute", (t) => {
  const mean = (name: StrategyName): number => {
    let total = 0;
    for (const seed of [1, 2, 3, 4, 5]) total += simulate(name, seed).pick;
    return total / 5;
  };
  const random = mean("random");
  const evolution = mean("evolution");
  const asha = mean("asha");
  const both = mean("evolution-asha");
  t.diagnostic(
    `true quality of the pick (mean of 5 seeds): random ${random.toFixed(4)}, evolution ${evolution.toFixed(4)}, asha ${asha.toFixed(4)}, evolution-asha ${both.toFixed(4)}`,
  );
  assert.ok(evolution > random, `evolution ${evolution.toFixed(4)} vs random ${random.toFixed(4)}`);
  assert.ok(asha > random, `asha ${asha.toFixed(4)} vs random ${random.toFixed(4)}`);
  assert.ok(both > random, `evolution-asha ${both.toFixed(4)} vs random ${random.toFixed(4)}`);
});

test("a strategy is reproducible from its seed", () => {
  assert.deepEqual(simulate("evolution-asha", 7), simulate("evolution-asha", 7));
  assert.notDeepEqual(simulate("random", 7, 200).pick === simulate("random", 8, 200).pick ? 0 : 1, 0);
});

test("ASHA promotes exactly the top 1/eta of a rung, each trial once, highest rung first", () => {
  const rng = new CounterRng(0, 0, 0, 1);
  let n = 0;
  const s = new SearchStrategy(
    { strategy: "asha", objectives: ["accuracy"], rungs: [1, 3, 9], eta: 3, population: 20, sample: 5 },
    {
      rng,
      sample: () => {
        n++;
        return {
          point: { channels: 16 + n, blocks: [1], convKernels: [3], skipKernels: [1], dropout: 0 },
          cost: cost({ channels: 16, blocks: [1] }),
        };
      },
      mutate: () => undefined,
    },
  );
  const trials: TrialRecord[] = [];
  const run = (acc: number): TrialRecord => {
    const p = s.next() as NonNullable<ReturnType<typeof s.next>>;
    const t: TrialRecord = {
      id: trials.length,
      point: p.point,
      key: pointKey(p.point),
      rung: p.rung,
      resource: [1, 3, 9][p.rung] as number,
      cost: p.cost,
      status: "running",
      promotes: p.promotes,
    };
    s.launched(t);
    t.status = "done";
    t.valAccuracy = acc;
    s.finished(t);
    trials.push(t);
    return t;
  };
  // two rung-0 results: floor(2/3) = 0 promotions, so the third proposal is new
  run(0.5);
  run(0.9);
  const third = run(0.7);
  assert.equal(third.rung, 0);
  // three results: the best (0.9, trial 1) is promoted next
  const promoted = run(0.95);
  assert.equal(promoted.rung, 1);
  assert.equal(promoted.promotes, 1);
  // trial 1 is not promoted twice: the next proposal is a new rung-0 point
  assert.equal(run(0.1).rung, 0);
  assert.equal(run(0.2).rung, 0);
  // five rung-0 results still promote only the best one
  assert.equal(run(0.3).rung, 0);
  // six rung-0 results: the top two are trials 1 (0.9) and 2 (0.7); trial 2 goes up now
  const second = run(0.8);
  assert.equal(second.rung, 1);
  assert.equal(second.promotes, 2);
});

test("Pareto ranking: non-dominated trials first, a dominated one last", () => {
  const mk = (id: number, acc: number, params: number): TrialRecord => ({
    id,
    point: {},
    key: String(id),
    rung: 0,
    resource: 1,
    cost: { params, macs: 0, method: "analytic" },
    status: "done",
    valAccuracy: acc,
  });
  const objectives: ObjectiveKey[] = ["accuracy", "params"];
  const ranked = rankTrials([mk(0, 0.9, 100), mk(1, 0.8, 50), mk(2, 0.85, 120), mk(3, 0.95, 300)], objectives);
  assert.deepEqual(new Set(ranked.slice(0, 3).map((t) => t.id)), new Set([0, 1, 3]));
  assert.equal(ranked[3]?.id, 2, "0.85 at 120 params is dominated by 0.9 at 100");
  assert.deepEqual(
    rankTrials([mk(0, 0.5, 1), mk(1, 0.7, 9)], ["accuracy"]).map((t) => t.id),
    [1, 0],
  );
});

test("rung resources follow eta up to the maximum", () => {
  assert.deepEqual(rungResources(1, 9, 3, true), [1, 3, 9]);
  assert.deepEqual(rungResources(1, 10, 3, true), [1, 3, 9, 10]);
  assert.deepEqual(rungResources(1 / 9, 1, 3, false), [0.111111, 0.333333, 1]);
  assert.throws(() => rungResources(0, 9, 3, true), /0 < min <= max/);
  assert.throws(() => rungResources(1, 9, 1, true), /eta must be >= 2/);
});

test("random and evolution refuse ASHA rungs", () => {
  const proposer = { rng: new CounterRng(0, 0, 0, 1), sample: () => undefined, mutate: () => undefined };
  assert.throws(
    () =>
      new SearchStrategy(
        { strategy: "random", objectives: ["accuracy"], rungs: [1, 3], eta: 3, population: 5, sample: 2 },
        proposer,
      ),
    /one resource level/,
  );
});
