// `npm run bench -- speedrun`: the Fashion-MNIST speedrun (recipe fashion-mnist-speedrun): how
// fast 2 CPU cores reach 93.0% test accuracy, and the PyTorch peer running the same recipe in the
// same run. Per seed, budgetnet through the CLI as a user runs it (`budgetnet train`, then
// `budgetnet eval --split test`, each a fresh process; wall time around both, start-up and data
// loading included) and the peer (bench/peers/fashion_mnist.py: the same SpeedNet, schedule,
// augmentation, flip TTA and validation split, channels-last, precision as the recipe's "auto";
// its whole process timed). The sides alternate order from seed to seed. The recipe's choices were
// made on the validation split; each run reads the test set once, at its end.
//
// Writes bench/results/speedrun.json: `budgetnet` and `pytorchBest` ({ runs: [per seed], meanTestAccuracy,
// meanWallSeconds, maxWallSeconds }), `wallRatio` (PyTorch's mean wall / budgetnet's), and `floor`
// ({ accuracy: 0.93, seconds: 180, met }: budgetnet's mean test accuracy and every seed's wall time).
//
//   npm run bench -- speedrun [--seeds 0,1,2] [--threads N]
import * as os from "node:os";
import * as path from "node:path";
import { nativeBf16 } from "../src/train/precision";
import { parseBenchArgs } from "./args";
import { budgetnet, machineInfo, pytorch, type Side, show } from "./e2e";
import { writeResult } from "./results";

const RECIPE = "fashion-mnist-speedrun";
const FLOOR = { accuracy: 0.93, seconds: 180 };

const FLAGS = {
  seeds: {
    type: "string",
    valueName: "LIST",
    default: "0,1,2",
    description: "comma-separated seeds (one run each side)",
  },
  threads: { type: "integer", valueName: "N", min: 1, description: "threads per side (default: every core)" },
} as const;

interface Summary {
  runs: Side[];
  meanTestAccuracy: number;
  meanWallSeconds: number;
  maxWallSeconds: number;
}

const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

function summarize(runs: Side[]): Summary {
  return {
    runs,
    meanTestAccuracy: mean(runs.map((r) => r.testAccuracy)),
    meanWallSeconds: mean(runs.map((r) => r.wallSeconds)),
    maxWallSeconds: Math.max(...runs.map((r) => r.wallSeconds)),
  };
}

export async function main(argv: string[]): Promise<void> {
  const o = parseBenchArgs("speedrun", FLAGS, argv);
  if (o === undefined) return;
  const seeds = String(o.seeds)
    .split(",")
    .filter((x) => x.trim() !== "")
    .map((x) => {
      const n = Number(x);
      if (!Number.isInteger(n) || n < 0) throw new Error(`--seeds: ${x} is not a seed (an integer >= 0)`);
      return n;
    });
  if (seeds.length === 0) throw new Error("--seeds: give at least one seed, e.g. --seeds 0,1,2");
  const threads = o.threads ?? os.availableParallelism();
  console.log(
    `speedrun: ${RECIPE} through the CLI against the PyTorch peer, seeds ${seeds.join(", ")}, ${threads} threads; ` +
      `native bf16: ${nativeBf16() ? "yes" : "no"}; load average ${os
        .loadavg()
        .map((x) => x.toFixed(2))
        .join(" ")}`,
  );
  const ours: Side[] = [];
  const peer: Side[] = [];
  for (const [i, seed] of seeds.entries()) {
    const s = { recipe: RECIPE, seed, threads, precision: "auto" as const };
    const order = i % 2 === 0 ? (["budgetnet", "pytorch"] as const) : (["pytorch", "budgetnet"] as const);
    for (const side of order) {
      const r = side === "budgetnet" ? budgetnet(s) : pytorch(s);
      (side === "budgetnet" ? ours : peer).push(r);
      console.log(`seed ${seed}: ${show(side, r)}`);
    }
  }
  const b = summarize(ours);
  const p = summarize(peer);
  const met = b.meanTestAccuracy >= FLOOR.accuracy && b.maxWallSeconds <= FLOOR.seconds;
  console.log(
    `budgetnet: mean test ${(100 * b.meanTestAccuracy).toFixed(2)}%, wall mean ${b.meanWallSeconds.toFixed(1)} s, max ${b.maxWallSeconds.toFixed(1)} s\n` +
      `PyTorch:   mean test ${(100 * p.meanTestAccuracy).toFixed(2)}%, wall mean ${p.meanWallSeconds.toFixed(1)} s, max ${p.maxWallSeconds.toFixed(1)} s\n` +
      `wall ratio (PyTorch / budgetnet) ${(p.meanWallSeconds / b.meanWallSeconds).toFixed(3)}; ` +
      `floor (mean test >= ${100 * FLOOR.accuracy}%, every run <= ${FLOOR.seconds} s): ${met ? "met" : "NOT met"}`,
  );
  writeResult(path.join("bench", "results", "speedrun.json"), {
    benchmark: "speedrun",
    recipe: RECIPE,
    seeds,
    threads,
    budgetnet: b,
    pytorchBest: p,
    wallRatio: p.meanWallSeconds / b.meanWallSeconds,
    floor: { ...FLOOR, met },
    machine: machineInfo(),
    timestamp: new Date().toISOString(),
  });
}
