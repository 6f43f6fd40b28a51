// `budgetnet summary MODEL`: per-layer table, parameters, multiply-adds, activation memory.
import { formatSummary, summary } from "../analysis/summary";
import { createModel, getModelEntry, type ModelOptions } from "../models";
import type { CommandSpec } from "./args";

export const summaryCommand: CommandSpec = {
  name: "summary",
  summary: "Build a registered model and print its layers, parameters and multiply-adds for one input.",
  positionals: [{ name: "MODEL", description: "a registered model name (see `budgetnet models`)" }],
  flags: {
    "num-classes": { type: "integer", valueName: "N", description: "classifier outputs", default: 10 },
    "in-channels": { type: "integer", valueName: "C", description: "input channels (1 for Fashion-MNIST)", default: 3 },
    "image-size": { type: "integer", valueName: "S", description: "input height and width", default: 32 },
    json: { type: "boolean", description: "print JSON (params, macs, layers, ...) instead of a table" },
  },
  run(args) {
    const name = args.positionals[0] as string;
    const imageSize = args.flags["image-size"] as number;
    const inChannels = args.flags["in-channels"] as number;
    const options: ModelOptions = { numClasses: args.flags["num-classes"] as number, inChannels };
    // models whose classifier depends on the input size declare imageSize among their defaults
    if (getModelEntry(name)?.defaults.imageSize !== undefined) options.imageSize = imageSize;
    const model = createModel(name, options);
    try {
      const s = summary(model, { inputShape: [inChannels, imageSize, imageSize] });
      const { rows, ...totals } = s;
      if (args.flags.json) process.stdout.write(`${JSON.stringify({ model: name, options, ...totals, layers: rows })}\n`);
      else process.stdout.write(`${formatSummary(s, name)}\n`);
    } finally {
      model.dispose();
    }
    return 0;
  },
};
