// The addon's calls that are not ops, typed for the folders that may not import the binding:
// thread-local modes (InferenceMode, autocast), swapping a tensor's storage, the operator
// profiler, the oneDNN inference plan (src/perf), the joint gradient norm (src/train) and the
// background batch assembler (src/data).
import type { DType, InferencePlanNode, NativeInferencePlan, PlanQuant, ProfilerRow } from "./binding";
import { native } from "./binding";
import { ArgumentError } from "./errors";
import { buildInfo, Tensor } from "./tensor";

export type { InferencePlanNode, NativeInferencePlan, PlanQuant, ProfilerRow } from "./binding";

/** Enters c10::InferenceMode on this thread; pair with inferenceModeExit. */
export function inferenceModeEnter(): void {
  native.inferenceModeEnter();
}

export function inferenceModeExit(): void {
  native.inferenceModeExit();
}

export function isInferenceMode(): boolean {
  return native.isInferenceMode();
}

/** Autocast of one device type on this thread: on or off, and the lower-precision dtype. */
export interface NativeAutocastState {
  enabled: boolean;
  dtype: DType;
}

/** The device type an autocast region is about. */
export type AutocastDevice = "cpu" | "cuda";

/** Sets autocast for device on this thread; returns the state before, for autocastExit. */
export function autocastEnter(
  enabled: boolean,
  dtype: "bfloat16",
  device: AutocastDevice = "cpu",
): NativeAutocastState {
  return native.autocastEnter(enabled, dtype, device);
}

export function autocastExit(prev: NativeAutocastState, device: AutocastDevice = "cpu"): void {
  native.autocastExit(prev.enabled, prev.dtype, device);
}

export function autocastState(device: AutocastDevice = "cpu"): NativeAutocastState {
  return native.autocastState(device);
}

/**
 * t's storage becomes src's (torch's `t.data = src`): the same Tensor object, so optimizers and
 * modules that hold it see the new values. Shapes must match; dtypes too unless allowDtype.
 */
export function setData(t: Tensor, src: Tensor, allowDtype?: boolean): void {
  native.setData(t.live(), src.live(), allowDtype);
}

/** The joint p-norm of all the tensors (computed in one native pass). */
export function globalNorm(ts: readonly Tensor[], p: number): number {
  return native.globalNorm(
    ts.map((t) => t.live()),
    p,
  );
}

/** The options of one SGD step over a parameter group (torch.optim.SGD's). */
export interface SgdStepOptions {
  lr: number;
  momentum: number;
  dampening: number;
  weightDecay: number;
  nesterov: boolean;
}

/**
 * One SGD step over a group in one native call (foreach kernels on CUDA): updates params in
 * place and buffers (momentum) in place. With buffers undefined (the group's first step) and
 * momentum > 0 it creates them and returns them; otherwise returns undefined.
 */
export function sgdStep(
  params: readonly Tensor[],
  grads: readonly Tensor[],
  buffers: readonly Tensor[] | undefined,
  o: SgdStepOptions,
): Tensor[] | undefined {
  const made = native.sgdStep(
    params.map((t) => t.live()),
    grads.map((t) => t.live()),
    (buffers ?? []).map((t) => t.live()),
    o.lr,
    o.momentum,
    o.dampening,
    o.weightDecay,
    o.nesterov,
  );
  return made?.map((h) => new Tensor(h));
}

/** Starts libtorch's operator profiler; profilerStop ends it and returns its table. */
export function profilerStart(recordShapes: boolean): void {
  native.profilerStart(recordShapes);
}

export function profilerStop(): ProfilerRow[] {
  return native.profilerStop();
}

/** Whether this build of the addon has the oneDNN plan (Debian's libdnnl-dev at build time). */
export function planAvailable(): boolean {
  return buildInfo().dnnl === true;
}

/**
 * A native oneDNN plan over nodes (see InferencePlanNode); throws when the build has none. With
 * dtype "int8" the nodes marked int8 run in int8 and `input` is the input's quantization.
 */
export function newInferencePlan(
  nodes: InferencePlanNode[],
  outputs: number[],
  dtype: "float32" | "bfloat16" | "int8",
  winograd: "auto" | "never" | "always",
  input?: PlanQuant,
): NativeInferencePlan {
  const Plan = native.InferencePlan;
  if (Plan === undefined)
    throw new ArgumentError(
      "InferencePlan: this build of budgetnet has no oneDNN plan (install libdnnl-dev and rebuild: npm run build:native).",
    );
  return input === undefined
    ? new Plan(nodes, outputs, dtype, winograd)
    : new Plan(nodes, outputs, dtype, winograd, { input });
}

/** A batch being assembled on a native thread; take() waits for it. */
export interface BatchJob {
  take(): Tensor;
  cancel(): void;
}

/**
 * Gathers images[indices] (uint8 [n, C, H, W] in one buffer), crops, flips and erases each as
 * params say (native/augment.cc, enum Param) and normalizes, on a background thread.
 */
export function augmentBatch(
  images: Uint8Array,
  dims: number[],
  indices: Int32Array,
  params: Int32Array,
  padding: number,
  reflect: boolean,
  mean: number[],
  std: number[],
  device?: string,
): BatchJob {
  const job = native.augmentBatch(images, dims, indices, params, padding, reflect, mean, std, device);
  return { take: () => new Tensor(job.take()), cancel: () => job.cancel() };
}
