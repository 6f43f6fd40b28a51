#!/usr/bin/env node
// npm's install and prepare scripts: `node scripts/build-if-needed.js addon|dist` builds the native
// addon (node-gyp rebuild) or the JavaScript (tsc). npm runs them on `npm ci` and `npm install`, and
// also each time `npx budgetnet` in this folder installs the folder itself into npx's cache to find
// its bin (npm_command=exec). Then the addon and dist/ that `npm ci` built are already here, and
// rebuilding them (a minute of node-gyp and tsc, silently) is skipped. BUDGETNET_REBUILD=1 builds anyway;
// `npm run build` and `npm run build:native` always build.
"use strict";
const { spawnSync } = require("node:child_process");
const fs = require("node:fs");
const path = require("node:path");

const root = path.join(__dirname, "..");
const TARGETS = {
  addon: { output: "build/Release/budgetnet.node", command: "node-gyp", args: ["rebuild"] },
  dist: { output: "dist/src/cli/main.js", command: "tsc", args: ["-p", "tsconfig.json"] },
};

const name = process.argv[2];
const target = TARGETS[name];
if (target === undefined) {
  process.stderr.write(`usage: node scripts/build-if-needed.js ${Object.keys(TARGETS).join("|")}. Received: ${name}\n`);
  process.exit(2);
}
const underNpx = process.env.npm_command === "exec";
if (underNpx && process.env.BUDGETNET_REBUILD !== "1" && fs.existsSync(path.join(root, target.output))) process.exit(0);
// npm puts node-gyp (its own copy) and node_modules/.bin (tsc) on the PATH of lifecycle scripts
const r = spawnSync(target.command, target.args, { cwd: root, stdio: "inherit" });
if (r.error !== undefined) {
  process.stderr.write(`budgetnet: could not run ${target.command} ${target.args.join(" ")}: ${r.error.message}\n`);
  process.exit(1);
}
process.exit(r.status ?? 1);
