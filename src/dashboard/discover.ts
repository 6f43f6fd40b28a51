// Finding run folders, search studies and ablation studies under the folders the dashboard was
// given. Every folder is judged by its real path (symlinks resolved): one that resolves outside
// every given folder is refused and never read, so a link planted in a runs folder cannot expose
// the rest of the disk. Run folders are not descended into; nor are hidden folders and node_modules.
import * as fs from "node:fs";
import * as path from "node:path";

export type FolderKind = "run" | "search" | "ablation";

export interface FoundFolder {
  kind: FolderKind;
  /** Real path (symlinks resolved). */
  dir: string;
  /** Index of the root it was found under. */
  root: number;
  /** Path relative to that root, with "/" separators ("" for the root itself). */
  rel: string;
  /** The study folder (real path) holding this run, for a search trial or an ablation cell. */
  study?: string;
}

export interface Discovery {
  found: FoundFolder[];
  /** Paths (as met) whose real path lies outside every root: skipped. */
  refused: string[];
}

/** Files that make a folder a run folder: the trainer writes run.lock first, then config.json. */
const RUN_MARKERS = ["config.json", "metrics.jsonl", "run.lock", "checkpoint.safetensors"];
const MAX_DEPTH = 8;

/** Whether `p` is `root` or inside it (both real, absolute paths). */
export function isInside(p: string, root: string): boolean {
  const rel = path.relative(root, p);
  return rel === "" || (!rel.startsWith("..") && !path.isAbsolute(rel));
}

export function realRoots(roots: readonly string[]): string[] {
  return roots.map((r) => {
    const abs = path.resolve(r);
    try {
      return fs.realpathSync(abs);
    } catch {
      return abs; // a folder that does not exist yet: runs may appear there later
    }
  });
}

function listDir(dir: string): fs.Dirent[] {
  try {
    return fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
}

/** Walks every root. `roots` must be real paths (realRoots). */
export function discover(roots: readonly string[]): Discovery {
  const found: FoundFolder[] = [];
  const refused: string[] = [];
  const seen = new Set<string>();

  const toPosix = (p: string): string => p.split(path.sep).join("/");

  /** The real path of a child folder, or undefined when it is not a folder or lies outside the roots. */
  const resolveChild = (parent: string, entry: fs.Dirent): string | undefined => {
    const p = path.join(parent, entry.name);
    if (entry.isDirectory()) return p;
    if (!entry.isSymbolicLink()) return undefined;
    let real: string;
    try {
      real = fs.realpathSync(p);
      if (!fs.statSync(real).isDirectory()) return undefined;
    } catch {
      return undefined; // a dangling link
    }
    if (!roots.some((r) => isInside(real, r))) {
      refused.push(p);
      return undefined;
    }
    return real;
  };

  const walk = (dir: string, root: number, depth: number, study?: string): void => {
    if (seen.has(dir)) return; // a link back into a folder already walked
    seen.add(dir);
    const entries = listDir(dir);
    const files = new Set(entries.filter((e) => e.isFile()).map((e) => e.name));
    // a link may lead into another root: name the folder from the root that holds it
    const home = roots.findIndex((r) => isInside(dir, r));
    if (home >= 0) root = home;
    const rel = toPosix(path.relative(roots[root] as string, dir));
    if (study === undefined && files.has("study.json")) {
      found.push({ kind: "search", dir, root, rel });
      walkChildren(path.join(dir, "trials"), root, depth + 1, dir);
      return;
    }
    if (study === undefined && files.has("ablate.json")) {
      found.push({ kind: "ablation", dir, root, rel });
      walkChildren(path.join(dir, "cells"), root, depth + 1, dir);
      return;
    }
    if (RUN_MARKERS.some((m) => files.has(m))) {
      found.push({ kind: "run", dir, root, rel, study });
      return;
    }
    walkChildren(dir, root, depth, study);
  };

  const walkChildren = (dir: string, root: number, depth: number, study?: string): void => {
    if (depth >= MAX_DEPTH) return;
    for (const e of listDir(dir)) {
      if (e.name.startsWith(".") || e.name === "node_modules") continue;
      const child = resolveChild(dir, e);
      if (child !== undefined) walk(child, root, depth + 1, study);
    }
  };

  roots.forEach((root, i) => {
    if (fs.existsSync(root)) walk(root, i, 0);
  });
  return { found, refused };
}
