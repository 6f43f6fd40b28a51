// The `budgetnet` command as users run it: a child process on bin/budgetnet.js.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as path from "node:path";
import { test } from "node:test";
import { parseArgs, UsageError } from "../../src/cli/args";
import { planAvailable } from "../../src/perf/plan";
import { checkNoLeaks } from "../helpers";

checkNoLeaks();

const BIN = path.resolve(__dirname, "../../../bin/budgetnet.js");

function run(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    encoding: "utf8",
    env: { ...process.env, BUDGETNET_THREADS: "1" },
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test("`budgetnet help` and no arguments list the commands; `help summary` shows its flags", () => {
  for (const args of [["help"], []]) {
    const r = run(...args);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /usage: budgetnet COMMAND/);
    assert.match(r.stdout, /^\s+models\s/m);
    assert.match(r.stdout, /^\s+summary\s/m);
  }
  const r = run("help", "summary");
  assert.equal(r.status, 0);
  assert.match(r.stdout, /usage: budgetnet summary \[MODEL\]/);
  assert.match(r.stdout, /--num-classes N/);
  assert.equal(run("summary", "--help").stdout, r.stdout);
});

test("`budgetnet models --json` lists every registered model with family and source", () => {
  const r = run("models", "--json");
  assert.equal(r.status, 0, r.stderr);
  const models = JSON.parse(r.stdout) as { name: string; family: string; source: string; large: boolean }[];
  const names = models.map((m) => m.name);
  for (const n of ["resnet18", "resnet164", "preact_resnet18", "efficient_resnet", "resnet20"])
    assert.ok(names.includes(n), n);
  assert.equal(models.find((m) => m.name === "preact_resnet1001")?.large, true);
  assert.ok(models.every((m) => m.family && m.source));
  const table = run("models", "--family", "resnet_imagenet");
  assert.equal(table.status, 0);
  assert.match(table.stdout, /^mini_resnet34\s+resnet_imagenet\s/m);
  assert.doesNotMatch(table.stdout, /resnet164/);
});

test("`budgetnet summary resnet20 --json` reports params and MACs", () => {
  const r = run("summary", "resnet20", "--json");
  assert.equal(r.status, 0, r.stderr);
  const s = JSON.parse(r.stdout) as { params: number; macs: number; layers: { name: string }[]; outputShape: number[] };
  assert.equal(s.params, 272_474);
  assert.ok(Math.abs(s.macs - 41.29e6) / 41.29e6 < 0.01, `macs ${s.macs}`);
  assert.equal(s.layers[0]?.name, "conv1");
  assert.deepEqual(s.outputShape, [10]);
});

test("summary flags: --num-classes=100, --in-channels 1 --image-size 28, and the text table", () => {
  const r = run("summary", "resnet20", "--num-classes=100", "--in-channels", "1", "--image-size", "28", "--json");
  assert.equal(r.status, 0, r.stderr);
  const s = JSON.parse(r.stdout) as { params: number; inputShape: number[]; outputShape: number[] };
  assert.equal(s.params, 272_474 - 650 + 6_500 - 2 * 16 * 9);
  assert.deepEqual(s.inputShape, [1, 28, 28]);
  assert.deepEqual(s.outputShape, [100]);
  // efficient_resnet's classifier depends on the image size, so --image-size reaches the model
  const e = run("summary", "efficient_resnet", "--image-size", "64", "--json");
  assert.equal(e.status, 0, e.stderr);
  assert.equal((JSON.parse(e.stdout) as { params: number }).params, 4_697_742 + 256 * 3 * 10);
  const text = run("summary", "resnet29");
  assert.equal(text.status, 0);
  assert.match(text.stdout, /^final_bn\s+BatchNorm2d\s+\[256, 8, 8\]/m);
  assert.match(text.stdout, /MACs per sample:/);
});

test("bad input exits 2 with a message that says what to do", () => {
  const flag = run("summary", "resnet20", "--jsn");
  assert.equal(flag.status, 2);
  assert.match(
    flag.stderr,
    /unknown flag --jsn for `summary` \(did you mean "--json"\?\)\. Known flags: --num-classes, --in-channels, --image-size, --json, --help/,
  );
  const model = run("summary", "resnet21");
  assert.equal(model.status, 2);
  assert.match(
    model.stderr,
    /unknown model "resnet21" \(did you mean "resnet20"\?\)\. List the registered models with `budgetnet models`/,
  );
  const cmd = run("trian");
  assert.equal(cmd.status, 2);
  assert.match(cmd.stderr, /unknown command "trian" \(did you mean "train"\?\)\. Commands: models, summary/);
  const missing = run("summary");
  assert.equal(missing.status, 2);
  assert.match(missing.stderr, /`summary` needs MODEL/);
  const notInt = run("summary", "resnet20", "--num-classes", "ten");
  assert.equal(notInt.status, 2);
  assert.match(notInt.stderr, /--num-classes must be an integer\. Received: --num-classes=ten/);
  const impossible = run("summary", "efficient_resnet", "--image-size", "16", "--model-options.pool-size", "8");
  assert.equal(impossible.status, 2);
  assert.match(
    impossible.stderr,
    /poolSize 8 does not fit efficient_resnet on 16x16 inputs: its last feature map is 4x4/,
  );
});

test("parseArgs: --flag value, --flag=value, switches, --, defaults", () => {
  const spec = {
    name: "x",
    positionals: [
      { name: "A", description: "" },
      { name: "B", description: "", optional: true },
    ],
    flags: {
      n: { type: "integer", description: "", default: 3 },
      name: { type: "string", description: "" },
      on: { type: "boolean", description: "" },
    },
  } as const;
  const s = { ...spec, positionals: [...spec.positionals], flags: { ...spec.flags } };
  assert.deepEqual(parseArgs(["a", "--n", "5", "--name=z=1", "--on"], s), {
    flags: { n: 5, name: "z=1", on: true },
    positionals: ["a"],
    extra: {},
    help: false,
  });
  assert.deepEqual(parseArgs(["--on=false", "a", "--", "--n"], s).positionals, ["a", "--n"]);
  assert.equal(parseArgs(["a"], s).flags.n, 3);
  assert.throws(() => parseArgs(["a", "--n"], s), UsageError);
  assert.throws(() => parseArgs(["a", "--on=yes"], s), /--on is a switch/);
  assert.throws(() => parseArgs(["a", "b", "c"], s), /takes at most 2 arguments/);
  assert.throws(() => parseArgs(["a", "-x"], s), /unknown flag -x/);
});

test("`budgetnet bench` measures through the fused plan by default and through libtorch on request", () => {
  const plan = run("bench", "resnet20", "--iters", "1", "--json");
  assert.equal(plan.status, 0, plan.stderr);
  const p = JSON.parse(plan.stdout) as Record<string, unknown>;
  assert.equal(p.engine, planAvailable() ? "plan" : "libtorch");
  assert.ok((p.latencyMsBatch1 as number) > 0 && (p.imagesPerSecBatch256 as number) > 0);
  if (p.engine === "plan") {
    // precision "auto": both plans were built and timed at each batch size, the faster kept
    const plans = p.plans as Record<string, { precision: string; timings: { fp32: number; bf16: number } }>;
    for (const k of ["latency", "throughput"]) {
      const t = plans[k]?.timings;
      assert.ok(t !== undefined && t.fp32 > 0 && t.bf16 > 0, k);
      assert.equal(plans[k]?.precision, (t?.bf16 as number) < (t?.fp32 as number) ? "bf16" : "fp32");
    }
  }
  const lib = run("bench", "resnet20", "--iters", "1", "--json", "--engine", "libtorch", "--precision", "fp32");
  assert.equal(lib.status, 0, lib.stderr);
  const l = JSON.parse(lib.stdout) as Record<string, unknown>;
  assert.equal(l.engine, "libtorch");
  assert.equal(l.precision, "fp32");
  assert.equal(l.foldedBatchNorms, 21);
  // precision "auto" on libtorch: the measured best (bf16) only where the CPU computes bf16 natively
  for (const [native, expected] of [
    ["0", "fp32"],
    ["1", "bf16"],
  ] as const) {
    const r = spawnSync(
      process.execPath,
      [BIN, "bench", "resnet20", "--iters", "1", "--json", "--engine", "libtorch"],
      {
        encoding: "utf8",
        env: { ...process.env, BUDGETNET_THREADS: "1", BUDGETNET_NATIVE_BF16: native },
      },
    );
    assert.equal(r.status, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).precision, expected, `BUDGETNET_NATIVE_BF16=${native}`);
  }
  // Fashion-MNIST's shape: one channel, and efficient_resnet's pool sized to the 28x28 map
  const gray = run("bench", "efficient_resnet", "--image-size", "28", "--channels", "1", "--iters", "1", "--json");
  assert.equal(gray.status, 0, gray.stderr);
  assert.deepEqual([JSON.parse(gray.stdout).channels, JSON.parse(gray.stdout).imageSize], [1, 28]);
  const bad = run("bench", "resnet20", "--engine", "gpu");
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /--engine must be auto, plan or libtorch/);
});
