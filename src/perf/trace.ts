// A wrapper over the native binding for one call of fn: every addon function that fn reaches
// (through ops, layers, models) is reported with its name, arguments and time. Used to find
// which tensors feed which ops (BatchNorm folding) and to profile where a step's time goes.
import { type NativeBinding, type NativeHandle, native } from "../tensor/binding";
import { ArgumentError } from "../tensor/errors";

export interface NativeCall {
  name: string;
  args: unknown[];
  result: unknown;
  elapsedMs: number;
  /** With { shapes: true }: each tensor argument's shape at the call (undefined for non-tensors). */
  argShapes?: (number[] | undefined)[];
  /** With { shapes: true }: the result's shape when it is a tensor. */
  resultShape?: number[];
}

/** Functions that read a tensor's metadata without computing on it. */
export const INFO_FUNCTIONS: ReadonlySet<string> = new Set([
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

let tracing = false;

/** Runs fn with every native call reported to onCall after it returns. Not reentrant. */
export function traceNative<T>(fn: () => T, onCall: (call: NativeCall) => void, opts: { shapes?: boolean } = {}): T {
  if (tracing) throw new ArgumentError("traceNative: a trace is already running; traces do not nest.");
  const table = native as unknown as Record<string, unknown>;
  const saved = new Map<string, (...a: unknown[]) => unknown>();
  const rawShape = native.shape.bind(native); // the unwrapped function: shape queries are not reported
  const shapeOf = (v: unknown): number[] | undefined =>
    v instanceof native.TensorHandle && v.isAlive() ? rawShape(v) : undefined;
  for (const [name, f] of Object.entries(table)) {
    if (typeof f !== "function" || name === "TensorHandle" || name === "setErrorClass") continue;
    const original = f as (...a: unknown[]) => unknown;
    saved.set(name, original);
    table[name] = (...args: unknown[]) => {
      const t0 = performance.now();
      const result = original.apply(native, args);
      const elapsedMs = performance.now() - t0;
      if (opts.shapes === true)
        onCall({ name, args, result, elapsedMs, argShapes: args.map(shapeOf), resultShape: shapeOf(result) });
      else onCall({ name, args, result, elapsedMs });
      return result;
    };
  }
  tracing = true;
  try {
    return fn();
  } finally {
    for (const [name, f] of saved) table[name] = f;
    tracing = false;
  }
}

/** Native handles among a call's arguments (arrays of handles included). */
export function handleArgs(args: unknown[]): NativeHandle[] {
  const out: NativeHandle[] = [];
  const isHandle = (v: unknown): v is NativeHandle => v instanceof native.TensorHandle;
  for (const a of args) {
    if (isHandle(a)) out.push(a);
    else if (Array.isArray(a)) for (const b of a) if (isHandle(b)) out.push(b);
  }
  return out;
}

export interface OpProfileRow {
  name: string;
  calls: number;
  totalMs: number;
}

/** Total time per native function over one call of fn, largest first (a per-op profile). */
export function profileNative(fn: () => void): OpProfileRow[] {
  const rows = new Map<string, OpProfileRow>();
  traceNative(fn, (c) => {
    const r = rows.get(c.name) ?? { name: c.name, calls: 0, totalMs: 0 };
    r.calls++;
    r.totalMs += c.elapsedMs;
    rows.set(c.name, r);
  });
  return [...rows.values()].sort((a, b) => b.totalMs - a.totalMs);
}

export type { NativeBinding };

export interface OperatorProfileRow {
  /** ATen operator or autograd node name (with input shapes when recorded). */
  name: string;
  calls: number;
  /** Wall time inside the operator, nested operators included (milliseconds). */
  totalMs: number;
  /** Wall time inside the operator minus the operators it called (milliseconds). */
  selfMs: number;
}

/**
 * libtorch's operator profile of one call of fn: every ATen operator and autograd backward
 * node it ran, largest self time first (the table torch.autograd.profiler prints). Unlike
 * profileNative it sees inside backward(). Not reentrant.
 */
export function profileOperators(fn: () => void, opts: { recordShapes?: boolean } = {}): OperatorProfileRow[] {
  native.profilerStart(opts.recordShapes ?? false);
  let rows: ReturnType<NativeBinding["profilerStop"]>;
  try {
    fn();
  } finally {
    rows = native.profilerStop();
  }
  return rows.map((r) => ({ name: r.name, calls: r.calls, totalMs: r.totalUs / 1000, selfMs: r.selfUs / 1000 }));
}
