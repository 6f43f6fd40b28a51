// Tracing: one eval-mode, no-grad forward pass with every function of the native binding
// intercepted (by the native-call tracer, src/tensor/trace.ts). A call that touches a value
// derived from the input is recorded as ONNX nodes (see ops.ts); calls that touch only parameters
// or constants run as usual and their results become initializers when the traced graph uses
// them. Works for any model built from budgetnet ops, with no per-model code. Everything is
// restored afterwards, also when the export fails.
import type { Module } from "../../nn/module";
import { pathOfLabel, trackModulePaths } from "../../nn/module_paths";
import { randn } from "../../ops/creation";
import { siteKey } from "../../quant/sites";
import { scope } from "../../tensor/scope";
import { type NativeHandle, noGrad } from "../../tensor/tensor";
import { handleShape, interceptNative, type NativeFunctionName } from "../../tensor/trace";
import { GraphBuilder, isHandle, OnnxExportError } from "./graph";
import { MAPPERS } from "./ops";

/** Functions that only read metadata or process state: never recorded, never refused. */
const PASS_THROUGH = new Set<NativeFunctionName>([
  "shape",
  "dtype",
  "device",
  "isContiguous",
  "requiresGrad",
  "setRequiresGrad",
  "grad",
  "setGrad",
  "isGradEnabled",
  "setGradEnabled",
  "liveTensors",
  "getNumThreads",
  "setNumThreads",
  "buildInfo",
  "manualSeed",
  "rngState",
  "setRngState",
]);
/** Functions that bring tensor values into JS: on a traced value the graph would depend on data. */
const READS = new Set<NativeFunctionName>(["item", "toBuffer", "maxAbsDiff", "globalNorm"]);

export interface Trace {
  graph: GraphBuilder;
  /** Value name of the model's output. */
  output: string;
  /** The output's shape for the traced batch. */
  outputShape: number[];
  /** Batch size of the traced run. */
  batch: number;
}

function touchesTraced(g: GraphBuilder, args: unknown[]): boolean {
  return args.some((a) => g.isTraced(a) || (Array.isArray(a) && a.some((x) => g.isTraced(x))));
}

function describeArgs(args: unknown[]): string {
  const shapes = args.flatMap((a) =>
    isHandle(a) ? [a] : Array.isArray(a) ? a.filter(isHandle) : [],
  ) as NativeHandle[];
  return shapes.map((x) => `[${handleShape(x).join(", ")}]`).join(", ");
}

/**
 * Sees each recorded value with its site key (src/quant/sites.ts: the same module path, op and
 * per-module count), after its nodes are in the graph: the int8 export puts QuantizeLinear /
 * DequantizeLinear pairs there. `value` is the op's result, or an in-place op's tensor.
 */
export type OnTracedValue = (g: GraphBuilder, key: string, value: NativeHandle) => void;

/**
 * Runs model once on a random batch of inputShape and records the graph. `prologue` emits the
 * nodes between the graph input and what the model sees (e.g. normalization) and returns the
 * name of the value the model's input stands for.
 */
export function traceModel(
  model: Module,
  inputShape: readonly number[],
  prologue: (g: GraphBuilder) => string,
  batch = 2,
  onValue?: OnTracedValue,
): Trace {
  const paths: string[] = [];
  const g = new GraphBuilder(model.stateDict(), () => pathOfLabel(paths[paths.length - 1]));
  const moduleLabel = () => paths[paths.length - 1] ?? "(outside any module)";
  const counts = new Map<string, number>();
  const wasTraining = model.namedModules().map(([, m]) => [m, m.training] as const);
  const untrack = trackModulePaths(model, paths);
  model.eval();
  const record = (name: NativeFunctionName, args: unknown[], call: () => unknown): unknown => {
    if (PASS_THROUGH.has(name) || !touchesTraced(g, args)) return call();
    if (READS.has(name))
      throw new OnnxExportError(
        `ONNX export: module ${moduleLabel()} reads values computed from the input (${name}), so its graph depends on the data and cannot be traced.`,
      );
    const mapper = MAPPERS[name];
    if (mapper === undefined)
      throw new OnnxExportError(
        `ONNX export: op "${name}" has no ONNX mapping. It ran in module ${moduleLabel()} on inputs ${describeArgs(args)}. Ops with a mapping: ${Object.keys(MAPPERS).sort().join(", ")}.`,
      );
    const out = call();
    mapper(g, args, out);
    const value = isHandle(out) ? out : name.endsWith("_") && isHandle(args[0]) ? args[0] : undefined;
    if (onValue !== undefined && value !== undefined) {
      const module = pathOfLabel(paths[paths.length - 1]);
      const k = counts.get(`${module}:${name}`) ?? 0;
      counts.set(`${module}:${name}`, k + 1);
      onValue(g, siteKey(module, name, k), value);
    }
    return out;
  };
  try {
    const { output, outputShape } = interceptNative(
      () =>
        noGrad(() =>
          scope(() => {
            const x = randn([batch, ...inputShape]);
            g.bind(x.handle, prologue(g));
            onValue?.(g, "input", x.handle);
            const y = model.forward(x);
            if (!g.isTraced(y.handle))
              throw new OnnxExportError(
                "ONNX export: the model's output does not depend on its input; nothing to export.",
              );
            return { output: g.input(y.handle), outputShape: y.shape };
          }),
        ),
      record,
      "exportOnnx",
    );
    return { graph: g, output, outputShape, batch };
  } catch (e) {
    g.dispose();
    throw e;
  } finally {
    untrack();
    for (const [m, training] of wasTraining) m.training = training;
  }
}
