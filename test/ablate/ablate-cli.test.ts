// `budgetnet ablate` as a user runs it, on a slice of the real Fashion-MNIST: a tiny study killed
// with kill -9 resumes without losing or repeating a finished cell, its report holds every cell
// with test accuracy beside validation; bad input is refused before anything runs.
import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import type { AblateReport } from "../../src/ablate/report";
import { journalEvents, tempDir, waitFor } from "../helpers";
import { redisSkip, startRedisServer } from "../redis_server";

const BIN = path.resolve(__dirname, "../../../bin/budgetnet.js");
const env = { ...process.env, BUDGETNET_THREADS: "1", BUDGETNET_PLAIN: "1" };
// the proxy recipe (ResNet-29 at half width) on 256 images, 1 epoch, a cosine schedule
const SMALL = ["--train-subset", "256", "--val-subset", "128", "--epochs", "1", "--schedule.type", "cosine"];

function run(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: "utf8", env, timeout: 300_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

interface Event {
  event: string;
  trial?: number;
  finalValAccuracy?: number;
  testAccuracy?: number;
}

const journal = (study: string): Event[] => journalEvents<Event>(study);

test("an ablation killed with kill -9 resumes: finished cells kept, the rest run once; the report has every cell", async () => {
  const dir = tempDir();
  const study = path.join(dir, "study");
  const declare = ["--models", "resnet29", "--techniques", "label-smoothing", "--combine", "single", "--seeds", "2"];
  const child: ChildProcess = spawn(process.execPath, [BIN, "ablate", ...declare, "--out", study, ...SMALL], {
    env,
    stdio: "ignore",
  });
  await waitFor(() => journal(study).some((e) => e.event === "result"), 240_000);
  child.kill("SIGKILL");
  await new Promise((r) => child.once("exit", r));
  const finished = new Map(
    journal(study)
      .filter((e) => e.event === "result")
      .map((e) => [e.trial, e.finalValAccuracy]),
  );
  assert.ok(finished.size >= 1);

  // resuming with another declaration is refused, with the difference shown
  const other = run("ablate", ...declare.slice(0, -1), "3", "--out", study, ...SMALL);
  assert.equal(other.status, 2, other.stderr);
  assert.match(other.stderr, /holds a study declared differently.*\n\s+seeds: 2 -> 3/);

  const status = run("ablate", "status", study);
  assert.equal(status.status, 0, status.stderr);
  assert.match(status.stdout, /\d\/4 cells done/);

  const resumed = run("ablate", "--resume", study, "--json");
  assert.equal(resumed.status, 0, resumed.stderr);
  const summary = JSON.parse(resumed.stdout) as { done: number; failed: number; pending: number; interrupted: number };
  assert.deepEqual([summary.done, summary.failed, summary.pending, summary.interrupted], [4, 0, 0, 0]);
  const results = journal(study).filter((e) => e.event === "result");
  assert.equal(results.length, 4, "each cell has one result");
  assert.equal(new Set(results.map((e) => e.trial)).size, 4);
  for (const [id, acc] of finished)
    assert.equal(results.find((e) => e.trial === id)?.finalValAccuracy, acc, `cell ${id} kept its result`);
  for (const e of results)
    assert.ok((e.testAccuracy ?? -1) >= 0 && (e.testAccuracy ?? 2) <= 1, "test accuracy beside val");

  // paired seeds: seed k of every row trained from the same seed
  const seeds = (row: string) =>
    [0, 1].map(
      (k) =>
        JSON.parse(fs.readFileSync(path.join(study, "cells", "resnet29", row, `seed-${k}`, "config.json"), "utf8"))
          .recipe.seed,
    );
  assert.deepEqual(seeds("baseline"), seeds("label-smoothing"));
  assert.deepEqual(seeds("baseline"), [0, 1]);

  const report = run("ablate", "report", study, "--json");
  assert.equal(report.status, 0, report.stderr);
  const files = JSON.parse(report.stdout) as { json: string; markdown: string; svg: string; png: string };
  const r = JSON.parse(fs.readFileSync(files.json, "utf8")) as AblateReport;
  assert.deepEqual(r.rows, ["baseline", "+label-smoothing"]);
  assert.equal(r.cells.length, 2);
  for (const c of r.cells) {
    assert.equal(c.seeds, 2);
    assert.ok(c.val.lo <= c.val.mean && c.val.mean <= c.val.hi);
    assert.ok(c.test !== null);
  }
  assert.equal(r.gains.length, 1);
  assert.match(fs.readFileSync(files.markdown, "utf8"), /\| \+label-smoothing \| [+−]\d+\.\d\d \[/);
  assert.match(fs.readFileSync(files.svg, "utf8"), /^(<\?xml[^>]*>\s*)?<svg /);
  assert.equal(fs.readFileSync(files.png).subarray(1, 4).toString(), "PNG");
});

test("bad ablation input is refused before anything runs, in words that say what to do", () => {
  const dir = tempDir();
  const out = path.join(dir, "s");
  const cases: [string[], RegExp][] = [
    [
      ["ablate", "--models", "resnet29", "--techniques", "mixpu"],
      /unknown technique "mixpu". Known techniques: se, mixup.*did you mean "mixup"/,
    ],
    [["ablate", "--models", "resnet2O", "--techniques", "se"], /unknown model "resnet2O".*did you mean "resnet20"/],
    [["ablate", "--techniques", "se"], /ablate needs --models/],
    [
      ["ablate", "--models", "resnet29", "--techniques", "stochastic-depth"],
      /model resnet29, \+stochastic-depth: .*dropPath/,
    ],
    [
      ["ablate", "--models", "resnet29", "--techniques", "se", "--combine", "some"],
      /--combine must be one of none, single, pairs, all/,
    ],
    [
      ["ablate", "--models", "resnet29", "--techniques", "se", "--seeds", "0"],
      /--seeds must be an integer from 1 to 100/,
    ],
    [["ablate", "--study", path.join(dir, "nope.json")], /study file .*nope.json: no such file/],
    [["ablate", "status", dir], /is not an ablation study \(no ablate.json\)/],
  ];
  for (const [args, want] of cases) {
    const r = run(...args, "--out", out);
    assert.notEqual(r.status, 0, args.join(" "));
    assert.match(r.stderr, want, args.join(" "));
    assert.ok(!fs.existsSync(out), `nothing written for ${args.join(" ")}`);
  }
});

test("--require reaches the cells: a study over a model the user's module registers", () => {
  const cwd = tempDir();
  fs.mkdirSync(path.join(cwd, "node_modules"));
  fs.symlinkSync(path.resolve(__dirname, "../../.."), path.join(cwd, "node_modules", "budgetnet"), "dir");
  fs.writeFileSync(
    path.join(cwd, "mod.js"),
    `const { nn, registerModel, defineOptions, readOptions } = require("budgetnet");
const OPTIONS = defineOptions("usernet", { width: { type: "int", min: 1, default: 4, help: "channels" } });
registerModel({
  name: "usernet", family: "usernet", description: "conv-relu-pool-linear", source: "test", defaults: {}, options: OPTIONS,
  create(options) {
    const o = readOptions(OPTIONS, options);
    return new nn.Sequential([
      new nn.Conv2d({ inChannels: o.inChannels, outChannels: o.width, kernelSize: 3, padding: 1 }),
      new nn.ReLU(), new nn.AdaptiveAvgPool2d(1), new nn.Flatten(),
      new nn.Linear({ inFeatures: o.width, outFeatures: o.numClasses }),
    ]);
  },
});
`,
  );
  const r = spawnSync(
    process.execPath,
    [
      BIN,
      "ablate",
      "--require",
      "mod.js",
      "--models",
      "usernet",
      "--techniques",
      "label-smoothing:eps=0.2",
      "--combine",
      "single",
      "--seeds",
      "1",
      "--recipe",
      "fashion-mnist-quick",
      "--out",
      "s",
      "--json",
      ...SMALL,
      "--precision",
      "fp32",
    ],
    { cwd, encoding: "utf8", env, timeout: 240_000 },
  );
  assert.equal(r.status, 0, r.stderr);
  assert.equal((JSON.parse(r.stdout) as { done: number }).done, 2);
});

test(
  "an ablation on the Redis queue: a budgetnet worker trains the cells, the journal has each once with test accuracy",
  { skip: redisSkip(), timeout: 300_000 },
  async () => {
    const redis = await startRedisServer();
    const dir = tempDir();
    const study = path.join(dir, "study");
    const worker = spawn(process.execPath, [BIN, "worker", "--queue", redis.url, "--dir", path.join(dir, "w")], {
      env,
      stdio: "ignore",
    });
    try {
      const r = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
        const c = spawn(
          process.execPath,
          [
            BIN,
            "ablate",
            "--models",
            "resnet29",
            "--techniques",
            "label-smoothing",
            "--combine",
            "single",
            "--seeds",
            "1",
            "--queue",
            redis.url,
            "--out",
            study,
            "--json",
            ...SMALL,
          ],
          { env, stdio: ["ignore", "pipe", "pipe"] },
        );
        let stdout = "";
        let stderr = "";
        c.stdout?.on("data", (d: Buffer) => {
          stdout += d.toString();
        });
        c.stderr?.on("data", (d: Buffer) => {
          stderr += d.toString();
        });
        c.once("exit", (code) => resolve({ code, stdout, stderr }));
      });
      assert.equal(r.code, 0, r.stderr);
      assert.equal((JSON.parse(r.stdout) as { done: number }).done, 2);
      const results = journal(study).filter((e) => e.event === "result");
      assert.deepEqual(results.map((e) => e.trial).sort(), [0, 1]);
      for (const e of results) assert.ok(typeof e.testAccuracy === "number");
      // the cells trained in the worker's folder, not the study's
      assert.ok(fs.existsSync(path.join(dir, "w")));
    } finally {
      worker.kill("SIGKILL");
      await redis.stop();
    }
  },
);
