// A forward with every site's value open to replacement: the int8 simulation and quantization-
// aware training fake-quantize values as the model computes them. Site keys are made exactly as
// traceSites (./sites.ts) makes them (a test compares the two on the model zoo), but where
// traceSites only watches, this one lets `onSite` return a new value for the site:
// - an op that returns a value: the returned handle replaces it (the old one is freed);
// - an in-place op (relu_): without autograd its replacement is written back into its tensor
//   (copy_); with autograd (QAT) the addon's copy_ records no gradient, so the replacement is
//   handed to every later call that reads the tensor instead, which computes the same values.
// `onWeight` may replace the weight argument of conv2d and linear calls (fake-quantized weights).
import type { Module } from "../nn/module";
import { pathOfLabel, trackModulePaths } from "../nn/module_paths";
import { isGradEnabled, type NativeHandle, Tensor } from "../tensor/tensor";
import {
  callNative,
  handleArgs,
  INFO_FUNCTIONS,
  interceptNative,
  isNativeHandle,
  type NativeFunctionName,
} from "../tensor/trace";
import { siteKey } from "./sites";

export interface InterceptedSite {
  key: string;
  op: NativeFunctionName | "input";
  module: string;
}

export interface InterceptOptions {
  /** Sees each site's value; returns a replacement (a new handle the caller no longer owns) or nothing. */
  onSite: (site: InterceptedSite, value: NativeHandle) => NativeHandle | undefined;
  /** Sees the weight of each conv2d/linear call; returns a replacement or nothing. */
  onWeight?: (weight: NativeHandle, op: "conv2d" | "linear") => NativeHandle | undefined;
}

/** Replaces handles among a call's arguments (arrays of handles included) by their substitutes. */
function substitute(args: unknown[], subs: Map<NativeHandle, NativeHandle>): void {
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (isNativeHandle(a)) args[i] = subs.get(a) ?? a;
    else if (Array.isArray(a) && a.some((b) => isNativeHandle(b) && subs.has(b)))
      args[i] = a.map((b) => (isNativeHandle(b) ? (subs.get(b) ?? b) : b));
  }
}

/**
 * Runs model.forward(input) with sites open to replacement; returns the output. The caller
 * chooses no-grad (simulation) or grad mode (QAT) and owns the scope.
 */
export function forwardWithSites(model: Module, input: Tensor, opts: InterceptOptions): Tensor {
  const paths: string[] = [];
  const derived = new Set<NativeHandle>();
  const counts = new Map<string, number>();
  // grad mode: an in-place op's replacement is handed to the value's later readers instead of
  // copied into it (the addon's copy_ does not record autograd)
  const subs = new Map<NativeHandle, NativeHandle>();
  const grad = isGradEnabled();
  const untrack = trackModulePaths(model, paths);
  const inputSite: InterceptedSite = { key: "input", op: "input", module: "" };
  const replacedInput = opts.onSite(inputSite, input.handle);
  const x = replacedInput === undefined ? input : new Tensor(replacedInput);
  derived.add(x.handle);
  try {
    return interceptNative(
      () => model.forward(x),
      (name, args, call) => {
        if (INFO_FUNCTIONS.has(name) || !handleArgs(args).some((h) => derived.has(h))) return call();
        const inPlace = name.endsWith("_");
        const target = inPlace && isNativeHandle(args[0]) ? args[0] : undefined;
        if (subs.size > 0) {
          if (target !== undefined) subs.get(target)?.dispose();
          if (target !== undefined) subs.delete(target); // written again: its old replacement is stale
          substitute(args, subs);
        }
        const freeAfter: NativeHandle[] = [];
        if ((name === "conv2d" || name === "linear") && opts.onWeight !== undefined && isNativeHandle(args[1])) {
          const w = opts.onWeight(args[1], name);
          if (w !== undefined) {
            args[1] = w;
            freeAfter.push(w);
          }
        }
        const result = call();
        for (const h of freeAfter) h.dispose();
        const value = isNativeHandle(result) ? result : target;
        if (value === undefined) return result;
        const module = pathOfLabel(paths[paths.length - 1]);
        const counter = `${module}:${name}`;
        const k = counts.get(counter) ?? 0;
        counts.set(counter, k + 1);
        const replaced = opts.onSite({ key: siteKey(module, name, k), op: name, module }, value);
        if (target !== undefined && value === target) {
          derived.add(target);
          if (replaced === undefined) return result;
          if (grad) {
            derived.add(replaced);
            subs.set(target, replaced);
          } else {
            callNative("copy_", [target, replaced]);
            replaced.dispose();
          }
          return result;
        }
        if (replaced === undefined) {
          derived.add(value);
          return result;
        }
        value.dispose();
        derived.add(replaced);
        return replaced;
      },
      "forwardWithSites",
    );
  } finally {
    untrack();
    for (const h of subs.values()) h.dispose();
    if (x !== input) x.dispose();
  }
}
