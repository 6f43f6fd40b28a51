// `budgetnet ablate`: technique studies, models x technique combinations x seeds (src/ablate/).
//   budgetnet ablate --recipe R --models resnet29,preact_resnet164 --techniques se,mixup --combine all --seeds 3 --out DIR
//   budgetnet ablate --study study.json --out DIR       the same declared in a file
//   budgetnet ablate --resume DIR                       continue after Ctrl-C or kill -9
//   budgetnet ablate status DIR                         progress
//   budgetnet ablate report DIR                         table with intervals, gains, correlation, heatmap
import * as fs from "node:fs";
import * as path from "node:path";
import { writeAblateReport } from "../ablate/report";
import { ablateId, runAblation } from "../ablate/runner";
import {
  ABLATE_FILE,
  type AblateSpec,
  COMBINE_CHOICES,
  type Combine,
  checkDeclaration,
  createSpec,
  type Declaration,
  declarationDiff,
  loadAblateState,
  readSpec,
  writeSpec,
} from "../ablate/study";
import { BUILT_IN, parseTechniqueDef, type TechniqueDef } from "../ablate/techniques";
import { LocalExecutor } from "../search/local";
import { progressBar } from "../search/report";
import type { Executor } from "../search/study";
import { ArgumentError } from "../tensor/errors";
import { applyOverrides, loadRecipe } from "../train/config";
import { recipeInput } from "../train/sizing";
import { defineCommand, UsageError } from "./args";

const list = (raw: string | undefined): string[] =>
  (raw ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");

const BUILT_INS = Object.entries(BUILT_IN)
  .map(
    ([k, t]) =>
      `${k}${
        Object.keys(t.params).length
          ? `:${Object.entries(t.params)
              .map(([p, v]) => `${p}=${v}`)
              .join(",")}`
          : ""
      }`,
  )
  .join(", ");

export const ablateCommand = defineCommand({
  name: "ablate",
  summary:
    "Technique studies: models x techniques x seeds, paired by seed; `ablate report DIR` gives each technique's gain with " +
    "95% intervals, interactions and whether the small model's gains predict the big one's; `ablate status DIR`; `--resume DIR`.",
  positionals: [
    { name: "ACTION", description: "status or report (omit to run a study)", optional: true },
    { name: "DIR", description: "the study folder (for status and report)", optional: true },
  ],
  passthrough: true,
  flags: {
    study: {
      type: "string",
      valueName: "FILE",
      description:
        "the study declared in JSON: {recipe, overrides?, models, techniques (names or {name, recipe?, modelOptions?}), combine, seeds}",
    },
    recipe: {
      type: "string",
      valueName: "NAME|FILE",
      description:
        "recipe of the baseline, every cell starts from it (default fashion-mnist-ablation); --FIELD VALUE overrides as in train; its modelOptions apply to every model",
    },
    models: {
      type: "string",
      valueName: "A,B",
      description: "models to compare, small first (e.g. resnet29,preact_resnet164)",
    },
    techniques: {
      type: "string",
      valueName: "A,B",
      description: `techniques, NAME or NAME:PARAM=V (built in: ${BUILT_INS}), or names from --technique-file`,
    },
    "technique-file": {
      type: "string",
      valueName: "FILE",
      description:
        "JSON technique(s) of your own: {name, recipe?, modelOptions?} or a list of them (comma-separated files)",
    },
    combine: {
      type: "string",
      valueName: "MODE",
      description: "rows: none (baseline), single, pairs, all (every subset; the default)",
    },
    seeds: {
      type: "integer",
      valueName: "N",
      description: "seeds per cell, the same in every cell so gains are paired (default 3)",
    },
    out: { type: "string", valueName: "DIR", description: "study folder (default studies/ablate-<time>)" },
    resume: { type: "string", valueName: "DIR", description: "continue the study in this folder" },
    workers: {
      type: "integer",
      valueName: "N",
      description: "cells at once (libtorch threads split between them)",
      default: 1,
    },
    queue: {
      type: "string",
      valueName: "URL",
      description: "run cells on a Redis queue (redis://HOST:PORT/DB) for `budgetnet worker`s",
    },
    "retry-failed": { type: "boolean", description: "on --resume, run failed cells again" },
    "dry-run": { type: "boolean", description: "print the grid (rows, cells, params, MACs) and run nothing" },
    json: { type: "boolean", description: "print the result as JSON" },
  },
  async run(args) {
    const [action, dirArg] = args.positionals;
    if (action !== undefined) {
      if (action !== "status" && action !== "report")
        throw new UsageError(`unknown ablate action "${action}": use status or report (or no action to run a study).`);
      if (dirArg === undefined)
        throw new UsageError(`ablate ${action} needs the study folder: budgetnet ablate ${action} DIR`);
      const spec = readSpec(dirArg);
      if (action === "status") {
        process.stdout.write(`${formatAblateStatus(dirArg, spec, args.flags.json === true)}\n`);
        return 0;
      }
      const report = writeAblateReport(dirArg);
      process.stdout.write(args.flags.json ? `${JSON.stringify(report.files)}\n` : `${report.markdown}\n`);
      return 0;
    }

    let dir: string;
    let spec: AblateSpec;
    if (args.flags.resume !== undefined) {
      dir = args.flags.resume;
      spec = readSpec(dir);
      const declared =
        args.flags.study !== undefined || args.flags.models !== undefined || args.flags.techniques !== undefined;
      if (declared) refuseDifferent(dir, spec, await declarationFrom(args.flags, args.extra));
      else if (Object.keys(args.extra).length > 0)
        throw new UsageError(
          `--resume continues ${dir} as declared; drop ${Object.keys(args.extra)
            .map((f) => `--${f}`)
            .join(", ")}`,
        );
    } else {
      const declaration = await declarationFrom(args.flags, args.extra);
      dir = args.flags.out ?? path.join("studies", `ablate-${new Date().toISOString().replace(/[:.]/g, "-")}`);
      if (fs.existsSync(path.join(dir, ABLATE_FILE))) {
        // the same declaration again continues the study; another one is refused with the difference
        spec = readSpec(dir);
        refuseDifferent(dir, spec, declaration);
      } else {
        const recipe = applyOverrides(loadRecipe(declaration.recipe), declaration.overrides);
        const input = await recipeInput(recipe);
        spec = createSpec(path.basename(path.resolve(dir)), declaration, recipe, input);
        if (args.flags["dry-run"]) {
          process.stdout.write(`${formatGrid(spec)}\n`);
          return 0;
        }
        if (args.flags.queue !== undefined)
          await (await import("../search/queue")).checkRedisReachable(args.flags.queue);
        writeSpec(dir, spec);
      }
    }
    if (args.flags["dry-run"]) {
      process.stdout.write(`${formatGrid(spec)}\n`);
      return 0;
    }

    const executor: Executor =
      args.flags.queue !== undefined
        ? await (await import("../search/queue_executor")).QueueExecutor.open(args.flags.queue, ablateId(spec))
        : new LocalExecutor(args.flags.workers);
    let interrupted = 0;
    const onSignal = (): void => {
      interrupted++;
      if (interrupted === 1)
        process.stderr.write("\nbudgetnet: stopping the study: running cells are stopped and resume on --resume\n");
    };
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
    process.stderr.write(
      `budgetnet: ablate ${spec.name} in ${dir}: ${spec.rows.length} rows x ${spec.declaration.models.length} models x ${spec.declaration.seeds} seeds = ${spec.cells.length} cells on ${spec.recipe.dataset}, ${executor.description}\n`,
    );
    const total = spec.cells.length;
    try {
      const summary = await runAblation(dir, spec, {
        executor,
        retryFailed: args.flags["retry-failed"] === true,
        shouldStop: () => interrupted > 0,
        onEvent(e, state) {
          const c = typeof e.trial === "number" ? spec.cells[e.trial] : undefined;
          if (c === undefined) return;
          const what = `cell ${c.id + 1}/${total} ${c.model} ${c.row} seed ${c.seed}`;
          const done = state.cells.filter((s) => s.status === "done").length;
          if (e.event === "result")
            process.stderr.write(
              `  ${what}: ${pct(e.finalValAccuracy)} val, ${pct(e.testAccuracy)} test, ${(e.wallSeconds as number).toFixed(0)} s (${done}/${total} done)\n`,
            );
          else if (e.event === "failure") process.stderr.write(`  ${what} failed: ${e.error}\n`);
          else if (e.event === "trial") process.stderr.write(`  ${what}: started\n`);
        },
      });
      if (args.flags.json) process.stdout.write(`${JSON.stringify({ study: dir, ...summary })}\n`);
      else
        process.stdout.write(
          `${summary.stopReason}: ${summary.done}/${total} cells done, ${summary.failed} failed, ${summary.interrupted + summary.pending} to run, ` +
            `${(summary.elapsed / 60).toFixed(1)} min. Next: budgetnet ablate report ${dir}\n`,
        );
      if (summary.stopReason.startsWith("every cell failed")) return 1;
      return summary.stopReason === "stopped" ? 130 : summary.failed > 0 ? 1 : 0;
    } finally {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
      await executor.close();
    }
  },
});

type AblateFlags = Parameters<(typeof ablateCommand)["run"]>[0]["flags"];

const pct = (v: unknown): string => (typeof v === "number" ? `${(100 * v).toFixed(2)}%` : "n/a");

function refuseDifferent(dir: string, spec: AblateSpec, given: Declaration): void {
  const diff = declarationDiff(spec.declaration, given);
  if (diff.length > 0)
    throw new UsageError(
      `${dir} holds a study declared differently, so it cannot continue as this one:\n  ${diff.join("\n  ")}\n` +
        `Resume it as declared with budgetnet ablate --resume ${dir}, or start a new study with another --out.`,
    );
}

function readJsonFile(file: string, what: string): unknown {
  if (!fs.existsSync(file)) throw new ArgumentError(`${what} ${file}: no such file`);
  try {
    return JSON.parse(fs.readFileSync(file, "utf8")) as unknown;
  } catch (e) {
    throw new ArgumentError(`${what} ${file} is not valid JSON: ${(e as Error).message}`);
  }
}

/** The declaration from --study FILE and/or the flags (flags given explicitly win over the file). */
async function declarationFrom(flags: AblateFlags, extra: Record<string, string>): Promise<Declaration> {
  const fromFile: Partial<Declaration> & { techniques?: string[] } = {};
  const userTechniques: TechniqueDef[] = [];
  const modelOptions: Record<string, Record<string, unknown>> = {};
  if (flags.study !== undefined) {
    const raw = readJsonFile(flags.study, "study file");
    if (raw === null || typeof raw !== "object" || Array.isArray(raw))
      throw new ArgumentError(
        `study file ${flags.study} must hold a JSON object {recipe, models, techniques, combine, seeds}`,
      );
    const o = raw as Record<string, unknown>;
    const known = ["$schema", "name", "recipe", "overrides", "models", "techniques", "combine", "seeds"];
    for (const k of Object.keys(o))
      if (!known.includes(k))
        throw new ArgumentError(`study file ${flags.study}: unknown field "${k}". Known: ${known.slice(1).join(", ")}`);
    if (o.recipe !== undefined) fromFile.recipe = String(o.recipe);
    if (o.overrides !== undefined)
      fromFile.overrides = Object.fromEntries(
        Object.entries(o.overrides as object).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)]),
      );
    if (Array.isArray(o.models))
      fromFile.models = o.models.map((m, i) => {
        if (typeof m === "string") return m;
        const mo = m as { name?: unknown; options?: unknown };
        if (
          m === null ||
          typeof m !== "object" ||
          typeof mo.name !== "string" ||
          (mo.options !== undefined &&
            (mo.options === null || typeof mo.options !== "object" || Array.isArray(mo.options)))
        )
          throw new ArgumentError(
            `study file ${flags.study}, models[${i}]: a model is a name or {"name": NAME, "options": {...}}`,
          );
        if (mo.options !== undefined) modelOptions[mo.name] = mo.options as Record<string, unknown>;
        return mo.name;
      });
    if (Array.isArray(o.techniques))
      fromFile.techniques = o.techniques.map((t, i) => {
        if (typeof t === "string") return t;
        const def = parseTechniqueDef(t, `study file ${flags.study}, techniques[${i}]`);
        userTechniques.push(def);
        return def.name;
      });
    if (o.combine !== undefined) fromFile.combine = String(o.combine) as Combine;
    if (o.seeds !== undefined) fromFile.seeds = Number(o.seeds);
  }
  for (const file of list(flags["technique-file"])) {
    const raw = readJsonFile(file, "technique file");
    const defs = Array.isArray(raw) ? raw : [raw];
    for (const [i, d] of defs.entries())
      userTechniques.push(parseTechniqueDef(d, `technique file ${file}${Array.isArray(raw) ? `[${i}]` : ""}`));
  }
  const names = userTechniques.map((t) => t.name);
  if (new Set(names).size !== names.length)
    throw new ArgumentError(`two user techniques share a name: ${names.join(", ")}`);
  const clash = names.find((n) => Object.hasOwn(BUILT_IN, n));
  if (clash !== undefined)
    throw new ArgumentError(`user technique "${clash}" has the name of a built-in one; rename it`);
  const combine = (flags.combine ?? fromFile.combine ?? "all") as Combine;
  if (!COMBINE_CHOICES.includes(combine))
    throw new UsageError(`--combine must be one of ${COMBINE_CHOICES.join(", ")}. Received: ${combine}`);
  const d: Declaration = {
    recipe: flags.recipe ?? fromFile.recipe ?? "fashion-mnist-ablation",
    overrides: { ...(fromFile.overrides ?? {}), ...extra },
    models: flags.models !== undefined ? list(flags.models) : (fromFile.models ?? []),
    modelOptions: flags.models !== undefined ? {} : modelOptions,
    techniques: flags.techniques !== undefined ? list(flags.techniques) : (fromFile.techniques ?? []),
    userTechniques,
    combine,
    seeds: flags.seeds ?? fromFile.seeds ?? 3,
  };
  checkDeclaration(d);
  return d;
}

function formatGrid(spec: AblateSpec): string {
  const lines = [
    `ablate ${spec.name}: recipe ${spec.declaration.recipe} (${spec.recipe.dataset}, ${spec.recipe.epochs} epochs), ${spec.declaration.seeds} seeds (${spec.recipe.seed}..${spec.recipe.seed + spec.declaration.seeds - 1})`,
    `${spec.rows.length} rows x ${spec.declaration.models.length} models x ${spec.declaration.seeds} seeds = ${spec.cells.length} cells`,
    `${"row".padEnd(28)}${spec.declaration.models.map((m) => m.padStart(26)).join("")}`,
  ];
  for (const row of spec.rows) {
    const cols = spec.declaration.models.map((m) => {
      const c = spec.cells.find((x) => x.model === m && x.row === row.label && x.k === 0);
      return c === undefined
        ? "".padStart(26)
        : `${(c.params / 1e6).toFixed(3)}M, ${(c.macs / 1e6).toFixed(1)}M MACs`.padStart(26);
    });
    lines.push(`${row.label.padEnd(28)}${cols.join("")}`);
  }
  return lines.join("\n");
}

/** Progress of a study: cells done, running, failed and still to run; a bar on a terminal. */
function formatAblateStatus(dir: string, spec: AblateSpec, json: boolean): string {
  const state = loadAblateState(dir, spec);
  const count = (s: string): number => state.cells.filter((c) => c.status === s).length;
  const done = count("done");
  if (json)
    return JSON.stringify({
      study: spec.name,
      elapsed: state.elapsed,
      cells: state.cells.map((c) => ({ ...c.cell, status: c.status, outcome: c.outcome, error: c.error })),
    });
  const bar = process.stdout.isTTY
    ? `${progressBar(done / spec.cells.length, Math.min(40, (process.stdout.columns ?? 80) - 40))} `
    : "";
  const lines = [
    `ablate ${spec.name} (${dir}): ${bar}${done}/${spec.cells.length} cells done, ${count("running")} running or interrupted, ${count("failed")} failed, ${count("pending")} to run; ${(state.elapsed / 60).toFixed(1)} min over ${state.sessions} session(s)`,
  ];
  for (const c of state.cells)
    if (c.status === "failed") lines.push(`  failed: ${c.cell.model} ${c.cell.row} seed ${c.cell.seed}: ${c.error}`);
  if (state.damaged.length > 0) lines.push(`journal lines that could not be read: ${state.damaged.join("; ")}`);
  return lines.join("\n");
}
