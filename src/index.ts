// budgetnet: compact image classifiers from TypeScript on libtorch.
import * as os from "node:os";
import { setNumThreads } from "./tensor/tensor";

export * from "./analysis";
export * from "./data";
export * from "./export/safetensors";
export * from "./models";
export * as nn from "./nn";
export * from "./ops";
// What a custom training or inference loop needs beyond the ops: mixed precision, memory layout,
// BatchNorm folding, inference regions (the trainer and `budgetnet bench` use the same ones).
export { type AutocastDtype, type AutocastOptions, type AutocastState, autocast, autocastState } from "./perf/autocast";
export { castModel } from "./perf/cast";
export { toChannelsLast, toChannelsLastInput, toContiguousFormat } from "./perf/channels_last";
export { type FoldOptions, type FoldResult, foldBatchNorm } from "./perf/fold";
export { inferenceMode, isInferenceMode } from "./perf/inference";
export { type CompiledInference, compileInference, type PlanOptions, planAvailable } from "./perf/plan";
// The raw addon, for tests and benchmarks that call it directly; library code goes through ops.
export { type DType, native } from "./tensor/binding";
export { ArgumentError, NativeOpError } from "./tensor/errors";
export { keep, scope } from "./tensor/scope";
export {
  type Device,
  emptyCache,
  getNumThreads,
  getRngState,
  isGradEnabled,
  liveTensors,
  type MemoryStats,
  manualSeed,
  memoryStats,
  noGrad,
  setNumThreads,
  setRngState,
  Tensor,
} from "./tensor/tensor";
export * from "./train";
export { applyOverrides, listRecipes, loadRecipe, type TrainConfig } from "./train/config";
export { evaluate } from "./train/evaluate";
export { loadRunModel } from "./train/run";
export { TrainingDivergedError, train as trainRecipe } from "./train/trainer";

// Default: one intra-op thread per core (BUDGETNET_THREADS overrides).
setNumThreads(Number(process.env.BUDGETNET_THREADS) || os.availableParallelism());
