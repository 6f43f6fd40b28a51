// The Tensor class: a handle over one libtorch at::Tensor. Ops live in src/ops and are
// attached as methods by src/ops/methods.ts.
import { type BuildInfo, type DType, type NativeHandle, native } from "./binding";
import { ArgumentError, checkArg, describe, functionArg, optionsArg } from "./errors";
import { registerTensorCheck, type Scoped, track } from "./scope";

export type { BuildInfo, DType, NativeHandle } from "./binding";
export type Device = "cpu" | "cuda" | `cuda:${number}`;
export type MemoryFormat = "contiguous" | "channelsLast";

export class Tensor implements Scoped {
  /** The native handle. Ops pass it to the addon; users never need it. */
  readonly handle: NativeHandle;
  kept = false;
  private cachedShape: number[] | undefined;
  private disposed = false;

  constructor(handle: NativeHandle) {
    checkArg(
      typeof (handle as { dispose?: unknown } | null)?.dispose === "function",
      "Tensor",
      "handle must be a native tensor handle; make tensors with tensor(), zeros(), randn(), ... rather than new Tensor()",
      "handle",
      handle,
    );
    this.handle = handle;
    track(this);
  }

  get shape(): number[] {
    if (this.cachedShape === undefined) this.cachedShape = native.shape(this.live());
    return this.cachedShape.slice();
  }
  get rank(): number {
    return this.shape.length;
  }
  /** Number of elements. */
  get size(): number {
    return this.shape.reduce((a, b) => a * b, 1);
  }
  get dtype(): DType {
    return native.dtype(this.live());
  }
  get device(): string {
    return native.device(this.live());
  }
  get isDisposed(): boolean {
    return this.disposed;
  }

  /** Frees the native tensor now. Autograd keeps what it saved, so a later backward() still works. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.handle.dispose();
  }

  /** The handle, or a clear error when this tensor was already disposed. */
  live(): NativeHandle {
    if (this.disposed)
      throw new ArgumentError(
        "This tensor was disposed (by dispose() or by the scope that created it). Return it from the scope or keep() it to use it later.",
      );
    return this.handle;
  }

  /** Elements as float32, row-major (one copy). */
  toFloat32Array(): Float32Array {
    return native.toBuffer(this.live(), "float32") as Float32Array;
  }
  /** Elements in the tensor's own dtype (bfloat16/float16 come back as Float32Array). */
  toTypedArray(): Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array {
    return native.toBuffer(this.live());
  }
  /** Elements as plain JS numbers, row-major. */
  toArray(): number[] {
    const data = native.toBuffer(this.live(), this.dtype === "int64" ? "float64" : undefined);
    return Array.from(data as ArrayLike<number>, Number);
  }
  /** The value of a one-element tensor. */
  item(): number {
    return Number(native.item(this.live()));
  }

  get requiresGrad(): boolean {
    return native.requiresGrad(this.live());
  }
  set requiresGrad(on: boolean) {
    native.setRequiresGrad(this.live(), on);
  }
  /** Sets requiresGrad and returns this, for chaining. */
  requireGrad(on = true): this {
    native.setRequiresGrad(this.live(), on);
    return this;
  }
  /** The accumulated gradient, or undefined before the first backward(). A new handle each call. */
  get grad(): Tensor | undefined {
    const g = native.grad(this.live());
    return g === undefined ? undefined : new Tensor(g);
  }
  /** Drops the gradient (PyTorch's zero_grad(set_to_none=True)). */
  zeroGrad(): void {
    native.setGrad(this.live(), undefined);
  }
  /** Sets the gradient to a given tensor (or clears it with undefined); it must match in shape and dtype. */
  setGrad(g: Tensor | undefined): void {
    if (g !== undefined) {
      const gh = handleOf(g, "setGrad", "g");
      const [s, gs] = [this.shape, g.shape];
      // libtorch's own check lives in the Python setter; assigning through the C++ API skips it.
      if (s.length !== gs.length || s.some((d, i) => d !== gs[i]) || this.dtype !== g.dtype)
        throw new ArgumentError(
          `setGrad: the gradient must have the tensor's shape [${s.join(", ")}] and dtype ${this.dtype}. Received: g=Tensor(shape=[${gs.join(", ")}], dtype=${g.dtype})`,
        );
      native.setGrad(this.live(), gh);
      return;
    }
    native.setGrad(this.live(), undefined);
  }
  backward(gradient?: Tensor, opts: { retainGraph?: boolean } = {}): void {
    const g = gradient === undefined || gradient === null ? undefined : handleOf(gradient, "backward", "gradient");
    native.backward(this.live(), g, optionsArg(opts, "backward").retainGraph ?? false);
  }
  /** A tensor sharing storage, cut from the autograd graph. */
  detach(): Tensor {
    return new Tensor(native.detach(this.live()));
  }

  toString(): string {
    if (this.disposed) return "Tensor(disposed)";
    return `Tensor(shape=[${this.shape.join(", ")}], dtype=${this.dtype}, device=${this.device})`;
  }
}

registerTensorCheck((v: unknown): v is Scoped => v instanceof Tensor);

/** Number of native tensors alive (not disposed, not yet finalized). For leak tests. */
export function liveTensors(): number {
  return native.liveTensors();
}

/** Runs fn with autograd recording off (PyTorch's torch.no_grad()). */
export function noGrad<T>(fn: () => T): T {
  functionArg(fn, "noGrad");
  const prev = native.setGradEnabled(false);
  try {
    return fn();
  } finally {
    native.setGradEnabled(prev);
  }
}

export function isGradEnabled(): boolean {
  return native.isGradEnabled();
}

/** Seeds libtorch's default generator: the same seed gives the same numbers. */
export function manualSeed(seed: number): void {
  if (!Number.isSafeInteger(seed) || seed < 0)
    throw new ArgumentError(`manualSeed: seed must be a non-negative integer. Received: seed=${seed}`);
  native.manualSeed(seed);
}

/** A copy of libtorch's default CPU generator state (uint8 tensor), for checkpoints. */
export function getRngState(): Tensor {
  return new Tensor(native.rngState());
}

/** Restores a state taken by getRngState(): later draws repeat exactly. */
export function setRngState(state: Tensor): void {
  native.setRngState(handleOf(state, "setRngState", "state"));
}

/** More intra-op threads than this never helps; libtorch hangs trying to start 100,000. */
export const MAX_THREADS = 1024;

/** Intra-op threads for libtorch kernels. Default: the machine's cores. */
export function setNumThreads(n: number): void {
  if (!Number.isInteger(n) || n < 1 || n > MAX_THREADS)
    throw new ArgumentError(`setNumThreads: n must be an integer in [1, ${MAX_THREADS}]. Received: n=${n}`);
  native.setNumThreads(n);
}

export function getNumThreads(): number {
  return native.getNumThreads();
}

export interface MemoryStats {
  /** Whether budgetnet's caching CPU allocator is installed (off with BUDGETNET_ALLOCATOR=default). */
  caching: boolean;
  /** Bytes the caching allocator holds from the system (in use + cached). */
  reservedBytes: number;
  /** Of those, bytes freed by tensors and kept for reuse. */
  cachedBytes: number;
  /** The process's resident set. */
  rssBytes: number;
  /** glibc's heap: bytes in use (a leak grows this) and free inside the heap (fragmentation grows this). */
  heapInUseBytes: number;
  heapFreeBytes: number;
}

/** The caching allocator's figures and the process's resident memory (soak tests, leak hunts). */
export function memoryStats(): MemoryStats {
  const heap = native.mallocStats();
  return {
    ...native.allocatorStats(),
    rssBytes: process.memoryUsage.rss(),
    heapInUseBytes: heap.inUseBytes,
    heapFreeBytes: heap.freeBytes,
  };
}

/** How the addon was built: the libtorch version, CUDA, oneDNN (the inference plan), the allocator. */
export function buildInfo(): BuildInfo {
  return native.buildInfo();
}

/**
 * Throws, saying what to do, where the addon cannot use a GPU (built against a libtorch without
 * CUDA, or none visible). `what` names the request ("--device cuda"), `instead` the way out.
 */
export function requireCuda(what: string, instead: string): void {
  const info = buildInfo();
  if (info.cuda) return;
  throw new ArgumentError(
    `${what} asked for, but the budgetnet addon was built against a libtorch without CUDA (${info.torchVersion}) ` +
      `or no GPU is visible. Rebuild it against a CUDA libtorch (LIBTORCH=/path/to/torch npm rebuild, or node ` +
      `scripts/build-addon-gpp.js; docs/gpu.md), or ${instead}.`,
  );
}

/** Returns the caching allocator's unused blocks to the system; returns the bytes freed. */
export function emptyCache(): number {
  return native.emptyCache();
}

/**
 * Takes an exclusive advisory lock (flock) on an open file without waiting: true when taken.
 * The kernel releases it when the descriptor closes or the process dies, kill -9 included.
 */
export function tryLockFile(fd: number): boolean {
  return native.tryLockFile(fd);
}

/** Unwraps a tensor argument with a clear error naming the function and the argument. */
export function handleOf(t: unknown, fn: string, arg: string): NativeHandle {
  if (!(t instanceof Tensor))
    throw new ArgumentError(`${fn}: ${arg} must be a Tensor. Received: ${arg}=${describe(t)}`);
  return t.live();
}
