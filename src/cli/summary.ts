// `budgetnet summary MODEL`: per-layer table, parameters, multiply-adds, activation memory;
// with --help-options, the model's declared options instead.
import { formatSummary, summary } from "../analysis/summary";
import { createModel, getModelEntry, type ModelEntry, type ModelOptions, optionRows } from "../models";
import { describe } from "../tensor/errors";
import { defineCommand } from "./args";

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

export const summaryCommand = defineCommand({
  name: "summary",
  summary: "Build a registered model and print its layers, parameters and multiply-adds for one input.",
  positionals: [{ name: "MODEL", description: "a registered model name (see `budgetnet models`)" }],
  flags: {
    "num-classes": { type: "integer", valueName: "N", description: "classifier outputs", default: 10 },
    "in-channels": { type: "integer", valueName: "C", description: "input channels (1 for Fashion-MNIST)", default: 3 },
    "image-size": { type: "integer", valueName: "S", description: "input height and width", default: 32 },
    json: { type: "boolean", description: "print JSON (params, macs, layers, ...) instead of a table" },
    "help-options": { type: "boolean", description: "print the model's options (type, default, allowed, help)" },
  },
  run(args) {
    const name = args.positionals[0] as string;
    if (args.flags["help-options"]) {
      const entry = getModelEntry(name);
      if (entry === undefined)
        createModel(name); // fails with the list of known names
      else process.stdout.write(`${formatOptionTable(entry)}\n`);
      return 0;
    }
    const imageSize = args.flags["image-size"];
    const inChannels = args.flags["in-channels"];
    const options: ModelOptions = { numClasses: args.flags["num-classes"], inChannels };
    // models whose classifier depends on the input size declare imageSize among their defaults
    if (getModelEntry(name)?.defaults.imageSize !== undefined) options.imageSize = imageSize;
    const model = createModel(name, options);
    try {
      const s = summary(model, { inputShape: [inChannels, imageSize, imageSize] });
      const { rows, ...totals } = s;
      if (args.flags.json)
        process.stdout.write(`${JSON.stringify({ model: name, options, ...totals, layers: rows })}\n`);
      else process.stdout.write(`${formatSummary(s, name)}\n`);
    } finally {
      model.dispose();
    }
    return 0;
  },
});
