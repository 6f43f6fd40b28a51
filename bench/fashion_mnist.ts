// `npm run bench -- fashion-mnist`: the README demo (recipe fashion-mnist-quick: train, then test
// accuracy) against the same recipe in PyTorch eager (bench/peers/fashion_mnist.py), in one run,
// one after the other on the same threads. Writes bench/results/fashion-mnist.json.
//
//   npm run bench -- fashion-mnist [--threads N] [--epochs N]
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { loadDataset } from "../src/data";
import { applyOverrides, loadRecipe, recipesDir } from "../src/train/config";
import { evaluate } from "../src/train/evaluate";
import { loadRunModel } from "../src/train/run";
import { train } from "../src/train/trainer";
import { parseBenchArgs } from "./args";
import { writeResult } from "./results";

const PYTHON = process.env.BUDGETNET_PYTHON ?? "/usr/bin/python3";

interface Side {
  trainSeconds: number;
  evalSeconds: number;
  totalSeconds: number;
  testAccuracy: number;
  valAccuracy: number;
}

async function runBudgetnet(threads: number, epochs: number | undefined): Promise<Side> {
  const overrides: Record<string, string> = { threads: String(threads) };
  if (epochs !== undefined) overrides.epochs = String(epochs);
  const cfg = applyOverrides(loadRecipe("fashion-mnist-quick"), overrides);
  const runDir = fs.mkdtempSync(path.join(os.tmpdir(), "budgetnet-bench-fmnist-"));
  try {
    const t0 = Date.now();
    const r = await train(cfg, { runDir, handleSignals: false });
    const trainSeconds = (Date.now() - t0) / 1000;
    const t1 = Date.now();
    const { model, config } = loadRunModel(runDir, "best");
    const test = loadDataset("fashion-mnist", { split: "test" });
    const ev = evaluate(model, test, { mean: config.data.mean, std: config.data.std });
    model.dispose();
    const evalSeconds = (Date.now() - t1) / 1000;
    return {
      trainSeconds,
      evalSeconds,
      totalSeconds: trainSeconds + evalSeconds,
      testAccuracy: ev.accuracy,
      valAccuracy: r.bestValAccuracy,
    };
  } finally {
    fs.rmSync(runDir, { recursive: true, force: true });
  }
}

function runPyTorch(threads: number, epochs: number | undefined): Side {
  const script = path.join(__dirname, "..", "..", "bench", "peers", "fashion_mnist.py");
  const recipe = path.join(recipesDir(), "fashion-mnist-quick.json");
  const args = [
    script,
    recipe,
    "--threads",
    String(threads),
    ...(epochs !== undefined ? ["--epochs", String(epochs)] : []),
  ];
  const r = spawnSync(PYTHON, args, {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
    env: { ...process.env, OMP_NUM_THREADS: String(threads) },
  });
  if (r.status !== 0) throw new Error(`the PyTorch peer failed (exit ${r.status}); is python3-torch installed?`);
  const last = r.stdout
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as Record<string, number>)
    .find((o) => o.result);
  if (!last) throw new Error(`the PyTorch peer printed no result:\n${r.stdout}`);
  return {
    trainSeconds: last.trainSeconds as number,
    evalSeconds: last.evalSeconds as number,
    totalSeconds: last.totalSeconds as number,
    testAccuracy: last.testAccuracy as number,
    valAccuracy: last.valAccuracy as number,
  };
}

const FLAGS = {
  threads: { type: "integer", valueName: "N", min: 1, default: 2, description: "threads of both sides" },
  epochs: { type: "integer", valueName: "N", min: 1, description: "epochs instead of the recipe's" },
} as const;

export async function main(args: string[]): Promise<void> {
  const opts = parseBenchArgs("fashion-mnist", FLAGS, args);
  if (opts === undefined) return;
  const { threads, epochs } = opts;
  process.env.BUDGETNET_PLAIN = "1";
  console.log(
    `fashion-mnist-quick, ${threads} threads${epochs ? `, ${epochs} epochs` : ""}: budgetnet first, then PyTorch eager`,
  );
  const ours = await runBudgetnet(threads, epochs);
  console.log(`budgetnet: ${ours.totalSeconds.toFixed(1)} s, test accuracy ${(100 * ours.testAccuracy).toFixed(2)}%`);
  const peer = runPyTorch(threads, epochs);
  console.log(`PyTorch:   ${peer.totalSeconds.toFixed(1)} s, test accuracy ${(100 * peer.testAccuracy).toFixed(2)}%`);
  const speedup = peer.totalSeconds / ours.totalSeconds;
  console.log(
    `time ratio (PyTorch / budgetnet): ${speedup.toFixed(2)}x; accuracy difference ${(100 * (ours.testAccuracy - peer.testAccuracy)).toFixed(2)} points`,
  );
  const out = path.join(__dirname, "..", "..", "bench", "results", "fashion-mnist.json");
  fs.mkdirSync(path.dirname(out), { recursive: true });
  const record = {
    benchmark: "fashion-mnist",
    recipe: "fashion-mnist-quick",
    threads,
    machine: { cpu: os.cpus()[0]?.model ?? "unknown", cores: os.availableParallelism() },
    budgetnet: ours,
    pytorch: peer,
    speedupVsPyTorch: speedup,
    accuracyDifference: ours.testAccuracy - peer.testAccuracy,
    timestamp: new Date().toISOString(),
  };
  writeResult(out, record);
}
