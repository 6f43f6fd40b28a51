#!/usr/bin/env node
// The budgetnet command line; everything lives in dist/src/cli (build with `npm run build`).
"use strict";
const { main } = require("../dist/src/cli/main.js");

main(process.argv.slice(2)).then((status) => {
  process.exitCode = status;
});
