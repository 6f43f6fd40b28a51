// The whole native surface, typed in one place. Every function here is implemented in
// native/*.cc; a native failure arrives as NativeOpError (src/tensor/errors.ts). NATIVE_EXPORTS
// lists the same names at run time: test/tensor/binding.test.ts compares it with the addon's keys.
// Only src/tensor and src/ops import `native`; everything else calls their typed functions.
import * as fs from "node:fs";
import * as path from "node:path";
import { packageRoot } from "../paths";
import { NativeOpError } from "./errors";

/** Opaque native handle over one at::Tensor. */
export interface NativeHandle {
  dispose(): void;
  isAlive(): boolean;
}
type H = NativeHandle;
type Num = H | number | boolean;
type OptH = H | undefined;

/** A batch being assembled on a native thread (native/augment.cc); take() waits for it. */
export interface NativeBatchJob {
  take(): NativeHandle;
  cancel(): void;
}

export type DType = "float32" | "float64" | "bfloat16" | "float16" | "int64" | "int32" | "uint8" | "bool";
export type Reduction = "mean" | "sum" | "none";

/** The kernels a training convolution of one shape can run in each phase (native/conv_train.cc's candidates). */
export const CONV_KERNELS = ["direct-nhwc", "direct-blocked", "winograd", "libtorch"] as const;
export type ConvKernel = (typeof CONV_KERNELS)[number];
/** The phases of a training convolution, as convChoices() names them. */
export const CONV_PHASES = ["forward", "backwardData", "backwardWeights"] as const;
export type ConvPhaseChoices = { [phase in (typeof CONV_PHASES)[number]]?: ConvKernel };

export interface BuildInfo {
  torchVersion: string;
  cuda: boolean;
  mkldnn: boolean;
  /** Whether the addon was built with oneDNN's headers, i.e. exports InferencePlan. */
  dnnl: boolean;
  /** Whether the addon was built with Gloo's headers, i.e. exports ProcessGroup and Reducer. */
  gloo: boolean;
  tunedAllocator: boolean;
  parallelInfo: string;
}

/** One row of libtorch's operator profile (native/profiler.cc), times in microseconds. */
export interface ProfilerRow {
  name: string;
  calls: number;
  totalUs: number;
  selfUs: number;
}

/**
 * One node of an inference plan as native/plan.cc reads it. Value ids are dense and in order:
 * 0 is the input, node i writes value i + 1 (`out`) and reads `in` (and `b`, `sum`) before it.
 */
export interface InferencePlanNode {
  op: "conv" | "eltwise" | "binary" | "pool" | "batchnorm";
  in: number;
  out: number;
  b?: number;
  sub?: string;
  post?: string[];
  sum?: number;
  weight?: NativeHandle;
  bias?: NativeHandle | null;
  stride?: number[];
  padding?: number[];
  dilation?: number[];
  groups?: number;
  kernel?: number[];
  mean?: NativeHandle;
  var?: NativeHandle;
  eps?: number;
  /** int8 plans: run this node (a convolution, an average pool) in int8. */
  int8?: boolean;
  /** int8 plans: the quantization of this node's output, where known. */
  quant?: PlanQuant;
  /** int8 convolutions: the weight scales, per output channel or one. */
  wscales?: number[];
  /** int8 plans, float nodes: store the output quantized by `quant` (an int8 node reads it). */
  quantizeOutput?: boolean;
}

/** The quantization of a plan value: real = scale * (q - zeroPoint), stored as dtype. */
export interface PlanQuant {
  scale: number;
  zeroPoint: number;
  dtype: "uint8" | "int8";
}

/** A compiled oneDNN inference plan (native/plan.cc). */
export interface NativeInferencePlan {
  /** The values listed as outputs at construction, for input x [N, C, H, W]. */
  run(x: NativeHandle): NativeHandle[];
  /** The algorithm and oneDNN implementation of each convolution of the newest program. */
  choices(): string[];
  /** Frees the programs and weight copies now (V8 would finalize the object only when it sees fit). */
  dispose(): void;
}

/** A c10d process group: TCPStore rendezvous, ProcessGroupGloo collectives (native/dist.cc). */
export interface NativeProcessGroup {
  /** In place: every rank ends with root's values. */
  broadcast(tensors: NativeHandle[], root: number): void;
  /** In place, summed or averaged over the ranks. */
  allreduce(tensors: NativeHandle[], op?: "sum" | "avg"): void;
  barrier(): void;
  /** Training-mode batch norm over the whole job's batch; updates the running statistics given. */
  syncBatchNorm(
    x: NativeHandle,
    weight: NativeHandle | null,
    bias: NativeHandle | null,
    runningMean: NativeHandle | null,
    runningVar: NativeHandle | null,
    momentum: number,
    eps: number,
  ): NativeHandle;
  destroy(): void;
}

/** DDP's gradient reducer: buckets all-reduced from autograd hooks during backward (native/dist.cc). */
export interface NativeReducer {
  /** Launches what is left, waits, writes averaged gradients into .grad; returns the bucket count. */
  finalize(): number;
  /** Parameter indices per bucket, in launch order. */
  buckets(): number[][];
  stats(): { bytesReduced: number; launchedDuringBackward: number };
  dispose(): void;
}

export interface NativeBinding {
  TensorHandle: new () => H;
  /** Present only when buildInfo().gloo is true (built with Gloo's headers). */
  ProcessGroup?: new (
    rank: number,
    worldSize: number,
    masterAddr: string,
    masterPort: number,
    timeoutMs: number,
  ) => NativeProcessGroup;
  Reducer?: new (group: NativeProcessGroup, params: NativeHandle[], bucketCapBytes: number) => NativeReducer;
  /** Present only when buildInfo().dnnl is true (built with Debian's libdnnl-dev). */
  InferencePlan?: new (
    nodes: InferencePlanNode[],
    outputs: number[],
    dtype: "float32" | "bfloat16" | "int8",
    winograd: "auto" | "never" | "always",
    options?: { input?: PlanQuant },
  ) => NativeInferencePlan;
  // creation
  fromBuffer(data: ArrayBufferView, shape: number[], dtype: DType, device?: string): H;
  zeros(shape: number[], dtype?: DType, device?: string): H;
  ones(shape: number[], dtype?: DType, device?: string): H;
  empty(shape: number[], dtype?: DType, device?: string): H;
  full(shape: number[], value: number | boolean, dtype?: DType, device?: string): H;
  arange(start: number, end: number, step: number, dtype?: DType, device?: string): H;
  rand(shape: number[], dtype?: DType, device?: string): H;
  randn(shape: number[], dtype?: DType, device?: string): H;
  randint(low: number, high: number, shape: number[], dtype?: DType, device?: string): H;
  randperm(n: number): H;
  // information and data
  shape(t: H): number[];
  dtype(t: H): DType;
  device(t: H): string;
  isContiguous(t: H, format?: "channelsLast"): boolean;
  item(t: H): number | boolean;
  toBuffer(t: H, dtype?: DType): Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array;
  // autograd
  setRequiresGrad(t: H, on: boolean): void;
  requiresGrad(t: H): boolean;
  grad(t: H): H | undefined;
  setGrad(t: H, g: OptH): void;
  backward(t: H, gradient: OptH, retainGraph: boolean): void;
  detach(t: H): H;
  setGradEnabled(on: boolean): boolean;
  isGradEnabled(): boolean;
  // views and layout
  reshape(t: H, shape: number[]): H;
  view(t: H, shape: number[]): H;
  permute(t: H, dims: number[]): H;
  transpose(t: H, d0: number, d1: number): H;
  contiguous(t: H, format?: "channelsLast"): H;
  slice(t: H, dim: number, start: number, end: number, step: number): H;
  narrow(t: H, dim: number, start: number, length: number): H;
  select(t: H, dim: number, index: number): H;
  indexSelect(t: H, dim: number, index: H): H;
  gather(t: H, dim: number, index: H): H;
  cat(ts: H[], dim: number): H;
  stack(ts: H[], dim: number): H;
  flip(t: H, dims: number[]): H;
  squeeze(t: H, dim?: number): H;
  unsqueeze(t: H, dim: number): H;
  expand(t: H, shape: number[]): H;
  clone(t: H): H;
  flatten(t: H, start: number, end: number): H;
  pad(t: H, pads: number[], mode: string, value: number): H;
  to(t: H, dtype?: DType, device?: string): H;
  oneHot(t: H, numClasses: number): H;
  // unary (table-driven)
  neg(t: H): H;
  abs(t: H): H;
  exp(t: H): H;
  log(t: H): H;
  sqrt(t: H): H;
  rsqrt(t: H): H;
  square(t: H): H;
  reciprocal(t: H): H;
  sign(t: H): H;
  floor(t: H): H;
  ceil(t: H): H;
  round(t: H): H;
  sin(t: H): H;
  cos(t: H): H;
  isnan(t: H): H;
  isfinite(t: H): H;
  logicalNot(t: H): H;
  relu(t: H): H;
  relu6(t: H): H;
  sigmoid(t: H): H;
  tanh(t: H): H;
  silu(t: H): H;
  hardswish(t: H): H;
  hardsigmoid(t: H): H;
  mish(t: H): H;
  softplus(t: H): H;
  // binary (table-driven; either side may be a JS number)
  add(a: Num, b: Num): H;
  sub(a: Num, b: Num): H;
  mul(a: Num, b: Num): H;
  div(a: Num, b: Num): H;
  pow(a: Num, b: Num): H;
  remainder(a: Num, b: Num): H;
  maximum(a: Num, b: Num): H;
  minimum(a: Num, b: Num): H;
  eq(a: Num, b: Num): H;
  ne(a: Num, b: Num): H;
  lt(a: Num, b: Num): H;
  le(a: Num, b: Num): H;
  gt(a: Num, b: Num): H;
  ge(a: Num, b: Num): H;
  logicalAnd(a: Num, b: Num): H;
  logicalOr(a: Num, b: Num): H;
  matmul(a: H, b: H): H;
  // in-place, never recorded by autograd
  add_(x: H, y: Num): void;
  sub_(x: H, y: Num): void;
  mul_(x: H, y: Num): void;
  div_(x: H, y: Num): void;
  copy_(x: H, y: Num): void;
  maximum_(x: H, y: Num): void;
  /** In place, recorded by autograd. */
  relu_(x: H): void;
  addScaled_(x: H, y: H, alpha: number): void;
  addcmul_(x: H, t1: H, t2: H, value: number): void;
  addcdiv_(x: H, t1: H, t2: H, value: number): void;
  lerp_(x: H, end: H, weight: number): void;
  fill_(x: H, value: number): void;
  zero_(x: H): void;
  clamp_(x: H, min?: number, max?: number): void;
  sqrt_(x: H): void;
  uniform_(x: H, low: number, high: number): void;
  normal_(x: H, mean: number, std: number): void;
  bernoulli(p: H): H;
  // elementwise with options
  where(cond: H, a: Num, b: Num): H;
  clamp(t: H, min?: number, max?: number): H;
  leakyRelu(t: H, slope: number): H;
  elu(t: H, alpha: number): H;
  gelu(t: H, approximate?: "none" | "tanh"): H;
  addAlpha(a: H, b: Num, alpha: number): H;
  linear(x: H, w: H, b: OptH): H;
  // reductions
  sum(t: H, dims?: number[], keepdim?: boolean): H;
  mean(t: H, dims?: number[], keepdim?: boolean): H;
  amax(t: H, dims?: number[], keepdim?: boolean): H;
  amin(t: H, dims?: number[], keepdim?: boolean): H;
  argmax(t: H, dim?: number, keepdim?: boolean): H;
  argmin(t: H, dim?: number, keepdim?: boolean): H;
  var(t: H, dims: number[] | undefined, correction: number, keepdim?: boolean): H;
  std(t: H, dims: number[] | undefined, correction: number, keepdim?: boolean): H;
  norm(t: H, p: number, dims?: number[], keepdim?: boolean): H;
  logsumexp(t: H, dims?: number[], keepdim?: boolean): H;
  topk(t: H, k: number, dim: number): [H, H];
  maxAbsDiff(a: H, b: H): number;
  globalNorm(ts: H[], p: number): number;
  sgdStep(
    params: H[],
    grads: H[],
    buffers: H[],
    lr: number,
    momentum: number,
    dampening: number,
    weightDecay: number,
    nesterov: boolean,
  ): H[] | undefined;
  // nn
  conv2d(x: H, w: H, b: OptH, stride: number[], padding: number[], dilation: number[], groups: number): H;
  convTranspose2d(
    x: H,
    w: H,
    b: OptH,
    stride: number[],
    padding: number[],
    outputPadding: number[],
    groups: number,
    dilation: number[],
  ): H;
  batchNorm(
    x: H,
    weight: OptH,
    bias: OptH,
    runningMean: OptH,
    runningVar: OptH,
    training: boolean,
    momentum: number,
    eps: number,
  ): H;
  /** relu(batchNorm(x) [+ residual]) with batch statistics, fused; null where it does not apply (native/fused_bn.cc). */
  batchNormReluTrain(
    x: H,
    weight: OptH,
    bias: OptH,
    runningMean: OptH,
    runningVar: OptH,
    momentum: number,
    eps: number,
    residual: OptH,
  ): H | null;
  /** The training convolutions' kernel per shape and phase chosen so far (native/conv_train.cc). */
  convChoices(): Record<string, ConvPhaseChoices>;
  /** Presets the training convolutions' kernels of the shapes named (a resumed run takes its first run's). */
  setConvChoices(choices: Record<string, ConvPhaseChoices>): void;
  /** "auto" | "off" | a kernel name; returns the previous mode and forgets the choices and presets. */
  setTrainConvMode(mode: string): string;
  layerNorm(x: H, shape: number[], weight: OptH, bias: OptH, eps: number): H;
  maxPool2d(x: H, kernel: number[], stride: number[], padding: number[], dilation: number[], ceil: boolean): H;
  avgPool2d(x: H, kernel: number[], stride: number[], padding: number[], ceil: boolean, countIncludePad: boolean): H;
  adaptiveAvgPool2d(x: H, size: number[]): H;
  adaptiveMaxPool2d(x: H, size: number[]): H;
  dropout(x: H, p: number, training: boolean): H;
  featureDropout(x: H, p: number, training: boolean): H;
  softmax(x: H, dim: number): H;
  logSoftmax(x: H, dim: number): H;
  crossEntropy(
    logits: H,
    target: H,
    weight: OptH,
    reduction: Reduction,
    ignoreIndex: number,
    labelSmoothing: number,
  ): H;
  nllLoss(logp: H, target: H, weight: OptH, reduction: Reduction, ignoreIndex: number): H;
  mseLoss(x: H, y: H, reduction: Reduction): H;
  /** Quantize-clamp-dequantize with the straight-through gradient (int8 simulation, QAT). */
  fakeQuantizePerTensor(x: H, scale: number, zeroPoint: number, qmin: number, qmax: number): H;
  /** Per-channel along axis, symmetric (zero points 0): weights. */
  fakeQuantizePerChannel(x: H, scales: H, axis: number, qmin: number, qmax: number): H;
  // data loader: gather + augment + normalize one batch on a background thread (native/augment.cc)
  augmentBatch(
    images: Uint8Array,
    dims: number[],
    indices: Int32Array,
    params: Int32Array,
    padding: number,
    reflect: boolean,
    mean: number[],
    std: number[],
    device?: string,
  ): NativeBatchJob;
  // speed switches (native/autocast.cc): CPU autocast, InferenceMode, in-place re-layout
  autocastState(device?: "cpu" | "cuda"): { enabled: boolean; dtype: DType };
  autocastEnter(enabled: boolean, dtype: "bfloat16", device?: "cpu" | "cuda"): { enabled: boolean; dtype: DType };
  autocastExit(prevEnabled: boolean, prevDtype: DType, device?: "cpu" | "cuda"): void;
  inferenceModeEnter(): number;
  inferenceModeExit(): number;
  isInferenceMode(): boolean;
  setData(t: H, src: H, allowDtype?: boolean): void;
  // libtorch's operator profiler (native/profiler.cc)
  profilerStart(recordShapes?: boolean): void;
  profilerStop(): ProfilerRow[];
  // process-wide
  setErrorClass(cls: typeof NativeOpError): void;
  liveTensors(): number;
  setNumThreads(n: number): void;
  getNumThreads(): number;
  manualSeed(seed: number): void;
  rngState(): H;
  /** Frees the caching allocator's unused blocks; returns the bytes freed. */
  emptyCache(): number;
  allocatorStats(): { caching: boolean; reservedBytes: number; cachedBytes: number };
  /** glibc heap: bytes in use and bytes free inside the heap (fragmentation). */
  mallocStats(): { inUseBytes: number; freeBytes: number };
  setRngState(state: H): void;
  /** flock(fd, LOCK_EX | LOCK_NB): true when taken; released when fd closes or the process dies. */
  tryLockFile(fd: number): boolean;
  buildInfo(): BuildInfo;
}

/** The addon's classes; every other export is a function. */
export const NATIVE_CLASSES = [
  "TensorHandle",
  "InferencePlan",
  "ProcessGroup",
  "Reducer",
] as const satisfies readonly (keyof NativeBinding)[];
/** Exports a build may lack: InferencePlan needs oneDNN's headers at build time, ProcessGroup and Reducer Gloo's. */
export const OPTIONAL_NATIVE_EXPORTS: readonly (keyof NativeBinding)[] = ["InferencePlan", "ProcessGroup", "Reducer"];

export type NativeFunctionName = Exclude<keyof NativeBinding, (typeof NATIVE_CLASSES)[number]>;

/** The addon's functions, in the order native/*.cc exports them. */
// biome-ignore format: one line per family, as in NativeBinding above
export const NATIVE_FUNCTIONS = [
  "fromBuffer", "zeros", "ones", "empty", "full", "arange", "rand", "randn", "randint", "randperm",
  "shape", "dtype", "device", "isContiguous", "item", "toBuffer",
  "setRequiresGrad", "requiresGrad", "grad", "setGrad", "backward", "detach", "setGradEnabled", "isGradEnabled",
  "reshape", "view", "permute", "transpose", "contiguous", "slice", "narrow", "select", "indexSelect", "gather",
  "cat", "stack", "flip", "squeeze", "unsqueeze", "expand", "clone", "flatten", "pad", "to", "oneHot",
  "neg", "abs", "exp", "log", "sqrt", "rsqrt", "square", "reciprocal", "sign", "floor", "ceil", "round", "sin", "cos",
  "isnan", "isfinite", "logicalNot", "relu", "relu6", "sigmoid", "tanh", "silu", "hardswish", "hardsigmoid", "mish",
  "softplus",
  "add", "sub", "mul", "div", "pow", "remainder", "maximum", "minimum",
  "eq", "ne", "lt", "le", "gt", "ge", "logicalAnd", "logicalOr", "matmul",
  "add_", "sub_", "mul_", "div_", "copy_", "maximum_", "relu_", "addScaled_", "addcmul_", "addcdiv_", "lerp_",
  "fill_", "zero_", "clamp_", "sqrt_", "uniform_", "normal_", "bernoulli",
  "where", "clamp", "leakyRelu", "elu", "gelu", "addAlpha", "linear",
  "sum", "mean", "amax", "amin", "argmax", "argmin", "var", "std", "norm", "logsumexp", "topk", "maxAbsDiff",
  "globalNorm", "sgdStep",
  "conv2d", "convTranspose2d", "batchNorm", "layerNorm", "maxPool2d", "avgPool2d", "adaptiveAvgPool2d",
  "adaptiveMaxPool2d", "dropout", "featureDropout", "softmax", "logSoftmax", "crossEntropy", "nllLoss", "mseLoss",
  "fakeQuantizePerTensor", "fakeQuantizePerChannel",
  "emptyCache", "allocatorStats", "mallocStats", "augmentBatch",
  "autocastState", "autocastEnter", "autocastExit", "inferenceModeEnter", "inferenceModeExit", "isInferenceMode",
  "setData", "profilerStart", "profilerStop",
  "setErrorClass", "liveTensors", "setNumThreads", "getNumThreads", "manualSeed", "buildInfo", "rngState",
  "setRngState", "tryLockFile", "batchNormReluTrain",
  "convChoices", "setConvChoices", "setTrainConvMode",
] as const satisfies readonly NativeFunctionName[];

/** Every name NativeBinding declares, at run time. */
export const NATIVE_EXPORTS: readonly (keyof NativeBinding)[] = [...NATIVE_CLASSES, ...NATIVE_FUNCTIONS];

/**
 * Compiles only while the two lists above name every member of NativeBinding: a declaration
 * added without its name fails here with "Type '"name"' does not satisfy the constraint 'never'".
 */
type AssertNone<T extends never> = T;
export type UnlistedNativeExports = AssertNone<
  Exclude<keyof NativeBinding, (typeof NATIVE_CLASSES)[number] | (typeof NATIVE_FUNCTIONS)[number]>
>;

/**
 * One addon function called with arguments it checks itself (native/tensor.cc's Args). Declared as
 * a method, so TypeScript compares parameters bivariantly and every declared function fits.
 */
export type NativeFunction = { call(...args: unknown[]): unknown }["call"];

/** The addon's functions by name, for code that calls one by a name it read at run time (a trace's replay). */
export type NativeCallTable = Record<NativeFunctionName, NativeFunction>;

function load(): NativeBinding {
  const candidate = path.join(packageRoot(), "build", "Release", "budgetnet.node");
  if (fs.existsSync(candidate)) {
    const native = require(candidate) as NativeBinding;
    native.setErrorClass(NativeOpError);
    return native;
  }
  throw new Error(
    "budgetnet: the native addon build/Release/budgetnet.node was not found. Run `npm ci` (or `npx node-gyp rebuild`) in the package folder; it needs libtorch (Debian: apt-get install libtorch-dev).",
  );
}

export const native: NativeBinding = load();

/** The same object as `native`, indexed by function name (no cast: its methods take any arguments). */
export const nativeCalls: NativeCallTable = native;
