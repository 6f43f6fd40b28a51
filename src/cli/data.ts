// `budgetnet data download NAME [--root DIR] [--base-url URL]`: fetches a data set from its official
// address, verifies the published MD5, resumes a partial download, and renames into place.
// Also the command line's words for missing data (train and the error printer in main.ts use them).
import * as fs from "node:fs";
import * as path from "node:path";
import { type DownloadName, dataHome, defaultRoots, downloadDataset } from "../data";
import { DataNotFoundError } from "../data/dataset";
import { RESOURCES } from "../data/download";
import { DATASET_NAMES, type DatasetName } from "../data/paths";
import { ArgumentError, didYouMean } from "../tensor/errors";
import { defineCommand, UsageError } from "./args";

/** What the CLI prints for a DataNotFoundError: the command that fetches the data, or the flag that points at it. */
export function dataNotFoundMessage(e: DataNotFoundError): string {
  const where = e.looked.length > 0 ? ` (looked in ${e.looked.join(", ")})` : "";
  if (!(e.dataset in RESOURCES)) return `${e.dataset} was not found${where}.`;
  const download =
    path.resolve(e.root) === path.resolve(dataHome(e.dataset))
      ? `budgetnet data download ${e.dataset}`
      : `budgetnet data download ${e.dataset} --root ${e.root}`;
  const debian = e.dataset === "fashion-mnist" ? ", install Debian's dataset-fashion-mnist" : "";
  return `${e.dataset} was not found${where}. Run \`${download}\` to fetch it${debian}, or pass --data-root DIR: the folder that holds it.`;
}

/** The train split's files of an IDX data set (Fashion-MNIST, MNIST) are in root, gzipped or not. */
function idxPresent(root: string): boolean {
  return ["train-images-idx3-ubyte.gz", "train-images-idx3-ubyte"].some((f) => fs.existsSync(path.join(root, f)));
}

/**
 * Before a run starts: says in the command line's words when its data cannot be there (a folder
 * data set without --data-root, a --data-root that does not exist, a built-in data set in none
 * of its default places). Deeper problems (a damaged file) are the readers' own errors.
 */
export function checkDataFound(dataset: string, dataRoot: string | null): void {
  if (!(DATASET_NAMES as readonly string[]).includes(dataset)) return; // the recipe check names it
  if (dataset === "folder" && dataRoot === null)
    throw new ArgumentError("--dataset folder needs --data-root DIR (a folder of class subfolders of images).");
  if (dataRoot !== null && !fs.existsSync(dataRoot))
    throw new ArgumentError(`--data-root ${dataRoot}: no such file or folder (the ${dataset} data set's files).`);
  // CIFAR's reader looks inside the folder itself (and throws DataNotFoundError when it is not there)
  const present = dataset === "cifar10" || dataset === "cifar100" || dataset === "folder" ? fs.existsSync : idxPresent;
  const roots = dataRoot !== null ? [dataRoot] : defaultRoots(dataset as DatasetName);
  if (roots.some((r) => present(r))) return;
  throw new DataNotFoundError(
    `${dataset} was not found (looked in ${roots.join(", ")})`,
    dataset,
    roots[0] as string,
    roots,
  );
}

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
    const [action, name] = args.positionals as [string, string];
    if (action !== "download")
      throw new UsageError(`unknown data action "${action}"${didYouMean(action, ["download"])}. Known: download`);
    const names = Object.keys(RESOURCES);
    if (!names.includes(name))
      throw new UsageError(`unknown data set "${name}"${didYouMean(name, names)}. Known: ${names.join(", ")}`);
    const files = await downloadDataset(name as DownloadName, {
      root: args.flags.root,
      baseUrl: args.flags["base-url"],
      log: (m) => process.stderr.write(`${m}\n`),
    });
    process.stdout.write(`${files.join("\n")}\n`);
    return 0;
  },
});
