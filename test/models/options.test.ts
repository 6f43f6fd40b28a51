// Declared option schemas (src/models/options.ts): createModel refuses unknown options, wrong
// types and out-of-range values with what is allowed; the legacy `se` forms of old saved configs
// still build the same network; `budgetnet models --json` and `summary --help-options` print them.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as path from "node:path";
import { test } from "node:test";
import {
  ArgumentError,
  createModel,
  defineOptions,
  fitsSpec,
  listModels,
  type ModelOptions,
  modelSpec,
  readOptions,
} from "../../src";
import { checkNoLeaks } from "../helpers";

checkNoLeaks();

const BIN = path.resolve(__dirname, "../../../bin/budgetnet.js");
const cli = (...args: string[]) =>
  spawnSync(process.execPath, [BIN, ...args], { encoding: "utf8", env: { ...process.env, BUDGETNET_THREADS: "1" } });

const rejects = (name: string, options: ModelOptions, message: RegExp) =>
  assert.throws(
    () => createModel(name, options),
    (e: unknown) => e instanceof ArgumentError && message.test(e.message),
  );

function built<T>(name: string, options: ModelOptions, read: (m: ReturnType<typeof createModel>) => T): T {
  const m = createModel(name, options);
  try {
    return read(m);
  } finally {
    m.dispose();
  }
}
const params = (name: string, options: ModelOptions = {}) => built(name, options, (m) => m.numParameters());
const keys = (name: string, options: ModelOptions = {}) => built(name, options, (m) => [...m.stateDict().keys()]);

test("an unknown option is refused with the known ones listed (a typo no longer trains the wrong net)", () => {
  rejects(
    "resnet20",
    { se_reduction: 4 },
    /ResNetCifar: unknown option "se_reduction"\. Known options: numClasses, inChannels, depth, shortcut, se, seReduction, width\. Received: se_reduction=4/,
  );
  rejects("resnet18", { widht: 2, dropuot: 0.1 }, /unknown options "widht", "dropuot"\. Known options: .*baseWidth/);
  rejects("wrn16_2", { drop: 0.3 }, /WideResNet: unknown option "drop"\. Known options: .*dropout, blockType/);
  // an option given as undefined counts as not given
  assert.equal(params("resnet20", { seReduction: undefined }), 272_474);
});

test("a value of the wrong type names the option, the value and the type allowed", () => {
  rejects("resnet20", { depth: "20" }, /ResNetCifar: depth must be an integer >= 8\. Received: depth="20"/);
  rejects("resnet20", { depth: 20.5 }, /depth must be an integer >= 8\. Received: depth=20\.5/);
  rejects("se_resnet20", { se: "yes" }, /se must be true or false\. Received: se="yes"/);
  rejects("resnet18", { layers: 2 }, /layers must be a non-empty list of integers >= 1\. Received: layers=2/);
  rejects("resnet29", { kernelSizes: "3" }, /kernelSizes must be an integer >= 1 or a non-empty list of them/);
  rejects(
    "mobilenetv2",
    { strides: 2 },
    /MobileNetV2: strides must be one of "cifar", "imagenet"\. Received: strides=2/,
  );
});

test("a value out of range names the option, the value and the range", () => {
  rejects("resnet20", { width: 0 }, /width must be a number > 0\. Received: width=0/);
  rejects("wrn16_2", { dropout: 1 }, /WideResNet: dropout must be a number in \[0, 1\)\. Received: dropout=1/);
  rejects("resnet20", { numClasses: 0 }, /numClasses must be an integer >= 1\. Received: numClasses=0/);
  rejects(
    "efficient_resnet",
    { blocks: [4, 0, 3] },
    /blocks must be a non-empty list of integers >= 1\. Received: blocks=\[4, 0, 3\]/,
  );
  rejects(
    "efficient_resnet",
    { blocks: [] },
    /blocks must be a non-empty list of integers >= 1\. Received: blocks=\[\]/,
  );
  rejects("efficientnet_b0", { resolution: 16 }, /resolution must be an integer >= 32\. Received: resolution=16/);
  rejects("resnet20", { shortcut: "C" }, /shortcut must be one of "A", "B"\. Received: shortcut="C"/);
});

test("se means on/off in every family; the reduction is seReduction", () => {
  for (const family of new Set(listModels().map((m) => m.family))) {
    const entry = listModels().find((m) => m.family === family);
    const se = entry?.options.specs.se;
    if (se === undefined) continue;
    assert.equal(se.type, "boolean", `${family}: se`);
    assert.equal(entry?.options.specs.seReduction?.type, "int", `${family}: seReduction`);
  }
  assert.equal(params("resnet20", { se: true }), params("se_resnet20"));
  assert.equal(params("resnet18", { se: true, seReduction: 16 }), params("se_resnet18"));
  assert.equal(params("resnext29_8x8d_w32", { se: true, seReduction: 8 }) > params("resnext29_8x8d_w32"), true);
});

test("legacy alias: resnet_cifar's old se=<ratio> loads as se=true, seReduction=<ratio>", () => {
  assert.equal(params("resnet20", { se: 16 }), 274_847);
  assert.deepEqual(keys("resnet20", { se: 16 }), keys("se_resnet20"));
  assert.equal(params("resnet20", { se: 4 }), params("resnet20", { se: true, seReduction: 4 }));
  // an old se_resnet20 config (its name's defaults were {depth, se: 16}) and its "se off" form
  assert.equal(params("se_resnet20", { depth: 20, se: 16 }), 274_847);
  assert.equal(params("se_resnet20", { se: 0 }), 272_474);
  const m = createModel("resnet20", { se: 8 });
  assert.deepEqual(modelSpec(m)?.options, { numClasses: 10, inChannels: 3, depth: 20, se: true, seReduction: 8 });
  m.dispose();
  rejects(
    "resnet20",
    { se: 8, seReduction: 4 },
    /se=8 \(the old form of se=true, seReduction=8\) contradicts seReduction/,
  );
  rejects("resnet20", { se: -1 }, /se must be true or false\. Received: se=-1/);
});

test("legacy alias: the ResNet families' old seReduction=<r> switch (0 = none) loads as se plus seReduction", () => {
  assert.equal(params("resnet29", { seReduction: 16 }), params("se_resnet29"));
  assert.equal(params("se_resnet29", { seReduction: 0 }), params("resnet29"));
  assert.equal(params("resnet18", { seReduction: 16 }), 11_263_042);
  assert.deepEqual(
    keys("se_preact_resnet18", { baseWidth: 8, seReduction: 0 }),
    keys("preact_resnet18", { baseWidth: 8 }),
  );
  // where seReduction never was the switch (ResNeXt), it stays the reduction only
  assert.equal(params("resnext29_8x8d_w32", { seReduction: 8 }), params("resnext29_8x8d_w32"));
});

test("every family's schema is complete: type, help, and defaults that fit their own spec", () => {
  for (const entry of listModels()) {
    const specs = entry.options.specs;
    assert.ok(entry.options.owner.length > 0, entry.name);
    for (const key of ["numClasses", "inChannels"]) assert.ok(specs[key] !== undefined, `${entry.name}: ${key}`);
    for (const [key, spec] of Object.entries(specs)) {
      assert.ok(spec.help.length > 0, `${entry.name}.${key}: help`);
      if (spec.type === "choice") assert.ok((spec.choices ?? []).length > 0, `${entry.name}.${key}: choices`);
      if (spec.default !== undefined) assert.ok(fitsSpec(spec, spec.default), `${entry.name}.${key}: default`);
    }
    for (const [key, value] of Object.entries(entry.defaults)) {
      const spec = specs[key];
      assert.ok(spec !== undefined && fitsSpec(spec, value), `${entry.name}: its default ${key} is declared and fits`);
    }
  }
});

test("readOptions fills defaults, leaves derived options undefined and copies lists", () => {
  const schema = defineOptions("Toy", {
    depth: { type: "int", min: 1, default: 3, help: "layers" },
    widths: { type: "intList", min: 1, help: "per stage (default: derived)" },
    act: { type: "choice", choices: ["relu", "silu"], default: "relu", help: "activation" },
  });
  const list = [4, 8];
  const o = readOptions(schema, { widths: list });
  assert.deepEqual(o, { numClasses: 10, inChannels: 3, depth: 3, widths: [4, 8], act: "relu" });
  assert.notEqual(o.widths, list);
  assert.equal(readOptions(schema, {}).widths, undefined);
  assert.throws(
    () => readOptions(schema, { act: "gelu" }),
    /Toy: act must be one of "relu", "silu"\. Received: act="gelu"/,
  );
});

test("`budgetnet models --json` carries every model's option schema", () => {
  const r = cli("models", "--json");
  assert.equal(r.status, 0, r.stderr);
  const rows = JSON.parse(r.stdout) as { name: string; options: Record<string, { type: string; default?: unknown }> }[];
  assert.equal(rows.length, listModels().length);
  for (const row of rows) assert.equal(row.options.numClasses?.type, "int", row.name);
  const resnet20 = rows.find((m) => m.name === "resnet20");
  assert.deepEqual(resnet20?.options.shortcut, {
    type: "choice",
    choices: ["A", "B"],
    default: "B",
    help: "A: zero-padded identity (no parameters); B: 1x1 conv + BN where the shape changes",
  });
  assert.equal(resnet20?.options.se?.type, "boolean");
  assert.equal(rows.find((m) => m.name === "wrn16_2")?.options.dropout?.default, 0);
});

test("`budgetnet summary MODEL --help-options` prints the model's options as a table with its own defaults", () => {
  const r = cli("summary", "resnet56", "--help-options");
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trimEnd().split("\n");
  assert.match(lines[0] as string, /^resnet56 \(resnet_cifar\) options/);
  assert.match(lines[1] as string, /^option\s+type\s+default\s+allowed\s+help$/);
  assert.match(r.stdout, /^depth\s+int\s+56\s+an integer >= 8\s+6n\+2 layers/m);
  assert.match(r.stdout, /^shortcut\s+choice\s+"B"\s+one of "A", "B"\s+/m);
  assert.match(r.stdout, /^se\s+boolean\s+false\s+true or false\s+/m);
  const se = cli("summary", "se_resnet29", "--help-options");
  assert.match(se.stdout, /^se\s+boolean\s+true\s+/m);
  assert.match(se.stdout, /^layers\s+intList\s+\(derived\)\s+a non-empty list of integers >= 1\s+/m);
  const unknown = cli("summary", "resnet21", "--help-options");
  assert.notEqual(unknown.status, 0);
  assert.match(
    unknown.stderr,
    /unknown model "resnet21" \(did you mean "resnet20"\?\)\. List the registered models with `budgetnet models`/,
  );
});
