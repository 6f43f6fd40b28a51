// `budgetnet search`: budgeted architecture search over a design space (src/search/).
//   budgetnet search --space efficient-resnet --max-params 272474 --time 30m --out studies/S
//   budgetnet search --resume studies/S          continue after Ctrl-C or kill -9
//   budgetnet search status studies/S            progress
//   budgetnet search report studies/S            leaderboard, Pareto fronts, best recipe
import * as path from "node:path";
import { BudgetChecker } from "../search/budget";
import { checkBudgetsReachable, runStudy } from "../search/coordinator";
import { LocalExecutor } from "../search/local";
import { formatStatus, writeReport } from "../search/report";
import { formatPoint, listSpaces, loadSpace } from "../search/space";
import { OBJECTIVE_KEYS, type ObjectiveKey, rungResources, STRATEGIES, type StrategyName } from "../search/strategies";
import {
  createStudySpec,
  type Executor,
  loadState,
  readStudy,
  type StudySpec,
  studyId,
  writeStudy,
} from "../search/study";
import { ArgumentError } from "../tensor/errors";
import { applyOverrides, loadRecipe } from "../train/config";
import { prepareData } from "../train/trainer";
import { defineCommand, UsageError } from "./args";

/** "30m", "2h", "90s" or a number of minutes, as seconds. */
export function parseDuration(flag: string, raw: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(s|m|min|h)?$/.exec(raw.trim());
  if (m === null)
    throw new UsageError(
      `${flag} takes a duration such as 30m, 2h or 90s (a bare number is minutes). Received: ${raw}`,
    );
  const v = Number(m[1]);
  const unit = m[2] ?? "m";
  const seconds = unit === "s" ? v : unit === "h" ? v * 3600 : v * 60;
  if (!(seconds > 0)) throw new UsageError(`${flag} must be longer than zero. Received: ${raw}`);
  return seconds;
}

function parseObjectives(raw: string): ObjectiveKey[] {
  const keys = raw
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
  for (const k of keys)
    if (!(OBJECTIVE_KEYS as readonly string[]).includes(k))
      throw new UsageError(`--objectives: unknown objective "${k}". Objectives: ${OBJECTIVE_KEYS.join(", ")}`);
  if (!keys.includes("accuracy"))
    throw new UsageError("--objectives must include accuracy (validation accuracy), e.g. accuracy,params");
  return [...new Set(keys)] as ObjectiveKey[];
}

function positiveOrUndefined(flag: string, v: number | undefined): number | undefined {
  if (v !== undefined && !(v > 0)) throw new UsageError(`--${flag} must be greater than zero. Received: ${v}`);
  return v;
}

export const searchCommand = defineCommand({
  name: "search",
  summary:
    "Search a design space (spaces/*.json) under parameter, MAC and latency budgets: random, aging evolution, " +
    "ASHA or evolution+ASHA; `search status STUDY`, `search report STUDY`, `--resume STUDY`.",
  positionals: [
    { name: "ACTION", description: "status or report (omit to run a search)", optional: true },
    { name: "STUDY", description: "the study folder (for status and report)", optional: true },
  ],
  passthrough: true,
  flags: {
    space: {
      type: "string",
      valueName: "NAME|FILE",
      description: `design space: ${listSpaces().join(", ")}, or a JSON file`,
    },
    recipe: {
      type: "string",
      valueName: "NAME|FILE",
      description:
        "training recipe of every trial (its data set, optimizer, augmentation); --FIELD VALUE overrides as in train",
      default: "fashion-mnist-quick",
    },
    out: { type: "string", valueName: "DIR", description: "study folder (default studies/<space>-<time>)" },
    resume: { type: "string", valueName: "STUDY", description: "continue the study in this folder" },
    "max-params": { type: "integer", valueName: "N", description: "parameter budget (checked before training)" },
    "min-params": {
      type: "integer",
      valueName: "N",
      description: "parameter floor: candidates below it are turned down like those over the budget (use the budget)",
    },
    "min-macs": { type: "integer", valueName: "N", description: "multiply-add floor (as --min-params)" },
    "max-macs": {
      type: "integer",
      valueName: "N",
      description: "multiply-add budget per image (checked before training)",
    },
    "max-latency-ms": {
      type: "number",
      valueName: "MS",
      description: "batch-1 latency budget through the inference plan, measured here",
    },
    strategy: {
      type: "string",
      valueName: "NAME",
      description: `${STRATEGIES.join(", ")}`,
      default: "evolution-asha",
    },
    objectives: {
      type: "string",
      valueName: "LIST",
      description: `what to optimize: accuracy alone, or with ${OBJECTIVE_KEYS.slice(1).join("/")} (a Pareto front)`,
      default: "accuracy",
    },
    fidelity: {
      type: "string",
      valueName: "KIND",
      description: "ASHA's resource: epochs or data (fraction of the training part)",
      default: "epochs",
    },
    "min-resource": {
      type: "number",
      valueName: "R",
      description: "ASHA's lowest rung (epochs, or a data fraction; default max/eta^2)",
    },
    "max-resource": {
      type: "number",
      valueName: "R",
      description: "the top rung and every random/evolution trial (default: the recipe's epochs, or 1 for data)",
    },
    eta: { type: "integer", valueName: "N", description: "ASHA's reduction factor", default: 3 },
    population: { type: "integer", valueName: "N", description: "evolution's population", default: 20 },
    sample: { type: "integer", valueName: "N", description: "evolution's tournament size", default: 5 },
    trials: { type: "integer", valueName: "N", description: "stop after this many trials (promotions count)" },
    time: { type: "string", valueName: "DURATION", description: "stop after this much search time (30m, 2h)" },
    workers: {
      type: "integer",
      valueName: "N",
      description: "local trials at once (libtorch threads split between them)",
      default: 1,
    },
    queue: {
      type: "string",
      valueName: "URL",
      description: "run trials on a Redis queue (redis://HOST:PORT/DB) for `budgetnet worker`s",
    },
    seed: { type: "integer", valueName: "N", description: "the search's random seed", default: 0 },
    json: { type: "boolean", description: "print the result as JSON" },
  },
  async run(args) {
    const [action, studyArg] = args.positionals;
    if (action !== undefined) {
      if (action !== "status" && action !== "report")
        throw new UsageError(`unknown search action "${action}": use status or report (or no action to search).`);
      if (studyArg === undefined)
        throw new UsageError(`search ${action} needs the study folder: budgetnet search ${action} DIR`);
      const spec = readStudy(studyArg);
      if (action === "status") {
        const state = loadState(studyArg);
        if (args.flags.json)
          process.stdout.write(
            `${JSON.stringify({ study: spec.name, elapsed: state.elapsed, trials: [...state.trials.values()] })}\n`,
          );
        else {
          const tty = process.stdout.isTTY ? { columns: process.stdout.columns ?? 80 } : undefined;
          process.stdout.write(`${formatStatus(studyArg, spec, state, tty)}\n`);
        }
        return 0;
      }
      const report = writeReport(studyArg);
      if (args.flags.json) process.stdout.write(`${JSON.stringify(report.files)}\n`);
      else process.stdout.write(`${report.text}\n`);
      return 0;
    }

    let dir: string;
    if (args.flags.resume !== undefined) {
      dir = args.flags.resume;
      readStudy(dir); // a clear error when it is not a study
      const given = [
        "space",
        "out",
        "max-params",
        "max-macs",
        "max-latency-ms",
        "min-params",
        "min-macs",
        "trials",
        "time",
      ].filter((f) => (args.flags as Record<string, unknown>)[f] !== undefined);
      if (given.length > 0 || Object.keys(args.extra).length > 0)
        throw new UsageError(
          `--resume continues ${dir} exactly as it was started; drop ${[...given.map((f) => `--${f}`), ...Object.keys(args.extra).map((f) => `--${f}`)].join(", ")} (or start a new study with --out).`,
        );
    } else {
      // an unreachable queue is refused before a study is written
      if (args.flags.queue !== undefined) await (await import("../search/queue")).checkRedisReachable(args.flags.queue);
      dir = createStudy(args.flags, args.extra);
    }

    // bullmq loads only for a queued search
    const executor: Executor =
      args.flags.queue !== undefined
        ? await (await import("../search/queue_executor")).QueueExecutor.open(args.flags.queue, studyId(readStudy(dir)))
        : new LocalExecutor(args.flags.workers);
    let interrupted = 0;
    const onSignal = (): void => {
      interrupted++;
      if (interrupted === 1)
        process.stderr.write(
          "\nbudgetnet: stopping the search: running trials are stopped and will restart on --resume\n",
        );
    };
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
    const spec = readStudy(dir);
    process.stderr.write(
      `budgetnet: search ${spec.name} in ${dir}: ${spec.strategy} over ${spec.space.name} (${spec.space.model}) on ${spec.recipe.dataset}, ${executor.description}\n`,
    );
    try {
      const summary = await runStudy(dir, {
        executor,
        shouldStop: () => interrupted > 0,
        events: {
          onEvent(e) {
            if (e.event === "result")
              process.stderr.write(
                `  trial ${e.trial} (rung ${e.rung}): ${(100 * (e.valAccuracy as number)).toFixed(2)}% val in ${(e.seconds as number).toFixed(0)} s\n`,
              );
            else if (e.event === "failure") process.stderr.write(`  trial ${e.trial} failed: ${e.error}\n`);
            else if (e.event === "trial")
              process.stderr.write(
                `  trial ${e.trial} (rung ${e.rung}, ${e.resource}): ${formatPoint(e.point as Record<string, unknown>)}\n`,
              );
          },
        },
      });
      if (args.flags.json) process.stdout.write(`${JSON.stringify({ study: dir, ...summary })}\n`);
      else
        process.stdout.write(
          `${summary.stopReason}: ${summary.trials} trials (${summary.done} done, ${summary.failed} failed, ${summary.interrupted} interrupted) in ${(summary.elapsed / 60).toFixed(1)} min; ` +
            `${summary.best === undefined ? "none finished" : `best trial ${summary.best.id}: ${(100 * (summary.best.valAccuracy as number)).toFixed(2)}% val`}. ` +
            `Next: budgetnet search report ${dir}\n`,
        );
      if (summary.stopReason.startsWith("every trial failed")) return 1;
      return summary.stopReason === "stopped" ? 130 : 0;
    } finally {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
      await executor.close();
    }
  },
});

type SearchFlags = Parameters<(typeof searchCommand)["run"]>[0]["flags"];

/** Checks everything a new study needs, writes study.json, and returns the folder. */
function createStudy(flags: SearchFlags, extra: Record<string, string>): string {
  if (flags.space === undefined)
    throw new UsageError(`search needs --space NAME|FILE (${listSpaces().join(", ")}) or --resume STUDY`);
  const space = loadSpace(flags.space);
  if (!(STRATEGIES as readonly string[]).includes(flags.strategy))
    throw new UsageError(`--strategy: unknown strategy "${flags.strategy}". Strategies: ${STRATEGIES.join(", ")}`);
  const strategy = flags.strategy as StrategyName;
  if (flags.fidelity !== "epochs" && flags.fidelity !== "data")
    throw new UsageError(`--fidelity must be epochs or data. Received: ${flags.fidelity}`);
  const objectives = parseObjectives(flags.objectives);
  const budgets = {
    maxParams: positiveOrUndefined("max-params", flags["max-params"]),
    maxMacs: positiveOrUndefined("max-macs", flags["max-macs"]),
    maxLatencyMs: positiveOrUndefined("max-latency-ms", flags["max-latency-ms"]),
    minParams: positiveOrUndefined("min-params", flags["min-params"]),
    minMacs: positiveOrUndefined("min-macs", flags["min-macs"]),
  };
  for (const [lo, hi, what] of [
    [budgets.minParams, budgets.maxParams, "params"],
    [budgets.minMacs, budgets.maxMacs, "macs"],
  ] as const)
    if (lo !== undefined && hi !== undefined && lo > hi)
      throw new UsageError(`--min-${what} ${lo} is above --max-${what} ${hi}: no candidate can satisfy both.`);
  if (flags.trials === undefined && flags.time === undefined)
    throw new UsageError("search needs a limit: --trials N and/or --time DURATION (30m, 2h)");
  const maxTrials = flags.trials ?? null;
  if (maxTrials !== null && maxTrials < 1) throw new UsageError(`--trials must be >= 1. Received: ${maxTrials}`);
  const timeLimitSeconds = flags.time === undefined ? null : parseDuration("--time", flags.time);
  const recipe = applyOverrides(loadRecipe(flags.recipe), extra);

  const multi = strategy === "asha" || strategy === "evolution-asha";
  const integral = flags.fidelity === "epochs";
  const max = flags["max-resource"] ?? (integral ? recipe.epochs : 1);
  if (integral && !Number.isInteger(max))
    throw new UsageError(`--max-resource is a number of epochs (an integer). Received: ${max}`);
  if (!integral && !(max > 0 && max <= 1))
    throw new UsageError(`--max-resource is a data fraction in (0, 1]. Received: ${max}`);
  const min = multi
    ? (flags["min-resource"] ?? (integral ? Math.max(1, Math.round(max / flags.eta ** 2)) : max / flags.eta ** 2))
    : max;
  if (!multi && flags["min-resource"] !== undefined)
    throw new UsageError(
      `--min-resource sets ASHA's lowest rung; --strategy ${strategy} trains every trial at --max-resource.`,
    );
  const rungs = rungResources(min, max, flags.eta, integral);

  process.stderr.write(`budgetnet: reading ${recipe.dataset} to size the models to the data\n`);
  const data = prepareData(recipe);
  const shape = { channels: data.train.channels, size: data.train.height, numClasses: data.train.numClasses };
  if (data.train.height !== data.train.width)
    throw new ArgumentError(
      `search sizes models for square images; ${recipe.dataset} has ${data.train.height}x${data.train.width}.`,
    );
  const checker = new BudgetChecker(space, shape, budgets);
  checkBudgetsReachable(space, checker, flags.seed);

  const dir = flags.out ?? path.join("studies", `${space.name}-${new Date().toISOString().replace(/[:.]/g, "-")}`);
  let exists = false;
  try {
    readStudy(dir);
    exists = true;
  } catch {
    // not a study yet: created below
  }
  if (exists)
    throw new UsageError(`${dir} already holds a study. Continue it with --resume ${dir}, or choose another --out.`);
  const spec: StudySpec = createStudySpec({
    name: path.basename(path.resolve(dir)),
    space: space.raw as StudySpec["space"],
    spaceOrigin: space.origin,
    recipe,
    data: { ...shape, trainImages: data.train.n },
    budgets,
    strategy,
    objectives,
    fidelity: flags.fidelity,
    rungs,
    eta: flags.eta,
    population: flags.population,
    sample: flags.sample,
    seed: flags.seed,
    maxTrials,
    timeLimitSeconds,
  });
  writeStudy(dir, spec);
  return dir;
}
