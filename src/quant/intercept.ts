// A forward with every site's value open to replacement: the int8 simulation and quantization-
// aware training fake-quantize values as the model computes them. Site keys are made exactly as
// traceSites (./sites.ts) makes them (a test compares the two on the model zoo), but where
// traceSites only watches, this one lets `onSite` return a new value for the site:
// - an op that returns a value: the returned handle replaces it (the old one is freed);
// - an in-place op (relu_): its value is written back into its tensor with copy_. With autograd
//   on, relu_ is run as an out-of-place relu first, so that relu's saved output is not the
//   tensor copy_ overwrites (which autograd would refuse in backward).
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

/**
 * Runs model.forward(input) with sites open to replacement; returns the output. The caller
 * chooses no-grad (simulation) or grad mode (QAT) and owns the scope.
 */
export function forwardWithSites(model: Module, input: Tensor, opts: InterceptOptions): Tensor {
  const paths: string[] = [];
  const derived = new Set<NativeHandle>();
  const counts = new Map<string, number>();
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
        const freeAfter: NativeHandle[] = [];
        if ((name === "conv2d" || name === "linear") && opts.onWeight !== undefined && isNativeHandle(args[1])) {
          const w = opts.onWeight(args[1], name);
          if (w !== undefined) {
            args[1] = w;
            freeAfter.push(w);
          }
        }
        const inPlaceRelu = name === "relu_" && isGradEnabled();
        const result = inPlaceRelu ? callNative("relu", [args[0]]) : call();
        for (const h of freeAfter) h.dispose();
        const inPlace = name.endsWith("_");
        const value = inPlaceRelu
          ? (result as NativeHandle)
          : isNativeHandle(result)
            ? result
            : inPlace && isNativeHandle(args[0])
              ? args[0]
              : undefined;
        if (value === undefined) return result;
        const module = pathOfLabel(paths[paths.length - 1]);
        const counter = `${module}:${name}`;
        const k = counts.get(counter) ?? 0;
        counts.set(counter, k + 1);
        const replaced = opts.onSite({ key: siteKey(module, name, k), op: name, module }, value);
        if (inPlace) {
          const target = args[0] as NativeHandle;
          if (replaced !== undefined || inPlaceRelu) callNative("copy_", [target, replaced ?? value]);
          if (replaced !== undefined) replaced.dispose();
          if (inPlaceRelu) value.dispose();
          derived.add(target);
          return undefined;
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
    if (x !== input) x.dispose();
  }
}
