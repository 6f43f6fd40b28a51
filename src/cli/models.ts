// `budgetnet models`: the registered architectures, as a table or JSON (with every family's
// declared option schema: type, default, range or choices, help; see src/models/options.ts).
import { countParameters } from "../analysis/summary";
import { createModel, listModels } from "../models";
import { defineCommand } from "./args";

export const modelsCommand = defineCommand({
  name: "models",
  summary: "List the registered model architectures (name, family, description; --params builds each to count).",
  positionals: [],
  flags: {
    json: { type: "boolean", description: "print JSON instead of a table" },
    family: { type: "string", valueName: "NAME", description: "only models of this family" },
    params: { type: "boolean", description: "build every model to count its parameters (slower)" },
  },
  run(args) {
    const family = args.flags.family;
    const entries = listModels().filter((m) => family === undefined || m.family === family);
    const rows = entries.map((m) => {
      let params: number | undefined;
      if (args.flags.params) {
        const model = createModel(m.name);
        params = countParameters(model);
        model.dispose();
      }
      return {
        name: m.name,
        family: m.family,
        description: m.description,
        source: m.source,
        large: m.large === true,
        defaults: m.defaults,
        options: m.options.specs,
        ...(params === undefined ? {} : { params }),
      };
    });
    if (args.flags.json) {
      process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
      return 0;
    }
    const nameW = Math.max(4, ...rows.map((r) => r.name.length));
    const famW = Math.max(6, ...rows.map((r) => r.family.length));
    const paramCol = (r: { params?: number }): string =>
      args.flags.params ? `${((r.params ?? 0) / 1e6).toFixed(2).padStart(8)}M  ` : "";
    const head = `${"name".padEnd(nameW)}  ${"family".padEnd(famW)}  ${args.flags.params ? `${"params".padStart(9)}  ` : ""}description`;
    const lines = rows.map((r) => `${r.name.padEnd(nameW)}  ${r.family.padEnd(famW)}  ${paramCol(r)}${r.description}`);
    process.stdout.write(`${[head, ...lines].join("\n")}\n`);
    return 0;
  },
});
