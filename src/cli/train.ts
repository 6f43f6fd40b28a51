// `budgetnet train --recipe NAME [--out DIR] [--resume] [--FIELD VALUE ...]`: any recipe field can be
// overridden (`--epochs 2 --batch-size 256 --model resnet56 --optimizer.lr 0.05`).
import * as fs from "node:fs";
import * as path from "node:path";
import { ArgumentError, didYouMean } from "../tensor/errors";
import { DistributedUnavailableError, distributedAvailable } from "../tensor/process_group";
import { tryLockFile } from "../tensor/tensor";
import { listRecipes, type TrainConfig } from "../train/config";
import { inDistributedJob, joinFromEnv, launchRanks } from "../train/ddp";
import { type TrainOptions, type TrainResult, train } from "../train/trainer";
import { defineCommand, UsageError } from "./args";
import { checkDataFound } from "./data";
import { describeDryRun, dryRun, planTraining, startLine } from "./train_plan";

/** --recipe's value as loadRecipe takes it, after saying in CLI words what is missing. */
export function checkRecipeArg(value: string): string {
  if (value.endsWith(".json")) {
    if (!fs.existsSync(value))
      throw new ArgumentError(
        `no such file: ${value} (--recipe takes the path of a recipe's .json file, or a built-in recipe's name: ${listRecipes().join(", ")}).`,
      );
    if (fs.statSync(value).isDirectory())
      throw new ArgumentError(`--recipe ${value} is a folder; give the path of a recipe's .json file.`);
    return value;
  }
  const names = listRecipes();
  if (!names.includes(value)) {
    const file = fs.existsSync(`${value}.json`)
      ? ` (the file ${value}.json is here: give it as --recipe ${value}.json)`
      : "";
    throw new ArgumentError(
      `unknown recipe "${value}"${didYouMean(value, names)}${file}. Built-in recipes: ${names.join(", ")}; or give the path of a .json file.`,
    );
  }
  return value;
}

/** Files a run's start writes before its first epoch ends (the trainer's, and atomic writes' temporaries). */
function writtenByStart(name: string): boolean {
  return (
    name === "run.lock" ||
    name === "config.json" ||
    name === "metrics.jsonl" ||
    new RegExp(`^\\.(config\\.json|metrics\\.jsonl)\\.${process.pid}\\.\\d+\\.tmp$`).test(name)
  );
}

/** What the run folder was before this run, so that a failed start can be undone exactly. */
export interface RunFolderBefore {
  dir: string;
  /** The folder existed, and whether it held anything. */
  existed: boolean;
  heldSomething: boolean;
  /** The topmost folder that did not exist (the run creates it and everything below it), if any. */
  createdTop: string | undefined;
}

export function runFolderBefore(runDir: string): RunFolderBefore {
  const dir = path.resolve(runDir);
  let createdTop: string | undefined;
  for (let d = dir; !fs.existsSync(d) && path.dirname(d) !== d; d = path.dirname(d)) createdTop = d;
  const existed = createdTop === undefined;
  const heldSomething = existed && (!fs.statSync(dir).isDirectory() || fs.readdirSync(dir).length > 0);
  return { dir, existed, heldSomething, createdTop };
}

/** Whether metrics.jsonl records a finished epoch (then the run is worth keeping). */
function journalHasEpoch(file: string): boolean {
  if (!fs.existsSync(file)) return false;
  return fs
    .readFileSync(file, "utf8")
    .split("\n")
    .some((l) => /"type":"epoch"/.test(l));
}

/**
 * After a run failed before its first epoch finished: removes what its start wrote (run.lock,
 * config.json, metrics.jsonl) and the folders it created, leaving nothing behind. Touches nothing
 * when the folder held anything before the run, holds anything else now (a checkpoint, weights,
 * a file someone put there), records a finished epoch, or is locked by another trainer. Returns
 * whether it removed anything.
 */
export function removeFailedStart(before: RunFolderBefore): boolean {
  const { dir } = before;
  if (before.heldSomething || !fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) return false;
  const entries = fs.readdirSync(dir);
  if (!entries.every(writtenByStart) || journalHasEpoch(path.join(dir, "metrics.jsonl"))) return false;
  // Held while cleaning: a trainer that opened the folder meanwhile keeps it (its lock wins).
  const lockFile = path.join(dir, "run.lock");
  const fd = fs.existsSync(lockFile) ? fs.openSync(lockFile, "r") : undefined;
  try {
    if (fd !== undefined && !tryLockFile(fd)) return false;
    for (const e of entries) if (e !== "run.lock") fs.rmSync(path.join(dir, e), { force: true });
    fs.rmSync(lockFile, { force: true });
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
  if (before.existed) return true; // an empty folder the user made stays
  // rmdir refuses a folder that is not empty: whatever appeared meanwhile stays, with its folders
  for (let d = dir; ; d = path.dirname(d)) {
    try {
      fs.rmdirSync(d);
    } catch {
      break;
    }
    if (d === before.createdTop || path.dirname(d) === d) break;
  }
  return true;
}

/**
 * train(), and when it fails, removeFailedStart: a start that failed before its first epoch
 * leaves no folder behind. A resumed run's folder is never touched.
 */
export async function trainCleaningUp(cfg: TrainConfig, opts: TrainOptions): Promise<TrainResult> {
  const before = opts.resume || (opts.dist?.rank ?? 0) !== 0 ? undefined : runFolderBefore(opts.runDir);
  try {
    return await train(cfg, opts);
  } catch (e) {
    if (before !== undefined) {
      try {
        removeFailedStart(before);
      } catch {
        // cleaning up is best effort: the run's own error is the one to report
      }
    }
    throw e;
  }
}

/** The command line without --nproc N / --nproc=N (the ranks get torchrun's environment instead). */
function withoutNproc(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === "--nproc") i++;
    else if (!a.startsWith("--nproc=")) out.push(a);
  }
  return out;
}

export const trainCommand = defineCommand({
  name: "train",
  summary:
    "Train a model from a recipe (recipes/*.json); every recipe field can be overridden with --FIELD VALUE " +
    "(kebab or camel case, dotted for nested fields: --batch-size 256 --optimizer.lr 0.05 --model resnet56).",
  positionals: [],
  passthrough: true,
  flags: {
    recipe: {
      type: "string",
      valueName: "NAME|FILE",
      description: `recipe name (${listRecipes().join(", ")}) or a JSON file (default fashion-mnist-quick; folder-default with --data)`,
    },
    data: {
      type: "string",
      valueName: "DIR",
      description:
        "train on an image folder (one sub-folder of images per class), with recipes/folder-default.json unless --recipe",
    },
    "dry-run": {
      type: "boolean",
      description: "print the resolved config, the model's size and the data found, then stop (no run folder)",
    },
    out: {
      type: "string",
      valueName: "DIR",
      description: "run folder (default runs/<recipe>-<time>; runs/<folder>-<model>-<time> with --data)",
    },
    resume: { type: "boolean", description: "continue the run in --out from its checkpoint" },
    nproc: {
      type: "integer",
      valueName: "N",
      description:
        "data-parallel training on N local processes (c10d Gloo; batch size per rank; docs/distributed.md); with torchrun's RANK/WORLD_SIZE/MASTER_ADDR/MASTER_PORT set, this process joins that job",
    },
    json: { type: "boolean", description: "print the result as JSON" },
  },
  async run(args) {
    const resume = args.flags.resume === true;
    if (args.flags.recipe !== undefined) checkRecipeArg(args.flags.recipe);
    const plan = await planTraining(
      { recipe: args.flags.recipe, data: args.flags.data, out: args.flags.out, resume },
      args.extra,
    );
    const { cfg, runDir } = plan;
    checkDataFound(cfg.dataset, cfg.dataRoot);
    if (args.flags["dry-run"]) {
      const found = dryRun(plan);
      process.stdout.write(`${args.flags.json ? JSON.stringify(found, null, 2) : describeDryRun(found)}\n`);
      return 0;
    }
    const nproc = args.flags.nproc;
    if (nproc !== undefined && nproc < 1) throw new UsageError(`--nproc must be an integer >= 1. Received: ${nproc}`);
    if (nproc !== undefined && nproc > 1 && !inDistributedJob()) {
      if (!distributedAvailable()) throw new DistributedUnavailableError();
      // every rank must train into the same folder: name it once here
      return await launchRanks(nproc, [
        ...withoutNproc(process.argv.slice(1)),
        ...(args.flags.out === undefined ? ["--out", runDir] : []),
      ]);
    }
    const dist = inDistributedJob() ? joinFromEnv() : undefined;
    let result: Awaited<ReturnType<typeof trainCleaningUp>>;
    try {
      result = await trainCleaningUp(cfg, {
        runDir,
        resume,
        dist,
        onStart: (start) => {
          if ((dist?.rank ?? 0) === 0)
            process.stderr.write(
              `${startLine(plan, start)}${dist ? ` on ${dist.worldSize} ranks x batch ${cfg.batchSize}` : ""}\n`,
            );
        },
      });
    } finally {
      dist?.group.destroy();
    }
    if (args.flags.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    else
      process.stdout.write(
        `${result.status}: ${result.epochs} epochs, ${result.steps} steps in ${result.trainSeconds.toFixed(1)} s; ` +
          `${
            result.bestEpoch < 0
              ? "no epoch finished yet"
              : `best val accuracy ${(100 * result.bestValAccuracy).toFixed(2)}% (epoch ${result.bestEpoch + 1})`
          }; run folder ${result.runDir}\n`,
      );
    return result.status === "completed" ? 0 : 130;
  },
});
