// Op targets of the fuzz campaign: the package's public functions, Tensor methods and nn layers
// called with random arguments -- tensors of random shapes (0-size dims included), dtypes and
// values (NaN, Inf, -0), disposed or non-contiguous tensors, extreme numbers, negative and
// fractional dims, wrong types, undefined. Each call runs inside scope() so its tensors are freed.
import * as budgetnet from "../src";
import type { DType } from "../src/tensor/binding";
import { EXTREME_NUMBERS, type Rng } from "./fuzz_mutate";

const { nn, scope, Tensor, tensor } = budgetnet;

const DTYPES: DType[] = ["float32", "float64", "bfloat16", "float16", "int64", "int32", "uint8", "bool"];

/** Exports left out: network, files at random paths, whole trainings, process-wide settings. */
const SKIPPED = new Set([
  "downloadDataset",
  "downloadFile",
  "trainRecipe",
  "loadDataset",
  "loadCifar",
  "loadImageFolder",
  "loadIdxPair",
  "readIdx",
  "loadSafetensors",
  "saveSafetensors",
  "loadRecipe",
  "loadRunModel",
  "listRecipes",
  "evaluate",
  "setNumThreads",
  "registerModel",
  "keep",
  "compileInference",
  "native",
]);

/** Native functions left out: they change process-wide state that later cases would inherit. */
const NATIVE_SKIPPED = new Set([
  "setNumThreads",
  "tryLockFile",
  "setErrorClass",
  "profilerStart",
  "profilerStop",
  "autocastEnter",
  "autocastExit",
  "inferenceModeEnter",
  "inferenceModeExit",
  "setGradEnabled",
]);

/** Small models only: a random name must not make the case a minute-long build. */
const SMALL_MODELS = ["resnet20", "mobilenetv3_small", "wrn16_2", "bogus"];

const OPTION_KEYS = [
  "stride",
  "padding",
  "dilation",
  "groups",
  "keepdim",
  "eps",
  "momentum",
  "training",
  "runningMean",
  "runningVar",
  "weight",
  "bias",
  "reduction",
  "labelSmoothing",
  "ignoreIndex",
  "ceilMode",
  "countIncludePad",
  "outputPadding",
  "unbiased",
  "correction",
  "dtype",
  "device",
  "requiresGrad",
  "retainGraph",
  "mode",
  "numClasses",
  "inChannels",
  "lr",
  "batchSize",
];

function randomValues(rng: Rng, n: number): Float64Array {
  const out = new Float64Array(n);
  const special = [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, -0, 1e38, -1e300, 255, -1];
  for (let i = 0; i < n; i++) out[i] = rng.chance(0.1) ? rng.pick(special) : (rng.next() - 0.5) * 8;
  return out;
}

/** A fresh tensor: rank 0-4, small dims (0 included), any dtype, odd values, sometimes strided or needing grad. */
export function randomTensor(rng: Rng): budgetnet.Tensor {
  const rank = rng.int(5);
  const shape = Array.from({ length: rank }, () => rng.pick([0, 1, 1, 2, 2, 3, 4, 5]));
  const numel = shape.reduce((a, b) => a * b, 1);
  const dtype = rng.pick(DTYPES);
  let t = tensor(randomValues(rng, numel), shape, { dtype: "float64" }).to(dtype);
  if (rank >= 2 && rng.chance(0.2)) t = t.transpose(0, rank - 1);
  if (rank === 4 && rng.chance(0.1)) t = t.contiguous("channelsLast");
  if ((dtype === "float32" || dtype === "float64") && rng.chance(0.2)) t.requiresGrad = true;
  return t;
}

function randomNumber(rng: Rng): number {
  return rng.chance(0.6) ? rng.pick([0, 1, 2, 3, -1, -2, 0.5]) : rng.pick([...EXTREME_NUMBERS, Number.NaN, Infinity]);
}

function randomShape(rng: Rng): unknown[] {
  const length = rng.int(5);
  return Array.from({ length }, () =>
    rng.chance(0.8) ? rng.pick([0, 1, 2, 3, -1]) : rng.pick([-3, 2 ** 31, 2 ** 53, 1.5, Number.NaN, "2", undefined]),
  );
}

/** Any argument: mostly tensors and numbers, sometimes the wrong kind of thing entirely. */
export function randomArg(rng: Rng, depth = 0): unknown {
  const r = rng.next();
  if (r < 0.35) return randomTensor(rng);
  if (r < 0.55) return randomNumber(rng);
  if (r < 0.65) return randomShape(rng);
  if (r < 0.7)
    return rng.pick([
      "",
      "float32",
      "int64",
      "bool",
      "cuda",
      "cuda:7",
      "cpu",
      "mean",
      "none",
      "sum",
      "channelsLast",
      "x",
    ]);
  if (r < 0.76 && depth < 2) {
    const opts: Record<string, unknown> = {};
    for (let i = rng.int(4); i >= 0; i--) opts[rng.pick(OPTION_KEYS)] = randomArg(rng, depth + 1);
    return opts;
  }
  if (r < 0.81) return undefined;
  if (r < 0.84) return null;
  if (r < 0.87) return rng.chance(0.5);
  if (r < 0.9) {
    const t = randomTensor(rng);
    t.dispose();
    return t;
  }
  if (r < 0.94 && depth < 2) return Array.from({ length: rng.int(4) }, () => randomArg(rng, depth + 1));
  return rng.pick<unknown>([
    {},
    { shape: [2] },
    1n,
    Symbol("s"),
    () => 1,
    new Float32Array(3),
    new Map(),
    Object.create(null),
    { handle: {} },
  ]);
}

function args(rng: Rng, arity: number, firstTensor: boolean): unknown[] {
  const n = Math.max(0, arity + rng.int(3) - 1);
  return Array.from({ length: n }, (_, i) =>
    i === 0 && firstTensor && rng.chance(0.85) ? randomTensor(rng) : randomArg(rng),
  );
}

function isClass(fn: unknown): fn is new (...a: unknown[]) => unknown {
  return typeof fn === "function" && /^class\b/.test(Function.prototype.toString.call(fn));
}

/** Frees what a call returned when it owns native memory (modules, optimizers, loaders). */
/**
 * Frees what a call returned: modules and other disposables, and tensors too: a function may hand
 * its caller an owned tensor (kept, so the case's scope would not free it, e.g. ownedCopy).
 * Tensor.dispose is idempotent, so a returned input is no problem.
 */
function release(v: unknown): void {
  if (v !== null && typeof v === "object" && typeof (v as { dispose?: unknown }).dispose === "function")
    (v as { dispose(): void }).dispose();
}

const exported = Object.entries(budgetnet as Record<string, unknown>).filter(
  ([name, v]) => typeof v === "function" && !SKIPPED.has(name),
) as [string, (...a: unknown[]) => unknown][];
const methods = Object.getOwnPropertyNames(Tensor.prototype).filter(
  (m) => m !== "constructor" && typeof Object.getOwnPropertyDescriptor(Tensor.prototype, m)?.value === "function",
);
const natives = Object.entries(budgetnet.native as unknown as Record<string, unknown>).filter(
  ([name, v]) => typeof v === "function" && !NATIVE_SKIPPED.has(name),
) as [string, (...a: unknown[]) => unknown][];
const layers = Object.entries(nn).filter(([, v]) => isClass(v)) as [string, new (...a: unknown[]) => unknown][];

/**
 * Runs one random call. `planned` hears its target and arguments just before the call, so a
 * crash inside it can still be reported with them.
 */
export function runOpCase(rng: Rng, info: { target: string; how: string }, planned: () => void): void {
  const kind = rng.pick(["export", "export", "method", "layer", "native"]);
  scope(() => {
    if (kind === "method") {
      const name = rng.pick(methods);
      info.target = `method:${name}`;
      const self = randomTensor(rng);
      const a = args(rng, (self as unknown as Record<string, (...x: unknown[]) => unknown>)[name]?.length ?? 1, false);
      info.how = describeArgs([self, ...a]);
      planned();
      release((self as unknown as Record<string, (...x: unknown[]) => unknown>)[name]?.(...a));
    } else if (kind === "native") {
      // The raw binding, as exported: tensor handles where the wrappers would pass them.
      const [name, fn] = rng.pick(natives);
      info.target = `native:${name}`;
      const a = args(rng, fn.length || 2, true).map((v) => (v instanceof Tensor && rng.chance(0.8) ? v.handle : v));
      info.how = describeArgs(a);
      planned();
      // TensorHandle and InferencePlan are native constructors (not `class` source text).
      const Native = fn as unknown as new (...x: unknown[]) => unknown;
      const out = /^[A-Z]/.test(name) ? new Native(...a) : fn(...a);
      // Returned handles are wrapped so the scope frees them (dispose() on a handle is idempotent).
      for (const h of Array.isArray(out) ? out : [out])
        if (h !== null && typeof h === "object" && typeof (h as { dispose?: unknown }).dispose === "function")
          new Tensor(h as never);
    } else if (kind === "layer") {
      const [name, Layer] = rng.pick(layers);
      info.target = `nn:${name}`;
      const ctorArgs = Array.from({ length: rng.int(4) }, () => (rng.chance(0.7) ? randomNumber(rng) : randomArg(rng)));
      info.how = describeArgs(ctorArgs);
      planned();
      const layer = new Layer(...ctorArgs) as { forward?: (x: unknown) => unknown; dispose?: () => void };
      try {
        release(layer.forward?.(rng.chance(0.9) ? randomTensor(rng) : randomArg(rng)));
      } finally {
        layer.dispose?.();
      }
    } else {
      const [name, fn] = rng.pick(exported);
      info.target = `export:${name}`;
      const a = args(rng, fn.length, true);
      if (name === "createModel" && rng.chance(0.8)) a[0] = rng.pick(SMALL_MODELS);
      info.how = describeArgs(a);
      planned();
      release(isClass(fn) ? new fn(...a) : fn(...a));
    }
  });
}

/** A short, stable text for an argument list (for the report; values, not identities). */
export function describeArgs(a: unknown[]): string {
  const one = (v: unknown, depth: number): string => {
    if (v instanceof Tensor)
      return v.isDisposed
        ? "Tensor(disposed)"
        : `Tensor(${v.dtype}[${v.shape.join(",")}]${v.requiresGrad ? ",grad" : ""})`;
    if (typeof v === "bigint") return `${v}n`;
    if (typeof v === "symbol" || typeof v === "function") return typeof v;
    if (Array.isArray(v)) return depth > 1 ? "[...]" : `[${v.map((x) => one(x, depth + 1)).join(",")}]`;
    if (v !== null && typeof v === "object") {
      if (depth > 1) return "{...}";
      const entries = Object.entries(v).map(([k, x]) => `${k}:${one(x, depth + 1)}`);
      return `${v.constructor?.name ?? "null-proto"}{${entries.join(",")}}`;
    }
    return String(v);
  };
  return a
    .map((v) => one(v, 0))
    .join(", ")
    .slice(0, 300);
}
