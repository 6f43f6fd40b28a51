// Data-parallel training over c10d Gloo: the sampler's shards, 2 ranks x batch 64 against
// 1 process x batch 128 (a model without BatchNorm, and one with SyncBatchNorm: the same
// weights), a killed rank failing the job cleanly, and a resumed 2-rank run equal to an
// uninterrupted one.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import { DataLoader } from "../../src/data/loader";
import { loadSafetensors } from "../../src/export/safetensors";
import { distributedAvailable } from "../../src/tensor/process_group";
import { freePort } from "../../src/train/ddp";
import { tempDir } from "../helpers";

const ROOT = path.resolve(__dirname, "../../..");
const BIN = path.join(ROOT, "bin", "budgetnet.js");

// a model without BatchNorm, so per-rank statistics cannot make 2 x 64 differ from 1 x 128
const MODULE = `const { nn, registerModel, defineOptions, readOptions } = require("budgetnet");
const OPTIONS = defineOptions("nobn", { width: { type: "int", min: 1, default: 8, help: "channels" } });
registerModel({
  name: "nobn", family: "nobn", description: "conv-relu-pool-linear, no BatchNorm", source: "test/train/ddp.test.ts",
  defaults: {}, options: OPTIONS,
  create(options) {
    const o = readOptions(OPTIONS, options);
    return new nn.Sequential([
      new nn.Conv2d({ inChannels: o.inChannels, outChannels: o.width, kernelSize: 3, padding: 1 }),
      new nn.ReLU(),
      new nn.AdaptiveAvgPool2d(2),
      new nn.Flatten(),
      new nn.Linear({ inFeatures: o.width * 4, outFeatures: o.numClasses }),
    ]);
  },
});
registerModel({
  name: "withbn", family: "withbn", description: "conv-BN-relu-pool-linear", source: "test/train/ddp.test.ts",
  defaults: {}, options: OPTIONS,
  create(options) {
    const o = readOptions(OPTIONS, options);
    return new nn.Sequential([
      new nn.Conv2d({ inChannels: o.inChannels, outChannels: o.width, kernelSize: 3, padding: 1, bias: false }),
      new nn.BatchNorm2d({ numFeatures: o.width }),
      new nn.ReLU(),
      new nn.AdaptiveAvgPool2d(2),
      new nn.Flatten(),
      new nn.Linear({ inFeatures: o.width * 4, outFeatures: o.numClasses }),
    ]);
  },
});
`;

// SGD with momentum and weight decay, a step schedule, no augmentation, float32 channels-last, 5 steps of 128 an epoch
const COMMON = [
  "--require",
  "mod.js",
  "--model",
  "nobn",
  "--train-subset",
  "640",
  "--val-subset",
  "128",
  "--epochs",
  "2",
  "--precision",
  "fp32",
  // channels-last weights: collectives go through contiguous copies
  "--channels-last",
  "true",
  "--augment.crop",
  "null",
  "--augment.flip",
  "false",
  "--label-smoothing",
  "0",
  "--schedule.type",
  "multistep",
  "--schedule.milestones",
  "[1]",
  "--optimizer.lr",
  "0.05",
  "--json",
];

function project(): string {
  const cwd = tempDir();
  fs.mkdirSync(path.join(cwd, "node_modules"));
  fs.symlinkSync(ROOT, path.join(cwd, "node_modules", "budgetnet"), "dir");
  fs.writeFileSync(path.join(cwd, "mod.js"), MODULE);
  return cwd;
}

function cli(args: string[], cwd: string): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    cwd,
    encoding: "utf8",
    env: { ...process.env, BUDGETNET_PLAIN: "1", BUDGETNET_THREADS: "1" },
    timeout: 240_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function weights(file: string): Map<string, Float32Array> {
  const sd = loadSafetensors(file);
  const out = new Map<string, Float32Array>();
  for (const [k, t] of sd.tensors) {
    out.set(k, t.toFloat32Array());
    t.dispose();
  }
  return out;
}

function maxDiff(a: Map<string, Float32Array>, b: Map<string, Float32Array>): number {
  assert.ok(a.size > 0, "the weights file holds tensors");
  assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort());
  let m = 0;
  for (const [k, x] of a) {
    const y = b.get(k) as Float32Array;
    for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs((x[i] as number) - (y[i] as number)));
  }
  return m;
}

const skip = distributedAvailable() ? false : "this build has no Gloo (apt install libgloo-dev, rebuild)";

test("the distributed sampler: shards are disjoint, cover the data, pad by wrapping, and reshuffle per epoch", () => {
  const n = 10;
  const ds = {
    images: new Uint8Array(n * 4),
    labels: Int32Array.from({ length: n }, (_, i) => i % 2),
    n,
    channels: 1,
    height: 2,
    width: 2,
    numClasses: 2,
    classNames: ["a", "b"],
  };
  const make = (rank: number, world: number) =>
    new DataLoader(ds as never, {
      batchSize: 2,
      shuffle: true,
      seed: 3,
      mean: [0],
      std: [1],
      numClasses: 2,
      shard: { rank, world },
    });
  const full = make(0, 1).order(0);
  for (const world of [2, 3, 4]) {
    const shards = Array.from({ length: world }, (_, r) => Array.from(make(r, world).order(0)));
    const per = Math.ceil(n / world);
    for (const s of shards) assert.equal(s.length, per);
    const all = shards.flat();
    assert.deepEqual(
      [...new Set(all)].sort((a, b) => a - b),
      Array.from(full).sort((a, b) => a - b),
      `world ${world} covers the data`,
    );
    assert.equal(all.length - new Set(all).size, per * world - n, `world ${world}: only the padding repeats`);
    // rank r takes every world-th index of the shared permutation from r
    for (const [r, s] of shards.entries()) {
      const want = Array.from({ length: per }, (_, j) => full[(r + j * world) % n]);
      assert.deepEqual(s, want);
    }
  }
  assert.notDeepEqual(Array.from(make(0, 2).order(0)), Array.from(make(0, 2).order(1)), "a new order each epoch");
  assert.throws(() => make(2, 2), /shard must be \{rank, world\}/);
});

test("2 ranks x batch 64 end with the weights of 1 process x batch 128 (SGD, momentum, weight decay)", { skip }, () => {
  const cwd = project();
  const single = cli(["train", ...COMMON, "--batch-size", "128", "--out", "single"], cwd);
  assert.equal(single.status, 0, single.stderr);
  const ddp = cli(["train", ...COMMON, "--batch-size", "64", "--nproc", "2", "--out", "ddp"], cwd);
  assert.equal(ddp.status, 0, ddp.stderr);
  assert.equal((JSON.parse(ddp.stdout) as { steps: number }).steps, 10, "5 steps an epoch on each rank");
  const d = maxDiff(
    weights(path.join(cwd, "single", "model.safetensors")),
    weights(path.join(cwd, "ddp", "model.safetensors")),
  );
  assert.ok(d < 1e-5, `max weight difference ${d}`);
  const config = JSON.parse(fs.readFileSync(path.join(cwd, "ddp", "config.json"), "utf8")) as {
    distributed: { worldSize: number; globalBatch: number };
  };
  assert.deepEqual([config.distributed.worldSize, config.distributed.globalBatch], [2, 128]);
  // only rank 0 wrote the run folder
  assert.deepEqual(
    fs.readdirSync(path.join(cwd, "ddp")).filter((f) => f.includes("rank")),
    [],
  );
  // resuming with another world size is refused
  const other = cli(["train", ...COMMON, "--batch-size", "64", "--out", "ddp", "--resume"], cwd);
  assert.notEqual(other.status, 0);
  assert.match(other.stderr, /was trained on 2 ranks; resume it with the same number \(--nproc 2\)/);
});

test(
  "SyncBatchNorm: 2 ranks x batch 64 end with the weights and running statistics of 1 process x batch 128",
  { skip },
  () => {
    const cwd = project();
    const bn = COMMON.map((a) => (a === "nobn" ? "withbn" : a));
    const single = cli(["train", ...bn, "--batch-size", "128", "--out", "single"], cwd);
    assert.equal(single.status, 0, single.stderr);
    const synced = cli(
      [
        "train",
        ...bn,
        "--batch-size",
        "64",
        "--nproc",
        "2",
        "--sync-batch-norm",
        "true",
        "--bucket-mb",
        "0.001",
        "--out",
        "sync",
      ],
      cwd,
    );
    assert.equal(synced.status, 0, synced.stderr);
    const perRank = cli(["train", ...bn, "--batch-size", "64", "--nproc", "2", "--out", "local"], cwd);
    assert.equal(perRank.status, 0, perRank.stderr);
    const one = weights(path.join(cwd, "single", "model.safetensors"));
    assert.ok(
      [...one.keys()].some((k) => k.endsWith("running_var")),
      `the BatchNorm statistics are in the file: ${[...one.keys()]}`,
    );
    const d = maxDiff(one, weights(path.join(cwd, "sync", "model.safetensors")));
    assert.ok(d < 1e-5, `max difference with SyncBatchNorm ${d}`);
    // the same job with per-rank statistics is measurably different: the test can tell them apart
    const local = maxDiff(one, weights(path.join(cwd, "local", "model.safetensors")));
    assert.ok(local > 1e-4, `per-rank BatchNorm differs by ${local}`);
    const config = JSON.parse(fs.readFileSync(path.join(cwd, "sync", "config.json"), "utf8")) as {
      recipe: { syncBatchNorm: boolean; bucketMb: number };
    };
    assert.deepEqual([config.recipe.syncBatchNorm, config.recipe.bucketMb], [true, 0.001]);
  },
);

test(
  "ranks agree to stop and on the signal that asked; ranks out of step are an error naming it, on every rank",
  { skip },
  async () => {
    const port = await freePort();
    const script = `
const { ProcessGroup } = require(${JSON.stringify(path.join(ROOT, "dist", "src", "tensor", "process_group"))});
const { agreeToStop } = require(${JSON.stringify(path.join(ROOT, "dist", "src", "train", "ddp"))});
const rank = Number(process.argv[1]);
const group = new ProcessGroup({ rank, worldSize: 2, masterAddr: "127.0.0.1", masterPort: ${port}, timeoutMs: 20000 });
const dp = { group, rank, worldSize: 2 };
console.log("agree", agreeToStop(dp, false, 7).stop);
// rank 1 asks to stop because of a SIGTERM that rank 0's handler has not seen: both stop, both name it
console.log("agreed", JSON.stringify(agreeToStop(dp, rank === 1, 8, rank === 1 ? "SIGTERM" : undefined)));
try { agreeToStop(dp, false, rank === 0 ? 9 : 10); } catch (e) { console.log("error", e.message); }
group.destroy();`;
    const runRank = (rank: number) =>
      new Promise<string>((resolve) => {
        const child = spawn(process.execPath, ["-e", script, String(rank)], { stdio: ["ignore", "pipe", "inherit"] });
        let out = "";
        child.stdout.on("data", (b: Buffer) => {
          out += b.toString();
        });
        child.on("exit", () => resolve(out));
      });
    const [r0, r1] = await Promise.all([runRank(0), runRank(1)]);
    for (const [rank, out] of [r0, r1].entries()) {
      assert.match(out, /agree false/, `rank ${rank}: ${out}`);
      assert.match(out, /agreed \{"stop":true,"signal":"SIGTERM"\}/, `rank ${rank}: ${out}`);
      assert.match(
        out,
        new RegExp(`error rank ${rank} of 2 is at step ${9 + rank}, but the ranks' steps sum to 19.*out of step`),
        out,
      );
    }
  },
);

test("a rank killed with SIGKILL fails the job with a clear error, never a hang", { skip }, async () => {
  const cwd = project();
  const args = [
    BIN,
    "train",
    ...COMMON,
    "--train-subset",
    "8192",
    "--epochs",
    "50",
    "--batch-size",
    "64",
    "--nproc",
    "2",
    "--out",
    "long",
  ];
  const launcher = spawn(process.execPath, args, {
    cwd,
    env: { ...process.env, BUDGETNET_PLAIN: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  launcher.stderr.on("data", (b: Buffer) => {
    stderr += b.toString();
  });
  // wait until the ranks train (rank 0's progress), then kill rank 1
  const until = Date.now() + 120_000;
  while (!/step \d+/.test(stderr) && Date.now() < until) await new Promise((r) => setTimeout(r, 200));
  assert.match(stderr, /step \d+/, "the job started");
  const ranks = spawnSync("pgrep", ["-f", `${BIN} train`], { encoding: "utf8" })
    .stdout.split("\n")
    .filter((l) => l.trim() !== "")
    .map(Number)
    .filter((pid) => pid !== launcher.pid);
  const rank1 = ranks.find(
    (pid) =>
      fs.readlinkSync(`/proc/${pid}/cwd`) === fs.realpathSync(cwd) &&
      fs.readFileSync(`/proc/${pid}/environ`, "utf8").includes("\0RANK=1\0"),
  );
  assert.ok(rank1 !== undefined, "rank 1 found");
  process.kill(rank1, "SIGKILL");
  const code = await new Promise<number | null>((resolve) => {
    const t = setTimeout(() => {
      launcher.kill("SIGKILL");
      resolve(null);
    }, 60_000);
    launcher.once("exit", (c) => {
      clearTimeout(t);
      resolve(c);
    });
  });
  assert.notEqual(code, null, `the job hung after rank 1 was killed; stderr: ${stderr.slice(-500)}`);
  assert.notEqual(code, 0);
  assert.match(stderr, /rank 1 exited with status 137/);
});

test("a 2-rank run stopped by Ctrl-C and resumed ends with the weights of an uninterrupted one", { skip }, async () => {
  const cwd = project();
  const args = ["train", ...COMMON, "--train-subset", "2560", "--epochs", "2", "--batch-size", "64", "--nproc", "2"];
  const whole = cli([...args, "--out", "whole"], cwd);
  assert.equal(whole.status, 0, whole.stderr);
  const launcher = spawn(process.execPath, [BIN, ...args, "--out", "cut"], {
    cwd,
    env: { ...process.env, BUDGETNET_PLAIN: "1", BUDGETNET_THREADS: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stderr = "";
  launcher.stderr.on("data", (b: Buffer) => {
    stderr += b.toString();
  });
  const until = Date.now() + 120_000;
  while (!/step \d+\/20/.test(stderr) && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
  launcher.kill("SIGINT");
  const code = await new Promise<number | null>((resolve) => launcher.once("exit", (c) => resolve(c)));
  assert.equal(code, 130, stderr.slice(-800));
  assert.match(stderr, /stopped by SIGINT at epoch \d, step \d+; checkpoint saved/);
  const resumed = cli([...args, "--out", "cut", "--resume"], cwd);
  assert.equal(resumed.status, 0, resumed.stderr);
  assert.equal((JSON.parse(resumed.stdout) as { steps: number }).steps, 40);
  const d = maxDiff(
    weights(path.join(cwd, "whole", "model.safetensors")),
    weights(path.join(cwd, "cut", "model.safetensors")),
  );
  assert.equal(d, 0, `max weight difference ${d}`);
});
