// The model registry: every architecture registered by name with its family, source and option
// schema, built by createModel(name, options), which validates the options against the schema
// first. Family files call registerModel() at import time. analyticCost(name, options, inputShape)
// gives the parameter and multiply-add counts of the same model from its options alone (cost.ts).
import type { Module } from "../nn/module";
import { check, isInt } from "../ops/util";
import { ArgumentError, didYouMean } from "../tensor/errors";
import type { ModelCost } from "./cost";

export type { ModelCost } from "./cost";

import { type OptionSchema, readOptions, upgradeLegacyOptions } from "./options";

/** Options every factory takes; families add their own. */
export interface ModelOptions {
  /** Output classes (default 10). */
  numClasses?: number;
  /** Input image channels (default 3; 1 for Fashion-MNIST). */
  inChannels?: number;
  [option: string]: unknown;
}

export interface ModelEntry {
  name: string;
  family: string;
  description: string;
  /** Paper or code the architecture follows. */
  source: string;
  /** Options this name fixes (merged under the caller's options). */
  defaults: ModelOptions;
  /** Every option the family takes: type, default, range or choices, help (src/models/options.ts). */
  options: OptionSchema;
  create(options: ModelOptions): Module;
  /**
   * Exactly summary(create(options), {inputShape})'s params, macs and convLinearMacs, computed from
   * the options without building anything (src/models/cost.ts). Options arrive merged and validated,
   * as create's do; structural errors (depth, pool size) throw what create would.
   */
  cost?: (options: ModelOptions, inputShape: [number, number, number]) => ModelCost;
  /** Too large to run in the fast test suite (checked by counts and shapes only). */
  large?: boolean;
}

const registry = new Map<string, ModelEntry>();
const specs = new WeakMap<Module, { name: string; options: ModelOptions }>();

export function registerModel(entry: ModelEntry): void {
  if (registry.has(entry.name)) throw new ArgumentError(`registerModel: "${entry.name}" is already registered.`);
  registry.set(entry.name, entry);
}

/**
 * Builds a registered model. An unknown name fails with the closest known one; an unknown
 * option, or one of the wrong type or range, fails before anything is built. Legacy option forms
 * of old saved configs are rewritten first (upgradeLegacyOptions), so the caller's old form
 * overrides the name's defaults as it always did.
 */
export function createModel(name: string, options: ModelOptions = {}): Module {
  const { entry, merged } = resolveModel(name, options);
  const model = entry.create(merged);
  specs.set(model, { name, options: merged });
  return model;
}

/** The one wording of an unknown model name: a suggestion and where the names are listed. */
export function unknownModelMessage(name: string): string {
  return (
    `unknown model "${name}"${didYouMean(String(name), [...registry.keys()])}. ` +
    "List the registered models with `budgetnet models` (listModels() in code); a model of your own needs " +
    "registerModel() first (on the command line: --require ./your-module.js)."
  );
}

/** The entry and its validated options, name defaults under the caller's (createModel's checks). */
function resolveModel(name: string, options: ModelOptions): { entry: ModelEntry; merged: ModelOptions } {
  const entry = registry.get(name);
  if (entry === undefined) throw new ArgumentError(unknownModelMessage(name));
  const merged: ModelOptions = {
    numClasses: 10,
    inChannels: 3,
    ...entry.defaults,
    ...upgradeLegacyOptions(entry.options, options),
  };
  readOptions(entry.options, merged);
  return { entry, merged };
}

/**
 * Parameters and multiply-adds of createModel(name, options) on one input of `inputShape`
 * ([channels, height, width]), exactly as summary() counts them, without building the model: for
 * budgeted search, thousands of candidates a second. The options are validated as createModel
 * does, with the same errors (an impossible configuration, such as a pool larger than the last
 * feature map, throws the ArgumentError createModel would). Undefined when the family has no
 * analytic cost (see docs/models.md for which do).
 */
export function analyticCost(
  name: string,
  options: ModelOptions,
  inputShape: [number, number, number],
): ModelCost | undefined {
  const { entry, merged } = resolveModel(name, options ?? {});
  if (entry.cost === undefined) return undefined;
  check(
    Array.isArray(inputShape) && inputShape.length === 3 && inputShape.every((d) => isInt(d) && d >= 1),
    "analyticCost",
    "inputShape must be one sample's [channels, height, width]",
    "inputShape",
    inputShape,
  );
  check(
    inputShape[0] === merged.inChannels,
    "analyticCost",
    `inputShape has ${inputShape[0]} channels but the model takes inChannels=${String(merged.inChannels)}; pass inChannels: ${inputShape[0]} in the options or a ${String(merged.inChannels)}-channel inputShape`,
    "inputShape",
    inputShape,
  );
  return entry.cost(merged, [...inputShape]);
}

/** The registry name and resolved options a model was created with (for config.json and export). */
export function modelSpec(model: Module): { name: string; options: ModelOptions } | undefined {
  return specs.get(model);
}

export function listModels(): ModelEntry[] {
  return [...registry.values()].sort((a, b) => a.name.localeCompare(b.name));
}

export function getModelEntry(name: string): ModelEntry | undefined {
  return registry.get(name);
}
