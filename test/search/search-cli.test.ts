// `budgetnet search` as a user runs it, on a slice of the real Fashion-MNIST with tiny models:
// a search killed with kill -9 resumes without losing or repeating a finished trial; status and
// report read the journal; bad input is refused before anything runs.
import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import { loadRecipe } from "../../src/train/config";
import { journalEvents, tempDir, waitFor } from "../helpers";

const BIN = path.resolve(__dirname, "../../../bin/budgetnet.js");
const env = { ...process.env, BUDGETNET_THREADS: "1", BUDGETNET_PLAIN: "1" };
const SMALL = [
  "--train-subset",
  "320",
  "--val-subset",
  "128",
  "--batch-size",
  "32",
  "--epochs",
  "1",
  "--precision",
  "fp32",
];

function run(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: "utf8", env, timeout: 240_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A small space of tiny efficient ResNets (a few thousand parameters). */
function tinySpace(dir: string): string {
  const file = path.join(dir, "tiny.json");
  fs.writeFileSync(
    file,
    JSON.stringify({
      name: "tiny",
      source: "test: tiny efficient ResNets",
      model: "efficient_resnet",
      stages: { int: [1, 2] },
      options: {
        blocks: { perStage: { int: [1, 2] } },
        channels: { choices: [4, 6, 8] },
        convKernels: { perStage: { choices: [3, 5] } },
        poolSize: { choices: [0, 4, 8] },
      },
      fixed: { se: false },
    }),
  );
  return file;
}

interface Event {
  event: string;
  trial?: number;
  valAccuracy?: number;
}

const journal = (study: string): Event[] => journalEvents<Event>(study);

function pidsOf(pattern: string): number[] {
  const out = spawnSync("pgrep", ["-f", pattern], { encoding: "utf8" }).stdout;
  return out
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map(Number);
}

test("a search killed with kill -9 resumes: finished trials kept, the interrupted one restarted, none counted twice", async () => {
  const dir = tempDir();
  const space = tinySpace(dir);
  const study = path.join(dir, "study");
  const args = [
    BIN,
    "search",
    "--space",
    space,
    "--strategy",
    "random",
    "--trials",
    "5",
    "--workers",
    "2",
    "--out",
    study,
    "--max-params",
    "20000",
    "--seed",
    "3",
    ...SMALL,
  ];
  const child: ChildProcess = spawn(process.execPath, args, { env, stdio: "ignore" });
  await waitFor(() => journal(study).filter((e) => e.event === "result").length >= 2, 180_000);
  child.kill("SIGKILL");
  await new Promise((r) => child.once("exit", r));
  const before = journal(study);
  const finished = new Map(before.filter((e) => e.event === "result").map((e) => [e.trial, e.valAccuracy]));
  assert.ok(finished.size >= 2);
  // the trial processes die with their coordinator (no orphan keeps writing into the study)
  await waitFor(() => pidsOf(`trial_main.js ${study}`).length === 0, 10_000);

  const status = run("search", "status", study);
  assert.equal(status.status, 0, status.stderr);
  assert.match(status.stdout, /trials: \d+ \(\d+ done/);

  const resumed = run("search", "--resume", study, "--workers", "2", "--json");
  assert.equal(resumed.status, 0, resumed.stderr);
  const summary = JSON.parse(resumed.stdout) as {
    trials: number;
    done: number;
    interrupted: number;
    stopReason: string;
  };
  assert.equal(summary.stopReason, "trial limit");
  assert.equal(summary.trials, 5);
  assert.equal(summary.done + (summary as unknown as { failed: number }).failed, 5);
  assert.equal(summary.interrupted, 0);
  const after = journal(study);
  const results = after.filter((e) => e.event === "result");
  assert.equal(new Set(results.map((e) => e.trial)).size, results.length, "each trial has one result");
  for (const [id, acc] of finished)
    assert.equal(results.find((e) => e.trial === id)?.valAccuracy, acc, `trial ${id} kept its result`);
  assert.equal(after.filter((e) => e.event === "session").length, 2);

  // the report: leaderboard, Pareto plots, and a best recipe that train accepts
  const report = run("search", "report", study, "--json");
  assert.equal(report.status, 0, report.stderr);
  const files = JSON.parse(report.stdout) as { recipe: string; plots: string[] };
  const recipe = loadRecipe(files.recipe);
  assert.equal(recipe.model, "efficient_resnet");
  assert.equal(recipe.trainSubset, 320, "the study's recipe carries over");
  for (const f of files.plots) assert.ok(fs.statSync(f).size > 100, f);
  assert.equal(
    fs
      .readFileSync(files.plots.find((f) => f.endsWith(".png")) as string)
      .subarray(1, 4)
      .toString(),
    "PNG",
  );
});

test("a corrupt journal line is reported with its line number and the rest is kept", () => {
  const dir = tempDir();
  const space = tinySpace(dir);
  const study = path.join(dir, "study");
  const r = run(
    "search",
    "--space",
    space,
    "--strategy",
    "random",
    "--trials",
    "2",
    "--out",
    study,
    "--max-params",
    "20000",
    ...SMALL,
  );
  assert.equal(r.status, 0, r.stderr);
  const file = path.join(study, "journal.jsonl");
  const lines = fs.readFileSync(file, "utf8").split("\n");
  lines.splice(2, 0, '{"event": "result", "trial": 0, broken');
  fs.writeFileSync(file, lines.join("\n"));
  const status = run("search", "status", study);
  assert.equal(status.status, 0, status.stderr);
  assert.match(status.stdout, /journal: line 3: .* \(skipped\)/);
  assert.match(status.stdout, /trials: 2 \(2 done/);
});

test("bad input is refused before anything runs, in words that say what to do", () => {
  const dir = tempDir();
  const study = path.join(dir, "s");
  const cases: [string[], RegExp][] = [
    [
      ["search", "--space", "efficient-resnt", "--trials", "1"],
      /unknown search space "efficient-resnt" \(did you mean "efficient-resnet"\?\)/,
    ],
    [["search", "--space", "efficient-resnet"], /needs a limit: --trials N and\/or --time/],
    [["search", "--space", "efficient-resnet", "--trials", "1", "--strategy", "grid"], /unknown strategy "grid"/],
    [
      ["search", "--space", "efficient-resnet", "--trials", "1", "--max-params", "1000", "--out", study],
      /budget is below every candidate .* smallest of \d+ drawn has [\d,]+ parameters/,
    ],
    [
      ["search", "--space", "efficient-resnet", "--trials", "1", "--min-params", "300000", "--max-params", "200000"],
      /--min-params 300000 is above --max-params 200000/,
    ],
    [
      // a band no candidate falls in: 5 million parameters is beyond the whole space at 28x28
      ["search", "--space", "wrn", "--trials", "1", "--min-params", "90000000", "--out", path.join(dir, "band")],
      /no candidate of the space wrn falls between the floors and the budgets .* below a floor\)/,
    ],
    [["search", "--resume", path.join(dir, "nothing")], /is not a study folder/],
    [["search", "status"], /needs the study folder/],
    [["search", "--space", "efficient-resnet", "--trials", "1", "--objectives", "params"], /must include accuracy/],
    [["search", "--space", "efficient-resnet", "--time", "soon"], /--time takes a duration/],
  ];
  // a recipe every trial fails on stops the search instead of burning its budget
  const failing = run(
    "search",
    "--space",
    tinySpace(dir),
    "--trials",
    "20",
    "--out",
    path.join(dir, "f"),
    ...SMALL,
    "--batch-size",
    "160",
  );
  assert.equal(failing.status, 1);
  assert.match(failing.stdout, /every trial failed \(3 in a row\); the last said: .*pctStart/);
  for (const [args, pattern] of cases) {
    const r = run(...args);
    assert.notEqual(r.status, 0, args.join(" "));
    assert.match(r.stderr, pattern, args.join(" "));
    assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
  }
  assert.ok(!fs.existsSync(path.join(study, "study.json")), "a refused search writes no study");
  const file = path.join(dir, "bad.json");
  const bad: [unknown, RegExp][] = [
    [{ model: "efficient_resnet", options: {} }, /is empty/],
    [
      { model: "efficient_resnet", options: { chanels: { choices: [8] } } },
      /no option "chanels" \(did you mean "channels"\?\)/,
    ],
    [{ model: "resnet2O", options: {} }, /unknown model "resnet2O" \(did you mean "resnet20"\?\)/],
    [{ model: "efficient_resnet", options: { blocks: { int: [1, 3] } } }, /one value per stage; write \{"perStage"/],
    [{ model: "efficient_resnet", options: { channels: { int: [0, 3] } } }, /0 is not a valid value/],
    [{ model: "efficient_resnet", options: { dropout: { range: [0.5, 0.1] } } }, /lo 0.5 is above hi 0.1/],
    [
      { model: "efficient_resnet", stages: { int: [1, 2] }, options: { channels: { choices: [8] } } },
      /no option is "perStage"/,
    ],
    [
      { model: "efficient_resnet", options: { channels: { choices: [8] } }, seeds: [{ channels: 16 }] },
      /seeds\[0\]\.channels: 16 is outside the domain \(one of 8\)/,
    ],
    [
      { model: "efficient_resnet", options: { channels: { choices: [8] } }, seeds: [{ chanels: 8 }] },
      /seeds\[0\]: "chanels" is not a searched option of the space \(did you mean "channels"\?\)/,
    ],
    [
      {
        model: "efficient_resnet",
        stages: { int: [1, 3] },
        options: { blocks: { perStage: { int: [1, 2] } }, convKernels: { perStage: { choices: [3] } } },
        seeds: [{ blocks: [1, 1], convKernels: [3] }],
      },
      /seeds\[0\]\.convKernels has 1 stages where the other lists have 2/,
    ],
    [
      {
        model: "efficient_resnet",
        stages: { int: [1, 2] },
        options: { blocks: { perStage: { int: [1, 2] } } },
        seeds: [{ blocks: [1, 1, 1] }],
      },
      /seeds\[0\]: 3 stages is outside "stages" \(an integer in \[1, 2\]\)/,
    ],
  ];
  for (const [space, pattern] of bad) {
    fs.writeFileSync(file, JSON.stringify(space));
    const r = run("search", "--space", file, "--trials", "1");
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, pattern);
  }
});

test("the space's seeds are tried first, in order, where they fit the budgets; then points are drawn", () => {
  const dir = tempDir();
  const file = path.join(dir, "seeded.json");
  const seed = (blocks: number[], channels: number) => ({
    blocks,
    channels,
    convKernels: blocks.map(() => 3),
    poolSize: 0,
  });
  const seeds = [seed([2, 2], 8), seed([1], 4), seed([1, 1], 6)];
  fs.writeFileSync(file, JSON.stringify({ ...JSON.parse(fs.readFileSync(tinySpace(dir), "utf8")), seeds }));
  const study = path.join(dir, "study");
  // the first seed (8 and 16 channels, two blocks each) is over 5,000 parameters: turned down
  const r = run(
    "search",
    "--space",
    file,
    "--strategy",
    "random",
    "--trials",
    "3",
    "--out",
    study,
    "--max-params",
    "5000",
    ...SMALL,
  );
  assert.equal(r.status, 0, r.stderr);
  const points = (journal(study) as (Event & { point?: unknown })[])
    .filter((e) => e.event === "trial")
    .map((e) => e.point);
  assert.equal(points.length, 3);
  assert.deepEqual(points.slice(0, 2), [seeds[1], seeds[2]]);
  assert.notDeepEqual(points[2], seeds[0]);
});

test("--seed makes a search reproducible on one worker: evolution + ASHA proposes, promotes and scores the same", () => {
  const dir = tempDir();
  const space = tinySpace(dir);
  const runs = ["a", "b"].map((name) => {
    const study = path.join(dir, name);
    const r = run(
      "search",
      "--space",
      space,
      "--strategy",
      "evolution-asha",
      "--min-resource",
      "1",
      "--max-resource",
      "2",
      "--eta",
      "2",
      "--population",
      "2",
      "--sample",
      "2",
      "--trials",
      "5",
      "--seed",
      "5",
      "--max-params",
      "20000",
      "--out",
      study,
      ...SMALL,
    );
    assert.equal(r.status, 0, r.stderr);
    const events = journal(study) as (Event & { point?: unknown; rung?: number; promotes?: number; parent?: number })[];
    return {
      trials: events.filter((e) => e.event === "trial").map((e) => [e.point, e.rung, e.promotes, e.parent]),
      results: events.filter((e) => e.event === "result").map((e) => [e.trial, e.valAccuracy]),
    };
  });
  assert.deepEqual(runs[0], runs[1]);
  assert.ok(
    (runs[0]?.trials ?? []).some(([, rung]) => rung === 1),
    "ASHA promoted a trial to the second rung",
  );
});

test("search status draws a progress bar that fits the terminal", () => {
  const dir = tempDir();
  const study = path.join(dir, "s");
  const r = run(
    "search",
    "--space",
    tinySpace(dir),
    "--strategy",
    "random",
    "--trials",
    "1",
    "--out",
    study,
    "--max-params",
    "20000",
    ...SMALL,
  );
  assert.equal(r.status, 0, r.stderr);
  for (const cols of [50, 200]) {
    const tty = spawnSync(
      "script",
      ["-q", "-c", `stty cols ${cols}; ${process.execPath} ${BIN} search status ${study}`, "/dev/null"],
      {
        encoding: "utf8",
        env,
      },
    );
    assert.equal(tty.status, 0, tty.stderr);
    const bar = tty.stdout.split(/\r?\n/).find((l) => l.startsWith("["));
    assert.ok(bar !== undefined, tty.stdout);
    assert.match(bar, /^\[#+\] 100%$/);
    assert.ok(bar.length <= Math.min(cols, 70), `${bar.length} columns at ${cols}`);
  }
  assert.doesNotMatch(run("search", "status", study).stdout, /\[#/, "no bar when not a terminal");
});
