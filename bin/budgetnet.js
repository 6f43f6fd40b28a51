#!/usr/bin/env node
// The budgetnet command line; everything lives in dist/src/cli (built by `npm ci`, or `npm run build`).
"use strict";
const fs = require("node:fs");
const path = require("node:path");

const entry = path.join(__dirname, "..", "dist", "src", "cli", "main.js");
if (!fs.existsSync(entry)) {
  process.stderr.write(
    `budgetnet: not built yet (${entry} is missing). Run \`npm ci\` (or \`npm run build\`) in ${path.join(__dirname, "..")}.\n`,
  );
  process.exit(1);
}

// `budgetnet models | head`: a reader that stops early is not an error
for (const stream of [process.stdout, process.stderr])
  stream.on("error", (e) => {
    if (e.code === "EPIPE") process.exit(process.exitCode ?? 0);
    throw e;
  });

const { main } = require(entry);

main(process.argv.slice(2)).then((status) => {
  process.exitCode = status;
});
