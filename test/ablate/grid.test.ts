// The grid of an ablation study: rows per --combine mode, seed pairing across cells, technique
// patches (parameters, conflicts, no-ops, options the model does not declare), the resume check,
// and the report's numbers on a hand-made state.
import assert from "node:assert/strict";
import { test } from "node:test";
import "../../src/index";
import { buildReport, formatReport } from "../../src/ablate/report";
import {
  type AblateSpec,
  type AblateState,
  cellConfig,
  createSpec,
  type Declaration,
  declarationDiff,
  expandRows,
} from "../../src/ablate/study";
import { combinePatches, parseTechniqueDef, resolveTechnique } from "../../src/ablate/techniques";
import { loadRecipe } from "../../src/train/config";

const INPUT = { channels: 1, height: 28, width: 28, numClasses: 10 };

function declaration(over: Partial<Declaration> = {}): Declaration {
  return {
    recipe: "fashion-mnist-ablation",
    overrides: {},
    models: ["resnet29", "preact_resnet164"],
    modelOptions: {},
    techniques: ["se", "mixup"],
    userTechniques: [],
    combine: "all",
    seeds: 3,
    ...over,
  };
}

function spec(over: Partial<Declaration> = {}): AblateSpec {
  return createSpec("t", declaration(over), loadRecipe("fashion-mnist-ablation"), INPUT);
}

test("rows per combine mode: none, single, pairs, all (2^k, baseline first, by size)", () => {
  const t = ["a", "b", "c"];
  assert.deepEqual(
    expandRows(t, "none").map((r) => r.label),
    ["baseline"],
  );
  assert.deepEqual(
    expandRows(t, "single").map((r) => r.label),
    ["baseline", "+a", "+b", "+c"],
  );
  assert.deepEqual(
    expandRows(t, "pairs").map((r) => r.label),
    ["baseline", "+a", "+b", "+c", "+a+b", "+a+c", "+b+c"],
  );
  const all = expandRows(t, "all").map((r) => r.label);
  assert.equal(all.length, 8);
  assert.deepEqual(all.slice(-1), ["+a+b+c"]);
});

test("cells: seed-major, every cell of seed k has the recipe's seed + k, ids are positions", () => {
  const s = spec();
  assert.equal(s.rows.length, 4);
  assert.equal(s.cells.length, 2 * 4 * 3);
  for (const [i, c] of s.cells.entries()) assert.equal(c.id, i);
  for (const c of s.cells) assert.equal(c.seed, s.recipe.seed + c.k);
  // seed 0 of every model and row comes before any seed 1
  const firstK1 = s.cells.findIndex((c) => c.k === 1);
  assert.equal(firstK1, 8);
  assert.ok(s.cells.slice(0, 8).every((c) => c.k === 0));
  // pairing: the configs of baseline and +se for the same k share seed, data and schedule
  const row = (label: string) => s.rows.find((r) => r.label === label) ?? assert.fail(label);
  const base = cellConfig(s, "resnet29", row("baseline"), 2);
  const se = cellConfig(s, "resnet29", row("+se"), 2);
  assert.equal(base.seed, se.seed);
  assert.equal(base.seed, s.recipe.seed + 2);
  assert.deepEqual({ ...base.modelOptions, se: true, seReduction: 16 }, se.modelOptions);
  assert.deepEqual(base.augment, se.augment);
  const both = cellConfig(s, "preact_resnet164", row("+se+mixup"), 0);
  assert.equal(both.modelOptions.se, true);
  assert.deepEqual(both.augment.mixup, { alpha: 1 });
  // the recipe's model options reach every model
  assert.equal(both.modelOptions.baseWidth, 8);
  // SE adds parameters, mixup does not
  const cell = (m: string, r: string) =>
    s.cells.find((c) => c.model === m && c.row === r && c.k === 0) ?? assert.fail();
  assert.ok(cell("resnet29", "+se").params > cell("resnet29", "baseline").params);
  assert.equal(cell("resnet29", "+mixup").params, cell("resnet29", "baseline").params);
});

test("techniques: parameters, unknown names listed, conflicts and no-ops refused", () => {
  assert.deepEqual(resolveTechnique("mixup:alpha=0.2").recipe, { augment: { mixup: { alpha: 0.2 } } });
  assert.deepEqual(resolveTechnique("se:reduction=4").modelOptions, { se: true, seReduction: 4 });
  assert.throws(
    () => resolveTechnique("mixpu"),
    /unknown technique "mixpu". Known techniques: se, mixup, .*did you mean "mixup"/,
  );
  assert.throws(
    () => resolveTechnique("mixup:beta=1"),
    /technique mixup has no parameter "beta". Its parameters: alpha \(default 1\)/,
  );
  assert.throws(() => resolveTechnique("mixup:alpha=x"), /parameter alpha: must be a number/);
  assert.throws(
    () => combinePatches([resolveTechnique("mixup"), resolveTechnique("mixup:alpha=0.2")]),
    /techniques mixup and mixup:alpha=0.2 cannot be combined: both set augment.mixup.alpha \(1 and 0.2\)/,
  );
  const own = parseTechniqueDef({ name: "warm", recipe: { schedule: { warmupEpochs: 1 } } }, "test");
  assert.deepEqual(resolveTechnique("warm", [own]).recipe, { schedule: { warmupEpochs: 1 } });
  assert.throws(
    () => parseTechniqueDef({ name: "x", recipe: { seed: 3 } }, "f"),
    /may not set model, modelOptions or seed/,
  );
  assert.throws(
    () => parseTechniqueDef({ name: "x", recpie: {} }, "f"),
    /unknown technique field "recpie".*did you mean "recipe"/,
  );
  // an option the model does not declare: an error before anything runs, naming model and row
  assert.throws(
    () => spec({ techniques: ["stochastic-depth"], combine: "single" }),
    /model resnet29, \+stochastic-depth: .*dropPath/,
  );
  // a field outside the schema in a user technique
  const bad = parseTechniqueDef({ name: "bad", recipe: { augment: { flipp: true } } }, "f");
  assert.throws(() => spec({ techniques: ["bad"], userTechniques: [bad], combine: "single" }), /augment.flipp/);
  // the recipe already does it: nothing to compare
  const flips = parseTechniqueDef({ name: "flips", recipe: { augment: { flip: true } } }, "f");
  assert.throws(
    () => spec({ techniques: ["flips"], userTechniques: [flips], combine: "single" }),
    /technique flips changes nothing for resnet29: recipe fashion-mnist-ablation already has it/,
  );
});

test("declarationDiff names every changed field with both values", () => {
  assert.deepEqual(declarationDiff(declaration(), declaration()), []);
  assert.deepEqual(declarationDiff(declaration(), declaration({ seeds: 5, techniques: ["se"] })), [
    'techniques: ["se","mixup"] -> ["se"]',
    "seeds: 3 -> 5",
  ]);
});

/** A state with given final validation accuracies per (model, row) and seed. */
function stateOf(s: AblateSpec, val: Record<string, number[]>): AblateState {
  return {
    sessions: 1,
    elapsed: 100,
    damaged: [],
    cells: s.cells.map((cell) => {
      const v = val[`${cell.model}|${cell.row}`]?.[cell.k];
      if (v === undefined) return { cell, status: "pending" as const };
      return {
        cell,
        status: "done" as const,
        outcome: {
          valAccuracy: v + 0.01,
          finalValAccuracy: v,
          testAccuracy: v - 0.01,
          epochs: 4,
          steps: 10,
          seconds: 12,
          trainSeconds: 10,
          wallSeconds: 13,
          worker: "w",
          runDir: "/x",
        },
      };
    }),
  };
}

test("report: means, paired gains, interaction and cross-size correlation match hand-computed values", () => {
  const s = spec({ seeds: 2 });
  // resnet29: base 0.80/0.82; +se +0.01 each seed; +mixup +0.03 / +0.00; +se+mixup +0.04 / +0.02
  // preact_resnet164: gains twice as large
  const val: Record<string, number[]> = {
    "resnet29|baseline": [0.8, 0.82],
    "resnet29|+se": [0.81, 0.83],
    "resnet29|+mixup": [0.83, 0.82],
    "resnet29|+se+mixup": [0.84, 0.84],
    "preact_resnet164|baseline": [0.85, 0.86],
    "preact_resnet164|+se": [0.87, 0.88],
    "preact_resnet164|+mixup": [0.91, 0.86],
    "preact_resnet164|+se+mixup": [0.93, 0.9],
  };
  const r = buildReport(s, stateOf(s, val));
  const cell = r.cells.find((c) => c.model === "resnet29" && c.row === "baseline") ?? assert.fail();
  assert.ok(Math.abs(cell.val.mean - 0.81) < 1e-12);
  assert.ok(cell.val.lo >= 0.8 - 1e-12 && cell.val.hi <= 0.82 + 1e-12);
  assert.ok(Math.abs((cell.test?.mean ?? 0) - 0.8) < 1e-12);
  const gain = (m: string, row: string) => r.gains.find((g) => g.model === m && g.row === row) ?? assert.fail();
  assert.ok(Math.abs(gain("resnet29", "+se").val.mean - 0.01) < 1e-12);
  // identical per-seed gains: a zero-width interval
  assert.ok(Math.abs(gain("resnet29", "+se").val.hi - gain("resnet29", "+se").val.lo) < 1e-12);
  assert.ok(Math.abs(gain("resnet29", "+mixup").val.mean - 0.015) < 1e-12);
  assert.ok(Math.abs(gain("preact_resnet164", "+se+mixup").val.mean - 0.06) < 1e-12);
  // interaction resnet29: combined (0.04 + 0.02)/2 = 0.03, singles (0.01+0.03 + 0.01+0.00)/2 = 0.025 -> +0.005
  const ix = r.interactions.find((i) => i.model === "resnet29") ?? assert.fail();
  assert.ok(Math.abs(ix.combined.mean - 0.03) < 1e-12);
  assert.ok(Math.abs(ix.sumOfSingles.mean - 0.025) < 1e-12);
  assert.ok(Math.abs(ix.interaction.mean - 0.005) < 1e-12);
  // big gains are exactly 2x the small ones per row: r = 1, and every direction agrees
  assert.equal(r.correlation?.small, "resnet29");
  assert.equal(r.correlation?.big, "preact_resnet164");
  assert.ok(Math.abs((r.correlation?.pearson.r ?? 0) - 1) < 1e-9);
  assert.ok(Math.abs((r.correlation?.spearman.r ?? 0) - 1) < 1e-9);
  assert.equal(r.correlation?.directionsAgree, 3);
  assert.deepEqual(r.overhead, { meanSeconds: 3, share: 3 / 13 });
  const md = formatReport(r);
  assert.match(md, /\| \| resnet29 \| preact_resnet164 \|/);
  assert.match(md, /\| baseline \| 81\.00 \[80\.\d\d, 8[12]\.\d\d\] \(test 80\.00, n=2\)/);
  assert.match(md, /\| \+se \| \+1\.00 \[\+1\.00, \+1\.00\]/);
  assert.match(md, /Pearson r = 1\.00/);
});

test("report: a study half done reports the cells it has and no gain without a pair", () => {
  const s = spec({ seeds: 2 });
  const r = buildReport(s, stateOf(s, { "resnet29|baseline": [0.8], "resnet29|+se": [0.82] }));
  assert.equal(r.cells.length, 2);
  assert.equal(r.gains.length, 1);
  assert.equal(r.correlation, null);
  assert.equal(r.progress.done, 2);
  const md = formatReport(r);
  assert.match(md, /2\/16 cells done/);
  // one seed: a mean, never a zero-width "interval"
  assert.match(md, /\| baseline \| 80\.00 \(n=1, no interval\)/);
  assert.match(md, /\| \+se \| \+2\.00 \(n=1, no interval\)/);
});
