// `npm run bench -- search`: budgeted architecture search on the path users run (the CLI, real
// Fashion-MNIST, whole trials). Writes bench/results/search.json.
//
// 1. The analytic budget check: candidates per second over 10,000 random efficient-resnet points
//    (parameters and MACs from the configuration; no weights allocated).
// 2. Under ResNet-20's budget (its parameters and MACs at 1x28x28), evolution+ASHA against random
//    search at equal compute: both run at the same time for the same wall time, one thread each,
//    with `budgetnet search` child processes. Trials train the demo recipe (fashion-mnist-quick)
//    for --epochs epochs; ASHA's rungs are data fractions from --min-data (1/3 by default) up to 1,
//    eta 3. Both start from the space's seeds that fit the budget (ResNet-20's and ResNet-14's
//    shapes here), then draw or evolve.
// 3. The best configuration of evolution+ASHA and ResNet-20 itself are each trained with the demo
//    recipe and evaluated once on the test set (`budgetnet train` + `budgetnet eval --split test`).
// 4. Trials per hour with 1 and 2 local workers (random search, rung-0 trials).
//
// --space picks the searched space (efficient-resnet by default; the candidates/s figure always
// samples efficient-resnet).
//
//   npm run bench -- search [--minutes 30] [--epochs 2] [--throughput-minutes 4] [--space NAME] [--out DIR]
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import "../src";
import { CounterRng } from "../src/data/rng";
import { analyticCost } from "../src/models/registry";
import { BudgetChecker } from "../src/search/budget";
import { loadSpace, samplePoint } from "../src/search/space";
import { parseBenchArgs, UsageError } from "./args";
import { writeResult } from "./results";

const BIN = path.join(__dirname, "..", "..", "bin", "budgetnet.js");
const FMNIST = { channels: 1, size: 28, numClasses: 10 };

function candidatesPerSecond(n: number): { perSecond: number; accepted: number; analytic: number } {
  const space = loadSpace("efficient-resnet");
  const checker = new BudgetChecker(space, FMNIST, { maxParams: 272_186, maxMacs: 31_329_280 });
  const rng = new CounterRng(1, 0, 0, 5);
  const points = Array.from({ length: n }, () => samplePoint(space, rng));
  const t0 = process.hrtime.bigint();
  let accepted = 0;
  for (const p of points) if (checker.check(p).ok) accepted++;
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  return { perSecond: n / seconds, accepted, analytic: n - checker.counts.built };
}

interface SearchRun {
  study: string;
  summary: {
    trials: number;
    done: number;
    failed: number;
    best?: { valAccuracy: number; id: number };
    elapsed: number;
  };
}

function searchArgs(
  space: string,
  study: string,
  strategy: string,
  minutes: number,
  epochs: number,
  budget: { params: number; macs: number; floor: number },
  extra: string[],
): string[] {
  return [
    BIN,
    "search",
    "--space",
    space,
    "--recipe",
    "fashion-mnist-quick",
    "--epochs",
    String(epochs),
    "--strategy",
    strategy,
    "--max-params",
    String(budget.params),
    "--max-macs",
    String(budget.macs),
    ...(budget.floor > 0 ? ["--min-params", String(Math.round(budget.floor * budget.params))] : []),
    "--time",
    `${minutes}m`,
    "--seed",
    "1",
    "--out",
    study,
    "--json",
    ...extra,
  ];
}

function startSearch(args: string[], threads: number, log: string): Promise<SearchRun> {
  const study = args[args.indexOf("--out") + 1] as string;
  return new Promise((resolve, reject) => {
    const out = fs.openSync(log, "w");
    const child = spawn(process.execPath, args, {
      stdio: ["ignore", "pipe", out],
      env: { ...process.env, BUDGETNET_THREADS: String(threads), BUDGETNET_PLAIN: "1" },
    });
    let stdout = "";
    child.stdout?.on("data", (d: Buffer) => {
      stdout += d.toString();
    });
    child.on("exit", (code) => {
      fs.closeSync(out);
      if (code !== 0) return reject(new Error(`search ${study} exited with ${code}; see ${log}`));
      resolve({ study, summary: JSON.parse(stdout.trim().split("\n").pop() as string) });
    });
  });
}

function cli(args: string[], threads: number): string {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    encoding: "utf8",
    env: { ...process.env, BUDGETNET_THREADS: String(threads), BUDGETNET_PLAIN: "1" },
    stdio: ["ignore", "pipe", "inherit"],
    maxBuffer: 64 << 20,
  });
  if (r.status !== 0) throw new Error(`budgetnet ${args.join(" ")} exited with ${r.status}`);
  return r.stdout;
}

/** Trains a recipe file (or name) with the demo's settings and evaluates it once on the test set. */
function trainAndTest(
  recipe: string,
  runDir: string,
  threads: number,
  overrides: string[],
): { testAccuracy: number; valAccuracy: number; trainSeconds: number } {
  const t = JSON.parse(cli(["train", "--recipe", recipe, "--out", runDir, "--json", ...overrides], threads)) as {
    bestValAccuracy: number;
    trainSeconds: number;
  };
  const e = JSON.parse(cli(["eval", "--run", runDir, "--split", "test", "--json"], threads)) as { accuracy: number };
  return { testAccuracy: e.accuracy, valAccuracy: t.bestValAccuracy, trainSeconds: t.trainSeconds };
}

export async function main(argv: string[]): Promise<void> {
  const opts = parseBenchArgs(
    "search",
    {
      minutes: { type: "number", description: "wall time of each of the two searches", default: 30, min: 0.5 },
      epochs: { type: "integer", description: "epochs of a trial at full data (the top rung)", default: 2, min: 1 },
      floor: {
        type: "number",
        description: "parameter floor as a fraction of the budget (--min-params; 0: none)",
        default: 0,
        min: 0,
      },
      "retrain-epochs": {
        type: "integer",
        description: "epochs of the final retraining (the demo recipe's 5)",
        default: 5,
        min: 1,
      },
      "min-data": {
        type: "number",
        description:
          "ASHA's lowest rung as a fraction of the training data (1/9 ranks on too little: shallow nets win it)",
        default: 1 / 3,
        min: 0.01,
      },
      "throughput-minutes": {
        type: "number",
        description: "wall time of each trials-per-hour run",
        default: 4,
        min: 0.5,
      },
      space: {
        type: "string",
        description: "the design space both searches sample (spaces/NAME.json)",
        default: "efficient-resnet",
      },
      out: { type: "string", description: "folder for the studies and runs", default: "runs/bench-search" },
    },
    argv,
  );
  if (opts === undefined) return;
  if (opts["min-data"] > 1)
    throw new UsageError(
      `--min-data is a fraction of the training data, at most 1. Received: --min-data=${opts["min-data"]}`,
    );
  const root = path.resolve(opts.out, new Date().toISOString().replace(/[:.]/g, "-"));
  fs.mkdirSync(root, { recursive: true });

  // the machine is shared: the 1-minute load average, sampled every 30 s, goes into the record
  const load: number[] = [];
  const sampler = setInterval(() => load.push(Number((os.loadavg()[0] as number).toFixed(2))), 30_000);
  const cps = candidatesPerSecond(10_000);
  console.log(
    `analytic budget check: ${Math.round(cps.perSecond).toLocaleString("en-US")} candidates/s (${cps.analytic} of 10,000 analytic; ${cps.accepted} under resnet20's parameters and MACs)`,
  );

  const r20 = analyticCost("resnet20", { numClasses: 10, inChannels: 1 }, [1, 28, 28]);
  if (r20 === undefined) throw new Error("resnet20 has no analytic cost");
  const budget = { params: r20.params, macs: r20.macs, floor: opts.floor };
  console.log(`budget: resnet20 at 1x28x28: ${budget.params} parameters, ${budget.macs} MACs`);

  // 2. equal compute: both searches at once, one thread each, the same wall time
  const minData = opts["min-data"];
  const asha = ["--fidelity", "data", "--min-resource", String(minData), "--max-resource", "1", "--eta", "3"];
  console.log(`searching ${opts.minutes} min: evolution-asha and random side by side, 1 thread each ...`);
  const [evo, rnd] = await Promise.all([
    startSearch(
      searchArgs(
        opts.space,
        path.join(root, "evolution-asha"),
        "evolution-asha",
        opts.minutes,
        opts.epochs,
        budget,
        asha,
      ),
      1,
      path.join(root, "evolution-asha.log"),
    ),
    startSearch(
      searchArgs(opts.space, path.join(root, "random"), "random", opts.minutes, opts.epochs, budget, []),
      1,
      path.join(root, "random.log"),
    ),
  ]);
  for (const [name, s] of [
    ["evolution-asha", evo],
    ["random", rnd],
  ] as const)
    console.log(
      `  ${name}: ${s.summary.trials} trials (${s.summary.done} done), best val ${s.summary.best ? (100 * s.summary.best.valAccuracy).toFixed(2) : "-"}%`,
    );

  // 3. the best configuration and resnet20, each on the demo recipe, tested once
  const report = JSON.parse(cli(["search", "report", evo.study, "--json"], 2)) as { recipe?: string };
  if (report.recipe === undefined)
    throw new Error(`no evolution-asha trial finished within ${opts.minutes} min; give the search more --minutes`);
  const best = JSON.parse(fs.readFileSync(report.recipe, "utf8")) as {
    model: string;
    modelOptions: Record<string, unknown>;
  };
  const bestCost = analyticCost(best.model, best.modelOptions, [1, 28, 28]);
  console.log(`retraining the best configuration (${JSON.stringify(best.modelOptions)}) with the demo recipe ...`);
  const retrain = ["--epochs", String(opts["retrain-epochs"])];
  const searched = trainAndTest(report.recipe, path.join(root, "searched-run"), 2, retrain);
  console.log("retraining resnet20 with the demo recipe ...");
  const baseline = trainAndTest("fashion-mnist-quick", path.join(root, "resnet20-run"), 2, retrain);

  // 4. trials per hour, random search on rung-0 trials (1/9 of the data)
  // a window that finishes no trial measures nothing: null, not 0 trials/hour
  const tph: Record<string, number | null> = {};
  for (const workers of [1, 2]) {
    const s = await startSearch(
      searchArgs(
        opts.space,
        path.join(root, `throughput-${workers}`),
        "random",
        opts["throughput-minutes"],
        opts.epochs,
        budget,
        ["--workers", String(workers), "--train-subset", String(Math.round(57_000 / 9))],
      ),
      2,
      path.join(root, `throughput-${workers}.log`),
    );
    tph[`workers${workers}`] = s.summary.done > 0 ? s.summary.done / (s.summary.elapsed / 3600) : null;
    console.log(
      `  ${workers} worker${workers > 1 ? "s" : ""}: ${s.summary.done} trials in ${(s.summary.elapsed / 60).toFixed(1)} min = ${tph[`workers${workers}`]?.toFixed(1) ?? "not measured (no trial finished: give --throughput-minutes more)"} trials/hour`,
    );
  }

  const record = {
    benchmark: "search",
    timestamp: new Date().toISOString(),
    machine: { cores: 2 },
    candidatesPerSecond: cps.perSecond,
    budget,
    settings: {
      minutes: opts.minutes,
      trialEpochs: opts.epochs,
      threadsPerSearch: 1,
      space: opts.space,
      seed: 1,
      ashaRungs: `data from ${Number(minData.toPrecision(4))} to 1, eta 3`,
      seeds: "the space's seeds that fit the budget, first",
    },
    random: {
      bestValAccuracy: rnd.summary.best?.valAccuracy ?? null,
      trials: rnd.summary.trials,
      done: rnd.summary.done,
    },
    evolutionAsha: {
      bestValAccuracy: evo.summary.best?.valAccuracy ?? null,
      trials: evo.summary.trials,
      done: evo.summary.done,
    },
    searched: { options: best.modelOptions, params: bestCost?.params, macs: bestCost?.macs, ...searched },
    resnet20: { params: budget.params, macs: budget.macs, ...baseline },
    trialsPerHour: tph,
    loadAverage: {
      samples: load.length,
      mean: load.reduce((a, b) => a + b, 0) / Math.max(1, load.length),
      max: Math.max(0, ...load),
    },
    studies: root,
  };
  clearInterval(sampler);
  const ratio = (a: number | null | undefined, b: number | null | undefined): string =>
    a == null || b == null ? "-" : `${(100 * (a - b)).toFixed(2)} points`;
  console.log(
    `evolution-asha vs random best val: ${ratio(record.evolutionAsha.bestValAccuracy, record.random.bestValAccuracy)}`,
  );
  console.log(
    `searched vs resnet20 test: ${(100 * searched.testAccuracy).toFixed(2)}% vs ${(100 * baseline.testAccuracy).toFixed(2)}% (${ratio(searched.testAccuracy, baseline.testAccuracy)}), params ${bestCost?.params} vs ${budget.params}, MACs ${bestCost?.macs} vs ${budget.macs}`,
  );
  writeResult(path.join(__dirname, "..", "..", "bench", "results", "search.json"), record);
}
