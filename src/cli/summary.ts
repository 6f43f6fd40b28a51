// `budgetnet summary MODEL`: per-layer table, parameters, multiply-adds, activation memory, for
// the model with the same model flags as train (--model-options.NAME VALUE); with --recipe or
// --data, the model and input `budgetnet train` would use (sized to the recipe's data by
// src/train/sizing.ts, as the trainer sizes it). With --help-options, the model's declared options.
import { formatSummary, summary } from "../analysis/summary";
import { createModel, getModelEntry, type ModelEntry, modelSpec, optionRows } from "../models";
import { int8WeightBytes } from "../quant/size";
import { ArgumentError, describe, didYouMean } from "../tensor/errors";
import { applyOverrides, DEFAULT_CONFIG } from "../train/config";
import { recipeInput, type SizedModel, sizeModelToData } from "../train/sizing";
import { defineCommand, type FlagSpec, UsageError } from "./args";
import { resolveTrainConfig } from "./train_plan";

/** The model's options as a table; defaults are the model's own (its name's, else the family's). */
export function formatOptionTable(entry: ModelEntry): string {
  const rows = optionRows(entry.options).map((r) => ({
    ...r,
    default: entry.defaults[r.name] === undefined ? r.default : describe(entry.defaults[r.name]),
  }));
  const head = { name: "option", type: "type", default: "default", allowed: "allowed", help: "help" };
  const cols = ["name", "type", "default", "allowed"] as const;
  const width = Object.fromEntries(cols.map((c) => [c, Math.max(...[head, ...rows].map((r) => r[c].length))]));
  const line = (r: typeof head) => `${cols.map((c) => r[c].padEnd(width[c] ?? 0)).join("  ")}  ${r.help}`;
  const title = `${entry.name} (${entry.family}) options; give them as --model-options.NAME VALUE or in a recipe's modelOptions`;
  return [title, line(head), ...rows.map(line)].join("\n");
}

/** Summary-only settings that a recipe decides; given with --recipe or --data they are refused. */
const SHAPE_FLAGS = ["num-classes", "in-channels"] as const;

/** Recipe fields that make a summary size the model for a data set, as with --recipe. */
const DATA_FIELDS = new Set(["dataset", "data-root", "dataRoot"]);

/** The recipe fields summary takes besides its own flags: the model, its options and the data set. */
function isModelOrDataField(flag: string): boolean {
  return /^model[-_]?options(\.|$)/i.test(flag) || flag === "model" || DATA_FIELDS.has(flag);
}

/** Refuses recipe fields that do not change the model or its input (they would do nothing here). */
function checkExtraFlags(extra: Record<string, string>, known: string[]): void {
  const other = Object.keys(extra).find((k) => !isModelOrDataField(k));
  if (other === undefined) return;
  const flags = [...known.map((f) => `--${f}`), "--model-options.NAME", "--model", "--dataset", "--data-root"];
  throw new UsageError(
    `unknown flag --${other} for \`summary\`${didYouMean(`--${other}`, flags)}. Known flags: ${flags.join(", ")}, --help ` +
      "(summary takes the model, its options and the data set of a training run; other recipe fields do not change its size).",
  );
}

interface SummaryTarget {
  name: string;
  sized: SizedModel;
  inputShape: [number, number, number];
  /** Where the input shape came from, in words. */
  input: string;
}

/** The model and input a `train` with the same recipe and flags would build and feed. */
async function targetFromRecipe(
  name: string | undefined,
  flags: { recipe?: string; data?: string; "image-size"?: number },
  extra: Record<string, string>,
): Promise<SummaryTarget> {
  const overrides: Record<string, string> = { ...(name === undefined ? {} : { model: name }), ...extra };
  if (flags["image-size"] !== undefined) overrides["image-size"] = String(flags["image-size"]);
  const { cfg } = await resolveTrainConfig({ recipe: flags.recipe, data: flags.data }, overrides);
  const input = await recipeInput(cfg);
  return {
    name: cfg.model,
    sized: sizeModelToData(cfg.model, cfg.modelOptions, input),
    inputShape: [input.channels, input.height, input.width],
    input: `recipe ${cfg.name}, ${input.description}`,
  };
}

/** The model on the input the flags give (3x32x32 and 10 classes unless set). */
function targetFromFlags(
  name: string,
  flags: { "image-size"?: number; "in-channels"?: number; "num-classes"?: number },
  extra: Record<string, string>,
): SummaryTarget {
  const cfg = applyOverrides({ ...DEFAULT_CONFIG, model: name }, extra);
  const side = flags["image-size"] ?? 32;
  const data = {
    channels: flags["in-channels"] ?? 3,
    height: side,
    width: side,
    numClasses: flags["num-classes"] ?? 10,
  };
  return {
    name,
    sized: sizeModelToData(name, cfg.modelOptions, data),
    inputShape: [data.channels, side, side],
    input: `${data.channels}x${side}x${side} images, ${data.numClasses} classes`,
  };
}

const summaryFlags = {
  "num-classes": { type: "integer", valueName: "N", description: "classifier outputs (default 10)" },
  "in-channels": { type: "integer", valueName: "C", description: "input channels (default 3; 1 for Fashion-MNIST)" },
  "image-size": {
    type: "integer",
    valueName: "S",
    description: "input height and width (default 32; with --recipe or --data, an image folder's resize)",
  },
  json: { type: "boolean", description: "print JSON (params, macs, layers, ...) instead of a table" },
  "help-options": { type: "boolean", description: "print the model's options (type, default, allowed, help)" },
  recipe: {
    type: "string",
    valueName: "NAME|FILE",
    description: "size the model as `budgetnet train --recipe` would: its model, model options and data set's input",
  },
  data: {
    type: "string",
    valueName: "DIR",
    description: "an image folder, as `budgetnet train --data DIR` trains on it",
  },
} as const satisfies Record<string, FlagSpec>;

export const summaryCommand = defineCommand({
  name: "summary",
  summary:
    "Build a registered model and print its layers, parameters, multiply-adds and activation memory for one input; " +
    "with --recipe (or --data), the model and input `budgetnet train` would use.",
  positionals: [
    {
      name: "MODEL",
      description: "a registered model name (see `budgetnet models`); with --recipe, instead of the recipe's",
      optional: true,
    },
  ],
  passthrough: isModelOrDataField,
  flags: summaryFlags,
  async run(args) {
    const name = args.positionals[0];
    if (args.flags["help-options"]) {
      if (name === undefined) throw new UsageError("--help-options needs MODEL: the model whose options to list.");
      const entry = getModelEntry(name);
      if (entry === undefined)
        createModel(name); // fails with the list of known names
      else process.stdout.write(`${formatOptionTable(entry)}\n`);
      return 0;
    }
    checkExtraFlags(args.extra, Object.keys(summaryFlags));
    if (name !== undefined && args.extra.model !== undefined && args.extra.model !== name)
      throw new UsageError(`give the model once: MODEL ${name} or --model ${args.extra.model}.`);
    const { recipe, data } = args.flags;
    const fromRecipe =
      recipe !== undefined || data !== undefined || Object.keys(args.extra).some((k) => DATA_FIELDS.has(k));
    let target: SummaryTarget;
    if (fromRecipe) {
      const given = SHAPE_FLAGS.find((f) => args.flags[f] !== undefined);
      if (given !== undefined)
        throw new ArgumentError(
          `--${given} comes from the recipe's data set when summary sizes the model for a recipe (--recipe, --data); drop it.`,
        );
      target = await targetFromRecipe(name, args.flags, args.extra);
    } else {
      if (name === undefined) throw new UsageError("`summary` needs MODEL, or --recipe NAME|FILE, or --data DIR.");
      target = targetFromFlags(name, args.flags, args.extra);
    }
    const { sized, inputShape } = target;
    const model = createModel(target.name, sized.options);
    try {
      const s = summary(model, { inputShape });
      const { rows, ...totals } = s;
      const int8Bytes = int8WeightBytes(model);
      const options = modelSpec(model)?.options ?? sized.options;
      if (args.flags.json)
        process.stdout.write(
          `${JSON.stringify({ model: target.name, options, derived: sized.derived, input: target.input, ...totals, int8Bytes, layers: rows })}\n`,
        );
      else {
        const fromData = Object.entries(sized.derived)
          .filter(([k]) => k !== "numClasses" && k !== "inChannels")
          .map(([k, d]) => `  ${k} ${describe(d.value)}: ${d.reason}`);
        const head = [
          `input: ${target.input}`,
          ...(fromData.length > 0 ? ["options from the input:", ...fromData] : []),
        ];
        const sizes = `size in bytes:     float32 ${s.paramBytes}, int8 ${int8Bytes} (\`budgetnet quantize\`: conv and linear weights int8 with per-channel scales)`;
        process.stdout.write(`${head.join("\n")}\n${formatSummary(s, target.name)}\n${sizes}\n`);
      }
    } finally {
      model.dispose();
    }
    return 0;
  },
});
