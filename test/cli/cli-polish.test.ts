// The command line speaks CLI: --version, "did you mean", missing files and data said as such,
// offline downloads said as such, no empty run folder after a failed start, and --require FILE
// for a model the user registers in their own module.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import { removeFailedStart, runFolderBefore } from "../../src/cli/train";
import { buildInfo } from "../../src/tensor/tensor";
import { lockRunFolder } from "../../src/train/run_lock";
import { tempDir } from "../helpers";

const ROOT = path.resolve(__dirname, "../../..");
const BIN = path.join(ROOT, "bin", "budgetnet.js");
const VERSION = (JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")) as { version: string }).version;
const TINY = ["--epochs", "1", "--train-subset", "256", "--val-subset", "128", "--batch-size", "32"];

function cli(
  args: string[],
  opts: { cwd?: string; env?: Record<string, string> } = {},
): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    encoding: "utf8",
    cwd: opts.cwd ?? tempDir(),
    env: { ...process.env, BUDGETNET_THREADS: "1", BUDGETNET_PLAIN: "1", ...opts.env },
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test("--version and -V print budgetnet's and libtorch's versions", () => {
  for (const flag of ["--version", "-V"]) {
    const r = cli([flag]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(
      r.stdout,
      `budgetnet ${VERSION} (libtorch ${buildInfo().torchVersion}${buildInfo().cuda ? ", CUDA" : ""}, Node ${process.version})\n`,
    );
  }
  const help = cli(["help"]);
  assert.match(help.stdout, /global flags:\n {2}--require FILE .*registerModel.*\n {2}--version, -V /);
});

test("misspelled models, commands, flags, data sets and recipes get a suggestion, not a list of everything", () => {
  // `summary` checks the name as a recipe's model field, createModel as the library does: both suggest
  const model = cli(["summary", "resnet2O"]);
  assert.equal(model.status, 2);
  assert.match(model.stderr, /^budgetnet summary: .*"resnet2O".*\(did you mean "resnet20"\?\)/);
  assert.match(model.stderr, /`budgetnet models`/);
  assert.doesNotMatch(model.stderr, /resnet164/, "not every registered name");
  const trained = cli(["train", "--model", "resnet2O"]);
  assert.equal(trained.status, 2);
  assert.match(trained.stderr, /"resnet2O".*\(did you mean "resnet20"\?\)/);
  assert.doesNotMatch(trained.stderr, /resnet164/);
  const command = cli(["trainn"]);
  assert.equal(command.status, 2);
  assert.match(command.stderr, /^budgetnet: unknown command "trainn" \(did you mean "train"\?\)\. Commands: models, /);
  const flag = cli(["models", "--jsno"]);
  assert.equal(flag.status, 2);
  assert.match(flag.stderr, /^budgetnet: unknown flag --jsno for `models` \(did you mean "--json"\?\)\. Known flags: /);
  const data = cli(["data", "download", "cifar-10"]);
  assert.equal(data.status, 2);
  assert.match(data.stderr, /^budgetnet: unknown data set "cifar-10" \(did you mean "cifar10"\?\)\. Known: cifar10, /);
  const recipe = cli(["train", "--recipe", "fashion-mnist-quik"]);
  assert.equal(recipe.status, 2);
  assert.match(
    recipe.stderr,
    /^budgetnet train: unknown recipe "fashion-mnist-quik" \(did you mean "fashion-mnist-quick"\?\)\. Built-in recipes: .*fashion-mnist-quick.*; or give the path of a \.json file\.\n$/,
  );
  const far = cli(["summary", "transformer"]);
  assert.equal(far.status, 2);
  assert.match(far.stderr, /"transformer"/);
  assert.doesNotMatch(far.stderr, /did you mean|resnet164/);
});

test("a missing recipe file, a folder data set without --data-root and missing data are said in CLI words", () => {
  const cwd = tempDir();
  const recipe = cli(["train", "--recipe", "nope.json"], { cwd });
  assert.equal(recipe.status, 2);
  assert.match(
    recipe.stderr,
    /^budgetnet train: no such file: nope\.json \(--recipe takes the path of a recipe's \.json file/,
  );
  const folder = cli(["train", "--dataset", "folder"], { cwd });
  assert.equal(folder.status, 2);
  assert.equal(
    folder.stderr.split("\n").at(-2),
    "budgetnet train: --dataset folder needs --data-root DIR (a folder of class subfolders of images).",
  );
  const home = tempDir();
  const cifar = cli(["train", "--dataset", "cifar10", "--model", "resnet20"], { cwd, env: { BUDGETNET_DATA: home } });
  assert.equal(cifar.status, 2);
  assert.match(
    cifar.stderr,
    new RegExp(
      `budgetnet train: cifar10 was not found \\(looked in ${path.join(home, "cifar10")}\\)\\. Run \`budgetnet data download cifar10\` to fetch it, or pass --data-root DIR`,
    ),
  );
  assert.doesNotMatch(cifar.stderr, /downloadDataset|root=/);
  // a --data-root without the files: CIFAR's reader looks inside, and the CLI says how to fill it
  const empty = tempDir();
  const given = cli(["train", "--dataset", "cifar10", "--data-root", empty], { cwd });
  assert.equal(given.status, 2);
  assert.match(
    given.stderr,
    new RegExp(
      `cifar10 was not found \\(looked in ${empty}/cifar-10-binary\\.tar\\.gz, .*budgetnet data download cifar10 --root ${empty}\``,
    ),
  );
  const noRoot = cli(["train", "--dataset", "folder", "--data-root", path.join(empty, "photos")], { cwd });
  assert.match(noRoot.stderr, /--data-root .*photos: no such file or folder/);
  // none of these runs left a folder behind
  assert.deepEqual(fs.readdirSync(cwd), []);
});

test("an offline download says that the host could not be reached, not a raw getaddrinfo error", () => {
  const root = tempDir();
  const dns = cli(["data", "download", "cifar10", "--root", root, "--base-url", "http://budgetnet-offline.invalid/"]);
  assert.equal(dns.status, 1);
  assert.match(
    dns.stderr,
    /\nbudgetnet data: could not reach budgetnet-offline\.invalid to download http:\/\/budgetnet-offline\.invalid\/cifar-10-binary\.tar\.gz: its name could not be resolved \(getaddrinfo (ENOTFOUND|EAI_AGAIN) budgetnet-offline\.invalid\); this machine seems to be offline/,
  );
  const refused = cli(["data", "download", "mnist", "--root", root, "--base-url", "http://127.0.0.1:1/"]);
  assert.equal(refused.status, 1);
  assert.match(refused.stderr, /could not reach 127\.0\.0\.1:1 .*: it refused the connection \(connect ECONNREFUSED/);
});

test("a run that fails before its first epoch leaves no folder; one that held anything or finished an epoch stays", () => {
  const cwd = tempDir();
  // lr 1e30: the loss is NaN at the second step, after config.json and metrics.jsonl were written
  const diverge = [...TINY, "--lr", "1e30", "--log-every", "1"];
  const fresh = cli(["train", ...diverge, "--out", "a/b/run"], { cwd });
  assert.equal(fresh.status, 1);
  assert.match(fresh.stderr, /the loss became NaN at epoch 1/);
  assert.deepEqual(fs.readdirSync(cwd), [], "the run folder and the folders made for it are gone");
  const byDefault = cli(["train", ...diverge], { cwd });
  assert.equal(byDefault.status, 1);
  assert.deepEqual(fs.readdirSync(cwd), [], "runs/ and runs/<recipe>-<time> are gone");

  fs.mkdirSync(path.join(cwd, "made-by-user"));
  assert.equal(cli(["train", ...diverge, "--out", "made-by-user"], { cwd }).status, 1);
  assert.deepEqual(fs.readdirSync(path.join(cwd, "made-by-user")), [], "an empty folder the user made stays, empty");

  const held = path.join(cwd, "held");
  fs.mkdirSync(held);
  fs.writeFileSync(path.join(held, "notes.txt"), "mine");
  assert.equal(cli(["train", ...diverge, "--out", held], { cwd }).status, 1);
  assert.deepEqual(fs.readdirSync(held).sort(), ["config.json", "metrics.jsonl", "notes.txt", "run.lock"]);

  // epoch 1 ends with a checkpoint, epoch 2 diverges (lr x 1e30): the run is kept to resume or inspect
  const later = cli(
    [
      "train",
      ...TINY,
      "--epochs",
      "2",
      "--schedule.type",
      "multistep",
      "--schedule.per",
      "epoch",
      "--schedule.milestones",
      "[1]",
      "--schedule.gamma",
      "1e30",
      "--out",
      "later",
    ],
    { cwd },
  );
  assert.equal(later.status, 1, later.stderr);
  assert.match(later.stderr, /loss became NaN at epoch 2/);
  assert.ok(fs.existsSync(path.join(cwd, "later", "checkpoint.safetensors")));
});

test("removeFailedStart leaves a folder that another trainer holds, or that gained a file of its own", () => {
  const dir = path.join(tempDir(), "x", "run");
  const before = runFolderBefore(dir);
  assert.equal(before.existed, false);
  const lock = lockRunFolder(dir); // another trainer's lock
  try {
    fs.writeFileSync(path.join(dir, "config.json"), "{}");
    assert.equal(removeFailedStart(before), false);
    assert.deepEqual(fs.readdirSync(dir).sort(), ["config.json", "run.lock"]);
  } finally {
    lock.release();
  }
  fs.writeFileSync(path.join(dir, "best.safetensors"), "");
  assert.equal(removeFailedStart(before), false);
  fs.rmSync(path.join(dir, "best.safetensors"));
  fs.writeFileSync(path.join(dir, "metrics.jsonl"), '{"time":"t","type":"epoch","epoch":0}\n');
  assert.equal(removeFailedStart(before), false, "a journal with a finished epoch is kept");
  fs.writeFileSync(path.join(dir, "metrics.jsonl"), '{"time":"t","type":"step","step":1}\n');
  assert.equal(removeFailedStart(before), true);
  assert.equal(fs.existsSync(path.dirname(dir)), false, "x/ was made for the run and goes with it");
});

const MODULE = `// A model of one's own, registered by name; the CLI loads this file with --require.
const { nn, registerModel, defineOptions, readOptions } = require("budgetnet");

const OPTIONS = defineOptions("mytiny", {
  width: { type: "int", min: 1, default: 8, help: "channels of the one convolution" },
});

registerModel({
  name: "mytiny",
  family: "mytiny",
  description: "one 3x3 convolution, BatchNorm, ReLU, global average pool, linear classifier",
  source: "test/cli/cli-polish.test.ts",
  defaults: {},
  options: OPTIONS,
  create(options) {
    const o = readOptions(OPTIONS, options);
    return new nn.Sequential([
      new nn.Conv2d({ inChannels: o.inChannels, outChannels: o.width, kernelSize: 3, padding: 1, bias: false }),
      new nn.BatchNorm2d({ numFeatures: o.width }),
      new nn.ReLU(),
      new nn.AdaptiveAvgPool2d(1),
      new nn.Flatten(),
      new nn.Linear({ inFeatures: o.width, outFeatures: o.numClasses }),
    ]);
  },
});
`;

test("--require FILE: a model registered by the user's module is trained, evaluated and exported by the CLI", () => {
  const cwd = tempDir();
  // the user's project: budgetnet installed (here: linked to this checkout), their module beside it
  fs.mkdirSync(path.join(cwd, "node_modules"));
  fs.symlinkSync(ROOT, path.join(cwd, "node_modules", "budgetnet"), "dir");
  fs.writeFileSync(path.join(cwd, "mod.js"), MODULE);

  const listed = cli(["models", "--require", "mod.js", "--json"], { cwd });
  assert.equal(listed.status, 0, listed.stderr);
  const mine = (JSON.parse(listed.stdout) as { name: string; family: string }[]).find((m) => m.name === "mytiny");
  assert.equal(mine?.family, "mytiny");

  const trained = cli(["train", "--require", "mod.js", "--model", "mytiny", ...TINY, "--out", "run", "--json"], {
    cwd,
  });
  assert.equal(trained.status, 0, trained.stderr);
  assert.equal((JSON.parse(trained.stdout) as { status: string; steps: number }).steps, 8);
  const config = JSON.parse(fs.readFileSync(path.join(cwd, "run", "config.json"), "utf8")) as {
    model: { name: string; options: { width: number } };
    parameters: number;
  };
  assert.equal(config.model.name, "mytiny");
  assert.equal(config.parameters, 8 * 9 + 2 * 8 + 8 * 10 + 10);

  const evaluated = cli(["eval", "--require=./mod.js", "--run", "run", "--split", "val", "--json"], { cwd });
  assert.equal(evaluated.status, 0, evaluated.stderr);
  const ev = JSON.parse(evaluated.stdout) as { n: number; accuracy: number };
  assert.ok(ev.n >= 128 && ev.accuracy >= 0 && ev.accuracy <= 1, evaluated.stdout);

  const exported = cli(["export", "--require", "mod.js", "--run", "run", "--format", "onnx", "--out", "run/m.onnx"], {
    cwd,
  });
  assert.equal(exported.status, 0, exported.stderr);
  assert.match(exported.stdout, /ops +Conv 1, BatchNormalization 1, Relu 1, GlobalAveragePool 1, Flatten 1, Gemm 1/);

  const without = cli(["eval", "--run", "run", "--split", "val"], { cwd });
  assert.notEqual(without.status, 0);
  assert.match(without.stderr, /mytiny/);
  const missing = cli(["eval", "--require", "nope.js", "--run", "run"], { cwd });
  assert.equal(missing.status, 2);
  assert.match(
    missing.stderr,
    /^budgetnet: --require nope\.js: no such file \(.*nope\.js\), nor a package by that name/,
  );
  fs.writeFileSync(path.join(cwd, "broken.js"), "throw new Error('boom at load');\n");
  const broken = cli(["models", "--require", "broken.js"], { cwd });
  assert.equal(broken.status, 1);
  assert.match(broken.stderr, /--require broken\.js failed while loading: boom at load/);
});

test("--device: a wrong value and cuda without a CUDA addon are refused in CLI words, before any work", () => {
  const wrong = cli(["train", "--recipe", "fashion-mnist-quick", "--device", "gpu", ...TINY, "--out", "r"]);
  assert.notEqual(wrong.status, 0);
  assert.match(wrong.stderr, /device/);
  assert.doesNotMatch(wrong.stderr, /^\s+at /m, "no stack trace");
  const badEval = cli(["eval", "--run", "nowhere", "--device", "gpu"]);
  assert.notEqual(badEval.status, 0);
  assert.match(badEval.stderr, /--device must be cpu or cuda. Received: --device=gpu/);
  if (buildInfo().cuda) return;
  const dir = tempDir();
  const cuda = cli(["train", "--recipe", "fashion-mnist-quick", "--device", "cuda", ...TINY, "--out", "r"], {
    cwd: dir,
  });
  assert.notEqual(cuda.status, 0);
  assert.match(
    cuda.stderr,
    /device "cuda" asked for, but the budgetnet addon was built against a libtorch without CUDA/,
  );
  assert.ok(!fs.existsSync(path.join(dir, "r")), "a refused start leaves no run folder");
});
