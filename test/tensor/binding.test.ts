// The declaration of the native surface (src/tensor/binding.ts) against the addon as built: a
// function added in native/*.cc without its declaration, or a declaration the addon lacks, fails here.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import { packageRoot } from "../../src/paths";
import {
  type BuildInfo,
  NATIVE_CLASSES,
  NATIVE_EXPORTS,
  NATIVE_FUNCTIONS,
  native,
  OPTIONAL_NATIVE_EXPORTS,
} from "../../src/tensor/binding";
import { checkNoLeaks } from "../helpers";

checkNoLeaks();

/** The addon module as Node loaded it (binding.ts's `native` is this same object). */
const addon = require(path.join(packageRoot(), "build", "Release", "budgetnet.node")) as Record<string, unknown>;

test("the addon exports exactly the names binding.ts declares", () => {
  const actual = new Set(Object.keys(addon));
  const declared = new Set<string>(NATIVE_EXPORTS);
  const undeclared = [...actual].filter((k) => !declared.has(k));
  const absent = NATIVE_EXPORTS.filter((k) => !actual.has(k) && !OPTIONAL_NATIVE_EXPORTS.includes(k));
  assert.deepEqual(undeclared, [], `exported by the addon but not declared in NativeBinding: ${undeclared.join(", ")}`);
  assert.deepEqual(absent, [], `declared in NativeBinding but not exported by the addon: ${absent.join(", ")}`);
  assert.equal(declared.size, NATIVE_EXPORTS.length, "NATIVE_EXPORTS names an export twice");
});

test("InferencePlan is exported exactly when buildInfo().dnnl says the build has oneDNN", () => {
  assert.equal("InferencePlan" in addon, native.buildInfo().dnnl);
});

test("ProcessGroup and Reducer are exported exactly when buildInfo().gloo says the build has Gloo", () => {
  assert.equal("ProcessGroup" in addon, native.buildInfo().gloo);
  assert.equal("Reducer" in addon, native.buildInfo().gloo);
});

test("each declared class is a constructor with its methods, each declared function a function", () => {
  const methods: Record<(typeof NATIVE_CLASSES)[number], string[]> = {
    TensorHandle: ["dispose", "isAlive"],
    InferencePlan: ["run", "choices", "dispose"],
    ProcessGroup: ["broadcast", "allreduce", "barrier", "destroy"],
    Reducer: ["finalize", "buckets", "stats", "dispose"],
  };
  for (const name of NATIVE_CLASSES) {
    const cls = addon[name];
    if (cls === undefined && OPTIONAL_NATIVE_EXPORTS.includes(name)) continue;
    assert.equal(typeof cls, "function", `${name} is not a class`);
    const proto = (cls as { prototype: Record<string, unknown> }).prototype;
    for (const m of methods[name]) assert.equal(typeof proto[m], "function", `${name}.prototype.${m} is missing`);
  }
  const notFunctions = NATIVE_FUNCTIONS.filter((name) => typeof addon[name] !== "function");
  assert.deepEqual(notFunctions, [], `declared as functions but not functions: ${notFunctions.join(", ")}`);
});

test("buildInfo() returns exactly the fields BuildInfo declares, with their types", () => {
  // `satisfies` with an object literal: a field missing from here or not in BuildInfo fails to compile
  const declared = {
    torchVersion: "string",
    cuda: "boolean",
    mkldnn: "boolean",
    dnnl: "boolean",
    gloo: "boolean",
    tunedAllocator: "boolean",
    parallelInfo: "string",
  } satisfies Record<keyof BuildInfo, "string" | "boolean">;
  const info = native.buildInfo() as unknown as Record<string, unknown>;
  assert.deepEqual(Object.keys(info).sort(), Object.keys(declared).sort());
  for (const [key, type] of Object.entries(declared)) assert.equal(typeof info[key], type, `buildInfo().${key}`);
});

test("only src/tensor, src/ops and the package entry import the binding (docs/architecture.md)", () => {
  const src = path.join(packageRoot(), "src");
  const allowed = (rel: string) => rel.startsWith("tensor/") || rel.startsWith("ops/") || rel === "index.ts";
  const offenders = (fs.readdirSync(src, { recursive: true }) as string[])
    .map((f) => f.split(path.sep).join("/"))
    .filter((rel) => rel.endsWith(".ts") && !allowed(rel))
    .filter((rel) => /from "(\.\.?\/)+(tensor\/)?binding"/.test(fs.readFileSync(path.join(src, rel), "utf8")));
  assert.deepEqual(offenders, [], `import src/tensor/binding outside src/tensor and src/ops: ${offenders.join(", ")}`);
});
