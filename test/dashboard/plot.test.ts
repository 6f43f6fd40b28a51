// `budgetnet plot`: the figures parse as SVG and PNG of the asked size, and every plotted point is
// a value of the run's metrics.jsonl, drawn where the panel's axis mapping puts it.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import { parseArgs, UsageError } from "../../src/cli/args";
import { plotCommand } from "../../src/cli/plot";
import { tempDir } from "../helpers";
import { writeFakeRun } from "./fixtures";

/** Runs the command in this process (its one line of output goes to the test's log). */
async function plot(args: string[]): Promise<number> {
  return await plotCommand.run(parseArgs(args, plotCommand));
}

function pngSize(file: string): { width: number; height: number } {
  const b = fs.readFileSync(file);
  assert.deepEqual([...b.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], `${file} is not a PNG`);
  assert.equal(b.toString("latin1", 12, 16), "IHDR");
  return { width: b.readUInt32BE(16), height: b.readUInt32BE(20) };
}

function journal(dir: string): Record<string, number | string>[] {
  return fs
    .readFileSync(path.join(dir, "metrics.jsonl"), "utf8")
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l) as Record<string, number | string>);
}

const attr = (el: string, name: string): string => new RegExp(`\\s${name}="([^"]*)"`).exec(el)?.[1] ?? "";

/** Each series polyline of a panel: its values and pixel points, with the panel's mapping. */
function panels(svg: string) {
  return [...svg.matchAll(/<g class="panel"[^>]*>[\s\S]*?<\/g>/g)].map(([g]) => {
    const head = g.slice(0, g.indexOf(">") + 1);
    const [xo, xs] = attr(head, "data-x-map").split(" ").map(Number) as [number, number];
    const [yo, ys] = attr(head, "data-y-map").split(" ").map(Number) as [number, number];
    const series = [...g.matchAll(/<polyline class="series"[^>]*\/>/g)].map(([p]) => ({
      run: attr(p, "data-run"),
      values: attr(p, "data-points")
        .split(" ")
        .map((xy) => xy.split(",").map(Number) as [number, number]),
      pixels: attr(p, "points")
        .split(" ")
        .map((xy) => xy.split(",").map(Number) as [number, number]),
    }));
    return { metric: attr(head, "data-metric"), map: { xo, xs, yo, ys }, series };
  });
}

test("plot writes learning curves as SVG whose points are metrics.jsonl's values, placed by the axes", async () => {
  const dir = tempDir("budgetnet-plot-");
  const [a, b] = [path.join(dir, "a"), path.join(dir, "b")];
  writeFakeRun(a, { seed: 1, finished: true, logPerEpoch: 100 });
  writeFakeRun(b, { seed: 2, epochsDone: 2, logPerEpoch: 20 });
  const out = path.join(dir, "fig", "curves.svg");
  assert.equal(await plot(["--run", a, "--run", b, "--metric", "loss,val.accuracy", "--out", out]), 0);
  const svg = fs.readFileSync(out, "utf8");
  assert.match(
    svg,
    /^<\?xml version="1.0" encoding="UTF-8"\?>\n<svg xmlns="http:\/\/www.w3.org\/2000\/svg" width="960" height="420"/,
  );
  assert.match(svg, /<\/svg>\n$/);
  const ps = panels(svg);
  assert.deepEqual(
    ps.map((p) => p.metric),
    ["loss", "val.accuracy"],
  );
  for (const p of ps) {
    assert.deepEqual(
      p.series.map((s) => s.run),
      [a, b],
    );
    for (const s of p.series) {
      const lines = journal(s.run).filter((r) => r.type === (p.metric === "loss" ? "step" : "epoch"));
      const expected = lines.map((r) =>
        p.metric === "loss" ? [r.step, r.loss] : [(r.epoch as number) + 1, r.valAccuracy].map(Number),
      );
      const xKey = p.metric === "loss" ? "step" : "epoch";
      assert.ok(expected.length > 0, `${s.run} has ${xKey} lines`);
      // few enough points to keep them all: exactly the journal's, in order
      assert.deepEqual(
        s.values.map(([x]) => x),
        expected.map(([x]) => (p.metric === "loss" ? x : (x as number) * 100)),
      );
      s.values.forEach(([x, y], k) => {
        const [px, py] = s.pixels[k] as [number, number];
        assert.ok(Math.abs(px - (p.map.xo + x * p.map.xs)) < 0.01, `x pixel of point ${k}`);
        assert.ok(Math.abs(py - (p.map.yo + y * p.map.ys)) < 0.01, `y pixel of point ${k}`);
        assert.equal(y, expected[k]?.[1], `value of point ${k} is the journal's`);
      });
    }
  }
});

test("a long journal is downsampled to journal points only, first and last kept, as a PNG of the asked size", async () => {
  const dir = tempDir("budgetnet-plot-");
  const run = path.join(dir, "long");
  writeFakeRun(run, { epochs: 50, stepsPerEpoch: 200, logPerEpoch: 200 }); // 10,000 step lines
  const svgFile = path.join(dir, "long.svg");
  assert.equal(await plot(["--run", run, "--metric", "loss", "--x", "epoch", "--width", "600", "--out", svgFile]), 0);
  const [p] = panels(fs.readFileSync(svgFile, "utf8"));
  const values = p?.series[0]?.values ?? [];
  const steps = journal(run).filter((r) => r.type === "step");
  assert.ok(values.length < 2000 && values.length > 100, `${values.length} points drawn of ${steps.length}`);
  const byEpoch = new Map(steps.map((r) => [(r.step as number) / 200, r.loss as number]));
  for (const [x, y] of values) assert.equal(byEpoch.get(x), y, `(${x}, ${y}) is a journal point`);
  assert.equal(values[0]?.[0], (steps[0]?.step as number) / 200);
  assert.equal(values[values.length - 1]?.[0], (steps[steps.length - 1]?.step as number) / 200);
  const png = path.join(dir, "long.png");
  assert.equal(
    await plot(["--run", run, "--metric", "loss,lr", "--log", "--width", "640", "--height", "300", "--out", png]),
    0,
  );
  assert.deepEqual(pngSize(png), { width: 640, height: 300 });
});

test("the confusion matrix from a saved `budgetnet eval --json`, as SVG and PNG", async () => {
  const dir = tempDir("budgetnet-plot-");
  const evalFile = path.join(dir, "eval.json");
  const confusion = [
    [50, 3, 1],
    [4, 40, 6],
    [0, 2, 48],
  ];
  const perClass = ["cat", "dog", "bird"].map((name, i) => ({
    name,
    n: 54,
    accuracy: (confusion[i]?.[i] as number) / 54,
  }));
  fs.writeFileSync(evalFile, JSON.stringify({ split: "test", n: 154, accuracy: 138 / 154, confusion, perClass }));
  const svgFile = path.join(dir, "cm.svg");
  assert.equal(await plot(["--eval", evalFile, "--out", svgFile]), 0);
  const svg = fs.readFileSync(svgFile, "utf8");
  const size = /<svg[^>]* width="(\d+)" height="(\d+)"/.exec(svg);
  assert.ok(size, "an svg element with its size");
  for (const row of confusion) for (const v of row) assert.match(svg, new RegExp(`>${v}</text>`));
  assert.match(svg, /89\.61% on 154 images/);
  const pngFile = path.join(dir, "cm.png");
  assert.equal(await plot(["--eval", evalFile, "--out", pngFile]), 0);
  assert.deepEqual(pngSize(pngFile), { width: Number(size[1]), height: Number(size[2]) });
});

test("plot names what is wrong: no --out, a bad extension, an unknown metric, a folder without a journal", async () => {
  const dir = tempDir("budgetnet-plot-");
  writeFakeRun(path.join(dir, "a"));
  const run = path.join(dir, "a");
  await assert.rejects(plot(["--run", run]), (e: Error) => e instanceof UsageError && /--out/.test(e.message));
  await assert.rejects(plot(["--run", run, "--out", "x.jpg"]), /must end in \.svg or \.png/);
  await assert.rejects(
    plot(["--run", run, "--metric", "val.acc", "--out", "x.svg"]),
    /unknown metric val\.acc\. Known: .*val\.accuracy/,
  );
  await assert.rejects(plot(["--run", dir, "--out", "x.svg"]), /has no metrics\.jsonl/);
  await assert.rejects(plot(["--run", run, "--run", run, "--confusion", "--out", "x.svg"]), /exactly one --run/);
});
