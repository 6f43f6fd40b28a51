// The model registry: every architecture registered by name with its family, source and option
// schema, built by createModel(name, options), which validates the options against the schema
// first. Family files call registerModel() at import time.
import type { Module } from "../nn/module";
import { ArgumentError } from "../tensor/errors";
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
 * Builds a registered model. An unknown name fails with the list of known ones; an unknown
 * option, or one of the wrong type or range, fails before anything is built. Legacy option forms
 * of old saved configs are rewritten first (upgradeLegacyOptions), so the caller's old form
 * overrides the name's defaults as it always did.
 */
export function createModel(name: string, options: ModelOptions = {}): Module {
  const entry = registry.get(name);
  if (entry === undefined)
    throw new ArgumentError(
      `createModel: unknown model "${name}". Known models: ${[...registry.keys()].sort().join(", ")}`,
    );
  const merged: ModelOptions = {
    numClasses: 10,
    inChannels: 3,
    ...entry.defaults,
    ...upgradeLegacyOptions(entry.options, options),
  };
  readOptions(entry.options, merged);
  const model = entry.create(merged);
  specs.set(model, { name, options: merged });
  return model;
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
