// `npm run bench -- ddp`: data-parallel scaling on this machine, budgetnet against PyTorch DDP
// (gloo, python3-torch, bench/peers/ddp.py) in one run: ResNet-20 on Fashion-MNIST batches of 128
// per rank, float32, 1 rank x 2 threads, 1 rank x 1 thread and 2 ranks x 1 thread; images/s from
// the steps after a warm-up, the 2-rank scaling efficiency (2-rank images/s over twice the 1 x 1
// figure), the bytes all-reduced per step and the share of buckets launched while backward ran.
// budgetnet runs through the CLI (`budgetnet train --nproc`), as users run it, on the peer's work:
// raw batches, no crop, flip or label smoothing (the peer has none; with budgetnet's crop and flip
// on each rank's loader thread, 2 ranks x 1 thread measured 540 images/s against 610-687 without,
// 1 x 1 336 either way). The variants alternate round by round and medians are reported (shared,
// noisy machines).
//
//   npm run bench -- ddp [--rounds N] [--steps N] [--bucket-mb MB] [--out FILE]
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { freePort } from "../src/train/ddp";
import { parseBenchArgs } from "./args";
import { writeResult } from "./results";
import { median } from "./stats";

const ROOT = path.resolve(__dirname, "..", "..");
const PYTHON = process.env.BUDGETNET_PYTHON ?? "/usr/bin/python3";
const BATCH = 128;
const WARMUP = 5;
const LOG_EVERY = 5;

const FLAGS = {
  rounds: { type: "integer", valueName: "N", min: 1, default: 3, description: "interleaved rounds" },
  steps: {
    type: "integer",
    valueName: "N",
    min: 10,
    default: 40,
    description: "timed steps per run (after 5 warm-up steps)",
  },
  "bucket-mb": {
    type: "number",
    valueName: "MB",
    default: 25,
    description:
      "gradient bucket size on both sides (PyTorch's default 25; ResNet-20's 1.1 MB of gradients need less than 1 to overlap backward)",
  },
  out: {
    type: "string",
    valueName: "FILE",
    default: "bench/results/ddp.json",
    description: "where to write the JSON record",
  },
} as const;

interface Config {
  name: string;
  ranks: number;
  threads: number;
}
const CONFIGS: Config[] = [
  { name: "1x2", ranks: 1, threads: 2 },
  { name: "1x1", ranks: 1, threads: 1 },
  { name: "2x1", ranks: 2, threads: 1 },
];

interface Measure {
  imagesPerSec: number;
  bytesPerStep?: number;
  overlap?: number;
}

function budgetnet(c: Config, steps: number, bucketMb: number): Measure {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "budgetnet-bench-ddp-"));
  try {
    const total = WARMUP + steps + 1;
    const args = [
      path.join(ROOT, "bin", "budgetnet.js"),
      "train",
      "--recipe",
      "fashion-mnist-quick",
      "--precision",
      "fp32",
      "--epochs",
      "1",
      "--batch-size",
      String(BATCH),
      "--train-subset",
      String(BATCH * c.ranks * total),
      "--val-subset",
      "128",
      "--log-every",
      String(LOG_EVERY),
      "--bucket-mb",
      String(bucketMb),
      // the peer's work: raw batches (no crop, flip or label smoothing); budgetnet's loader still
      // gathers and normalizes on its own thread, the peer inline
      "--augment.crop",
      "null",
      "--augment.flip",
      "false",
      "--label-smoothing",
      "0",
      "--out",
      dir,
      ...(c.ranks > 1 ? ["--nproc", String(c.ranks)] : []),
    ];
    const r = spawnSync(process.execPath, args, {
      encoding: "utf8",
      env: { ...process.env, BUDGETNET_THREADS: String(c.threads), BUDGETNET_PLAIN: "1" },
    });
    if (r.status !== 0) throw new Error(`budgetnet ${c.name} failed: ${r.stderr.slice(-600)}`);
    const lines = fs
      .readFileSync(path.join(dir, "metrics.jsonl"), "utf8")
      .split("\n")
      .filter((l) => l.trim() !== "")
      .map((l) => JSON.parse(l) as { type: string; step?: number; time?: string } & Record<string, number>);
    const at = (step: number) => lines.find((l) => l.type === "step" && l.step === step)?.time;
    const t0 = at(WARMUP);
    const t1 = at(WARMUP + Math.floor(steps / LOG_EVERY) * LOG_EVERY);
    if (t0 === undefined || t1 === undefined) throw new Error(`budgetnet ${c.name}: the step lines are missing`);
    const timed = Math.floor(steps / LOG_EVERY) * LOG_EVERY;
    const seconds = (Date.parse(t1) - Date.parse(t0)) / 1000;
    const d = lines.find((l) => l.type === "distributed");
    return {
      imagesPerSec: (c.ranks * BATCH * timed) / seconds,
      bytesPerStep: d === undefined ? 0 : d.bytesReduced / d.steps,
      overlap: d === undefined ? undefined : d.launchedDuringBackward / (d.buckets * d.steps),
    };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function pytorch(c: Config, steps: number, port: number, bucketMb: number): Measure {
  const script = path.join(ROOT, "bench", "peers", "ddp.py");
  const procs = Array.from({ length: c.ranks }, (_, rank) => ({ rank }));
  // the ranks must run at once: a small shell runs them in the background and waits
  const cmd = procs
    .map(
      ({ rank }) =>
        `RANK=${rank} WORLD_SIZE=${c.ranks} MASTER_ADDR=127.0.0.1 MASTER_PORT=${port} ${PYTHON} ${script} --steps ${steps} --warmup ${WARMUP} --batch ${BATCH} --threads ${c.threads} --bucket-mb ${bucketMb} &`,
    )
    .join(" ");
  const r = spawnSync("bash", ["-c", `${cmd} wait`], { encoding: "utf8", cwd: path.dirname(script) });
  const line = r.stdout.split("\n").find((l) => l.startsWith("{"));
  if (line === undefined) throw new Error(`PyTorch DDP ${c.name} failed: ${r.stderr.slice(-600)}`);
  const j = JSON.parse(line) as { imagesPerSec: number; bytesPerStep: number };
  return { imagesPerSec: j.imagesPerSec, bytesPerStep: j.bytesPerStep };
}

export async function main(argv: string[]): Promise<void> {
  const o = parseBenchArgs("ddp", FLAGS, argv);
  if (o === undefined) return;
  const runs: Record<string, Record<string, Measure[]>> = { budgetnet: {}, pytorch: {} };
  for (let round = 0; round < o.rounds; round++)
    for (const c of round % 2 === 0 ? CONFIGS : [...CONFIGS].reverse())
      for (const side of round % 2 === 0 ? (["budgetnet", "pytorch"] as const) : (["pytorch", "budgetnet"] as const)) {
        const bucketMb = o["bucket-mb"];
        const m =
          side === "budgetnet" ? budgetnet(c, o.steps, bucketMb) : pytorch(c, o.steps, await freePort(), bucketMb);
        const list = runs[side] as Record<string, Measure[]>;
        list[c.name] = [...(list[c.name] ?? []), m];
        console.log(`round ${round + 1}/${o.rounds} ${side.padEnd(9)} ${c.name}: ${m.imagesPerSec.toFixed(0)} img/s`);
      }
  const med = (side: string, name: string) => median((runs[side]?.[name] ?? []).map((m) => m.imagesPerSec));
  const efficiency = (side: string) => med(side, "2x1") / (2 * med(side, "1x1"));
  const record = {
    benchmark: "ddp",
    timestamp: new Date().toISOString(),
    machine: { cores: os.availableParallelism(), loadAverage: os.loadavg() },
    batchPerRank: BATCH,
    bucketMb: o["bucket-mb"],
    steps: o.steps,
    rounds: o.rounds,
    imagesPerSec: Object.fromEntries(
      ["budgetnet", "pytorch"].map((side) => [
        side,
        Object.fromEntries(CONFIGS.map((c) => [c.name, med(side, c.name)])),
      ]),
    ),
    efficiency: { budgetnet: efficiency("budgetnet"), pytorch: efficiency("pytorch") },
    ratio2x1VsPyTorch: med("budgetnet", "2x1") / med("pytorch", "2x1"),
    bytesPerStep: {
      budgetnet: median((runs.budgetnet?.["2x1"] ?? []).map((m) => m.bytesPerStep ?? 0)),
      pytorch: median((runs.pytorch?.["2x1"] ?? []).map((m) => m.bytesPerStep ?? 0)),
    },
    overlapShare: median((runs.budgetnet?.["2x1"] ?? []).map((m) => m.overlap ?? 0)),
    runs,
  };
  console.log(
    `efficiency (2 ranks x 1 thread over 2 x 1 rank x 1 thread): budgetnet ${record.efficiency.budgetnet.toFixed(3)}, ` +
      `PyTorch DDP ${record.efficiency.pytorch.toFixed(3)}; 2x1 images/s budgetnet/PyTorch ${record.ratio2x1VsPyTorch.toFixed(3)}; ` +
      `${(record.bytesPerStep.budgetnet / 1e6).toFixed(2)} MB all-reduced per step, ${(100 * record.overlapShare).toFixed(0)}% of buckets launched during backward`,
  );
  writeResult(o.out, record);
}
