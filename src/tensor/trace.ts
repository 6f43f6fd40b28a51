// The one native-call tracer: for one call of fn, every addon function that fn reaches (through
// ops, layers, models) goes through a hook, which runs it and may record, time or refuse it.
// BatchNorm folding and compileInference (src/perf) use it to see which tensors feed which ops,
// the per-op profile (src/perf/trace.ts) to time them, and ONNX export (src/export/onnx/trace.ts)
// to record the graph. Traces do not nest; the addon's functions are put back when fn returns
// or throws.
import {
  type DType,
  NATIVE_FUNCTIONS,
  type NativeFunction,
  type NativeFunctionName,
  type NativeHandle,
  native,
  nativeCalls,
} from "./binding";
import { ArgumentError } from "./errors";
import { Tensor } from "./tensor";

export type { NativeFunctionName } from "./binding";

export interface NativeCall {
  name: NativeFunctionName;
  args: unknown[];
  result: unknown;
  elapsedMs: number;
  /** With { shapes: true }: each tensor argument's shape at the call (undefined for non-tensors). */
  argShapes?: (number[] | undefined)[];
  /** With { shapes: true }: the result's shape when it is a tensor. */
  resultShape?: number[];
}

/** Functions that read a tensor's metadata without computing on it. */
export const INFO_FUNCTIONS: ReadonlySet<string> = new Set<NativeFunctionName>([
  "shape",
  "dtype",
  "device",
  "isContiguous",
  "requiresGrad",
  "isGradEnabled",
  "setGradEnabled",
  "liveTensors",
  "getNumThreads",
  "autocastState",
  "isInferenceMode",
]);

/**
 * Decides what one call does while a trace runs: `call()` runs the addon function on args and
 * returns its result; what the hook returns is the caller's result. The hook's own native calls
 * (a shape query, a clone) go straight to the addon, neither hooked nor reported.
 */
export type NativeHook = (name: NativeFunctionName, args: unknown[], call: () => unknown) => unknown;

let tracing = false;
let inHook = false;

/** Runs fn with every addon function (but setErrorClass) routed through hook. Not reentrant. */
export function interceptNative<T>(fn: () => T, hook: NativeHook, caller = "traceNative"): T {
  if (tracing)
    throw new ArgumentError(
      `${caller}: a native trace (profiling, BatchNorm folding, compileInference or ONNX export) is already running; traces do not nest.`,
    );
  const saved = new Map<NativeFunctionName, NativeFunction>();
  for (const name of NATIVE_FUNCTIONS) {
    const original = nativeCalls[name];
    if (name === "setErrorClass" || typeof original !== "function") continue;
    saved.set(name, original);
    nativeCalls[name] = (...args: unknown[]) => {
      if (inHook) return original.apply(native, args);
      inHook = true;
      try {
        return hook(name, args, () => original.apply(native, args));
      } finally {
        inHook = false;
      }
    };
  }
  tracing = true;
  try {
    return fn();
  } finally {
    for (const [name, f] of saved) nativeCalls[name] = f;
    tracing = false;
  }
}

/** Runs fn with every native call reported to onCall after it returns. Not reentrant. */
export function traceNative<T>(fn: () => T, onCall: (call: NativeCall) => void, opts: { shapes?: boolean } = {}): T {
  // called inside the hook, so shape queries go straight to the addon and are not reported
  const shapeOf = (v: unknown): number[] | undefined =>
    isNativeHandle(v) && v.isAlive() ? native.shape(v) : undefined;
  return interceptNative(fn, (name, args, call) => {
    const t0 = performance.now();
    const result = call();
    const elapsedMs = performance.now() - t0;
    if (opts.shapes === true)
      onCall({ name, args, result, elapsedMs, argShapes: args.map(shapeOf), resultShape: shapeOf(result) });
    else onCall({ name, args, result, elapsedMs });
    return result;
  });
}

export function isNativeHandle(v: unknown): v is NativeHandle {
  return v instanceof native.TensorHandle;
}

/** Native handles among a call's arguments (arrays of handles included). */
export function handleArgs(args: unknown[]): NativeHandle[] {
  const out: NativeHandle[] = [];
  for (const a of args) {
    if (isNativeHandle(a)) out.push(a);
    else if (Array.isArray(a)) for (const b of a) if (isNativeHandle(b)) out.push(b);
  }
  return out;
}

/** Calls the addon function `name` on args: a traced call replayed on other tensors. */
export function callNative(name: NativeFunctionName, args: unknown[]): unknown {
  return nativeCalls[name].apply(native, args);
}

/** The shape of a handle a trace saw (tracers see handles, not Tensors). */
export function handleShape(h: NativeHandle): number[] {
  return native.shape(h);
}

export function handleDtype(h: NativeHandle): DType {
  return native.dtype(h);
}

/** A new Tensor holding a copy of a handle a trace saw (the handle stays its owner's). */
export function cloneHandle(h: NativeHandle): Tensor {
  return new Tensor(native.clone(h));
}
