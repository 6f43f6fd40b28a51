// `budgetnet data download NAME [--root DIR] [--base-url URL]`: fetches a data set from its official
// address, verifies the published MD5, resumes a partial download, and renames into place.
import { type DownloadName, downloadDataset } from "../data";
import { RESOURCES } from "../data/download";
import { defineCommand, UsageError } from "./args";

export const dataCommand = defineCommand({
  name: "data",
  summary: `Download a data set: budgetnet data download ${Object.keys(RESOURCES).join("|")} (checksummed, resumable).`,
  positionals: [
    { name: "ACTION", description: "download" },
    { name: "NAME", description: Object.keys(RESOURCES).join(", ") },
  ],
  flags: {
    root: {
      type: "string",
      valueName: "DIR",
      description: "target folder (default $BUDGETNET_DATA/NAME or ~/.cache/budgetnet/NAME)",
    },
    "base-url": { type: "string", valueName: "URL", description: "a mirror holding the same file names" },
  },
  async run(args) {
    const [action, name] = args.positionals;
    if (action !== "download") throw new UsageError(`unknown data action. Known: download. Received: ${action}`);
    if (!(name !== undefined && name in RESOURCES))
      throw new UsageError(`unknown data set. Known: ${Object.keys(RESOURCES).join(", ")}. Received: ${name}`);
    const files = await downloadDataset(name as DownloadName, {
      root: args.flags.root,
      baseUrl: args.flags["base-url"],
      log: (m) => process.stderr.write(`${m}\n`),
    });
    process.stdout.write(`${files.join("\n")}\n`);
    return 0;
  },
});
