// Declared option schemas: every model family lists its options (type, default, range or
// choices, one line of help) and reads them through readOptions, the one reader. createModel
// validates a caller's options against the entry's schema before building anything, `budgetnet
// models --json` prints the schemas and `budgetnet summary MODEL --help-options` shows one as a
// table; design-space search samples from them.
//
// Legacy forms (saved run configs written before the schemas) are rewritten in one place,
// upgradeLegacyOptions, before validation:
//   1. `se: <number>` (resnet_cifar's old reduction ratio) → `se: r > 0` plus `seReduction: r`.
//   2. `seReduction: <number>` without `se`, in schemas declared with legacySeReductionSwitch
//      (preact_resnet, resnet_imagenet, where seReduction 0 used to mean "no SE")
//      → `se: seReduction > 0` (and the reduction itself when it is > 0).
import { ArgumentError, describe, didYouMean } from "../tensor/errors";

export type OptionType = "int" | "number" | "boolean" | "choice" | "intList" | "intOrIntList";

export interface OptionSpec {
  type: OptionType;
  /** One line for `--help-options` and the search space. */
  help: string;
  /** Absent when the value is derived from other options (the help says from which). */
  default?: number | boolean | string | readonly number[];
  /** Lower bound of a number, an int, or each entry of a list. */
  min?: number;
  max?: number;
  minExclusive?: boolean;
  maxExclusive?: boolean;
  /** The accepted values of a "choice". */
  choices?: readonly string[];
}

export type OptionSpecs = Readonly<Record<string, OptionSpec>>;

export interface OptionSchema<T extends OptionSpecs = OptionSpecs> {
  /** The name errors start with ("ResNeXt: cardinality must be ..."). */
  owner: string;
  specs: T;
  /** Old saved configs used seReduction alone as the SE switch (rule 2 above). */
  legacySeReductionSwitch?: boolean;
}

type ValueOf<S extends OptionSpec> = S["type"] extends "int" | "number"
  ? number
  : S["type"] extends "boolean"
    ? boolean
    : S["type"] extends "choice"
      ? S extends { choices: readonly (infer C)[] }
        ? C
        : string
      : S["type"] extends "intList"
        ? number[]
        : number | number[];

/** Options as a family reads them: defaults filled in; options without a default may be undefined. */
export type ResolvedOptions<T extends OptionSpecs> = {
  -readonly [K in keyof T]: T[K] extends { default: unknown } ? ValueOf<T[K]> : ValueOf<T[K]> | undefined;
};

/** numClasses and inChannels: every family takes them. */
export const COMMON_OPTIONS = {
  numClasses: { type: "int", min: 1, default: 10, help: "classifier outputs" },
  inChannels: { type: "int", min: 1, default: 3, help: "input image channels (1 for Fashion-MNIST)" },
} as const satisfies OptionSpecs;

/** Declares a family's schema; numClasses and inChannels come first. */
export function defineOptions<const T extends OptionSpecs>(
  owner: string,
  specs: T,
  extra: { legacySeReductionSwitch?: boolean } = {},
): OptionSchema<typeof COMMON_OPTIONS & T> {
  const all = Object.freeze({ ...COMMON_OPTIONS, ...specs });
  return Object.freeze({ owner, specs: all, ...extra });
}

/** Rewrites the legacy forms listed at the top of this file; returns a new object. */
export function upgradeLegacyOptions(schema: OptionSchema, options: Record<string, unknown>): Record<string, unknown> {
  const o = { ...options };
  const hasSe = schema.specs.se?.type === "boolean" && schema.specs.seReduction !== undefined;
  if (!hasSe) return o;
  if (typeof o.se === "number" && Number.isInteger(o.se) && o.se >= 0) {
    const r = o.se;
    if (o.seReduction !== undefined && r > 0 && o.seReduction !== r)
      throw new ArgumentError(
        `${schema.owner}: se=${r} (the old form of se=true, seReduction=${r}) contradicts seReduction. Received: se=${r}, seReduction=${describe(o.seReduction)}`,
      );
    o.se = r > 0;
    if (r > 0) o.seReduction = r;
  } else if (schema.legacySeReductionSwitch && o.se === undefined && typeof o.seReduction === "number") {
    o.se = o.seReduction > 0;
    if (o.seReduction === 0) delete o.seReduction;
  }
  return o;
}

/** "an integer >= 1", "a number in (0, 1]", "one of "A", "B"": what a spec accepts. */
export function describeAllowed(spec: OptionSpec): string {
  const lo = spec.min === undefined ? "" : `${spec.minExclusive ? ">" : ">="} ${spec.min}`;
  const hi = spec.max === undefined ? "" : `${spec.maxExclusive ? "<" : "<="} ${spec.max}`;
  const bounds = [lo, hi].filter((s) => s !== "").join(" and ");
  const range =
    spec.min !== undefined && spec.max !== undefined
      ? ` in ${spec.minExclusive ? "(" : "["}${spec.min}, ${spec.max}${spec.maxExclusive ? ")" : "]"}`
      : bounds === ""
        ? ""
        : ` ${bounds}`;
  switch (spec.type) {
    case "int":
      return `an integer${range}`;
    case "number":
      return `a number${range}`;
    case "boolean":
      return "true or false";
    case "choice":
      return `one of ${(spec.choices ?? []).map((c) => `"${c}"`).join(", ")}`;
    case "intList":
      return `a non-empty list of integers${range}`;
    case "intOrIntList":
      return `an integer${range} or a non-empty list of them`;
  }
}

function inRange(spec: OptionSpec, v: number): boolean {
  if (spec.min !== undefined && (spec.minExclusive ? v <= spec.min : v < spec.min)) return false;
  if (spec.max !== undefined && (spec.maxExclusive ? v >= spec.max : v > spec.max)) return false;
  return true;
}

const isInt = (v: unknown): v is number => typeof v === "number" && Number.isInteger(v);
const isIntList = (spec: OptionSpec, v: unknown): boolean =>
  Array.isArray(v) && v.length > 0 && v.every((x) => isInt(x) && inRange(spec, x));

/** Whether a value fits its spec (type, range, choices). */
export function fitsSpec(spec: OptionSpec, v: unknown): boolean {
  switch (spec.type) {
    case "int":
      return isInt(v) && inRange(spec, v);
    case "number":
      return typeof v === "number" && Number.isFinite(v) && inRange(spec, v);
    case "boolean":
      return typeof v === "boolean";
    case "choice":
      return typeof v === "string" && (spec.choices ?? []).includes(v);
    case "intList":
      return isIntList(spec, v);
    case "intOrIntList":
      return (isInt(v) && inRange(spec, v)) || isIntList(spec, v);
  }
}

/**
 * The one option reader: rewrites legacy forms, rejects unknown keys (listing the known ones,
 * with a did-you-mean for each near miss) and values of the wrong type or range (naming the
 * option, the value and what is allowed), and fills in defaults. An option given as undefined
 * counts as not given.
 */
export function readOptions<T extends OptionSpecs>(
  schema: OptionSchema<T>,
  options: Record<string, unknown>,
): ResolvedOptions<T> {
  const o = upgradeLegacyOptions(schema, options);
  const known = Object.keys(schema.specs);
  const unknown = Object.keys(o).filter((k) => o[k] !== undefined && !known.includes(k));
  if (unknown.length > 0)
    throw new ArgumentError(
      `${schema.owner}: unknown option${unknown.length > 1 ? "s" : ""} ${unknown.map((k) => `"${k}"`).join(", ")}. Known options: ${known.join(", ")}. Received: ${unknown.map((k) => `${k}=${describe(o[k])}${didYouMean(k, known)}`).join(", ")}`,
    );
  const out: Record<string, unknown> = {};
  for (const [key, spec] of Object.entries(schema.specs)) {
    const v = o[key] ?? spec.default;
    if (v !== undefined && !fitsSpec(spec, v))
      throw new ArgumentError(
        `${schema.owner}: ${key} must be ${describeAllowed(spec)}. Received: ${key}=${describe(v)}`,
      );
    out[key] = Array.isArray(v) ? [...v] : v;
  }
  return out as ResolvedOptions<T>;
}

/** A number or a list of numbers as a list of `n` entries (a number is repeated). */
export function perStage(value: number | readonly number[], n: number): number[] {
  return typeof value === "number" ? new Array<number>(n).fill(value) : [...value];
}

/** The schema as rows for a table: name, type, default, allowed, help. */
export function optionRows(
  schema: OptionSchema,
): { name: string; type: string; default: string; allowed: string; help: string }[] {
  return Object.entries(schema.specs).map(([name, spec]) => ({
    name,
    type: spec.type,
    default: spec.default === undefined ? "(derived)" : describe(spec.default),
    allowed: describeAllowed(spec),
    help: spec.help,
  }));
}
