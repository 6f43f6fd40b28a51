// `budgetnet train --recipe NAME [--out DIR] [--resume] [--FIELD VALUE ...]`: any recipe field can be
// overridden (`--epochs 2 --batch-size 256 --model resnet56 --optimizer.lr 0.05`).
import * as path from "node:path";
import { applyOverrides, listRecipes, loadRecipe } from "../train/config";
import { readRunConfig, runRecipe } from "../train/run";
import { train } from "../train/trainer";
import { defineCommand } from "./args";

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
      description: `recipe name (${listRecipes().join(", ")}) or a JSON file`,
      default: "fashion-mnist-quick",
    },
    out: { type: "string", valueName: "DIR", description: "run folder (default runs/<recipe>-<time>)" },
    resume: { type: "boolean", description: "continue the run in --out from its checkpoint" },
    json: { type: "boolean", description: "print the result as JSON" },
  },
  async run(args) {
    const resume = args.flags.resume === true;
    const out = args.flags.out;
    if (resume && out === undefined) throw new Error("--resume needs --out DIR: the run folder to continue.");
    let cfg = resume && out !== undefined ? runRecipe(readRunConfig(out), out) : loadRecipe(args.flags.recipe);
    cfg = applyOverrides(cfg, args.extra);
    const runDir = out ?? path.join("runs", `${cfg.name}-${new Date().toISOString().replace(/[:.]/g, "-")}`);
    process.stderr.write(`budgetnet: training ${cfg.model} on ${cfg.dataset} (${cfg.name}) into ${runDir}\n`);
    const result = await train(cfg, { runDir, resume });
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
