// The package root: the folder holding budgetnet's package.json (and build/, recipes/, examples/).
// src/paths.ts and dist/src/paths.js both sit below it, and so does an installed copy in
// node_modules/budgetnet. No native import: the addon's loader (src/tensor/binding.ts) needs it first.
import * as fs from "node:fs";
import * as path from "node:path";

let root: string | undefined;

function readPackageJson(dir: string): { name?: unknown; version?: unknown } | undefined {
  const file = path.join(dir, "package.json");
  if (!fs.existsSync(file)) return undefined;
  try {
    return JSON.parse(fs.readFileSync(file, "utf8")) as { name?: unknown; version?: unknown };
  } catch {
    return undefined;
  }
}

/** The nearest folder above this file whose package.json names budgetnet. */
export function packageRoot(): string {
  if (root !== undefined) return root;
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    if (readPackageJson(dir)?.name === "budgetnet") {
      root = dir;
      return dir;
    }
    if (path.dirname(dir) === dir) break;
  }
  throw new Error(`budgetnet: its package.json was not found in any folder above ${__dirname}; reinstall budgetnet.`);
}

/** budgetnet's version from its package.json, or "unknown" when that cannot be read. */
export function packageVersion(): string {
  try {
    const version = readPackageJson(packageRoot())?.version;
    return typeof version === "string" ? version : "unknown";
  } catch {
    return "unknown";
  }
}

/**
 * The modules a user loaded with --require (resolved paths, path.delimiter-separated): set by the
 * CLI for the processes it starts, read by search and ablation trials (src/search/trial_main.ts).
 */
export const USER_MODULES_ENV = "BUDGETNET_REQUIRE";
