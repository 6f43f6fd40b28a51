#!/usr/bin/env node
// Writes schema/recipe.schema.json, the JSON Schema that recipes name in "$schema" so editors
// complete and check them, from the one declaration in src/train/schema.ts (compiled to dist/).
// Usage: npm run gen-schema (builds first), or node scripts/gen-schema.js --check, which writes
// nothing and exits 1 when the file differs from what the declaration gives.
"use strict";
const fs = require("node:fs");
const path = require("node:path");

const root = path.join(__dirname, "..");
const compiled = path.join(root, "dist", "src", "train", "schema.js");
if (!fs.existsSync(compiled)) {
  console.error(`gen-schema: ${compiled} is missing; run \`npm run build\` first (npm run gen-schema does).`);
  process.exit(1);
}
const { recipeJsonSchemaText } = require(compiled);
const { writeFileAtomic } = require(path.join(root, "dist", "src", "export", "atomic.js"));

const file = path.join(root, "schema", "recipe.schema.json");
const text = recipeJsonSchemaText();
const current = fs.existsSync(file) ? fs.readFileSync(file, "utf8") : null;
if (process.argv.includes("--check")) {
  if (current === text) process.exit(0);
  console.error(
    `gen-schema: ${path.relative(root, file)} is out of date with src/train/schema.ts; run npm run gen-schema`,
  );
  process.exit(1);
}
if (current === text) {
  console.log(`gen-schema: ${path.relative(root, file)} is up to date`);
} else {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  writeFileAtomic(file, [text]);
  console.log(`gen-schema: wrote ${path.relative(root, file)} (${text.length} bytes)`);
}
