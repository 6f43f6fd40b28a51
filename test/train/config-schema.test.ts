// The one declaration of the training configuration (src/train/schema.ts): every misspelled key at
// every depth is refused with a suggestion, every model family's unknown options too, the JSON
// Schema file is what the generator writes and agrees with the loader, dotted flags compose, and
// a recipe's explicit threads win over BUDGETNET_THREADS.
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import { createModel, listModels } from "../../src/models";
import { setNumThreads } from "../../src/tensor/tensor";
import {
  applyOverrides,
  DEFAULT_CONFIG,
  loadRecipe,
  recipeFromObject,
  recipesDir,
  type TrainConfig,
} from "../../src/train/config";
import { Progress } from "../../src/train/metrics";
import {
  fieldRows,
  type ObjectNode,
  RECIPE_SCHEMA,
  recipeJsonSchemaText,
  type SchemaNode,
} from "../../src/train/schema";
import { train } from "../../src/train/trainer";
import { checkNoLeaks, tempDir } from "../helpers";

checkNoLeaks();

const ROOT = path.resolve(__dirname, "../../..");
const base = (): TrainConfig => loadRecipe("fashion-mnist-quick");

// ---- the TypeScript type derived from the declaration is the interface library users had ------

interface PublishedTrainConfig {
  name: string;
  source: string;
  model: string;
  modelOptions: Record<string, unknown>;
  dataset: "fashion-mnist" | "mnist" | "cifar10" | "cifar100" | "folder";
  dataRoot: string | null;
  imageSize: number | null;
  valFraction: number;
  trainSubset: number | null;
  valSubset: number | null;
  epochs: number;
  batchSize: number;
  optimizer: {
    type: "sgd" | "adam" | "adamw";
    lr: number;
    momentum: number;
    nesterov: boolean;
    weightDecay: number;
    noDecayOnBnAndBias: boolean;
    betas: [number, number];
  };
  schedule: {
    type: "constant" | "multistep" | "cosine" | "onecycle" | "linear";
    per: "epoch" | "iteration";
    milestones: number[];
    gamma: number;
    warmupEpochs: number;
    minLr: number;
    pctStart: number;
    divFactor: number;
    finalDivFactor: number;
    cycleMomentum: boolean;
    baseMomentum: number;
    maxMomentum: number;
  };
  lookahead: { k: number; alpha: number } | null;
  ema: { decay: number } | null;
  clip: { value?: number; norm?: number } | null;
  augment: {
    crop?: { padding: number; mode: "zero" | "reflect" } | null;
    flip?: boolean;
    cutout?: { size: number } | null;
    randomErasing?: { p: number } | null;
    mixup?: { alpha: number } | null;
    cutmix?: { alpha: number; p?: number } | null;
  };
  labelSmoothing: number;
  tta: boolean;
  seed: number;
  threads: number | null;
  device: "cpu" | "cuda";
  logEvery: number;
  syncBatchNorm: boolean;
  bucketMb: number;
  precision: "fp32" | "bf16" | "auto";
  channelsLast: boolean | "auto";
}
type Same<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
// Fails to compile (not at run time) when the declaration and the published type drift apart.
const typeAgrees: Same<TrainConfig, PublishedTrainConfig> = true;

test("TrainConfig, derived from the declaration, is the published interface; the defaults pass the checks", () => {
  assert.equal(typeAgrees, true);
  assert.ok(Object.isFrozen(DEFAULT_CONFIG) && Object.isFrozen(DEFAULT_CONFIG.optimizer.betas));
  const fresh = recipeFromObject({}, "empty");
  assert.deepEqual(fresh, { ...DEFAULT_CONFIG });
  fresh.optimizer.betas[0] = 0.5; // a loaded config is the caller's to change; the defaults stay
  assert.equal(DEFAULT_CONFIG.optimizer.betas[0], 0.9);
});

// ---- misspelled keys at every depth --------------------------------------------------------

/** Every object in the declaration with its dotted path ("" for the recipe itself). */
function objectNodes(node: ObjectNode = RECIPE_SCHEMA, where = ""): [string, ObjectNode][] {
  const out: [string, ObjectNode][] = [[where, node]];
  for (const [k, f] of Object.entries(node.fields))
    if (f.kind === "object") out.push(...objectNodes(f, where ? `${where}.${k}` : k));
  return out;
}

/** One-edit misspellings of a key (a letter dropped, changed, added) that are not keys themselves. */
function typos(key: string, known: readonly string[]): string[] {
  const mid = Math.floor(key.length / 2);
  const other = (c: string): string => (c.toLowerCase() === "q" ? "z" : "q");
  const variants = [
    key.length > 1 ? key.slice(0, mid) + key.slice(mid + 1) : "",
    key.slice(0, mid) + other(key[mid] as string) + key.slice(mid + 1),
    `${key}${other(key[key.length - 1] as string)}`,
  ];
  return variants.filter((v) => v !== "" && !known.some((k) => k.toLowerCase() === v.toLowerCase()));
}

/** {a: {b: {c: value}}} for the path a.b.c. */
function nested(dotted: string, value: unknown): Record<string, unknown> {
  let v: unknown = value;
  for (const k of dotted.split(".").reverse()) v = { [k]: v };
  return v as Record<string, unknown>;
}

const esc = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

test("a misspelled key at every depth is refused, in a recipe file and as a dotted flag, naming the right key", () => {
  let cases = 0;
  for (const [where, node] of objectNodes()) {
    const known = Object.keys(node.fields);
    for (const key of known)
      for (const typo of typos(key, known)) {
        const bad = where ? `${where}.${typo}` : typo;
        const right = where ? `${where}.${key}` : key;
        const message = new RegExp(
          `unknown recipe field "${esc(bad)}"\\. Known fields${where ? ` of ${esc(where)}` : ""}: ${esc(known.join(", "))}\\. ` +
            `Received: ${esc(bad)}=1 \\(did you mean "${esc(right)}"\\?\\)`,
        );
        assert.throws(() => recipeFromObject(nested(bad, 1), "typo.json"), message, `recipe ${bad}`);
        assert.throws(() => applyOverrides(base(), { [bad]: "1" }), message, `--${bad}`);
        cases++;
      }
  }
  assert.ok(cases >= 3 * 40, `${cases} misspellings`);
});

test("the issue's typos are refused before any data is read", () => {
  const refused: [Record<string, string>, RegExp][] = [
    [{ "augment.cutmx.alpha": "1" }, /unknown recipe field "augment\.cutmx"\..*\(did you mean "augment\.cutmix"\?\)/],
    [{ "augment.autoaugment": "true" }, /unknown recipe field "augment\.autoaugment"\. Known fields of augment: crop/],
    [{ clip: '{"nrom":1}' }, /unknown recipe field "clip\.nrom"\. Known fields of clip: value, norm/],
    [{ ema: '{"decay":0.999,"warmup":true}' }, /unknown recipe field "ema\.warmup"\. Known fields of ema: decay/],
    [{ "lookahead.alpa": "0.5" }, /unknown recipe field "lookahead\.alpa".*\(did you mean "lookahead\.alpha"\?\)/],
    [
      { clip: "{}" },
      /recipe field clip must set at least one of value, norm \(null switches it off\)\. Received: clip=\{\}/,
    ],
    [
      { model: "resnet2O" },
      /recipe field model: unknown model "resnet2O" \(did you mean "resnet20"\?\)\. List the registered models/,
    ],
  ];
  for (const [flags, message] of refused) assert.throws(() => applyOverrides(base(), flags), message);
  const recipe = { augment: { mixpu: { alpha: 1 } } };
  assert.throws(() => recipeFromObject(recipe, "r.json"), /r\.json: unknown recipe field "augment\.mixpu"\. Known/);
});

test("two letters swapped (the issue's mixpu, nrom) get a suggestion too", () => {
  assert.throws(
    () => recipeFromObject({ augment: { mixpu: { alpha: 1 } } }, "r.json"),
    /\(did you mean "augment\.mixup"\?\)/,
  );
  assert.throws(() => applyOverrides(base(), { clip: '{"nrom":1}' }), /\(did you mean "clip\.norm"\?\)/);
  assert.throws(() => applyOverrides(base(), { "lookahead.alpah": "1" }), /\(did you mean "lookahead\.alpha"\?\)/);
});

// ---- model options ----------------------------------------------------------------------------

test("every unknown model option of every registered family is refused with its suggestion, before training", () => {
  const models = listModels();
  assert.ok(models.length > 40, `${models.length} registered models`);
  let cases = 0;
  for (const entry of models) {
    const known = Object.keys(entry.options.specs);
    for (const key of known)
      for (const typo of typos(key, known)) {
        const message = new RegExp(
          `${esc(entry.options.owner)}: unknown option "${esc(typo)}"\\. Known options: .*Received: ${esc(typo)}=1 \\(did you mean "${esc(key)}"\\?\\)`,
        );
        assert.throws(() => createModel(entry.name, { [typo]: 1 }), message, `${entry.name} ${typo}`);
        assert.throws(
          () => applyOverrides(base(), { model: entry.name, [`model-options.${typo}`]: "1" }),
          new RegExp(`recipe field modelOptions does not fit model "${esc(entry.name)}": ${message.source}`),
          `${entry.name} --model-options.${typo}`,
        );
        cases++;
      }
  }
  assert.ok(cases > 1000, `${cases} misspelled options`);
  // the issue's two: resnet_cifar has no dropout (its schema refuses it; it once read options by name)
  for (const option of ["dropout", "foo"])
    assert.throws(
      () => applyOverrides(base(), { model: "resnet20", [`model-options.${option}`]: "0.9" }),
      new RegExp(`modelOptions does not fit model "resnet20": ResNetCifar: unknown option "${option}"`),
    );
  // values are checked against the family's ranges too; a family's own option is accepted
  assert.throws(
    () => applyOverrides(base(), { model: "wrn16_2", "model-options.dropout": "1.5" }),
    /does not fit model "wrn16_2": WideResNet: dropout must be a number in \[0, 1\)/,
  );
  assert.equal(applyOverrides(base(), { model: "wrn16_2", "model-options.dropout": "0.3" }).modelOptions.dropout, 0.3);
});

// ---- the JSON Schema --------------------------------------------------------------------------

/** The JSON Schema keywords schema/recipe.schema.json uses; the validator below implements each. */
interface JsonSchema {
  $schema?: string;
  title?: string;
  description?: string;
  default?: unknown;
  type?: string | string[];
  enum?: unknown[];
  properties?: Record<string, JsonSchema>;
  additionalProperties?: boolean;
  required?: string[];
  minProperties?: number;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  minLength?: number;
  items?: JsonSchema;
  minItems?: number;
  maxItems?: number;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
}
const KEYWORDS = new Set<string>([
  "$schema",
  "title",
  "description",
  "default",
  "type",
  "enum",
  "properties",
  "additionalProperties",
  "required",
  "minProperties",
  "minimum",
  "maximum",
  "exclusiveMinimum",
  "exclusiveMaximum",
  "minLength",
  "items",
  "minItems",
  "maxItems",
  "anyOf",
  "oneOf",
]);

function jsonType(v: unknown): string[] {
  if (v === null) return ["null"];
  if (Array.isArray(v)) return ["array"];
  if (typeof v === "number") return Number.isInteger(v) ? ["integer", "number"] : ["number"];
  return [typeof v];
}

/** Violations of `schema` by `v` (draft-07 semantics for the keywords above); throws on any other keyword. */
function violations(schema: JsonSchema, v: unknown, at = "$"): string[] {
  for (const k of Object.keys(schema)) assert.ok(KEYWORDS.has(k), `the test's validator does not implement "${k}"`);
  const out: string[] = [];
  if (schema.type !== undefined) {
    const types = Array.isArray(schema.type) ? schema.type : [schema.type];
    if (!jsonType(v).some((t) => types.includes(t))) return [`${at}: not ${types.join(" or ")}`];
  }
  if (schema.enum && !schema.enum.some((e) => e === v)) out.push(`${at}: not one of ${JSON.stringify(schema.enum)}`);
  if (typeof v === "number") {
    if (schema.minimum !== undefined && v < schema.minimum) out.push(`${at}: below ${schema.minimum}`);
    if (schema.maximum !== undefined && v > schema.maximum) out.push(`${at}: above ${schema.maximum}`);
    if (schema.exclusiveMinimum !== undefined && v <= schema.exclusiveMinimum) out.push(`${at}: not above min`);
    if (schema.exclusiveMaximum !== undefined && v >= schema.exclusiveMaximum) out.push(`${at}: not below max`);
  }
  if (typeof v === "string" && schema.minLength !== undefined && v.length < schema.minLength) out.push(`${at}: short`);
  if (Array.isArray(v)) {
    if (schema.minItems !== undefined && v.length < schema.minItems) out.push(`${at}: too few items`);
    if (schema.maxItems !== undefined && v.length > schema.maxItems) out.push(`${at}: too many items`);
    if (schema.items) for (const [i, x] of v.entries()) out.push(...violations(schema.items, x, `${at}[${i}]`));
  }
  if (v !== null && typeof v === "object" && !Array.isArray(v)) {
    const o = v as Record<string, unknown>;
    for (const r of schema.required ?? []) if (!Object.hasOwn(o, r)) out.push(`${at}: ${r} is required`);
    if (schema.minProperties !== undefined && Object.keys(o).length < schema.minProperties)
      out.push(`${at}: fewer than ${schema.minProperties} properties`);
    for (const [k, x] of Object.entries(o)) {
      const sub = schema.properties && Object.hasOwn(schema.properties, k) ? schema.properties[k] : undefined;
      if (sub) out.push(...violations(sub, x, `${at}.${k}`));
      else if (schema.additionalProperties === false) out.push(`${at}: unknown property ${k}`);
    }
  }
  if (schema.anyOf && !schema.anyOf.some((s) => violations(s, v, at).length === 0))
    out.push(`${at}: fits none of anyOf`);
  if (schema.oneOf && schema.oneOf.filter((s) => violations(s, v, at).length === 0).length !== 1)
    out.push(`${at}: fits not exactly one of oneOf`);
  return out;
}

const SCHEMA_FILE = path.join(ROOT, "schema", "recipe.schema.json");
const schema = (): JsonSchema => JSON.parse(fs.readFileSync(SCHEMA_FILE, "utf8")) as JsonSchema;
const recipeFiles = (): string[] =>
  fs
    .readdirSync(recipesDir())
    .filter((f) => f.endsWith(".json"))
    .map((f) => path.join(recipesDir(), f));

test("schema/recipe.schema.json is what the generator writes from the declaration (npm run gen-schema)", () => {
  assert.equal(fs.readFileSync(SCHEMA_FILE, "utf8"), recipeJsonSchemaText(), "run npm run gen-schema");
  // every default the schema shows an editor is itself valid
  const walk = (s: JsonSchema, at: string): void => {
    if (s.default !== undefined) assert.deepEqual(violations(s, s.default, at), [], at);
    for (const [k, sub] of Object.entries(s.properties ?? {})) walk(sub, `${at}.${k}`);
    for (const sub of [...(s.anyOf ?? []), ...(s.oneOf ?? []), ...(s.items ? [s.items] : [])]) walk(sub, at);
  };
  walk(schema(), "$");
});

test("every recipe names the schema, passes it and loads; a misspelled key anywhere fails both", () => {
  const s = schema();
  const files = recipeFiles();
  assert.ok(files.length >= 14);
  let misspelled = 0;
  for (const file of files) {
    const raw = JSON.parse(fs.readFileSync(file, "utf8")) as Record<string, unknown>;
    assert.equal(raw.$schema, "../schema/recipe.schema.json", file);
    assert.ok(fs.existsSync(path.resolve(path.dirname(file), raw.$schema as string)));
    assert.deepEqual(violations(s, raw), [], file);
    loadRecipe(file);
    // each key the file sets, at any depth but inside modelOptions, misspelled in turn
    const visit = (obj: Record<string, unknown>, where: string): void => {
      for (const [k, v] of Object.entries(obj)) {
        if (k === "$schema") continue;
        const dotted = where ? `${where}.${k}` : k;
        const copy = structuredClone(raw);
        let parent: Record<string, unknown> = copy;
        for (const p of where ? where.split(".") : []) parent = parent[p] as Record<string, unknown>;
        const entries = Object.entries(parent);
        for (const key of Object.keys(parent)) delete parent[key];
        for (const [key, value] of entries) parent[key === k ? `${k}x` : key] = value;
        assert.notDeepEqual(violations(s, copy), [], `${file}: ${dotted} misspelled passes the JSON Schema`);
        assert.throws(
          () => recipeFromObject(copy, file),
          new RegExp(`unknown recipe field "${esc(dotted)}x"\\..*\\(did you mean "${esc(dotted)}"\\?\\)`),
        );
        misspelled++;
        if (v !== null && typeof v === "object" && !Array.isArray(v) && k !== "modelOptions")
          visit(v as Record<string, unknown>, dotted);
      }
    };
    visit(raw, "");
  }
  assert.ok(misspelled > 200, `${misspelled} misspelled recipes`);
});

test("the JSON Schema and the loader agree on values out of type or range", () => {
  const s = schema();
  const refused: Record<string, unknown>[] = [
    { labelSmoothing: 1 },
    { labelSmoothing: "0.1" },
    { epochs: 1.5 },
    { epochs: 0 },
    { valFraction: 0 },
    { imageSize: 5000 },
    { threads: 0 },
    { model: "" },
    { dataset: "cifar" },
    { channelsLast: "yes" },
    { optimizer: { betas: [0.9] } },
    { optimizer: { betas: [0.9, 1] } },
    { optimizer: { lr: 0 } },
    { schedule: { milestones: [-1] } },
    { clip: {} },
    { clip: { norm: 0 } },
    { lookahead: { k: 0 } },
    { augment: { crop: { padding: -1 } } },
    { augment: { cutmix: { alpha: 1, p: 1.5 } } },
    { augment: { flip: "yes" } },
    { modelOptions: [] },
  ];
  for (const recipe of refused) {
    assert.notDeepEqual(violations(s, recipe), [], `the JSON Schema accepts ${JSON.stringify(recipe)}`);
    assert.throws(() => recipeFromObject(recipe, "r.json"), /r\.json: recipe field /, JSON.stringify(recipe));
  }
  const accepted: Record<string, unknown>[] = [
    {},
    { $schema: "../schema/recipe.schema.json" },
    { threads: null, imageSize: 32, channelsLast: "auto" },
    { clip: { norm: 1 }, lookahead: { k: 3 }, ema: null },
    { augment: { crop: null, flip: false, cutmix: { alpha: 1, p: 0.5 }, mixup: null } },
    { modelOptions: { depth: 32 } },
  ];
  for (const recipe of accepted) {
    assert.deepEqual(violations(s, recipe), [], JSON.stringify(recipe));
    recipeFromObject(recipe, "r.json");
  }
});

// ---- dotted flags --------------------------------------------------------------------------------

test("dotted flags compose: an optional object starts from its defaults and each flag sets one field", () => {
  const cfg = base();
  assert.equal(cfg.lookahead, null);
  const la = applyOverrides(cfg, { "lookahead.k": "5", "lookahead.alpha": "0.5" });
  assert.deepEqual(la.lookahead, { k: 5, alpha: 0.5 });
  assert.deepEqual(applyOverrides(cfg, { "lookahead.alpha": "0.8" }).lookahead, { k: 5, alpha: 0.8 });
  assert.deepEqual(applyOverrides(cfg, { "clip.value": "0.1", "clip.norm": "1" }).clip, { value: 0.1, norm: 1 });
  assert.deepEqual(applyOverrides(cfg, { "ema.decay": "0.99" }).ema, { decay: 0.99 });
  // a JSON value for the whole object is accepted and checked; null switches it off again
  assert.deepEqual(applyOverrides(cfg, { clip: '{"norm":1}' }).clip, { norm: 1 });
  assert.throws(() => applyOverrides(cfg, { clip: '{"norm":-1}' }), /clip\.norm must be a finite number > 0/);
  assert.equal(applyOverrides(la, { lookahead: "null" }).lookahead, null);
  assert.equal(applyOverrides(cfg, { "clip.value": "0.1", clip: "null" }).clip, null, "flags apply in order");
  // augmentations: a dotted flag switches an entry on from its defaults, null switches it off
  assert.deepEqual(applyOverrides(cfg, { "augment.cutmix.alpha": "0.5" }).augment.cutmix, { alpha: 0.5 });
  assert.deepEqual(applyOverrides(cfg, { "augment.cutout.size": "8" }).augment.cutout, { size: 8 });
  assert.deepEqual(applyOverrides(cfg, { "augment.random-erasing.p": "0.25" }).augment.randomErasing, { p: 0.25 });
  const mixed = applyOverrides(cfg, { "augment.cutmix": '{"alpha":1}', "augment.mixup.alpha": "0.2" });
  assert.deepEqual(applyOverrides(mixed, { "augment.cutmix": "null" }).augment, {
    crop: { padding: 2, mode: "zero" },
    flip: true,
    cutmix: null,
    mixup: { alpha: 0.2 },
  });
  const noCrop = applyOverrides(cfg, { "augment.crop": "null" });
  assert.deepEqual(applyOverrides(noCrop, { "augment.crop.mode": "reflect" }).augment.crop, {
    padding: 4,
    mode: "reflect",
  });
  // the input is not changed, and a recipe file's partial object is completed the same way
  assert.equal(cfg.lookahead, null);
  assert.deepEqual(recipeFromObject({ lookahead: { k: 3 } }, "r.json").lookahead, { k: 3, alpha: 0.5 });
  assert.throws(() => applyOverrides(cfg, { clip: "{nrom: 1}" }), /--clip: could not parse the JSON value \{nrom: 1\}/);
});

test("every declared field can be set by its dotted flag, and the help rows cover each once", () => {
  const rows = fieldRows();
  const fields = rows.map((r) => r.field);
  assert.equal(new Set(fields).size, fields.length);
  for (const must of ["optimizer.betas", "augment.cutmix.p", "clip.norm", "lookahead.alpha", "threads"])
    assert.ok(fields.includes(must), must);
  const leafAt = (dotted: string): SchemaNode => {
    let node: SchemaNode = RECIPE_SCHEMA;
    for (const k of dotted.split(".")) node = (node as ObjectNode).fields[k] as SchemaNode;
    return node;
  };
  for (const row of rows) {
    assert.ok(row.help.length > 0 && row.allowed.length > 0, row.field);
    const node = leafAt(row.field);
    if (node.kind === "object" || node.kind === "open" || row.default === "(absent)") continue;
    const parsed: unknown = JSON.parse(row.default);
    const value = typeof parsed === "string" ? parsed : row.default; // text and choices as typed: --name custom
    const cfg = applyOverrides(base(), { [row.field]: value });
    let got: unknown = cfg;
    for (const k of row.field.split(".")) got = (got as Record<string, unknown>)[k];
    assert.deepEqual(got, JSON.parse(row.default), row.field);
  }
});

// ---- threads -------------------------------------------------------------------------------------

test("threads: a recipe's null leaves BUDGETNET_THREADS in charge, an explicit value wins over it", async () => {
  const recipe = loadRecipe("fashion-mnist-quick");
  assert.equal(recipe.threads, null, "the built-in recipes leave threads to the environment");
  assert.equal(applyOverrides(applyOverrides(recipe, { threads: "3" }), { threads: "null" }).threads, null);
  const cfg = applyOverrides(recipe, {
    "train-subset": "128",
    "val-subset": "64",
    "batch-size": "64",
    epochs: "1",
    schedule: "cosine",
    threads: "1",
    precision: "fp32",
    "channels-last": "false",
  });
  const dir = path.join(tempDir(), "threads");
  const before = process.env.BUDGETNET_THREADS;
  process.env.BUDGETNET_THREADS = "2";
  const quiet = { write: () => true, isTTY: false } as unknown as NodeJS.WriteStream;
  try {
    await train(cfg, { runDir: dir, handleSignals: false, stopAfterSteps: 1, progress: new Progress(quiet) });
  } finally {
    if (before === undefined) delete process.env.BUDGETNET_THREADS;
    else process.env.BUDGETNET_THREADS = before;
    setNumThreads(1);
  }
  const config = JSON.parse(fs.readFileSync(path.join(dir, "config.json"), "utf8")) as { threads: number };
  assert.equal(config.threads, 1, "the recipe's threads: 1 ran, not BUDGETNET_THREADS=2");
});
