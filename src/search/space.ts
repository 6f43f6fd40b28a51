// Search spaces as data: a JSON file (spaces/*.json, like recipes) names a model family, the
// source of the space, and for each searched option a domain:
//   {"choices": [16, 24, 32]}            one of the listed values (numbers, booleans or strings)
//   {"int": [1, 6]}                      an integer in [lo, hi] (uniform; "log": true for log-uniform)
//   {"range": [0, 0.3]}                  a number in [lo, hi] (uniform; "log": true for log-uniform)
//   {"perStage": DOMAIN}                 a list with one value per stage (B_i, C_i, F_i, K_i)
// "stages": {"int": [1, 4]} draws the number of stages N that every perStage list follows, and
// "fixed" sets options that are not searched, and "seeds" lists known networks of the space (each a
// full point, e.g. ResNet-20's shape in the Efficient ResNets space) that every strategy tries
// first, where they fit the budgets, before drawing at random (as Optuna's enqueue_trial; evolution
// then mutates them like any member). Every searched or fixed option must be one the
// family declares (src/models/options.ts), and every choice must fit the option's declared
// type and range: a space is checked whole before anything runs.
//
// A point is a plain object of option values. Sampling draws every option from its domain;
// mutation (for evolution) redraws one searched option, or adds or removes a stage, keeping the
// per-stage lists in step. Whether a point is buildable at all (a pool larger than the final
// map) is decided by the family's own checks in src/search/budget.ts, which repairs or rejects.
import * as fs from "node:fs";
import * as path from "node:path";
import type { CounterRng } from "../data/rng";
import { describeAllowed, fitsSpec, type OptionSpec } from "../models/options";
import { getModelEntry, listModels } from "../models/registry";
import { packageRoot } from "../paths";
import { ArgumentError, describe, didYouMean } from "../tensor/errors";

export type Scalar = number | boolean | string;

export type Domain =
  | { kind: "choices"; values: Scalar[] }
  | { kind: "int"; lo: number; hi: number; log: boolean }
  | { kind: "range"; lo: number; hi: number; log: boolean };

export interface OptionDomain {
  domain: Domain;
  perStage: boolean;
}

export interface SearchSpace {
  name: string;
  source: string;
  /** A registered model name whose family's options are searched. */
  model: string;
  /** Number of stages N (present when any option is per stage). */
  stages?: Domain;
  options: Record<string, OptionDomain>;
  fixed: Record<string, unknown>;
  /** Known points tried first, in order, where they fit the budgets (the space's "seeds"). */
  seeds: Point[];
  /** Where the space came from (a file path or "built-in NAME"). */
  origin: string;
  /** The space as written (with its name filled in): what a study stores and parses again. */
  raw: Record<string, unknown>;
}

export type Point = Record<string, unknown>;

const SPACE_KEYS = ["$schema", "name", "source", "model", "stages", "options", "fixed", "seeds"];

/** Folder of the built-in spaces (spaces/ at the package root). */
export function spacesDir(): string {
  return path.join(packageRoot(), "spaces");
}

export function listSpaces(): string[] {
  const dir = spacesDir();
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith(".json"))
    .map((f) => f.slice(0, -5))
    .sort();
}

/** A built-in space by name, or a JSON file by path. */
export function loadSpace(nameOrPath: string): SearchSpace {
  const builtIn = path.join(spacesDir(), `${nameOrPath}.json`);
  const looksLikeFile = nameOrPath.endsWith(".json") || nameOrPath.includes("/") || nameOrPath.includes(path.sep);
  let file: string;
  if (!looksLikeFile && fs.existsSync(builtIn)) file = builtIn;
  else if (looksLikeFile) {
    if (!fs.existsSync(nameOrPath))
      throw new ArgumentError(
        `search space file ${nameOrPath} does not exist. Built-in spaces: ${listSpaces().join(", ")}`,
      );
    file = nameOrPath;
  } else
    throw new ArgumentError(
      `unknown search space "${nameOrPath}"${didYouMean(nameOrPath, listSpaces())}. Built-in spaces: ${listSpaces().join(", ")}; or pass a JSON file.`,
    );
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (e) {
    throw new ArgumentError(`search space ${file} is not valid JSON: ${(e as Error).message}`);
  }
  return parseSpace(raw, looksLikeFile ? file : `built-in ${nameOrPath}`);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

function parseDomain(where: string, raw: unknown): Domain {
  if (!isObject(raw))
    throw new ArgumentError(
      `${where} must be a domain: {"choices": [...]}, {"int": [lo, hi]} or {"range": [lo, hi]}. Received: ${describe(raw)}`,
    );
  const keys = Object.keys(raw);
  const kinds = keys.filter((k) => k === "choices" || k === "int" || k === "range");
  if (kinds.length !== 1)
    throw new ArgumentError(
      `${where} must have exactly one of "choices", "int" or "range". Received keys: ${keys.join(", ") || "(none)"}`,
    );
  const extra = keys.filter((k) => k !== kinds[0] && k !== "log");
  if (extra.length > 0)
    throw new ArgumentError(
      `${where}: unknown key${extra.length > 1 ? "s" : ""} ${extra.map((k) => `"${k}"`).join(", ")}${didYouMean(extra[0] as string, ["choices", "int", "range", "log"])}`,
    );
  const log = raw.log ?? false;
  if (typeof log !== "boolean")
    throw new ArgumentError(`${where}.log must be true or false. Received: ${describe(log)}`);
  const kind = kinds[0] as "choices" | "int" | "range";
  const v = raw[kind];
  if (kind === "choices") {
    if (!Array.isArray(v) || v.length === 0)
      throw new ArgumentError(`${where}.choices must be a non-empty list. Received: ${describe(v)}`);
    for (const c of v)
      if (!["number", "boolean", "string"].includes(typeof c) || (typeof c === "number" && !Number.isFinite(c)))
        throw new ArgumentError(`${where}.choices must hold numbers, booleans or strings. Received: ${describe(c)}`);
    if (log) throw new ArgumentError(`${where}: "log" applies to "int" and "range" domains, not to "choices"`);
    return { kind, values: [...new Set(v as Scalar[])] };
  }
  if (!Array.isArray(v) || v.length !== 2 || !v.every((x) => typeof x === "number" && Number.isFinite(x)))
    throw new ArgumentError(`${where}.${kind} must be [lo, hi], two finite numbers. Received: ${describe(v)}`);
  const [lo, hi] = v as [number, number];
  if (lo > hi) throw new ArgumentError(`${where}.${kind}: lo ${lo} is above hi ${hi}. Swap them.`);
  if (kind === "int" && !(Number.isInteger(lo) && Number.isInteger(hi)))
    throw new ArgumentError(`${where}.int bounds must be integers. Received: [${lo}, ${hi}]`);
  if (log && lo <= 0) throw new ArgumentError(`${where}: a log domain needs lo > 0. Received: lo=${lo}`);
  return { kind, lo, hi, log };
}

/** Every value a domain can produce fits the option's declared spec (checked on the ends and the choices). */
function checkDomainFits(where: string, spec: OptionSpec, d: Domain, perStage: boolean): void {
  const listOption = spec.type === "intList" || spec.type === "intOrIntList";
  if (perStage && !listOption)
    throw new ArgumentError(
      `${where}: "perStage" needs an option that takes one value per stage (a list); this one is ${spec.type}.`,
    );
  if (!perStage && spec.type === "intList")
    throw new ArgumentError(`${where}: the option takes one value per stage; write {"perStage": DOMAIN}.`);
  const integral = spec.type === "int" || listOption;
  if (d.kind === "range" && integral)
    throw new ArgumentError(`${where}: the option takes integers; use {"int": [lo, hi]} instead of "range".`);
  for (const x of d.kind === "choices" ? d.values : [d.lo, d.hi])
    if (!fitsSpec(spec, perStage ? [x] : x))
      throw new ArgumentError(
        `${where}: ${describe(x)} is not a valid value: the option must be ${describeAllowed(spec)} (${spec.help}).`,
      );
}

/** Checks a space object as a whole and returns it typed. */
export function parseSpace(raw: unknown, origin: string): SearchSpace {
  if (!isObject(raw))
    throw new ArgumentError(`search space ${origin} must be a JSON object. Received: ${describe(raw)}`);
  const unknownKeys = Object.keys(raw).filter((k) => !SPACE_KEYS.includes(k));
  if (unknownKeys.length > 0)
    throw new ArgumentError(
      `search space ${origin}: unknown field "${unknownKeys[0]}"${didYouMean(unknownKeys[0] as string, SPACE_KEYS)}. Fields: ${SPACE_KEYS.slice(1).join(", ")}`,
    );
  const model = raw.model;
  if (typeof model !== "string")
    throw new ArgumentError(`search space ${origin}: "model" must name a registered model (budgetnet models).`);
  const entry = getModelEntry(model);
  if (entry === undefined)
    throw new ArgumentError(
      `search space ${origin}: unknown model "${model}"${didYouMean(
        model,
        listModels().map((m) => m.name),
      )}. List them with budgetnet models.`,
    );
  const specs = entry.options.specs;
  const known = Object.keys(specs);
  const optionsRaw = raw.options ?? {};
  if (!isObject(optionsRaw))
    throw new ArgumentError(`search space ${origin}: "options" must be an object of option -> domain.`);
  const options: Record<string, OptionDomain> = {};
  for (const [key, value] of Object.entries(optionsRaw)) {
    const spec = specs[key];
    if (spec === undefined)
      throw new ArgumentError(
        `search space ${origin}: ${model} has no option "${key}"${didYouMean(key, known)}. Its options: ${known.join(", ")}`,
      );
    const where = `search space ${origin}: options.${key}`;
    const perStage = isObject(value) && "perStage" in value;
    if (perStage && Object.keys(value).length !== 1)
      throw new ArgumentError(`${where}: {"perStage": DOMAIN} takes nothing beside the domain.`);
    const domain = parseDomain(perStage ? `${where}.perStage` : where, perStage ? value.perStage : value);
    checkDomainFits(where, spec, domain, perStage);
    options[key] = { domain, perStage };
  }
  if (Object.keys(options).length === 0)
    throw new ArgumentError(`search space ${origin} is empty: "options" lists no option to search.`);
  const fixedRaw = raw.fixed ?? {};
  if (!isObject(fixedRaw))
    throw new ArgumentError(`search space ${origin}: "fixed" must be an object of option values.`);
  for (const [key, v] of Object.entries(fixedRaw)) {
    const spec = specs[key];
    if (spec === undefined)
      throw new ArgumentError(
        `search space ${origin}: fixed.${key} is not an option of ${model}${didYouMean(key, known)}. Its options: ${known.join(", ")}`,
      );
    if (key in options) throw new ArgumentError(`search space ${origin}: ${key} is both searched and fixed; keep one.`);
    if (!fitsSpec(spec, v))
      throw new ArgumentError(`search space ${origin}: fixed.${key} does not fit the option. Received: ${describe(v)}`);
  }
  const anyPerStage = Object.values(options).some((o) => o.perStage);
  let stages: Domain | undefined;
  if (raw.stages !== undefined) {
    stages = parseDomain(`search space ${origin}: stages`, raw.stages);
    const values = stages.kind === "choices" ? stages.values : [stages.lo, stages.hi];
    if (stages.kind === "range" || !values.every((n) => typeof n === "number" && Number.isInteger(n) && n >= 1))
      throw new ArgumentError(`search space ${origin}: stages must be integers >= 1 ({"int": [1, 4]}).`);
  }
  if (anyPerStage && stages === undefined)
    throw new ArgumentError(
      `search space ${origin}: per-stage options need "stages" (the number N of stages to draw).`,
    );
  if (!anyPerStage && stages !== undefined)
    throw new ArgumentError(`search space ${origin}: "stages" is set but no option is "perStage".`);
  const str = (k: string): string => {
    const v = raw[k] ?? "";
    if (typeof v !== "string") throw new ArgumentError(`search space ${origin}: "${k}" must be a string.`);
    return v;
  };
  const name = str("name") || path.basename(origin, ".json");
  const source = str("source");
  const space: SearchSpace = {
    name,
    source,
    model,
    stages,
    options,
    fixed: { ...fixedRaw },
    seeds: [],
    origin,
    raw: { ...raw, name },
  };
  const seedsRaw = raw.seeds ?? [];
  if (!Array.isArray(seedsRaw))
    throw new ArgumentError(
      `search space ${origin}: "seeds" must be a list of points. Received: ${describe(seedsRaw)}`,
    );
  space.seeds = seedsRaw.map((p, i) => parseSeed(space, `search space ${origin}: seeds[${i}]`, p));
  return space;
}

function inDomain(d: Domain, v: unknown): boolean {
  if (d.kind === "choices") return d.values.includes(v as Scalar);
  if (typeof v !== "number" || v < d.lo || v > d.hi) return false;
  return d.kind === "range" || Number.isInteger(v);
}

function describeDomain(d: Domain): string {
  if (d.kind === "choices") return `one of ${d.values.map((v) => JSON.stringify(v)).join(", ")}`;
  return `${d.kind === "int" ? "an integer" : "a number"} in [${d.lo}, ${d.hi}]`;
}

/** A seed point: every searched option, each value inside its domain, per-stage lists of one length N in "stages". */
function parseSeed(space: SearchSpace, where: string, raw: unknown): Point {
  if (!isObject(raw))
    throw new ArgumentError(`${where} must be an object of searched option -> value. Received: ${describe(raw)}`);
  const searched = Object.keys(space.options);
  const extra = Object.keys(raw).filter((k) => !(k in space.options));
  if (extra.length > 0)
    throw new ArgumentError(
      `${where}: "${extra[0]}" is not a searched option of the space${didYouMean(extra[0] as string, searched)}. Searched: ${searched.join(", ")}`,
    );
  const missing = searched.filter((k) => !(k in raw));
  if (missing.length > 0)
    throw new ArgumentError(`${where} must give every searched option; missing: ${missing.join(", ")}`);
  let n: number | undefined;
  for (const [key, o] of Object.entries(space.options)) {
    const v = raw[key];
    if (o.perStage) {
      if (!Array.isArray(v) || v.length === 0)
        throw new ArgumentError(`${where}.${key} must be a list, one value per stage. Received: ${describe(v)}`);
      if (n !== undefined && v.length !== n)
        throw new ArgumentError(`${where}.${key} has ${v.length} stages where the other lists have ${n}.`);
      n = v.length;
      const bad = v.find((x) => !inDomain(o.domain, x));
      if (bad !== undefined)
        throw new ArgumentError(
          `${where}.${key}: ${describe(bad)} is outside the domain (${describeDomain(o.domain)}).`,
        );
    } else if (!inDomain(o.domain, v))
      throw new ArgumentError(`${where}.${key}: ${describe(v)} is outside the domain (${describeDomain(o.domain)}).`);
  }
  if (n !== undefined && space.stages !== undefined && !inDomain(space.stages, n))
    throw new ArgumentError(`${where}: ${n} stages is outside "stages" (${describeDomain(space.stages)}).`);
  return JSON.parse(JSON.stringify(raw)) as Point;
}

function drawScalar(d: Domain, rng: CounterRng): Scalar {
  switch (d.kind) {
    case "choices":
      return d.values[rng.int(d.values.length)] as Scalar;
    case "int": {
      if (d.log) {
        const x = Math.exp(Math.log(d.lo) + rng.uniform() * (Math.log(d.hi + 1) - Math.log(d.lo)));
        return Math.min(d.hi, Math.floor(x));
      }
      return d.lo + rng.int(d.hi - d.lo + 1);
    }
    case "range": {
      const x = d.log
        ? Math.exp(Math.log(d.lo) + rng.uniform() * (Math.log(d.hi) - Math.log(d.lo)))
        : d.lo + rng.uniform() * (d.hi - d.lo);
      // six significant digits keep journals and recipes readable
      return Number(x.toPrecision(6));
    }
  }
}

function stageCount(space: SearchSpace, p: Point): number {
  for (const [k, o] of Object.entries(space.options)) if (o.perStage) return (p[k] as unknown[]).length;
  return 0;
}

/** A point drawn uniformly from the space (stage count first, then each option). */
export function samplePoint(space: SearchSpace, rng: CounterRng): Point {
  const n = space.stages === undefined ? 0 : (drawScalar(space.stages, rng) as number);
  const p: Point = {};
  for (const [key, o] of Object.entries(space.options))
    p[key] = o.perStage ? Array.from({ length: n }, () => drawScalar(o.domain, rng)) : drawScalar(o.domain, rng);
  return p;
}

/** Stage-count values the space allows. */
function stageValues(d: Domain): number[] {
  if (d.kind === "choices") return d.values as number[];
  return Array.from({ length: d.hi - d.lo + 1 }, (_, i) => d.lo + i);
}

/**
 * One mutation (regularized evolution, Real et al. 2019): redraw one searched value to a
 * different one where the domain allows, or change the number of stages by one (a new stage
 * copies the last one's values; a removed stage is the last).
 */
export function mutatePoint(space: SearchSpace, parent: Point, rng: CounterRng): Point {
  const child: Point = JSON.parse(JSON.stringify(parent));
  const keys = Object.keys(space.options);
  const n = stageCount(space, parent);
  const canChangeStages = space.stages !== undefined && stageValues(space.stages).some((v) => Math.abs(v - n) === 1);
  const slots = keys.length + (canChangeStages ? 1 : 0);
  for (let attempt = 0; attempt < 16; attempt++) {
    const pick = rng.int(slots);
    if (pick === keys.length) {
      const allowed = stageValues(space.stages as Domain).filter((v) => Math.abs(v - n) === 1);
      const m = allowed[rng.int(allowed.length)] as number;
      for (const [k, o] of Object.entries(space.options)) {
        if (!o.perStage) continue;
        const list = child[k] as Scalar[];
        if (m > n) list.push(list[list.length - 1] as Scalar);
        else list.pop();
      }
      return child;
    }
    const key = keys[pick] as string;
    const o = space.options[key] as OptionDomain;
    if (o.perStage) {
      const list = child[key] as Scalar[];
      const i = rng.int(list.length);
      const v = drawScalar(o.domain, rng);
      if (v !== list[i]) {
        list[i] = v;
        return child;
      }
    } else {
      const v = drawScalar(o.domain, rng);
      if (v !== child[key]) {
        child[key] = v;
        return child;
      }
    }
  }
  return child; // a space of single-valued domains: nothing to change
}

/** A point's model options: the searched values over the space's fixed ones. */
export function pointOptions(space: SearchSpace, p: Point): Record<string, unknown> {
  return { ...space.fixed, ...p };
}

/** A stable key for a point (sorted keys), to recognize duplicates. */
export function pointKey(p: Point): string {
  return JSON.stringify(
    Object.keys(p)
      .sort()
      .map((k) => [k, p[k]]),
  );
}

/** A short human form: "blocks=[2,2] channels=32 ...". */
export function formatPoint(p: Point): string {
  return Object.entries(p)
    .map(([k, v]) => `${k}=${Array.isArray(v) ? `[${v.join(",")}]` : String(v)}`)
    .join(" ");
}
