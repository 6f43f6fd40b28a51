// The training progress bar: fitted to the terminal's width, redrawn in place, ETAs labelled;
// checked on a fake stream and under a real pseudo-terminal (util-linux `script`) at 50 and 200 columns.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import { Progress, type ProgressState, progressLine } from "../../src/train/metrics";
import { tempDir } from "../helpers";

const STATE: ProgressState = {
  epoch: 2,
  epochs: 30,
  step: 117,
  steps: 468,
  loss: 0.41234,
  accuracy: 0.8567,
  imagesPerSec: 1234.4,
  etaSec: 27 * 60 + 5, // (28 epochs * 468 - 117) steps left in the run
};

const CLEAR_TO_END = "\x1b[K";

/** What a terminal shows of a written chunk: the text between carriage returns, escapes removed. */
function visibleSegments(out: string): string[] {
  return out
    .replaceAll(CLEAR_TO_END, "")
    .split(/\r\n|\r|\n/)
    .filter((s) => s !== "");
}

test("progressLine never reaches the last column, and labels the ETA it shows", () => {
  for (const columns of [200, 120, 80, 60, 50, 40, 30, 20, 10]) {
    const line = progressLine(STATE, columns);
    assert.ok(line.length <= columns - 1, `${columns} columns: ${line.length} chars: ${line}`);
    if (columns >= 40) assert.match(line, /^epoch 3\/30 .*run ETA 27:05/, `${columns} columns: ${line}`);
    else assert.equal(line, "epoch 3/30 117/468".slice(0, columns - 1), "narrower: epoch and step, cut at the edge");
    assert.doesNotMatch(line, /(?<!epoch |run )ETA/, `an unlabelled ETA at ${columns} columns: ${line}`);
  }
  const wide = progressLine(STATE, 200);
  // the bar is this epoch's: 117 of 468 steps over the widest bar (40) is 10 cells filled
  assert.equal(
    wide,
    `epoch 3/30 [${"#".repeat(10)}${".".repeat(30)}] 117/468 loss 0.4123 acc 85.67% 1234 img/s epoch ETA 0:44 run ETA 27:05`,
  );
  const narrow = progressLine(STATE, 50);
  assert.match(narrow, /^epoch 3\/30 \[#+\.+\] 117\/468 run ETA 27:05$/);
  // an epoch's ETA is its share of the run's remaining steps: (468-117) / (28*468-117) of 27:05
  assert.match(progressLine(STATE, 80), /epoch ETA 0:44 run ETA 27:05$/);
  assert.match(progressLine({ ...STATE, epochEtaSec: 61 }, 200), /epoch ETA 1:01 run ETA 27:05$/);
  assert.match(progressLine({ ...STATE, etaSec: 2 * 3600 + 5 * 60 + 9 }, 200), /run ETA 2:05:09$/);
});

test("on a terminal stream Progress redraws one line in place at the stream's current width", () => {
  let written = "";
  const stream = {
    isTTY: true,
    columns: 50,
    write(chunk: string) {
      written += chunk;
      return true;
    },
  } as unknown as NodeJS.WriteStream;
  const saved = process.env.BUDGETNET_PLAIN;
  delete process.env.BUDGETNET_PLAIN;
  let p: Progress;
  try {
    p = new Progress(stream, 50);
  } finally {
    if (saved !== undefined) process.env.BUDGETNET_PLAIN = saved;
  }
  p.update(STATE);
  assert.ok(written.startsWith("\r") && written.endsWith("\x1b[K"), JSON.stringify(written));
  assert.ok(!written.includes("\n"), "a redraw adds no line");
  assert.ok(visibleSegments(written)[0]!.length <= 49);
  written = "";
  (stream as { columns: number }).columns = 200; // the terminal was resized
  p.update({ ...STATE, step: 118 });
  assert.equal(visibleSegments(written)[0], progressLine({ ...STATE, step: 118 }, 200));
  written = "";
  p.line("epoch 3/30: train loss 0.4100");
  assert.equal(written, "\repoch 3/30: train loss 0.4100\x1b[K\n");
});

test("off a terminal Progress writes plain lines every plainEvery steps with both ETAs labelled", () => {
  const lines: string[] = [];
  const stream = { isTTY: false, write: (s: string) => lines.push(s) > 0 } as unknown as NodeJS.WriteStream;
  const p = new Progress(stream, 100);
  for (const step of [1, 2, 99, 100, 101, 468]) p.update({ ...STATE, step });
  assert.deepEqual(
    lines.map((l) => l.split(" ").slice(2, 4).join(" ")),
    ["step 1/468", "step 100/468", "step 468/468"],
  );
  assert.match(lines[0] as string, /1234 img\/s, epoch ETA \d+:\d\d, run ETA 27:05\n$/);
  assert.ok(lines.every((l) => !l.includes("\r") && !l.includes("\x1b")));
});

// A real pseudo-terminal: `script` runs the child on a pty whose width `stty cols` sets; what the
// child writes comes back through the pty (with its \n turned into \r\n).
const haveScript = spawnSync("script", ["--version"], { stdio: "ignore" }).status === 0;

function runOnPty(columns: number): string {
  const dir = tempDir();
  const child = path.join(dir, "bar.js");
  const metrics = path.resolve(__dirname, "../../src/train/metrics.js");
  fs.writeFileSync(
    child,
    [
      `const { Progress } = require(${JSON.stringify(metrics)});`,
      "const p = new Progress(process.stderr, 50);",
      'p.line("tty " + process.stderr.isTTY + " columns " + process.stderr.columns);',
      `const state = ${JSON.stringify(STATE)};`,
      "for (const step of [1, 117, 300, 468]) p.update({ ...state, step });",
      'p.line("epoch 3/30: done");',
    ].join("\n"),
  );
  const env = { ...process.env };
  delete env.BUDGETNET_PLAIN;
  const r = spawnSync(
    "script",
    [
      "-q",
      "-e",
      "-c",
      `stty cols ${columns} rows 24; ${JSON.stringify(process.execPath)} ${JSON.stringify(child)}`,
      "/dev/null",
    ],
    { encoding: "utf8", env, timeout: 30_000 },
  );
  assert.equal(r.status, 0, `script failed: ${r.stderr}${r.stdout}`);
  return r.stdout;
}

for (const columns of [50, 200]) {
  test(
    `under a pseudo-terminal of ${columns} columns the bar fits, redraws in place and labels its ETA`,
    { skip: haveScript ? false : "util-linux `script` is not installed" },
    () => {
      const out = runOnPty(columns);
      assert.match(
        out,
        new RegExp(`tty true columns ${columns}\\x1b\\[K\\r\\n`),
        "the child saw a terminal of that width",
      );
      const bars = out.split(/\r\n|\r/).filter((s) => s.startsWith("epoch 3/30 ["));
      assert.equal(bars.length, 4, JSON.stringify(out));
      for (const bar of bars) {
        assert.ok(bar.endsWith("\x1b[K"), `each redraw clears to the end of the line: ${JSON.stringify(bar)}`);
        const visible = bar.slice(0, -3);
        assert.ok(visible.length <= columns - 1, `${visible.length} chars on ${columns} columns: ${visible}`);
        assert.match(visible, /run ETA \d+:\d\d/);
        if (columns === 200) assert.match(visible, /loss 0\.4123 acc 85\.67% 1234 img\/s epoch ETA \d+:\d\d run ETA/);
      }
      // redraws replace one another: no newline between them, the epoch line ends the bar's line
      const shown = out.replaceAll(CLEAR_TO_END, "<EL>");
      assert.match(shown, /\repoch 3\/30 \[[#.]+\] 468\/468 [^\n]*<EL>\repoch 3\/30: done<EL>\r\n/);
    },
  );
}
