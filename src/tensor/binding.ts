// The whole native surface, typed in one place. Every function here is implemented in
// native/*.cc; a native failure arrives as NativeOpError (src/tensor/errors.ts).
import * as fs from "node:fs";
import * as path from "node:path";
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

export interface NativeBinding {
  TensorHandle: new () => H;
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
  autocastState(): { enabled: boolean; dtype: DType };
  autocastEnter(enabled: boolean, dtype: "bfloat16"): { enabled: boolean; dtype: DType };
  autocastExit(prevEnabled: boolean, prevDtype: DType): void;
  inferenceModeEnter(): number;
  inferenceModeExit(): number;
  isInferenceMode(): boolean;
  setData(t: H, src: H, allowDtype?: boolean): void;
  // libtorch's operator profiler (native/profiler.cc)
  profilerStart(recordShapes?: boolean): void;
  profilerStop(): { name: string; calls: number; totalUs: number; selfUs: number }[];
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
  buildInfo(): { torchVersion: string; cuda: boolean; mkldnn: boolean; tunedAllocator: boolean; parallelInfo: string };
}

function load(): NativeBinding {
  // dist/src/tensor/binding.js and src/tensor/binding.ts both sit below the package root.
  let dir = __dirname;
  for (let i = 0; i < 5; i++) {
    const candidate = path.join(dir, "build", "Release", "budgetnet.node");
    if (fs.existsSync(candidate)) {
      const native = require(candidate) as NativeBinding;
      native.setErrorClass(NativeOpError);
      return native;
    }
    dir = path.dirname(dir);
  }
  throw new Error(
    "budgetnet: the native addon build/Release/budgetnet.node was not found. Run `npm ci` (or `npx node-gyp rebuild`) in the package folder; it needs libtorch (Debian: apt-get install libtorch-dev).",
  );
}

export const native: NativeBinding = load();
