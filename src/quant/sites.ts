// Quantization sites: every value computed from the input in one forward of a (BatchNorm-folded)
// model, named so that the calibration pass, the int8 inference plan and the int8 ONNX export
// agree on which tensor a scale belongs to, although each traces the model for itself.
//
// A site's key is "input" for the model's input, else `${modulePath}:${op}#${k}`: the module
// whose forward made the call ("" for the root), the native function, and k, the count of earlier
// calls of that function in that module during the same forward. Example: "layer1.0:relu_#1" is
// the second in-place ReLU in block layer1.0. Keys do not depend on the batch size or on the
// handles, only on the model's code and options, so they are stable across traces and processes.
//
// The contract (see docs/int8.md):
// - sites are found on the model after foldBatchNorm (src/perf/fold.ts): a folded model has no
//   batchNorm call after a convolution, so its sites are those the plan and the QDQ export see;
// - a QuantSpec (./spec.ts) maps site keys to activation scales; a consumer that needs a value
//   quantized looks its key up and reports a missing key as an error naming the key.
import type { Module } from "../nn/module";
import { pathOfLabel, trackModulePaths } from "../nn/module_paths";
import type { NativeHandle, Tensor } from "../tensor/tensor";
import {
  handleArgs,
  INFO_FUNCTIONS,
  isNativeHandle,
  type NativeCall,
  type NativeFunctionName,
  traceNative,
} from "../tensor/trace";

export interface Site {
  /** "input", or `${modulePath}:${op}#${k}`. */
  key: string;
  /** The native function that produced the value ("input" for the input). */
  op: NativeFunctionName | "input";
  /** Module path whose forward made the call ("" for the root or the input). */
  module: string;
  /** Index of the call in `calls` (-1 for the input). */
  callIndex: number;
  /** Shape of the value for the traced batch. */
  shape: number[];
}

export interface SiteTrace<T> {
  /** Every input-derived value, in call order, the input first. */
  sites: Site[];
  /** Every native call of the forward, as traceNative reports them (with shapes). */
  calls: NativeCall[];
  /**
   * The value handle of each site (alive while the caller's scope keeps them). An in-place op's
   * site shares its handle with the site it changed, which then reads the changed value.
   */
  handles: NativeHandle[];
  /** What fn returned. */
  result: T;
}

/** The site key of a call: exported so that tracers of their own (ONNX export) name values alike. */
export function siteKey(module: string, op: string, k: number): string {
  return `${module}:${op}#${k}`;
}

/**
 * Runs fn (which must call model.forward(input) once, in no-grad and a scope of the caller's)
 * under the native tracer and returns every site. `onSite` sees each value when it is made,
 * before a later in-place op changes it (a convolution's output before the in-place ReLU that
 * follows it): read statistics there, not from `handles` afterwards. onSite runs inside the
 * tracer's hook, so the native calls it makes are neither traced nor counted.
 */
export function traceSites<T>(
  model: Module,
  input: Tensor,
  fn: () => T,
  onSite?: (site: Site, value: NativeHandle) => void,
): SiteTrace<T> {
  const paths: string[] = [];
  const derived = new Set<NativeHandle>([input.handle]);
  const sites: Site[] = [{ key: "input", op: "input", module: "", callIndex: -1, shape: input.shape }];
  const handles: NativeHandle[] = [input.handle];
  const counts = new Map<string, number>();
  const calls: NativeCall[] = [];
  const untrack = trackModulePaths(model, paths);
  try {
    onSite?.(sites[0] as Site, input.handle);
    const result = traceNative(
      () => fn(),
      (c) => {
        const i = calls.push(c) - 1;
        if (INFO_FUNCTIONS.has(c.name) || !handleArgs(c.args).some((h) => derived.has(h))) return;
        // in-place ops (relu_) return nothing: their value is their first argument
        const value = isNativeHandle(c.result)
          ? c.result
          : c.name.endsWith("_") && isNativeHandle(c.args[0])
            ? c.args[0]
            : undefined;
        if (value === undefined) return;
        derived.add(value);
        const module = pathOfLabel(paths[paths.length - 1]);
        const counter = `${module}:${c.name}`;
        const k = counts.get(counter) ?? 0;
        counts.set(counter, k + 1);
        const shape = c.resultShape ?? c.argShapes?.[0] ?? [];
        const site: Site = { key: siteKey(module, c.name, k), op: c.name, module, callIndex: i, shape };
        sites.push(site);
        handles.push(value);
        onSite?.(site, value);
      },
      { shapes: true },
    );
    return { sites, calls, handles, result };
  } finally {
    untrack();
  }
}
