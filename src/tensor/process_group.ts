// Collectives across processes on libtorch's c10d (native/dist.cc): a ProcessGroup joins a job
// through c10d's TCPStore (rank 0 serves it at MASTER_ADDR:MASTER_PORT) and runs ProcessGroupGloo
// collectives; a GradientReducer averages gradients in buckets launched from autograd hooks while
// backward still runs (PyTorch DDP's scheme). Errors name the op and what to do.

import { type NativeProcessGroup, type NativeReducer, native } from "./binding";
import { ArgumentError } from "./errors";
import { Tensor } from "./tensor";

export class DistributedUnavailableError extends Error {
  constructor() {
    super(
      "this budgetnet addon was built without Gloo's headers, so it cannot train on several processes. " +
        "On Debian: sudo apt-get install libgloo-dev, then npm run build:native (or npm ci).",
    );
    this.name = "DistributedUnavailableError";
  }
}

/** Whether this build can join a distributed job. */
export function distributedAvailable(): boolean {
  return native.ProcessGroup !== undefined && native.Reducer !== undefined;
}

export interface ProcessGroupOptions {
  rank: number;
  worldSize: number;
  masterAddr: string;
  masterPort: number;
  /** Rendezvous and every collective give up after this long (a rank that never comes). */
  timeoutMs: number;
}

export class ProcessGroup {
  readonly rank: number;
  readonly worldSize: number;
  /** @internal */
  readonly native: NativeProcessGroup;

  constructor(opts: ProcessGroupOptions) {
    const Ctor = native.ProcessGroup;
    if (Ctor === undefined) throw new DistributedUnavailableError();
    const { rank, worldSize, masterAddr, masterPort, timeoutMs } = opts;
    if (!Number.isInteger(worldSize) || worldSize < 1)
      throw new ArgumentError(`ProcessGroup: worldSize must be an integer >= 1. Received: ${worldSize}`);
    if (!Number.isInteger(rank) || rank < 0 || rank >= worldSize)
      throw new ArgumentError(`ProcessGroup: rank must be an integer in [0, ${worldSize}). Received: ${rank}`);
    if (!Number.isInteger(masterPort) || masterPort < 1 || masterPort > 65535)
      throw new ArgumentError(`ProcessGroup: masterPort must be a port number (1-65535). Received: ${masterPort}`);
    if (!(timeoutMs >= 100)) throw new ArgumentError(`ProcessGroup: timeoutMs must be >= 100. Received: ${timeoutMs}`);
    this.rank = rank;
    this.worldSize = worldSize;
    this.native = new Ctor(rank, worldSize, masterAddr, masterPort, timeoutMs);
  }

  /** Every rank's tensors take root's values, in place. */
  broadcast(tensors: readonly Tensor[], root = 0): void {
    this.native.broadcast(
      tensors.map((t) => t.handle),
      root,
    );
  }

  /** Sums (or averages) the tensors over the ranks, in place. */
  allreduce(tensors: readonly Tensor[], op: "sum" | "avg" = "sum"): void {
    this.native.allreduce(
      tensors.map((t) => t.handle),
      op,
    );
  }

  barrier(): void {
    this.native.barrier();
  }

  /**
   * Training-mode BatchNorm over the whole job's batch (PyTorch's SyncBatchNorm, on CPU too):
   * each channel's sum, sum of squares and count all-reduced in forward, the sums of dy and
   * dy * (x - mean) in backward. Updates runningMean/runningVar (unbiased variance) in place.
   * Every rank must call it at the same point of its forward.
   */
  syncBatchNorm(
    x: Tensor,
    o: { weight?: Tensor; bias?: Tensor; runningMean?: Tensor; runningVar?: Tensor; momentum: number; eps: number },
  ): Tensor {
    return new Tensor(
      this.native.syncBatchNorm(
        x.handle,
        o.weight?.handle ?? null,
        o.bias?.handle ?? null,
        o.runningMean?.handle ?? null,
        o.runningVar?.handle ?? null,
        o.momentum,
        o.eps,
      ),
    );
  }

  destroy(): void {
    this.native.destroy();
  }
}

/**
 * Averages the gradients of `params` over the ranks: buckets of about `bucketCapBytes` in reverse
 * registration order, each all-reduced as soon as backward has produced all its gradients. Call
 * finalize() after backward and before the optimizer step, on every rank, every step.
 */
export class GradientReducer {
  private readonly native: NativeReducer;

  constructor(group: ProcessGroup, params: readonly Tensor[], bucketCapBytes = 25 * 1024 * 1024) {
    const Ctor = native.Reducer;
    if (Ctor === undefined) throw new DistributedUnavailableError();
    this.native = new Ctor(
      group.native,
      params.map((p) => p.handle),
      bucketCapBytes,
    );
  }

  /** Waits for every bucket and writes the averaged gradients into the parameters' .grad. */
  finalize(): void {
    this.native.finalize();
  }

  /** Parameter indices (into the constructor's list) of each bucket, in launch order. */
  buckets(): number[][] {
    return this.native.buckets();
  }

  /** Bytes all-reduced so far, and how many buckets left while backward still ran (overlap). */
  stats(): { bytesReduced: number; launchedDuringBackward: number } {
    return this.native.stats();
  }

  dispose(): void {
    this.native.dispose();
  }
}
